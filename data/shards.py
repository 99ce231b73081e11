"""The feature-shard contract (HDF5): write, read, validate. DESIGN.md "Feature shards".

A shard is one HDF5 file holding many videos, written once to a temporary name and renamed, and
never modified after. A directory of shards (from one run, or from several ranks) reads as one
dataset through `ShardSet`.

Layout of one shard (schema version 1):

    /                      attrs: schema_version, feature_dim, created_by
    /normalization         group, attrs num_videos, num_clips, source; datasets mean (D,), range (D,)
    /videos/<video_id>     group, attrs below; dataset features (T, D) float32, mean-normalized

Per-video attrs (data, not convention): num_frames, num_clips, fps, clip_len, tail_policy, label
(1 anomalous, 0 normal, -1 unknown), split, class_name, source_path (resolved), source_size,
source_mtime_ns, extractor (JSON with the extractor config, weights file, weights sha256,
precision), weights_sha256, schema_version, payload_sha256, and for videos claws decoded
rotation (degrees the frames were turned counterclockwise, from the source's display matrix:
0, 90, 180, 270) and mirrored (then mirrored left-right); absent when features were imported or
the shard predates them. Raw features are recoverable: raw = features * range + mean.

Checksums: `payload_sha256` of a video covers its features and the attrs that align them with
frames (`payload_sha256()`), and is verified whenever `ShardSet.features` reads them, so
damage costs one hash of what is read anyway, not a pass over the file at open;
`/normalization` carries `stats_sha256` over mean, range and counts, verified at open. Shards
written before the checksums (no such attrs) are read as before. The file is built in memory
and written whole (claws.data.atomic): a full disk never meets HDF5.

Shapes: T clips, D feature dim.
"""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import h5py
import numpy as np

from claws.data.atomic import write_atomic
from claws.data.clips import CLIP_LEN, TAIL_POLICY, num_clips

SCHEMA_VERSION = 1
RANGE_EPS = 1e-6  # DESIGN.md: a (max - min) below this is treated as 1
# A range below this fraction of the median range is raised to it. Such a dimension barely varies
# over the training clips (a ReLU unit that is almost never active), so its range is rounding
# noise, and dividing by it multiplies that noise into the largest normalized values: on the demo
# (random C3D weights, synthetic footage) one dimension's range is 0.048 in fp32 and 0.005 in bf16
# against a median of 37, the largest normalized value 33 in fp32 and 1414 in bf16, cosine of the
# normalized features 0.705 at worst between the two. With the floor: 8.7 and 8.6, cosine 0.999.
# On the real UCF-Crime C3D features the smallest range is 0.36 of the median: the floor never
# binds there. (A measured addition to DESIGN.md's rule; README "Feature shards".)
RANGE_FLOOR = 0.05
SHARD_SUFFIX = ".h5"
VALID_LABELS = (-1, 0, 1)


class ShardError(ValueError):
    """A shard file or one of its videos does not meet the contract; the message names which."""


@dataclass(frozen=True)
class NormStats:
    """Per-dimension mean normalization x' = (x - mean) / range, from the training split only."""

    mean: np.ndarray  # (D,) float64
    range: np.ndarray  # (D,) float64, max - min (< RANGE_EPS: 1), at least RANGE_FLOOR x median
    num_videos: int  # training videos the statistics were computed from
    num_clips: int  # training clips the statistics were computed from
    source: str = ""  # where the statistics came from (a run directory, a shard, "identity")

    @classmethod
    def identity(cls, feature_dim: int) -> "NormStats":
        """Statistics that leave features unchanged (mean 0, range 1)."""
        return cls(np.zeros(feature_dim), np.ones(feature_dim), 0, 0, "identity")

    @property
    def feature_dim(self) -> int:
        return int(self.mean.shape[0])

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """(..., D) raw features to normalized float32."""
        return ((raw - self.mean) / self.range).astype(np.float32)

    def denormalize(self, features: np.ndarray) -> np.ndarray:
        """(..., D) normalized features back to raw float32."""
        return (features * self.range + self.mean).astype(np.float32)

    def to_dict(self) -> dict:
        """Plain lists and numbers, for checkpoints and JSON."""
        return {
            "mean": self.mean.tolist(),
            "range": self.range.tolist(),
            "num_videos": self.num_videos,
            "num_clips": self.num_clips,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "NormStats":
        return cls(
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["range"], dtype=np.float64),
            int(d["num_videos"]),
            int(d["num_clips"]),
            str(d.get("source", "")),
        )


