"""C3D weight files: c3d.pickle and Keras .h5 round trips, every malformed file's error, sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from claws.extract.c3d import C3D, file_sha256, load_c3d
from claws.extract.c3d_weights import WeightsError, read_weights

LAYERS = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b", "fc6", "fc7", "fc8")
EXPECTED = {k: v.shape for k, v in C3D().state_dict().items()}


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    """Random tensors of the real shapes, scaled so a forward pass stays in a sane range."""
    gen = torch.Generator().manual_seed(11)
    return {
        k: torch.randn(shape, generator=gen) * ((2.0 / np.prod(shape[1:])) ** 0.5 if len(shape) > 1 else 0.01)
        for k, shape in EXPECTED.items()
    }


@pytest.fixture(scope="module")
def pickle_file(reference_state, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "c3d.pickle"
    torch.save(reference_state, path)
    return path


def _to_keras(name: str, weight: torch.Tensor) -> np.ndarray:
    """The inverse of the loader's conversion: PyTorch layout to the Keras 'tf' layout."""
    w = weight.numpy()
    if w.ndim == 5:
        return w.transpose(2, 3, 4, 1, 0)  # (out, in, t, h, w) -> (t, h, w, in, out)
    if name == "fc6":  # columns (c, t, h, w) -> rows (t, h, w, c)
        return w.reshape(4096, 512, 1, 4, 4).transpose(2, 3, 4, 1, 0).reshape(8192, 4096)
    return w.T


def write_keras_h5(path: Path, state: dict[str, torch.Tensor], style: str, layers=LAYERS) -> Path:
    """A Keras C3D weights file: 'keras1' = save_weights of Keras 1 (conv1_W:0 under the root),
    'keras2' = a whole saved Keras 2 model (model_weights/conv1/conv1/kernel:0)."""
    with h5py.File(path, "w") as h5:
        root = h5.create_group("model_weights") if style == "keras2" else h5
        names = ["conv1", "pool1", *layers[1:], "flatten_1", "dropout_1"]
        root.attrs["layer_names"] = [n.encode() for n in names]
        for layer in names:
            group = root.create_group(layer)
            if layer not in layers:
                group.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            kernel_name, bias_name = (
                (f"{layer}_W:0", f"{layer}_b:0") if style == "keras1" else (f"{layer}/kernel:0", f"{layer}/bias:0")
            )
            group.attrs["weight_names"] = [kernel_name.encode(), bias_name.encode()]
            group[kernel_name] = _to_keras(layer, state[f"{layer}.weight"])
            group[bias_name] = state[f"{layer}.bias"].numpy()
    return path


def _assert_same_tensors(model: C3D, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert list(loaded) == list(state)
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key


def test_pickle_state_dict_loads_identical_tensors(pickle_file, reference_state) -> None:
    model = load_c3d(pickle_file)
    _assert_same_tensors(model, reference_state)
    assert model.weights_info == {
        "path": str(pickle_file), "format": "pickle", "sha256": file_sha256(pickle_file),
        "random": False, "precision": "fp32",
    }
    assert not model.training


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"c3d" * 1_000_000)
    assert file_sha256(path) == hashlib.sha256(b"c3d" * 1_000_000).hexdigest()


