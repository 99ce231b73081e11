"""Training videos from feature shards: checked, split for validation, loaded into memory once.

Shapes: V videos, N clips of all videos concatenated (video v owns rows offsets[v] ..
offsets[v] + counts[v]), D feature dim, K windows of all videos, b clips per window.

What a run trains on is recorded (`data_record`: every training video's content checksum, as
the shards store it in payload_sha256, and the statistics' stats_sha256), so that a resume can
tell other data from the same (`data_changes`).

Only split "train" videos are read; the test split is never touched. Validation, when asked,
holds out a stratified, seeded share of the TRAINING videos. Errors are raised before training
starts for: no shards, no training videos, a label of -1, a single class, a feature size other
than the config's, clip lengths that differ between videos, and features that are not finite in
the training dtype (the shard reader refuses NaN and inf; float16 also overflows above 65504).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from claws.data.shards import NormStats, ShardSet, VideoInfo, payload_sha256, stats_sha256
from claws.model.mil import segment_features
from claws.model.windows import video_windows

log = logging.getLogger(__name__)


@dataclass
class VideoSet:
    """Features of a set of videos in one (N, D) tensor, with every window precomputed."""

    video_ids: list[str]
    features: Tensor  # (N, D) float32 or float16, on the training device
    counts: Tensor  # (V,) int64 clips per video
    offsets: Tensor  # (V,) int64 first row of each video
    labels: Tensor  # (V,) int64, 0 normal, 1 anomalous
    window_clips: Tensor  # (K, b) int64 rows of `features` filling each window
    window_valid: Tensor  # (K, b) bool, False at the cyclic padding
    window_video: Tensor  # (K,) int64 video of each window
    windows_per_video: list[int]  # V entries

    def video_features(self, index: int) -> Tensor:
        """(T, D) features of video `index`."""
        start = int(self.offsets[index])
        return self.features[start : start + int(self.counts[index])]

    def segments(self, num_segments: int) -> Tensor:
        """(V, S, D) float32 MIL segment features of every video (Sultani's rule)."""
        return torch.stack(
            [segment_features(self.video_features(v).float(), num_segments) for v in range(len(self.counts))]
        )


def _check_videos(videos: list[VideoInfo], root: Path) -> None:
    if not videos:
        raise ValueError(
            f"{root}: no videos with split 'train'; extract training videos (split 'train') first"
        )
    unknown = [v.video_id for v in videos if v.label not in (0, 1)]
    if unknown:
        raise ValueError(
            f"{root}: {len(unknown)} training video(s) have label -1 (unknown), e.g. "
            f"{', '.join(unknown[:5])}; training needs video-level labels 0/1"
        )
    classes = {v.label for v in videos}
    if len(classes) < 2:
        name = "anomalous" if classes == {1} else "normal"
        raise ValueError(f"{root}: every training video is {name}; weak supervision needs both classes")
    clip_lens = {v.clip_len for v in videos}
    if len(clip_lens) > 1:
        raise ValueError(f"{root}: training videos mix clip lengths {sorted(clip_lens)}")


def split_validation(
    videos: list[VideoInfo], fraction: float, seed: int
) -> tuple[list[VideoInfo], list[VideoInfo]]:
    """Stratified, seeded hold-out of `fraction` of each class; each side keeps both classes."""
    if fraction <= 0:
        return videos, []
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in (0, 1):
        group = [v for v in videos if v.label == label]
        count = min(max(1, round(fraction * len(group))), len(group) - 1)
        if count < 1:
            raise ValueError(
                f"cannot hold out validation videos: only {len(group)} video(s) of label {label}"
            )
        order = rng.permutation(len(group))
        val += [group[i] for i in order[:count]]
        train += [group[i] for i in order[count:]]
    return sorted(train, key=lambda v: v.video_id), sorted(val, key=lambda v: v.video_id)


def load_videos(
    shards: ShardSet, videos: list[VideoInfo], window: int, dtype: torch.dtype, device: torch.device
) -> VideoSet:
    """Read the features of `videos` into one tensor and index all their windows."""
    arrays = [
        shards.features(v.video_id)
        for v in tqdm(videos, desc="loading features", unit="video", disable=None, leave=False)
    ]
    counts = torch.tensor([len(a) for a in arrays], dtype=torch.int64)
    offsets = torch.cumsum(counts, 0) - counts
    features = torch.from_numpy(np.concatenate(arrays)).to(dtype)
    _check_finite(features, videos, arrays)
    clips, valid, owner = [], [], []
    for index, count in enumerate(counts.tolist()):
        windows = video_windows(count, window)
        clips.append(windows.clip_index + offsets[index])
        valid.append(windows.valid)
        owner.append(torch.full((len(windows.valid),), index, dtype=torch.int64))
    return VideoSet(
        video_ids=[v.video_id for v in videos],
        features=features.to(device),
        counts=counts.to(device),
        offsets=offsets.to(device),
        labels=torch.tensor([v.label for v in videos], dtype=torch.int64, device=device),
        window_clips=torch.cat(clips).to(device),
        window_valid=torch.cat(valid).to(device),
        window_video=torch.cat(owner).to(device),
        windows_per_video=[len(c) for c in clips],
    )


def _check_finite(features: Tensor, videos: list[VideoInfo], arrays: list[np.ndarray]) -> None:
    """Refuse, naming the videos, features that are not finite in the training dtype."""
    if bool(torch.isfinite(features).all()):
        return
    finite = torch.isfinite(features).all(dim=1).tolist()
    bad, start = [], 0
    for video, array in zip(videos, arrays):
        if not all(finite[start : start + len(array)]):
            bad.append((video, float(np.abs(array).max())))
        start += len(array)
    named = ", ".join(f"{v.shard}: video {v.video_id} (values up to {top:.3g})" for v, top in bad[:5])
    hint = (" (float16 holds at most 65504): train with --feature-dtype float32, or"
            if features.dtype == torch.float16 else ":")
    raise ValueError(
        f"features of {len(bad)} training video(s) are not finite in {str(features.dtype)[6:]}"
        f"{hint} check those videos' features: {named}"
    )


def data_record(shards: ShardSet, videos: list[VideoInfo]) -> dict:
    """What a run trains on: {"stats_sha256": ..., "videos": {video_id: content checksum}}.

    A video's checksum is the payload_sha256 its shard stores (features, frame count, fps, clip
    length, label, split); for shards written before checksums it is computed from the features.
    """
    def checksum(video: VideoInfo) -> str:
        if video.payload_sha256:
            return video.payload_sha256
        return payload_sha256(shards.features(video.video_id), video.num_frames, video.fps,
                              video.clip_len, video.label, video.split)

    return {"stats_sha256": stats_sha256(shards.stats),
            "videos": {v.video_id: checksum(v) for v in videos}}


def data_changes(saved: dict, current: dict) -> list[str]:
    """How the training data `current` differs from the recorded `saved` (`data_record`), in
    words; empty when they are the same."""
    old, new = saved["videos"], current["videos"]
    groups = (("changed contents", sorted(v for v in old.keys() & new.keys() if old[v] != new[v])),
              ("added", sorted(new.keys() - old.keys())),
              ("removed", sorted(old.keys() - new.keys())))
    changes = [f"{len(ids)} training video{'s' if len(ids) > 1 else ''} {what} "
               f"({', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})"
               for what, ids in groups if ids]
    if saved["stats_sha256"] != current["stats_sha256"]:
        changes.append(f"other normalization statistics (stats_sha256 "
                       f"{saved['stats_sha256'][:12]}... then, {current['stats_sha256'][:12]}... now)")
    return changes


@dataclass
class TrainingData:
    """What the training loop needs from the shards."""

    train: VideoSet
    val: VideoSet | None
    norm_stats: NormStats  # copied from the shards into every checkpoint
    feature_meta: dict  # feature_dim, clip_len, extractor, shards, video counts, training_data


def load_training_data(
    root: Path, feature_dim: int, window: int, val_fraction: float, seed: int,
    dtype: torch.dtype, device: torch.device,
) -> TrainingData:
    """Open the shards, check them against the config, split and load the training videos.

    Args:
        root: shard directory or file.
        feature_dim: the config's feature size; the shards must match it.
        window: b, clips per window.
        val_fraction: share of training videos held out for validation (0 for none).
        seed: seeds the hold-out.
        dtype: in-memory feature dtype (float32 or float16).
        device: where the features live during training.
    """
    root = Path(root)
    shards = ShardSet(root)
    if shards.feature_dim != feature_dim:
        raise ValueError(
            f"{root}: shards hold {shards.feature_dim}-d features but the config expects "
            f"{feature_dim}; pass --feature-dim {shards.feature_dim} or use matching shards"
        )
    videos = shards.select(split="train")
    _check_videos(videos, root)
    train, val = split_validation(videos, val_fraction, seed)
    extractors = {repr(sorted(v.extractor.items())) for v in videos}
    if len(extractors) > 1:
        log.warning("%s: training videos come from %d extractor configs", root, len(extractors))
    meta = {
        "feature_dim": feature_dim,
        "clip_len": videos[0].clip_len,
        "extractor": videos[0].extractor,
        "shards": str(root.resolve()),
        "num_train_videos": len(train),
        "val_video_ids": [v.video_id for v in val],
        "training_data": data_record(shards, videos),
    }
    log.info("training on %d videos (%d anomalous), validating on %d", len(train),
             sum(v.label for v in train), len(val))
    return TrainingData(
        train=load_videos(shards, train, window, dtype, device),
        val=load_videos(shards, val, window, dtype, device) if val else None,
        norm_stats=shards.stats,
        feature_meta=meta,
    )