class NormAccumulator:
    """Streaming sum/min/max over clips; mergeable across processes (torchrun ranks)."""

    def __init__(self, feature_dim: int) -> None:
        self.sum = np.zeros(feature_dim, dtype=np.float64)
        self.min = np.full(feature_dim, np.inf)
        self.max = np.full(feature_dim, -np.inf)
        self.num_clips = 0
        self.num_videos = 0

    def update(self, raw: np.ndarray) -> None:
        """Add one video's raw features (T, D)."""
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != self.sum.shape[0] or len(raw) == 0:
            raise ValueError(f"expected (T>0, {self.sum.shape[0]}) features, got {raw.shape}")
        self.sum += raw.sum(axis=0)
        self.min = np.minimum(self.min, raw.min(axis=0))
        self.max = np.maximum(self.max, raw.max(axis=0))
        self.num_clips += len(raw)
        self.num_videos += 1

    def merge(self, other: "NormAccumulator") -> None:
        """Fold another accumulator (e.g. from another rank) into this one."""
        self.sum += other.sum
        self.min = np.minimum(self.min, other.min)
        self.max = np.maximum(self.max, other.max)
        self.num_clips += other.num_clips
        self.num_videos += other.num_videos

    def finalize(self, source: str = "") -> NormStats:
        """The statistics; an error when no training clip was seen."""
        if self.num_clips == 0:
            raise ValueError(
                "no training videos to compute normalization statistics from: "
                "mark some videos as split 'train' or pass statistics of an earlier run"
            )
        return NormStats(self.sum / self.num_clips, normalization_range(self.max - self.min),
                         self.num_videos, self.num_clips, source)


def normalization_range(span: np.ndarray) -> np.ndarray:
    """Per-dimension divisor from max - min: below RANGE_EPS 1 (a constant dimension), and never
    below RANGE_FLOOR x the median range of the varying dimensions (see RANGE_FLOOR)."""
    span = np.asarray(span, dtype=np.float64)
    varying = span >= RANGE_EPS
    span = np.where(varying, span, 1.0)
    if varying.any():
        span = np.maximum(span, RANGE_FLOOR * np.median(span[varying]))
    return span


@dataclass
class VideoRecord:
    """One video's features and all its alignment metadata."""

    video_id: str
    features: np.ndarray  # (T, D) float32, mean-normalized as stored
    num_frames: int  # frames actually decoded
    fps: float
    label: int  # 1 anomalous, 0 normal, -1 unknown
    split: str = ""  # "train", "test" or "" (unknown)
    class_name: str = ""  # e.g. UCF-Crime class ("Normal" for normal videos)
    source_path: str = ""
    source_size: int = -1  # bytes of the source file or frame folder, -1 unknown
    clip_len: int = CLIP_LEN
    tail_policy: str = TAIL_POLICY
    extractor: dict = field(default_factory=dict)  # config, weights file + sha256, precision
    source_mtime_ns: int = -1  # source modified (ns; newest file of a folder), -1 unknown
    rotation: int | None = None  # degrees decoded frames were turned ccw; None: not decoded here
    mirrored: bool | None = None  # then mirrored left-right (display matrix); None: as rotation

    @property
    def num_clips(self) -> int:
        return int(self.features.shape[0])


def video_id_problem(video_id: str) -> str | None:
    """Why `video_id` cannot name a video group in a shard, or None when it can."""
    if not video_id or "/" in video_id or video_id in (".", ".."):
        return f"invalid video id {video_id!r} (empty, '.', '..' or with a '/'); rename the video"
    return None