@pytest.fixture(scope="module")
def keras_files(reference_state, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keras")
    return {
        style: write_keras_h5(folder / f"sports1M_weights_tf_{style}.h5", reference_state, style)
        for style in ("keras1", "keras2")
    }


@pytest.mark.slow
@pytest.mark.parametrize("style", ["keras1", "keras2"])
def test_keras_h5_loads_identical_tensors(style, keras_files, reference_state) -> None:
    model = load_c3d(keras_files[style])
    _assert_same_tensors(model, reference_state)
    assert model.weights_info["format"] == "keras_h5"


@pytest.mark.slow
def test_keras_h5_and_pickle_give_the_same_fc6(pickle_file, keras_files) -> None:
    clips = torch.rand(1, 3, 16, 112, 112, generator=torch.Generator().manual_seed(5)) * 255 - 100
    with torch.no_grad():
        from_pickle = load_c3d(pickle_file)(clips)
        from_keras = load_c3d(keras_files["keras2"])(clips)
    assert (from_pickle > 0).any()
    assert torch.equal(from_pickle, from_keras)


def _small_state(**changes) -> dict[str, torch.Tensor]:
    """A few tensors of the real names (tiny files): the rest of the model is then 'missing'."""
    state = {"conv1.weight": torch.zeros(64, 3, 3, 3, 3), "conv1.bias": torch.zeros(64)}
    state.update(changes)
    return state


def _write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return path


@pytest.mark.parametrize(
    "content, must_name",
    [
        (_small_state(), ["missing tensors", "conv2.weight", "fc8.bias"]),
        (_small_state(**{"fc9.weight": torch.zeros(3)}), ["unexpected tensors", "fc9.weight"]),
        (_small_state(**{"conv1.weight": torch.zeros(64, 3, 3, 3)}), ["mis-shaped", "conv1.weight", "(64, 3, 3, 3)"]),
        (b"this is a README, not weights\n", ["not a C3D checkpoint"]),
        (nn.Linear(2, 2), ["weights_only=False", "state_dict()"]),
        ([torch.zeros(2)], ["not a state dict"]),
    ],
    ids=["missing", "unexpected", "misshaped", "not-a-checkpoint", "whole-module", "a-list"],
)
def test_malformed_pickle_errors_name_the_file_and_tensor(content, must_name, tmp_path) -> None:
    path = _write(tmp_path / "c3d.pickle", content)
    with pytest.raises(WeightsError) as err:
        load_c3d(path)
    for text in [str(path), *must_name]:
        assert text in str(err.value)


def test_all_problems_are_reported_together(tmp_path) -> None:
    state = {k: torch.zeros(v) for k, v in EXPECTED.items() if k != "fc7.bias"}
    state["conv5b.weight"] = torch.zeros(512, 512, 3, 3, 1)
    state["classifier.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError) as err:
        read_weights(_write(tmp_path / "c3d.pickle", state), EXPECTED)
    message = str(err.value)
    assert "fc7.bias" in message and "conv5b.weight" in message and "classifier.weight" in message


def test_truncated_pickle_is_a_clear_error(pickle_file, tmp_path) -> None:
    path = tmp_path / "c3d.pickle"
    with open(pickle_file, "rb") as f:
        path.write_bytes(f.read(5_000_000))
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_c3d(path)


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(WeightsError, match="not found.*random"):
        load_c3d(tmp_path / "nowhere.pickle")


def test_keras_h5_missing_layer_and_truncated(reference_state, tmp_path) -> None:
    path = write_keras_h5(tmp_path / "conv1_only.h5", reference_state, "keras2", layers=LAYERS[:1])
    with pytest.raises(WeightsError, match="missing tensors: conv2.weight, conv2.bias") as err:
        load_c3d(path)
    assert str(path) in str(err.value) and "fc8.bias" in str(err.value)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[:20_000])
    with pytest.raises(WeightsError, match="truncated or corrupt") as err:
        load_c3d(truncated)
    assert str(truncated) in str(err.value)


def test_keras_h5_theano_layout_is_refused(tmp_path) -> None:
    path = tmp_path / "sports1M_weights_th.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("conv1")
        group.attrs["weight_names"] = [b"conv1_W", b"conv1_b"]
        group["conv1_W"] = np.zeros((64, 3, 3, 3, 3), dtype=np.float32)
        group["conv1_b"] = np.zeros(64, dtype=np.float32)
    with pytest.raises(WeightsError, match="Theano"):
        load_c3d(path)


def test_keras_layer_with_extra_dataset_is_an_error(tmp_path) -> None:
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("conv1")
        group["kernel:0"] = np.zeros((3, 3, 3, 3, 64), dtype=np.float32)
        group["bias:0"] = np.zeros(64, dtype=np.float32)
        group["moving_mean:0"] = np.zeros(64, dtype=np.float32)
    with pytest.raises(WeightsError, match="'conv1' should hold one kernel and one bias"):
        load_c3d(path)


@pytest.mark.parametrize("keep", [10, 2000])
def test_truncated_legacy_format_pickle_is_a_clear_error(keep, tmp_path) -> None:
    """Old c3d.pickle files predate torch's zip format; a cut one must not look like 'objects'."""
    full = tmp_path / "legacy.pickle"
    torch.save(_small_state(), full, _use_new_zipfile_serialization=False)
    cut = tmp_path / "c3d.pickle"
    cut.write_bytes(full.read_bytes()[:keep])
    with pytest.raises(WeightsError, match="truncated or corrupt") as err:
        load_c3d(cut)
    assert str(cut) in str(err.value)
