"""The C3D Sports-1M network (Tran et al., ICCV 2015), its Caffe-exact preprocessing and its loader.

Shapes: N clips, each 16 frames; network input (N, 3, 16, 112, 112) float32 BGR minus the mean;
output fc6 after ReLU (N, 4096); the default feature is the mean of adjacent fc6 pairs (N, 2048).

Caffe parity (C3D v1.0, the model every published UCF-Crime feature set comes from):
- pool5 is a 2x2x2 max pool in ceil mode, so pool4's 2x7x7 output becomes 1x4x4 with the last
  spatial window covering one row/column; the popular PyTorch port instead pads by one on each side,
  which shifts every pool5 window. fc6 therefore sees 512x1x4x4 = 8192 values in (c, t, h, w) order.
- Frames are resized as Caffe does with OpenCV (`cv::resize`, INTER_LINEAR on uint8: half-pixel
  centres, no antialiasing, uint8 result). We interpolate in float with align_corners=False,
  antialias=False, then round half up (as OpenCV's fixed-point cast does) and clip to uint8.
  OpenCV computes with 11-bit fixed-point weights, so single values can differ by one level:
  measured against OpenCV 5.0 on 16 vtest.avi frames (768x576 -> 171x128), 8.6% of values differ,
  never by more than 1 (round-half-even: 9.3%; torch's own uint8 resize: 23%).
- The mean cube is subtracted at 128x171 and the centre crop taken at rows 8..119, cols 29..140.
  Subtracting then cropping equals cropping both then subtracting, which is what we compute.

Weight files are read in `claws.extract.c3d_weights`, the mean in `claws.extract.c3d_mean`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from claws.extract.c3d_mean import CHANNEL_MEANS_BGR, MEAN_SHAPE, load_mean
from claws.extract.c3d_weights import WeightsError, file_sha256, read_weights

__all__ = [
    "C3D", "CHANNEL_MEANS_BGR", "CROP_COLS", "CROP_ROWS", "MEAN_SHAPE", "RESIZE_HW", "WeightsError",
    "default_precision", "fc6_to_feature", "file_sha256", "load_c3d", "load_mean", "preprocess_clips",
]

log = logging.getLogger(__name__)

CLIP_LEN = 16
RESIZE_HW = (128, 171)  # (H, W) every frame is resized to, as in Caffe C3D v1.0
CROP_ROWS = slice(8, 120)  # centre crop rows 8..119 of 128
CROP_COLS = slice(29, 141)  # centre crop cols 29..140 of 171
CROP_SIZE = 112
NUM_CLASSES = 487  # Sports-1M
FC6_DIM = 4096
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# bench/c3d.py checks bf16 fc6 against fp32 with this bar (measured: 0.99998 on vtest.avi clips).
MIN_BF16_COSINE = 0.999
BGR = [2, 1, 0]  # RGB -> BGR channel order (Caffe reads frames with OpenCV)
RESIZE_FRAMES = 16  # frames resized per step: bounds the float temporaries to ~8 MB at 768 wide


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
        """Convert to a precision ('fp32', 'bf16', 'fp16') and memory format, in place.

        Args:
            precision: parameter dtype; forward still takes and returns float32.
            channels_last: channels_last_3d weights and input; default True for bf16/fp16.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        if channels_last is None:
            channels_last = precision != "fp32"
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.to(dtype=PRECISIONS[precision], memory_format=self.memory_format)
        self.precision = precision
        self.weights_info["precision"] = precision
        return self

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """pool5 output (N, 512, 1, 4, 4) in the model's dtype, from float clips."""
        if clips.ndim != 5 or tuple(clips.shape[1:]) != (3, CLIP_LEN, CROP_SIZE, CROP_SIZE):
            raise ValueError(
                f"C3D expects preprocessed clips (N, 3, 16, 112, 112), got {tuple(clips.shape)}; "
                "use claws.extract.c3d.preprocess_clips"
            )
        x = clips.to(dtype=self.fc6.weight.dtype, memory_format=self.memory_format)
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
            (N, 4096) float32, whatever the internal precision.
        """
        fc6 = F.relu(self.fc6(self.features(clips).flatten(1)))  # (N, 8192) in (c, t, h, w) order
        if self.precision == "fp16" and not torch.isfinite(fc6).all():
            raise FloatingPointError(
                "C3D fc6 overflowed in fp16 (non-finite values); run with precision 'bf16' or 'fp32'"
            )
        return fc6.float()

    def fc8_logits(self, clips: torch.Tensor) -> torch.Tensor:
        """Sports-1M class logits (N, 487) float32 (dropout is inactive in eval mode)."""
        fc6 = F.relu(self.fc6(self.features(clips).flatten(1)))
        return self.fc8(F.relu(self.fc7(fc6))).float()


def _bilinear_taps(size_in: int, size_out: int) -> tuple[torch.Tensor, ...]:
    """Source indices and weights of a half-pixel-centre bilinear resize along one axis."""
    src = ((torch.arange(size_out, dtype=torch.float32) + 0.5) * (size_in / size_out) - 0.5)
    src = src.clamp(min=0)
    first = src.floor().long().clamp(max=size_in - 1)
    second = (first + 1).clamp(max=size_in - 1)
    weight = src - first
    return first, second, 1 - weight, weight


def _resize_uint8(frames: torch.Tensor) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, 128, 171) float32 holding uint8 values (OpenCV INTER_LINEAR).

    Without antialiasing each output pixel reads 2x2 source pixels, so only the needed rows and
    then columns are gathered (still uint8, rows are contiguous in this layout) and converted to
    float: converting whole full-size frames dominated the preprocessing cost. The result equals
    F.interpolate(bilinear, align_corners=False) up to float rounding order (0.005% of values 1
    level apart).
    """
    if tuple(frames.shape[1:3]) == RESIZE_HW:
        return frames.permute(0, 3, 1, 2).float()
    y0, y1, h0, h1 = _bilinear_taps(frames.shape[1], RESIZE_HW[0])
    x0, x1, w0, w1 = _bilinear_taps(frames.shape[2], RESIZE_HW[1])
    w0, w1 = w0.view(1, 1, -1, 1), w1.view(1, 1, -1, 1)

    def across(rows: torch.Tensor) -> torch.Tensor:  # (F, 128, W, 3) -> (F, 128, 171, 3)
        return w0 * rows[:, :, x0].float() + w1 * rows[:, :, x1].float()

    h0, h1 = h0.view(1, -1, 1, 1), h1.view(1, -1, 1, 1)
    out = torch.empty(len(frames), *RESIZE_HW, 3)
    for i in range(0, len(frames), RESIZE_FRAMES):  # one clip at a time bounds the temporaries
        part = frames[i : i + RESIZE_FRAMES]
        out[i : i + RESIZE_FRAMES] = h0 * across(part[:, y0]) + h1 * across(part[:, y1])
    return out.add_(0.5).floor_().clamp_(0, 255).permute(0, 3, 1, 2)


