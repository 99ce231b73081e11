"""The C3D Sports-1M network (Tran et al., ICCV 2015), its Caffe-exact preprocessing and its loader.

Shapes: N clips, each 16 frames; network input (N, 3, 16, 112, 112) float32 BGR minus the mean;
output fc6 after ReLU (N, 4096); the default feature is the mean of adjacent fc6 pairs (N, 2048).

Caffe parity (C3D v1.0, the model every published UCF-Crime feature set comes from):
- pool5 is a 2x2x2 max pool in ceil mode, so pool4's 2x7x7 output becomes 1x4x4 with the last
  spatial window covering one row/column; the popular PyTorch port instead pads by one on each side,
  which shifts every pool5 window. fc6 therefore sees 512x1x4x4 = 8192 values in (c, t, h, w) order.
- Frames are resized as Caffe does, with OpenCV itself (`cv2.resize`, INTER_LINEAR on uint8:
  half-pixel centres, no antialiasing, 11-bit fixed-point weights, uint8 result), so the resized
  pixels are Caffe's exactly. (A float bilinear resize rounded half up differs from OpenCV by one
  level in 8.6% of values on vtest.avi frames, and cost 15x more: 128 against 8 ms per clip.)
- The mean cube is subtracted at 128x171 and the centre crop taken at rows 8..119, cols 29..140.
  Subtracting then cropping equals cropping both then subtracting, which is what we compute.

Preprocessing is split where it pays: `crop_clips` (decoded frames to uint8 BGR crops, in the
decoding workers) and `normalize_clips` (uint8 crops to float minus the mean, on the network's
device inside `C3DFeatures`). A uint8 crop is 0.6 MB per clip against 2.4 MB as float32, so
workers ship a quarter of the bytes and the float work happens where the network runs.

Precision. The convolutions run in the configured precision ('fp32', 'bf16', 'fp16'); fc6 (and
fc7, fc8) always in fp32: it sums 8192 products, which overflowed fp16's 65504 on large
activations (and cuBLAS may reduce fp16 GEMMs in fp16), for about 0.2% of C3D's FLOPs. "fp32"
means IEEE fp32: during the forward, cuDNN convolutions and cuBLAS matmuls are set to full fp32,
since torch lets cuDNN convolutions use TF32 by default on Ampere and later GPUs. The forward never
reads its output on the host (no sync per batch); a non-finite output is found by the engine's
device-side check and fails that video alone (claws.extract.batches).

Weight files are read in `claws.extract.c3d_weights`, the mean in `claws.extract.c3d_mean`.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from claws.data.clips import CLIP_LEN, TAIL_POLICY
from claws.data.version import code_version
from claws.extract.c3d_mean import CHANNEL_MEANS_BGR, MEAN_SHAPE, load_mean
from claws.extract.c3d_weights import WeightsError, file_sha256, read_weights

__all__ = [
    "C3D", "CHANNEL_MEANS_BGR", "CROP_COLS", "CROP_ROWS", "MEAN_SHAPE", "RESIZE_HW", "WeightsError",
    "C3DFeatures", "Extractor", "build_extractor", "crop_clips", "crop_mean", "cuda_has_native_bf16",
    "default_precision", "fc6_to_feature", "file_sha256", "ieee_fp32",
    "load_c3d", "load_mean", "normalize_clips", "preprocess_clips",
]

log = logging.getLogger(__name__)

RESIZE_HW = (128, 171)  # (H, W) every frame is resized to, as in Caffe C3D v1.0
CROP_ROWS = slice(8, 120)  # centre crop rows 8..119 of 128
CROP_COLS = slice(29, 141)  # centre crop cols 29..140 of 171
CROP_SIZE = 112
RESIZE_METHOD = "opencv_inter_linear"  # recorded with every video (extractor identity)
NUM_CLASSES = 487  # Sports-1M
FC6_DIM = 4096
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# bench/c3d.py checks bf16 fc6 against fp32 with this bar (measured: 0.99998 on vtest.avi clips).
MIN_BF16_COSINE = 0.999


def _fp32_settings() -> list[tuple[object, str, object]]:
    """(object, attribute, value) that make fp32 convolutions and matmuls IEEE fp32, not TF32."""
    if hasattr(torch.backends.cudnn, "conv"):  # torch >= 2.9: the per-operator settings
        return [(torch.backends.cudnn.conv, "fp32_precision", "ieee"),
                (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    return [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]


@contextmanager
def ieee_fp32() -> Iterator[None]:
    """Inside the block, fp32 cuDNN convolutions and cuBLAS matmuls compute in full fp32 (no TF32);
    the previous settings come back after. Only CUDA reads these settings."""
    settings = _fp32_settings()
    saved = [getattr(owner, name) for owner, name, _ in settings]
    for owner, name, value in settings:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for (owner, name, _), value in zip(settings, saved):
            setattr(owner, name, value)


def _conv(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=3, padding=1)


class C3D(nn.Module):
    """C3D with the layer names of `c3d.pickle`; forward returns fc6 after ReLU.

    fc7 and fc8 are kept (they are in every weight file and their shapes are checked on load) and
    used only by `fc8_logits`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv(3, 64), _conv(64, 128)
        self.conv3a, self.conv3b = _conv(128, 256), _conv(256, 256)
        self.conv4a, self.conv4b = _conv(256, 512), _conv(512, 512)
        self.conv5a, self.conv5b = _conv(512, 512), _conv(512, 512)
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2)
        self.pool5 = nn.MaxPool3d(kernel_size=2, stride=2, ceil_mode=True)  # Caffe-exact, no padding
        self.fc6 = nn.Linear(8192, FC6_DIM)
        self.fc7 = nn.Linear(FC6_DIM, FC6_DIM)
        self.fc8 = nn.Linear(FC6_DIM, NUM_CLASSES)
        self.weights_info: dict = {}
        self.precision = "fp32"
        self.memory_format = torch.contiguous_format

    def configure(self, precision: str, channels_last: bool | None = None) -> "C3D":
        """Convert the convolutions to a precision ('fp32', 'bf16', 'fp16') and memory format,
        in place; the FC layers stay fp32 (module docstring).

        Args:
            precision: the convolutions' dtype; forward still takes and returns float32.
            channels_last: channels_last_3d weights and input; default True for bf16/fp16.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        if channels_last is None:
            channels_last = precision != "fp32"
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        for module in self.modules():  # the FC layers keep their fp32 weights unrounded
            if isinstance(module, nn.Conv3d):
                module.to(dtype=PRECISIONS[precision], memory_format=self.memory_format)
        self.precision = precision
        self.weights_info["precision"] = precision
        return self

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """pool5 output (N, 512, 1, 4, 4) in the convolutions' dtype, from float clips."""
        if clips.ndim != 5 or tuple(clips.shape[1:]) != (3, CLIP_LEN, CROP_SIZE, CROP_SIZE):
            raise ValueError(
                f"C3D expects preprocessed clips (N, 3, 16, 112, 112), got {tuple(clips.shape)}; "
                "use claws.extract.c3d.preprocess_clips"
            )
        x = clips.to(dtype=self.conv1.weight.dtype, memory_format=self.memory_format)
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.pool(F.relu(self.conv3b(F.relu(self.conv3a(x)))))
        x = self.pool(F.relu(self.conv4b(F.relu(self.conv4a(x)))))
        return self.pool5(F.relu(self.conv5b(F.relu(self.conv5a(x)))))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """fc6 after ReLU.

        Args:
            clips: (N, 3, 16, 112, 112) float32, from `preprocess_clips`.

        Returns:
            (N, 4096) float32, whatever the convolutions' precision; not checked here (a check
            would wait for the whole forward on a GPU): the engine checks it on the device.
        """
        with ieee_fp32():
            pool5 = self.features(clips).flatten(1).float()  # (N, 8192) in (c, t, h, w) order
            return F.relu(self.fc6(pool5))

    def fc8_logits(self, clips: torch.Tensor) -> torch.Tensor:
        """Sports-1M class logits (N, 487) float32 (dropout is inactive in eval mode)."""
        with ieee_fp32():
            fc6 = F.relu(self.fc6(self.features(clips).flatten(1).float()))
            return self.fc8(F.relu(self.fc7(fc6)))


