"""The C3D network and its preprocessing: shapes, ceil-mode pool5, hand-computed preprocessing,
the fc6 -> feature rule, precision, random weights and the default precision choice."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from claws.extract import c3d
from claws.extract.c3d import (
    C3D,
    _cpu_has_native_bf16,
    default_precision,
    fc6_to_feature,
    load_c3d,
    load_mean,
    preprocess_clips,
)


@pytest.fixture(scope="module")
def random_model() -> C3D:
    return load_c3d("random", seed=0)


@pytest.fixture(scope="module")
def clip_input() -> torch.Tensor:
    """One clip on the scale of real input (uint8 minus mean: roughly -110..160)."""
    gen = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 16, 112, 112, generator=gen) * 255 - 100


def test_parameter_count_matches_hand_sum() -> None:
    def conv(cin: int, cout: int) -> int:
        return cout * cin * 3 * 3 * 3 + cout

    expected = (
        conv(3, 64) + conv(64, 128) + conv(128, 256) + conv(256, 256) + conv(256, 512)
        + conv(512, 512) * 3 + (8192 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 487 + 487)
    )
    assert expected == 79_991_015
    assert sum(p.numel() for p in C3D().parameters()) == expected


def test_layer_names_are_the_c3d_pickle_keys() -> None:
    layers = ["conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b", "fc6", "fc7", "fc8"]
    assert list(C3D().state_dict()) == [f"{n}.{p}" for n in layers for p in ("weight", "bias")]


def test_layer_shapes_pool5_is_1x4x4_from_7x7(random_model: C3D, clip_input: torch.Tensor) -> None:
    seen: dict[str, tuple] = {}
    hooks = [
        getattr(random_model, name).register_forward_hook(
            lambda mod, inp, out, name=name: seen.update({name: (tuple(inp[0].shape), tuple(out.shape))})
        )
        for name in ("conv1", "conv2", "conv3b", "conv4b", "conv5b", "pool5", "fc6")
    ]
    with torch.no_grad():
        fc6 = random_model(clip_input)
    for hook in hooks:
        hook.remove()
    assert seen["conv1"][1] == (1, 64, 16, 112, 112)
    assert seen["conv2"][1] == (1, 128, 16, 56, 56)
    assert seen["conv3b"][1] == (1, 256, 8, 28, 28)
    assert seen["conv4b"][1] == (1, 512, 4, 14, 14)
    assert seen["pool5"] == ((1, 512, 2, 7, 7), (1, 512, 1, 4, 4))
    assert seen["fc6"] == ((1, 8192), (1, 4096))
    assert fc6.shape == (1, 4096) and fc6.dtype == torch.float32
    assert torch.isfinite(fc6).all() and (fc6 >= 0).all() and (fc6 > 0).any()


def test_pool5_ceil_mode_against_hand_example() -> None:
    x = torch.arange(2 * 7 * 7, dtype=torch.float32).reshape(1, 1, 2, 7, 7)
    # Max over t is the second frame (49 + 7r + c); windows cover rows/cols {0,1},{2,3},{4,5},{6}.
    expected = torch.tensor(
        [[57, 59, 61, 62], [71, 73, 75, 76], [85, 87, 89, 90], [92, 94, 96, 97]], dtype=torch.float32
    )
    out = C3D().pool5(x)
    assert out.shape == (1, 1, 1, 4, 4)
    assert torch.equal(out[0, 0, 0], expected)
    # The padded port shifts the windows to {-1,0},{1,2},...: a different result.
    padded = F.max_pool3d(F.pad(x, (1, 1, 1, 1)), kernel_size=2, stride=2)
    assert padded.shape == out.shape and not torch.equal(padded, out)


def _coded_frames(num_clips: int, height: int = 128, width: int = 171) -> np.ndarray:
    """Clips whose pixel encodes its place: R = row, G = column, B = 7 * t + clip index."""
    n, t, r, c = np.meshgrid(
        np.arange(num_clips), np.arange(16), np.arange(height), np.arange(width), indexing="ij"
    )
    return np.stack([r, c, 7 * t + n], axis=-1).astype(np.uint8)


def test_preprocess_crop_offsets_channel_order_and_mean_by_hand() -> None:
    frames = _coded_frames(2)
    mean = np.zeros(c3d.MEAN_SHAPE, dtype=np.float32)
    mean[0], mean[1] = 1.0, 2.0  # B, G
    mean[2] = np.arange(16, dtype=np.float32)[:, None, None] * 0.5  # R varies with t
    mean[2, :, 8, 29] += 100.0  # one marked cell: lands at crop position (0, 0)
    out = preprocess_clips(frames, mean)
    assert out.shape == (2, 3, 16, 112, 112) and out.dtype == torch.float32
    # channel 0 is B = 7t + n minus 1
    assert out[1, 0, 3, 50, 60].item() == 7 * 3 + 1 - 1.0
    # channel 1 is G = column; crop starts at column 29, ends at 140
    assert out[0, 1, 0, 0, 0].item() == 29 - 2.0
    assert out[0, 1, 0, 0, 111].item() == 140 - 2.0
    # channel 2 is R = row; crop starts at row 8, ends at 119; mean varies with t
    assert out[0, 2, 5, 0, 7].item() == 8 - 2.5
    assert out[0, 2, 5, 111, 7].item() == 119 - 2.5
    assert out[1, 2, 4, 0, 0].item() == 8 - 2.0 - 100.0


def test_preprocess_resize_rounds_half_up_like_opencv() -> None:
    # 256x342 -> 128x171 is an exact 2x downscale: each output is the mean of a 2x2 block.
    frames = np.zeros((1, 16, 256, 342, 3), dtype=np.uint8)
    frames[..., 1::2, :, 0] = 5  # R rows alternate 0, 5 -> 2.5 -> 3 (half up)
    frames[..., :, 1::2, 1] = 20  # G cols alternate 10, 20 -> 15
    frames[..., :, ::2, 1] = 10
    frames[..., 2] = 200  # B constant
    out = preprocess_clips(frames, np.zeros(c3d.MEAN_SHAPE, dtype=np.float32))
    assert torch.all(out[:, 0] == 200)
    assert torch.all(out[:, 1] == 15)
    assert torch.all(out[:, 2] == 3)


def test_preprocess_upscale_keeps_uint8_values(shared_data) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (1, 16, 60, 80, 3), dtype=np.uint8)
    mean = load_mean(shared_data / "c3d" / "train01_16_128_171_mean.npy.bz2")
    pixels = preprocess_clips(frames, mean) + torch.from_numpy(mean[..., 8:120, 29:141])
    assert torch.allclose(pixels, pixels.round(), atol=1e-4)
    assert pixels.min() >= -1e-4 and pixels.max() <= 255 + 1e-4


@pytest.mark.parametrize(
    "shape, dtype",
    [((16, 112, 112, 3), np.uint8), ((1, 15, 112, 112, 3), np.uint8), ((1, 16, 112, 112, 3), np.float32)],
)
def test_preprocess_rejects_bad_input(shape: tuple, dtype) -> None:
    with pytest.raises(ValueError, match="N, 16, H, W, 3"):
        preprocess_clips(np.zeros(shape, dtype=dtype), load_mean(None))


def test_forward_rejects_unpreprocessed_input(random_model: C3D) -> None:
    with pytest.raises(ValueError, match="preprocess_clips"):
        random_model(torch.zeros(1, 16, 112, 112, 3))


@pytest.mark.slow
def test_real_clip_through_preprocess_and_random_forward(shared_data, random_model: C3D) -> None:
    """The real roger clip end to end. With random weights no Sports-1M class can be checked."""
    from PIL import Image

    paths = sorted((shared_data / "frames" / "roger").glob("*.png"))
    assert len(paths) == 16
    frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])[None]
    mean = load_mean(shared_data / "c3d" / "train01_16_128_171_mean.npy.bz2")
    clips = preprocess_clips(frames, mean)
    assert clips.shape == (1, 3, 16, 112, 112)
    pixels = clips + torch.from_numpy(mean[..., 8:120, 29:141])  # back to resized uint8 values
    assert torch.allclose(pixels, pixels.round(), atol=1e-4) and pixels.min() >= -1e-4
    assert pixels.max() <= 255 + 1e-4 and pixels.std() > 10  # a real picture, not a flat frame
    with torch.no_grad():
        fc6 = random_model(clips)
        logits = random_model.fc8_logits(clips)
    assert fc6.shape == (1, 4096) and torch.isfinite(fc6).all() and (fc6 > 0).any()
    assert logits.shape == (1, 487) and torch.isfinite(logits).all()
    assert fc6_to_feature(fc6).shape == (1, 2048)


def test_fc6_to_feature_pairs_and_identity() -> None:
    fc6 = torch.arange(2 * 4096, dtype=torch.float32).reshape(2, 4096)
    pairs = fc6_to_feature(fc6, 2048)
    assert pairs.shape == (2, 2048)
    assert pairs[0, 0].item() == 0.5 and pairs[1, 2047].item() == (8190 + 8191) / 2
    assert fc6_to_feature(fc6, 4096) is fc6
    with pytest.raises(ValueError, match="2048"):
        fc6_to_feature(fc6, 1024)
    with pytest.raises(ValueError, match="4096"):
        fc6_to_feature(fc6[:, :100])


@pytest.mark.slow
@pytest.mark.skipif(not _cpu_has_native_bf16(), reason="no native bf16 on this CPU: torch's emulated "
                    "bf16 C3D takes minutes per clip (tests/pipeline/test_precision.py checks bf16 "
                    "numerics end to end)")
def test_bf16_forward_returns_float32_close_to_fp32(clip_input: torch.Tensor) -> None:
    model = load_c3d("random", seed=3)
    with torch.no_grad():
        reference = model(clip_input)
        model.configure("bf16")
        low = model(clip_input)
    assert model.conv1.weight.dtype == torch.bfloat16
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert model.weights_info["precision"] == "bf16"
    assert low.dtype == torch.float32 and low.shape == reference.shape
    assert F.cosine_similarity(low, reference).min() > 0.99
    assert ((low - reference).norm() / reference.norm()).item() < 0.05


@pytest.mark.slow
def test_random_weights_are_seeded_recorded_and_announced(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="claws.extract.c3d"):
        a = load_c3d("random", seed=7)
    b, other = load_c3d("random", seed=7), load_c3d("random", seed=8)
    assert "NOT real" in caplog.text
    assert torch.equal(a.conv3a.weight, b.conv3a.weight)
    assert not torch.equal(a.conv3a.weight, other.conv3a.weight)
    assert a.weights_info == {
        "path": "random", "format": "random", "sha256": "", "random": True, "seed": 7, "precision": "fp32",
    }
    assert not a.training and not any(p.requires_grad for p in a.parameters())


def test_unknown_precision_is_an_error() -> None:
    with pytest.raises(ValueError, match="precision"):
        C3D().configure("int8")


def test_default_precision_follows_the_device_and_cpu_features(monkeypatch) -> None:
    assert default_precision("cuda") == "fp16"
    assert default_precision(torch.device("cuda", 1)) == "fp16"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert default_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert default_precision("cpu") == "bf16"
    assert default_precision("mps") == "fp32"


def test_module_is_a_plain_nn_module() -> None:
    model = C3D()
    assert isinstance(model, nn.Module) and model.pool5.ceil_mode and model.pool5.padding == 0


def test_resize_is_opencv_inter_linear_and_within_one_level_of_float_bilinear(shared_data):
    """Frames are resized by OpenCV as Caffe C3D does (checked frame by frame against cv2 on the
    full frame, then cropped); a float bilinear resize rounded half up differs by one level at
    most, in a minority of pixels, on real frames and odd sizes."""
    import cv2
    import torch.nn.functional as F

    from claws.extract.video import open_video

    real = next(open_video(shared_data / "videos" / "vtest.avi", False).chunks(16))  # RGB
    odd = np.random.default_rng(0).integers(0, 256, (16, 37, 53, 3), dtype=np.uint8)
    for frames in (real, odd):
        crops = c3d.crop_clips(frames[None])[0]  # (16, 112, 112, 3) BGR
        for t in (0, 7, 15):
            whole = cv2.resize(frames[t], (171, 128), interpolation=cv2.INTER_LINEAR)
            assert np.array_equal(crops[t].numpy(), whole[8:120, 29:141, ::-1])
        reference = F.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float(),
                                  size=(128, 171), mode="bilinear", align_corners=False)
        reference = reference.add(0.5).floor().clamp(0, 255)[:, [2, 1, 0], 8:120, 29:141]
        ours = crops.permute(0, 3, 1, 2).float()
        assert float((ours - reference).abs().max()) <= 1.0
        assert float((ours != reference).float().mean()) < 0.15


def test_crops_then_network_side_normalization_equal_preprocess_clips(random_model: C3D) -> None:
    """The worker half (uint8 crops) and the device half (mean subtraction in C3DFeatures) give
    exactly the features of the one-step reference path."""
    frames = np.random.default_rng(1).integers(0, 256, (2, 16, 60, 80, 3), dtype=np.uint8)
    mean = np.random.default_rng(2).uniform(80, 110, c3d.MEAN_SHAPE).astype(np.float32)
    crops = c3d.crop_clips(frames)
    assert crops.dtype == torch.uint8 and crops.shape == (2, 16, 112, 112, 3)
    reference = preprocess_clips(frames, mean)
    assert torch.equal(c3d.normalize_clips(crops, c3d.crop_mean(mean)), reference)
    network = c3d.C3DFeatures(random_model, mean, 2048)
    with torch.no_grad():
        assert torch.equal(network(crops), fc6_to_feature(random_model(reference), 2048))
    with pytest.raises(ValueError, match="uint8 crops"):
        network(reference)


def test_build_extractor_records_the_resize_in_the_identity() -> None:
    built = c3d.build_extractor("random", seed=3, precision="fp32", feature_dim=4096)
    assert built.identity["resize"] == c3d.RESIZE_METHOD == "opencv_inter_linear"
    assert built.identity["seed"] == 3 and built.identity["feature_dim"] == 4096
    assert built.preprocess is c3d.crop_clips and built.network.feature_dim == 4096

def test_the_network_call_makes_no_host_sync() -> None:
    """Issue 22 item 3: on the meta device (no values, so any host read is an error) the whole
    extraction call runs in fp16, the precision that used to check its output on the host."""
    model = C3D().to("meta").configure("fp16").eval().requires_grad_(False)
    network = c3d.C3DFeatures(model, load_mean(None))
    features = network(torch.empty(2, 16, 112, 112, 3, dtype=torch.uint8, device="meta"))
    assert features.device.type == "meta" and features.shape == (2, 2048)
    assert features.dtype == torch.float32


def test_fc6_is_computed_in_fp32_so_an_fp16_overflow_there_cannot_happen(monkeypatch) -> None:
    """Issue 22 item 5: fc6 sums 8192 products; in fp16 (and cuBLAS's reduced-precision fp16
    reductions) it overflowed 65504 on large activations. The FC layers stay in fp32."""
    model = C3D().configure("fp16").eval().requires_grad_(False)
    with torch.no_grad():
        model.fc6.weight.fill_(0.25)
        model.fc6.bias.zero_()
    pool5 = torch.full((2, 512, 1, 4, 4), 60.0, dtype=torch.float16)  # 8192 x 60 x 0.25 = 122880
    monkeypatch.setattr(model, "features", lambda clips: pool5)
    fc6 = model(torch.zeros(2, 3, 16, 112, 112))
    assert fc6.dtype == torch.float32 and torch.equal(fc6, torch.full((2, 4096), 122880.0))
    assert model.conv1.weight.dtype == torch.float16
    assert {model.fc6.weight.dtype, model.fc7.weight.dtype, model.fc8.weight.dtype} == {torch.float32}


def _precision_flags() -> tuple[str, str]:
    return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision


def test_fp32_means_ieee_fp32_not_tf32(random_model: C3D, clip_input: torch.Tensor) -> None:
    """Issue 22 item 6: torch 2.14 lets cuDNN convolutions use TF32 by default, so "fp32" on an
    Ampere-or-later GPU was TF32. During the forward the convolutions and the fc6 matmul are set
    to IEEE fp32 (read by hooks; the flags are only consulted by cuDNN/cuBLAS, so the CPU can
    show they are set, not what a GPU computes), and the settings are restored after."""
    before = _precision_flags()
    seen = {}
    hooks = [random_model.conv1.register_forward_pre_hook(
                 lambda m, a: seen.__setitem__("conv", torch.backends.cudnn.conv.fp32_precision)),
             random_model.fc6.register_forward_pre_hook(
                 lambda m, a: seen.__setitem__("matmul", torch.backends.cuda.matmul.fp32_precision))]
    try:
        with torch.no_grad():
            random_model(clip_input)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen == {"conv": "ieee", "matmul": "ieee"}
    assert _precision_flags() == before


def test_fc_weights_are_not_rounded_by_a_lower_precision() -> None:
    model = load_c3d("random", seed=2)
    fc6 = model.fc6.weight.clone()
    model.configure("fp16")
    assert torch.equal(model.fc6.weight, fc6) and model.conv5b.weight.dtype == torch.float16
    assert model.conv5b.weight.is_contiguous(memory_format=torch.channels_last_3d)


def test_bf16_on_a_gpu_before_ampere_is_announced(monkeypatch, caplog) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with caplog.at_level(logging.WARNING, logger="claws.extract.c3d"):
        c3d.check_precision("bf16", "cuda")
        c3d.check_precision("fp16", "cuda")
    assert caplog.text.count("before Ampere") == 1
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert c3d.cuda_has_native_bf16("cuda:0")