def _check_record(record: VideoRecord, feature_dim: int, where: str) -> None:
    vid = record.video_id
    if problem := video_id_problem(vid):
        raise ShardError(f"{where}: {problem}")
    f = record.features
    if f.ndim != 2 or f.shape[1] != feature_dim:
        raise ShardError(f"{where}: video {vid}: features {f.shape}, expected (T, {feature_dim})")
    expected = _expected_clips(record.num_frames, record.clip_len)
    if f.shape[0] != expected:
        raise ShardError(
            f"{where}: video {vid}: {f.shape[0]} clips but num_frames={record.num_frames} "
            f"with clip_len={record.clip_len} needs {expected}"
        )
    if record.label not in VALID_LABELS:
        raise ShardError(f"{where}: video {vid}: label {record.label} not in {VALID_LABELS}")
    if not np.isfinite(f).all():
        raise ShardError(f"{where}: video {vid}: features contain NaN or inf")
    if not record.fps > 0:
        raise ShardError(f"{where}: video {vid}: fps must be > 0, got {record.fps}")


def _expected_clips(num_frames: int, clip_len: int) -> int:
    """The clips a video's attrs call for (claws.data.clips.num_clips), -1 when they call for
    none (no frame, or a clip length below 1): no feature array matches that."""
    return num_clips(num_frames, clip_len) if num_frames > 0 and clip_len > 0 else -1


def payload_sha256(
    features: np.ndarray, num_frames: int, fps: float, clip_len: int, label: int, split: str
) -> str:
    """sha256 over a video's features (float32, little-endian, row-major) and the attrs that say
    which frames they describe and how they are used."""
    digest = hashlib.sha256(np.ascontiguousarray(features, dtype="<f4").data)
    digest.update(json.dumps([int(num_frames), float(fps), int(clip_len), int(label),
                              str(split)]).encode())
    return digest.hexdigest()


def stats_sha256(stats: NormStats) -> str:
    """sha256 over the normalization statistics as stored (mean, range, counts)."""
    digest = hashlib.sha256(np.ascontiguousarray(stats.mean, dtype="<f8").data)
    digest.update(np.ascontiguousarray(stats.range, dtype="<f8").data)
    digest.update(json.dumps([stats.num_videos, stats.num_clips]).encode())
    return digest.hexdigest()


def write_shard(
    path: Path, records: Iterable[VideoRecord], stats: NormStats, created_by: str = "claws"
) -> Path:
    """Write videos into a new shard atomically (built in memory, temporary name, rename).

    Memory: the whole shard is held once (64 videos of 440 clips x 2048 float32: 230 MB).

    Args:
        path: final shard path; must not exist (a finished shard is never modified).
        records: videos whose features are already normalized with `stats`.
        stats: normalization statistics stored with the shard.
        created_by: free text recorded in the root attrs (command and version).

    Returns:
        The final path.

    Raises:
        ShardError: a record breaks the contract (nothing is written).
        claws.data.atomic.DiskFullError: no room for the file (nothing is left behind).
    """
    path = Path(path)
    if path.exists():
        raise ShardError(f"{path}: shard exists; finished shards are never rewritten")
    dim = stats.feature_dim
    image = io.BytesIO()
    with h5py.File(image, "w") as h5:
        h5.attrs.update(schema_version=SCHEMA_VERSION, feature_dim=dim, created_by=created_by)
        norm = h5.create_group("normalization")
        norm.create_dataset("mean", data=stats.mean.astype(np.float64))
        norm.create_dataset("range", data=stats.range.astype(np.float64))
        norm.attrs.update(num_videos=stats.num_videos, num_clips=stats.num_clips,
                          source=stats.source, stats_sha256=stats_sha256(stats))
        videos = h5.create_group("videos")
        for record in records:
            _check_record(record, dim, str(path))
            if record.video_id in videos:
                raise ShardError(f"{path}: video {record.video_id} given twice")
            _write_video(videos, record)
    # the temporary name is hidden: list_shards (and so every reader) skips it
    return write_atomic(path, image.getbuffer())