def _resize_frames(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, 128, 171, 3) uint8 with OpenCV INTER_LINEAR, as Caffe C3D does."""
    import cv2  # imported here: the light CLI modules import this file's constants only

    if tuple(frames.shape[1:3]) == RESIZE_HW:
        return frames
    size = (RESIZE_HW[1], RESIZE_HW[0])  # OpenCV takes (width, height)
    out = np.empty((len(frames), *RESIZE_HW, 3), np.uint8)
    for i, frame in enumerate(frames):
        cv2.resize(frame, size, dst=out[i], interpolation=cv2.INTER_LINEAR)
    return out


def _check_clips(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 5 or frames.shape[1] != CLIP_LEN or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"expected clips (N, 16, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}; pad short "
            "clips with claws.data.clips.pad_clip_frames"
        )
    return frames


def crop_clips(frames: np.ndarray) -> torch.Tensor:
    """Decoded clips to uint8 C3D crops: resize to 128x171 (OpenCV), centre crop, RGB -> BGR.

    The first half of `preprocess_clips`, run in the decoding workers: pure CPU, picklable.

    Args:
        frames: (N, 16, H, W, 3) uint8 RGB, each clip already padded to 16 frames
            (claws.data.clips.pad_clip_frames).

    Returns:
        (N, 16, 112, 112, 3) uint8 BGR.
    """
    frames = _check_clips(frames)
    n, t, h, w, _ = frames.shape
    resized = _resize_frames(frames.reshape(n * t, h, w, 3))
    crops = resized[:, CROP_ROWS, CROP_COLS, ::-1]  # (N*16, 112, 112, 3) BGR
    return torch.from_numpy(np.ascontiguousarray(crops).reshape(n, t, CROP_SIZE, CROP_SIZE, 3))


def crop_mean(mean: np.ndarray) -> torch.Tensor:
    """The mean cube (3, 16, 128, 171) cut to the crop: (3, 16, 112, 112) float32."""
    if mean.shape != MEAN_SHAPE:
        raise ValueError(f"mean cube must be {MEAN_SHAPE} (C BGR, T, H, W), got {mean.shape}")
    return torch.from_numpy(np.ascontiguousarray(np.asarray(mean, np.float32)[..., CROP_ROWS, CROP_COLS]))


def normalize_clips(crops: torch.Tensor, mean_crop: torch.Tensor) -> torch.Tensor:
    """uint8 crops to the network input, on whatever device they are: float, minus the mean.

    Args:
        crops: (N, 16, 112, 112, 3) uint8 BGR from `crop_clips`.
        mean_crop: (3, 16, 112, 112) float32 from `crop_mean`, on the same device.

    Returns:
        (N, 3, 16, 112, 112) float32 (strides of the permuted crops; C3D converts the layout).
    """
    if crops.ndim != 5 or tuple(crops.shape[1:]) != (CLIP_LEN, CROP_SIZE, CROP_SIZE, 3) \
            or crops.dtype != torch.uint8:
        raise ValueError(f"expected uint8 crops (N, 16, 112, 112, 3) from crop_clips, got "
                         f"{tuple(crops.shape)} {crops.dtype}")
    return crops.permute(0, 4, 1, 2, 3).float().sub_(mean_crop)


def preprocess_clips(frames: np.ndarray, mean: np.ndarray) -> torch.Tensor:
    """Decoded clips to C3D input, as Caffe C3D v1.0 does it (`crop_clips` then `normalize_clips`).

    RGB -> BGR, resize to 128x171 (OpenCV bilinear, uint8 result), subtract the mean cube, centre
    crop rows 8..119 and cols 29..140.

    Args:
        frames: (N, 16, H, W, 3) uint8 RGB, each clip already padded to 16 frames.
        mean: (3, 16, 128, 171) float32 BGR cube from `load_mean`.

    Returns:
        (N, 3, 16, 112, 112) float32, contiguous.
    """
    mean_crop = crop_mean(mean)
    return normalize_clips(crop_clips(frames), mean_crop).contiguous()


class C3DFeatures:
    """The extraction network: uint8 crops on its device to (B, D) float32 features.

    Mean subtraction happens here, on the network's device; then C3D, then `fc6_to_feature`.
    """

    def __init__(self, model: C3D, mean: np.ndarray, feature_dim: int = 2048) -> None:
        self.model, self.feature_dim = model, feature_dim
        self.device = next(model.parameters()).device
        self.mean_crop = crop_mean(mean).to(self.device)

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return fc6_to_feature(self.model(normalize_clips(crops, self.mean_crop)), self.feature_dim)


def fc6_to_feature(fc6: torch.Tensor, feature_dim: int = 2048) -> torch.Tensor:
    """fc6 (N, 4096) to the stored feature: 2048 = mean of adjacent pairs, 4096 = fc6 itself."""
    if fc6.ndim != 2 or fc6.shape[1] != FC6_DIM:
        raise ValueError(f"fc6 must be (N, {FC6_DIM}), got {tuple(fc6.shape)}")
    if feature_dim == FC6_DIM:
        return fc6
    if feature_dim == 2048:
        return fc6.view(-1, 2048, 2).mean(-1)
    raise ValueError(f"feature_dim must be 2048 (mean of adjacent fc6 pairs) or 4096, got {feature_dim}")


def default_precision(device: str | torch.device) -> str:
    """The precision extraction uses on a device type, chosen from bench/c3d.py.

    CPU: 'bf16' only when the CPU computes bf16 natively (AMX tiles or AVX512-BF16); its fc6 has
    cosine 0.99998 to fp32 (>= MIN_BF16_COSINE, bench/c3d.py) and the issue measured ~4x fp32 on an
    AMX CPU. Without them oneDNN emulates bf16 and it is no faster than fp32 (0.4-1.5x measured on
    an AVX-512 CPU without bf16), so 'fp32', which is also the reference path.
    CUDA: 'fp16' convolutions (tensor cores on every CUDA GPU, 3 more mantissa bits than bf16;
    fc6 in fp32; a video whose output is not finite fails alone). Not measured on a GPU here.
    """
    kind = torch.device(device).type
    if kind == "cuda":
        return "fp16"
    if kind == "cpu" and _cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def check_precision(precision: str, device: str | torch.device) -> None:
    """Warn when a precision is emulated on this device, which makes it far slower than fp32.

    Measured on the 2-core development CPU (AVX-512 without BF16 or AMX): one clip takes 2 s in
    fp32 and 300 s in bf16, because oneDNN falls back to reference kernels.
    """
    kind = torch.device(device).type
    if kind == "cpu" and precision != "fp32" and not _cpu_has_native_bf16():
        log.warning("precision %s on a CPU without native bf16 (AMX or AVX512-BF16) is emulated and "
                    "about 100x slower than fp32 here; use --precision fp32 (or auto)", precision)
    if kind == "cuda" and precision == "bf16" and not cuda_has_native_bf16(device):
        log.warning("precision bf16 on a GPU before Ampere (compute capability < 8.0) is emulated "
                    "and slow; use --precision fp16 (or auto)")


def cuda_has_native_bf16(device: str | torch.device) -> bool:
    """bf16 tensor cores: compute capability 8.0 (Ampere) or later."""
    return torch.cuda.get_device_capability(torch.device(device))[0] >= 8


def _cpu_has_native_bf16() -> bool:
    """AMX tiles or AVX512-BF16 (torch's own CPU probes; older torch without them: False)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def _random_init(model: C3D, seed: int) -> None:
    """Seeded He-normal weights and zero biases: activations keep their scale through depth."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv3d, nn.Linear)):
            fan_in = module.weight[0].numel()
            with torch.no_grad():
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
                module.bias.zero_()


def load_c3d(
    weights: str | Path, *, device: str | torch.device = "cpu", precision: str = "fp32", seed: int = 0
) -> C3D:
    """The C3D network in eval mode, with weights from a file or seeded random ones.

    Args:
        weights: a `c3d.pickle` state dict, a Keras C3D `.h5`, or the literal "random".
        device: where the model lives.
        precision: 'fp32' (reference), 'bf16' or 'fp16'; forward always returns float32.
        seed: the random-weights seed (only with weights="random").

    Returns:
        C3D with `weights_info` = {path, format, sha256, random, precision}.
    """
    model = C3D()
    if str(weights) == "random":
        _random_init(model, seed)
        log.warning("C3D has RANDOM weights (seed %d): its features are NOT real C3D features", seed)
        info = {"path": "random", "format": "random", "sha256": "", "random": True, "seed": seed}
    else:
        path = Path(weights)
        expected = {k: v.shape for k, v in model.state_dict().items()}
        state, fmt = read_weights(path, expected)
        model.load_state_dict(state, strict=True)
        info = {"path": str(path), "format": fmt, "sha256": file_sha256(path), "random": False}
        log.info("C3D weights %s (%s, sha256 %s)", path, fmt, info["sha256"][:16])
    model.weights_info = info
    model.to(device=torch.device(device))
    check_precision(precision, device)
    return model.configure(precision).eval().requires_grad_(False)


class Extractor(NamedTuple):
    """What an extraction job needs from the network side."""

    network: C3DFeatures  # uint8 crops on the device -> (B, D) features
    preprocess: Callable[[np.ndarray], torch.Tensor]  # picklable, run in the workers: `crop_clips`
    identity: dict  # recorded with every video (weights, precision, mean, feature dim...)


def build_extractor(
    weights: str | Path, *, device: str | torch.device = "cpu", precision: str = "auto",
    seed: int = 0, mean: Path | None = None, feature_dim: int = 2048,
) -> Extractor:
    """C3D with its weights, precision and mean, ready for `claws.extract.job.run_job`.

    Args:
        weights: a weights file, or "random" (seeded by `seed`).
        device: where the network runs.
        precision: 'auto' (`default_precision` of the device), 'fp32', 'bf16' or 'fp16'.
        seed: the random-weights seed.
        mean: the Sports-1M mean cube file; None: per-channel BGR means.
        feature_dim: 2048 (mean of adjacent fc6 pairs) or 4096 (fc6).
    """
    precision = default_precision(device) if precision == "auto" else precision
    model = load_c3d(weights, device=device, precision=precision, seed=seed)
    info = model.weights_info
    identity = {
        "network": "c3d_sports1m_fc6", "weights_path": info["path"], "weights_format": info["format"],
        "weights_sha256": info["sha256"], "random": bool(info["random"]),
        "seed": seed if info["random"] else None, "precision": precision, "fc6_precision": "fp32",
        "feature_dim": feature_dim, "mean_source": str(mean) if mean else "channel_means",
        "resize": RESIZE_METHOD, "clip_len": CLIP_LEN, "tail_policy": TAIL_POLICY,
        "claws_version": code_version(commit=False),
    }
    return Extractor(C3DFeatures(model, load_mean(mean), feature_dim), crop_clips, identity)
