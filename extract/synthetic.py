"""Synthetic videos for tests, benchmarks and the demo, written with PyAV (no system ffmpeg
needed) and torchvision (frame folders); here in extract/, beside the decoders that read them back,
because data/ imports numpy and h5py only.

`synthetic_frames` draws a textured static background with one object moving across it (a
surveillance-like scene) and, inside an optional frame range, an "anomalous" event: a second,
bright, fast object. `write_video` encodes frames losslessly by default (libx264rgb at crf 0, or
ffv1), so decoding gives back exactly the frames written; `write_frame_folder` writes JPEG/PNG
frame folders. `write_fake_ucf_crime` and `write_fake_shanghaitech` lay such videos out as the
real datasets are on disk. Videos are written atomically (claws.data.atomic).

Shapes: N frames of H x W x 3 uint8 RGB.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from claws.data.atomic import atomic_path

LOSSLESS_CODECS = {"libx264rgb": ("rgb24", {"crf": "0", "preset": "ultrafast"}),
                   "ffv1": ("bgr0", {}),
                   "mpeg4": ("yuv420p", {"qscale": "2"}),
                   "libx264": ("yuv420p", {"crf": "18", "preset": "ultrafast"})}


def synthetic_frames(
    num_frames: int,
    height: int = 64,
    width: int = 80,
    seed: int = 0,
    event: tuple[int, int] | None = None,
    gray: bool = False,
) -> np.ndarray:
    """A scene with a moving object, and an optional anomalous event.

    Args:
        num_frames: N >= 1.
        height: frame height (any size, odd included).
        width: frame width.
        seed: background texture and object path.
        event: [start, end) frame range of the anomalous event, or None.
        gray: equal R, G and B (a grayscale camera).

    Returns:
        (N, H, W, 3) uint8 RGB.
    """
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 120, size=(height, width, 3), dtype=np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    size = max(2, min(height, width) // 6)
    y = int(rng.integers(0, height - size))
    for t in range(num_frames):
        x = (int(seed) * 7 + t) % max(1, width - size)
        frames[t, y:y + size, x:x + size] = (200, 180, 60)
        if event is not None and event[0] <= t < event[1]:
            ex = (t * 5) % max(1, width - size)
            ey = (t * 3) % max(1, height - size)
            frames[t, ey:ey + size, ex:ex + size] = (255, 30, 30)
    if gray:
        frames = np.repeat(frames.mean(axis=3, keepdims=True).astype(np.uint8), 3, axis=3)
    return frames


def write_video(
    path: Path, frames: Iterable[np.ndarray], fps: float = 25.0, codec: str = "libx264rgb"
) -> Path:
    """Encode RGB frames into a video file (atomically: temporary name, then rename).

    Args:
        path: output file; the container follows its suffix (.mp4, .avi, .mkv).
        frames: (H, W, 3) uint8 RGB frames, or an (N, H, W, 3) array.
        fps: frame rate stored in the stream.
        codec: "libx264rgb" (lossless, crf 0), "ffv1" (lossless), "mpeg4" or "libx264" (lossy).

    Returns:
        The path written.
    """
    path = Path(path)
    if codec not in LOSSLESS_CODECS:
        raise ValueError(f"codec {codec!r} not in {sorted(LOSSLESS_CODECS)}")
    pix_fmt, options = LOSSLESS_CODECS[codec]
    import av  # here, as in claws.extract.video: frame folders and frames need no PyAV

    with atomic_path(path) as tmp, av.open(str(tmp), "w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                rate = Fraction(fps).limit_denominator(1001)
                stream = container.add_stream(codec, rate=rate, options=dict(options))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = pix_fmt
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            container.mux(stream.encode(image))
        if stream is None:
            raise ValueError(f"{path}: no frames to write")
        container.mux(stream.encode(None))
    return path


def write_frame_folder(
    folder: Path, frames: np.ndarray, ext: str = "jpg", digits: int = 3, quality: int = 95
) -> Path:
    """Write frames as `000.jpg, 001.jpg, ...` (ShanghaiTech's layout) or PNG (lossless)."""
    import torch  # here: drawing and writing videos need neither (a stream server starts in 0.3 s)
    import torchvision.io

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        chw = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)
        target = folder / f"{i:0{digits}d}.{ext}"
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its image codecs
            warnings.simplefilter("ignore", DeprecationWarning)
            if ext == "png":
                torchvision.io.write_png(chw, str(target))
            else:
                torchvision.io.write_jpeg(chw, str(target), quality=quality)
    return folder