def _write_video(videos: h5py.Group, record: VideoRecord) -> None:
    features = record.features.astype(np.float32)
    g = videos.create_group(record.video_id)
    g.create_dataset("features", data=features)
    g.attrs.update(
        num_frames=int(record.num_frames),
        num_clips=record.num_clips,
        fps=float(record.fps),
        clip_len=int(record.clip_len),
        tail_policy=record.tail_policy,
        label=int(record.label),
        split=record.split,
        class_name=record.class_name,
        source_path=str(record.source_path),
        source_size=int(record.source_size),
        source_mtime_ns=int(record.source_mtime_ns),
        extractor=json.dumps(record.extractor, sort_keys=True),
        weights_sha256=str(record.extractor.get("weights_sha256", "")),
        schema_version=SCHEMA_VERSION,
        payload_sha256=payload_sha256(features, record.num_frames, record.fps, record.clip_len,
                                      record.label, record.split),
    )
    if record.rotation is not None:
        g.attrs.update(rotation=int(record.rotation), mirrored=bool(record.mirrored))


@dataclass(frozen=True)
class VideoInfo:
    """A video's metadata without its features; `shard` is the file holding it."""

    video_id: str
    shard: Path
    num_frames: int
    num_clips: int
    fps: float
    clip_len: int
    tail_policy: str
    label: int
    split: str
    class_name: str
    source_path: str
    source_size: int
    extractor: dict
    source_mtime_ns: int = -1  # -1: unknown (shards written before it was recorded)
    payload_sha256: str = ""  # "": no checksum (shards written before checksums)
    rotation: int | None = None  # turn applied when decoding (VideoRecord); None: not recorded
    mirrored: bool | None = None


def _read_info(shard: Path, vid: str, g: h5py.Group, feature_dim: int) -> VideoInfo:
    a = g.attrs
    required = ("num_frames", "num_clips", "fps", "clip_len", "label", "schema_version")
    missing = [k for k in required if k not in a]
    if missing or "features" not in g:
        raise ShardError(f"{shard}: video {vid}: missing {missing or ['features']}; re-extract it")
    shape = g["features"].shape
    info = VideoInfo(
        video_id=vid,
        shard=shard,
        num_frames=int(a["num_frames"]),
        num_clips=int(a["num_clips"]),
        fps=float(a["fps"]),
        clip_len=int(a["clip_len"]),
        tail_policy=str(a.get("tail_policy", "")),
        label=int(a["label"]),
        split=str(a.get("split", "")),
        class_name=str(a.get("class_name", "")),
        source_path=str(a.get("source_path", "")),
        source_size=int(a.get("source_size", -1)),
        extractor=json.loads(a.get("extractor", "{}")),
        source_mtime_ns=int(a.get("source_mtime_ns", -1)),
        payload_sha256=str(a.get("payload_sha256", "")),
        rotation=int(a["rotation"]) if "rotation" in a else None,
        mirrored=bool(a["mirrored"]) if "mirrored" in a else None,
    )
    expected = _expected_clips(info.num_frames, info.clip_len)
    if shape != (info.num_clips, feature_dim) or info.num_clips != expected:
        raise ShardError(
            f"{shard}: video {vid}: features {shape} do not match num_frames={info.num_frames}, "
            f"clip_len={info.clip_len}, feature_dim={feature_dim}"
        )
    if info.label not in VALID_LABELS:
        raise ShardError(f"{shard}: video {vid}: label {info.label} not in {VALID_LABELS}")
    return info


@contextmanager
def _damage_named(shard: Path, video_id: str = "") -> Iterator[None]:
    """Turn h5py's errors on a damaged file (RuntimeError, OSError, KeyError...) into a ShardError
    that names the shard (and video) and says what to do."""
    try:
        yield
    except ShardError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
        where = f"{shard}: video {video_id}" if video_id else str(shard)
        raise ShardError(f"{where}: the shard is damaged and cannot be read ({err}); re-extract its "
                         f"videos or restore {shard.name} from a backup") from err


def _read_stats(shard: Path, h5: h5py.File) -> NormStats:
    if "normalization" not in h5:
        raise ShardError(f"{shard}: no normalization group; not a claws shard or written by hand")
    n = h5["normalization"]
    stats = NormStats(
        n["mean"][()], n["range"][()], int(n.attrs["num_videos"]), int(n.attrs["num_clips"]),
        str(n.attrs.get("source", "")),
    )
    stored = str(n.attrs.get("stats_sha256", ""))
    if stored and stored != stats_sha256(stats):
        raise ShardError(f"{shard}: normalization statistics do not match their checksum: the file "
                         "is damaged; restore it from a backup or extract its videos again")
    return stats