def preprocess_clips(frames: np.ndarray, mean: np.ndarray) -> torch.Tensor:
    """Decoded clips to C3D input, as Caffe C3D v1.0 does it.

    RGB -> BGR, resize to 128x171 (bilinear, uint8 result), subtract the mean cube, centre crop
    rows 8..119 and cols 29..140. Pure CPU; safe inside DataLoader worker processes.

    Args:
        frames: (N, 16, H, W, 3) uint8 RGB, each clip already padded to 16 frames
            (claws.extract.clips.pad_clip_frames).
        mean: (3, 16, 128, 171) float32 BGR cube from `load_mean`.

    Returns:
        (N, 3, 16, 112, 112) float32.
    """
    frames = np.asarray(frames)
    if frames.ndim != 5 or frames.shape[1] != CLIP_LEN or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"expected clips (N, 16, H, W, 3) uint8 RGB, got {frames.shape} {frames.dtype}; pad short "
            "clips with claws.extract.clips.pad_clip_frames"
        )
    if mean.shape != MEAN_SHAPE:
        raise ValueError(f"mean cube must be {MEAN_SHAPE} (C BGR, T, H, W), got {mean.shape}")
    n, t, h, w, _ = frames.shape
    rgb = torch.from_numpy(np.ascontiguousarray(frames)).reshape(n * t, h, w, 3)
    resized = _resize_uint8(rgb)[:, BGR]  # (N*16, 3, 128, 171), BGR
    clips = resized.reshape(n, t, 3, *RESIZE_HW).permute(0, 2, 1, 3, 4)  # (N, 3, 16, 128, 171)
    mean_crop = torch.from_numpy(np.asarray(mean, dtype=np.float32)[..., CROP_ROWS, CROP_COLS])
    return (clips[..., CROP_ROWS, CROP_COLS] - mean_crop).contiguous()


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
    CUDA: 'fp16' (tensor cores on every CUDA GPU, 3 more mantissa bits than bf16; forward raises
    on overflow). Not measured on a GPU here.
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