def write_fake_ucf_crime(
    root: Path, train_lines: list[str], test_lines: list[str], num_frames: int = 40, **kw
) -> tuple[Path, Path]:
    """A fake UCF-Crime tree: `root/Videos/<Class>/<name>.mp4` plus the two list files.

    Args:
        root: folder to create.
        train_lines: lines of `Anomaly_Train.txt` (`Class/name.mp4`), e.g. copied from the real file.
        test_lines: lines of `Temporal_Anomaly_Annotation.txt` (`name.mp4 Class s1 e1 s2 e2`).
        num_frames: frames per video (a video with an annotated event gets it in its middle).
        **kw: passed to `synthetic_frames` (height, width, gray).

    Returns:
        (train list path, test annotation path).
    """
    root = Path(root)
    for n, line in enumerate(train_lines):
        cls, name = line.split()[0].split("/")[-2:]
        _fake(root / "Videos" / cls / name, num_frames, n, "Normal" not in cls, kw)
    for n, line in enumerate(test_lines):
        name, cls = line.split()[:2]
        folder = "Testing_Normal_Videos_Anomaly" if cls == "Normal" else cls
        _fake(root / "Videos" / folder / name, num_frames, 100 + n, cls != "Normal", kw)
    train = root / "Anomaly_Train.txt"
    test = root / "Temporal_Anomaly_Annotation.txt"
    train.write_text("\n".join(train_lines) + "\n")
    test.write_text("\n".join(test_lines) + "\n")
    return train, test


def _fake(path: Path, num_frames: int, seed: int, anomalous: bool, kw: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    event = (num_frames // 3, 2 * num_frames // 3) if anomalous else None
    write_video(path, synthetic_frames(num_frames, seed=seed, event=event, **kw), fps=30.0)


def write_fake_shanghaitech(
    root: Path, train_names: list[str], test_names: list[str], num_frames: int = 40, **kw
) -> tuple[Path, Path]:
    """A fake ShanghaiTech tree: `training/videos/01_001.avi` for original training videos,
    `testing/frames/01_0014/000.jpg...` (+ `testing/test_frame_mask/01_0014.npy`) for original
    test videos, plus `SH_Train.txt` and `SH_Test.txt` (names, no trailing newline, as published).
    """
    root = Path(root)
    for n, name in enumerate(train_names + test_names):
        if len(name.split("_")[-1]) == 4:
            event = (num_frames // 3, 2 * num_frames // 3)
            frames = synthetic_frames(num_frames, seed=n, event=event, **kw)
            write_frame_folder(root / "testing" / "frames" / name, frames)
            mask = np.zeros(num_frames, dtype=np.uint8)
            mask[event[0]:event[1]] = 1
            (root / "testing" / "test_frame_mask").mkdir(parents=True, exist_ok=True)
            np.save(root / "testing" / "test_frame_mask" / f"{name}.npy", mask)
        else:
            (root / "training" / "videos").mkdir(parents=True, exist_ok=True)
            frames = synthetic_frames(num_frames, seed=n, **kw)
            write_video(root / "training" / "videos" / f"{name}.avi", frames, 24.0, "mpeg4")
    train, test = root / "SH_Train.txt", root / "SH_Test.txt"
    train.write_text("\n".join(train_names))
    test.write_text("\n".join(test_names))
    return train, test