def list_shards(root: Path) -> list[Path]:
    """Finished shard files under `root` (a directory or one file), sorted; temporary files
    (hidden names, claws.data.atomic.temporary_path) skipped."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ShardError(f"{root}: no such shard file or directory")
    return sorted(p for p in root.rglob(f"*{SHARD_SUFFIX}")
                  if p.is_file() and not p.name.startswith("."))


class ShardSet:
    """All videos of one or more shard files read as one dataset, validated on open.

    Features are read on demand (each read opens and closes its file), so a ShardSet can be
    handed to DataLoader worker processes.
    """

    def __init__(self, roots: Path | Iterable[Path]) -> None:
        roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
        files = [f for r in roots for f in list_shards(Path(r))]
        if not files:
            raise ShardError(f"no {SHARD_SUFFIX} shards found in {', '.join(map(str, roots))}")
        self.files = files
        self.videos: dict[str, VideoInfo] = {}
        self.stats: NormStats | None = None
        self.feature_dim = -1
        for shard in files:
            self._index(shard)

    def _index(self, shard: Path) -> None:
        try:
            h5 = h5py.File(shard, "r")
        except OSError as err:
            raise ShardError(f"{shard}: not a readable HDF5 file ({err}); delete it and rerun") from err
        with h5, _damage_named(shard):
            version = int(h5.attrs.get("schema_version", -1))
            if version != SCHEMA_VERSION:
                raise ShardError(f"{shard}: schema version {version}, this reader needs {SCHEMA_VERSION}")
            dim = int(h5.attrs["feature_dim"])
            stats = _read_stats(shard, h5)
            if self.stats is None:
                self.stats, self.feature_dim = stats, dim
            elif dim != self.feature_dim or not (
                np.array_equal(stats.mean, self.stats.mean)
                and np.array_equal(stats.range, self.stats.range)
            ):
                raise ShardError(
                    f"{shard}: feature dim or normalization statistics differ from {self.files[0]}; "
                    "shards of different runs cannot be read as one dataset"
                )
            for vid, g in h5.get("videos", {}).items():
                if vid in self.videos:
                    raise ShardError(f"video {vid} is in both {self.videos[vid].shard} and {shard}")
                self.videos[vid] = _read_info(shard, vid, g, dim)

    @property
    def video_ids(self) -> list[str]:
        return sorted(self.videos)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[VideoInfo]:
        return (self.videos[v] for v in self.video_ids)

    def select(self, split: str | None = None, label: int | None = None) -> list[VideoInfo]:
        """Videos of one split and/or label, sorted by id."""
        return [
            v for v in self
            if (split is None or v.split == split) and (label is None or v.label == label)
        ]

    def features(self, video_id: str, raw: bool = False) -> np.ndarray:
        """(T, D) float32 features of one video; normalized as stored, or raw if asked."""
        info = self._info(video_id)
        with _damage_named(info.shard, video_id), h5py.File(info.shard, "r") as h5:
            feats = h5["videos"][video_id]["features"][()]
        if info.payload_sha256 and info.payload_sha256 != payload_sha256(
                feats, info.num_frames, info.fps, info.clip_len, info.label, info.split):
            raise ShardError(
                f"{info.shard}: video {video_id}: features or metadata do not match their checksum "
                f"(payload_sha256): the file is damaged; re-extract the video or restore "
                f"{info.shard.name} from a backup"
            )
        if not np.isfinite(feats).all():
            raise ShardError(f"{info.shard}: video {video_id}: features contain NaN or inf")
        return self.stats.denormalize(feats) if raw else feats

    def record(self, video_id: str, raw: bool = False) -> VideoRecord:
        """The whole VideoRecord of one video."""
        i = self._info(video_id)
        return VideoRecord(
            i.video_id, self.features(video_id, raw), i.num_frames, i.fps, i.label, i.split,
            i.class_name, i.source_path, i.source_size, i.clip_len, i.tail_policy, i.extractor,
            i.source_mtime_ns, i.rotation, i.mirrored,
        )

    def _info(self, video_id: str) -> VideoInfo:
        if video_id not in self.videos:
            raise KeyError(f"video {video_id} is not in the shards of {self.files[0].parent}")
        return self.videos[video_id]
