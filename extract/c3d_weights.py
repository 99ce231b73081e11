"""C3D weight files: the PyTorch `c3d.pickle` state dict and the Keras C3D `.h5`, read and checked.

Both formats end as one PyTorch state dict in the layout of `claws.extract.c3d.C3D` (keys
`conv1.weight`, `conv1.bias`, ..., `fc8.bias`; conv kernels (out, in, t, h, w), linear weights
(out, in), fc6 columns in (c, t, h, w) order of the flattened pool5 output 512x1x4x4).

Keras 'tf' layout (axon-research/c3d-keras `sports1M_weights_tf.h5`, converted from the Caffe model):
conv kernels (t, h, w, in, out) -> transpose(4, 3, 0, 1, 2); the fc6 kernel (8192, 4096) has its
rows in (t, h, w, c) order (the Flatten of a channels-last 1x4x4x512 tensor) -> rows permuted to
(c, t, h, w) and transposed; fc7/fc8 kernels (in, out) -> transposed; biases as they are. The file
layout is found, not assumed: weights live under the root or under `model_weights` (a whole saved
model); each layer group lists its datasets in the `weight_names` attribute (Keras 1 names such as
`conv1_W:0`, Keras 2 names such as `conv1/kernel:0`); the kernel is the dataset with more than one
dimension, the bias the 1-D one. Groups without weights (pooling, padding, dropout) are ignored.
A Theano-layout file ('th', kernels (out, in, t, h, w) flipped for convolution) is refused.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
POOL5_SHAPE = (512, 1, 4, 4)  # (c, t, h, w) of pool5 output: what fc6 sees, flattened
WEIGHT_FORMATS = ("pickle", "keras_h5")


class WeightsError(ValueError):
    """A weight file is missing, unreadable, or does not hold the C3D tensors; names the file."""


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (recorded in every shard as weights_sha256)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_format(path: Path) -> str:
    """'keras_h5' for an HDF5 file, 'pickle' for a torch.save file; else WeightsError."""
    if not path.is_file():
        raise WeightsError(
            f"C3D weights file not found: {path}; pass the path of a c3d.pickle state dict or a "
            "Keras C3D .h5 (or 'random' for a test run without real features)"
        )
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        return "keras_h5"
    if head[:2] == b"PK" or head[:1] == b"\x80":  # torch zip archive, or a legacy pickle stream
        return "pickle"
    raise WeightsError(
        f"{path} is not a C3D checkpoint (neither a torch.save zip/pickle nor HDF5; starts with "
        f"{head!r}); expected the PyTorch c3d.pickle state dict or a Keras C3D .h5 weights file"
    )


def _corrupt(path: Path, err: Exception) -> WeightsError:
    return WeightsError(
        f"{path} could not be read as a torch.save state dict (truncated or corrupt?): "
        f"{type(err).__name__}: {err}; download the c3d.pickle file again"
    )


def read_pickle(path: Path) -> dict[str, torch.Tensor]:
    """Load a `c3d.pickle`-style state dict with torch.load(weights_only=True), on the CPU."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" in str(err).lower():  # the weights-only unpickler refused a Python object
            raise WeightsError(
                f"{path} holds pickled Python objects beyond tensors (e.g. a whole saved model), "
                "which would need weights_only=False and can run arbitrary code; re-save it as "
                "torch.save(model.state_dict(), path) from a trusted environment. "
                f"torch said: {str(err).splitlines()[0]}"
            ) from err
        raise _corrupt(path, err) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise _corrupt(path, err) from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsError(
            f"{path} loaded, but is not a state dict of tensors (got {type(state).__name__}); "
            "expected the c3d.pickle state dict with keys conv1.weight ... fc8.bias"
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def _layer_root(h5: h5py.File) -> h5py.Group:
    """The group holding one sub-group per layer: `model_weights` of a whole model, else root."""
    return h5["model_weights"] if "model_weights" in h5 else h5


def _layer_datasets(group: h5py.Group) -> list[tuple[str, np.ndarray]]:
    """(name, array) of the weights of one layer group, in `weight_names` order when present."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
    if names:
        return [(n, np.asarray(group[n])) for n in names]
    found: list[tuple[str, np.ndarray]] = []
    group.visititems(
        lambda n, obj: found.append((n, np.asarray(obj))) if isinstance(obj, h5py.Dataset) else None
    )
    return found


def _read_h5_layers(path: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Every layer group of a Keras weights file that holds weights, by layer name."""
    try:
        with h5py.File(path, "r") as h5:
            root = _layer_root(h5)
            layers = {name: _layer_datasets(root[name]) for name in root if isinstance(root[name], h5py.Group)}
    except (OSError, KeyError) as err:
        raise WeightsError(
            f"{path} could not be read as a Keras C3D .h5 weights file (truncated or corrupt?): "
            f"{err}; download or convert the file again"
        ) from err
    return {name: ds for name, ds in layers.items() if ds}


def _kernel_and_bias(path: Path, layer: str, datasets: list[tuple[str, np.ndarray]]):
    """Split a layer's datasets into (kernel, bias): the >1-D one and the 1-D one."""
    kernels = [a for _, a in datasets if a.ndim > 1]
    biases = [a for _, a in datasets if a.ndim == 1]
    if len(kernels) != 1 or len(biases) != 1 or len(datasets) != 2:
        found = ", ".join(f"{n} {a.shape}" for n, a in datasets)
        raise WeightsError(
            f"{path}: Keras layer '{layer}' should hold one kernel and one bias, found: {found}"
        )
    return kernels[0], biases[0]


def _keras_kernel_to_torch(path: Path, layer: str, kernel: np.ndarray, expected: tuple) -> np.ndarray:
    """One Keras 'tf' kernel to the PyTorch layout of `expected` (the module's weight shape)."""
    if kernel.ndim == 5:
        if kernel.shape == tuple(expected) and kernel.shape != tuple(expected[i] for i in (2, 3, 4, 1, 0)):
            raise WeightsError(
                f"{path}: Keras layer '{layer}' kernel {kernel.shape} is in Theano ('th') layout; "
                "use the TensorFlow-layout file (e.g. sports1M_weights_tf.h5)"
            )
        return kernel.transpose(4, 3, 0, 1, 2)  # (t, h, w, in, out) -> (out, in, t, h, w)
    if kernel.ndim == 2 and kernel.shape[0] == int(np.prod(POOL5_SHAPE)) and layer == "fc6":
        c, t, h, w = POOL5_SHAPE
        rows_thwc = kernel.reshape(t, h, w, c, kernel.shape[1])
        return rows_thwc.transpose(3, 0, 1, 2, 4).reshape(c * t * h * w, -1).T  # rows (c,t,h,w)
    return kernel.T  # (in, out) -> (out, in)


def read_keras_h5(path: Path, expected: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Load a Keras C3D .h5 ('tf' layout) and convert it to the PyTorch state-dict layout.

    Args:
        path: the .h5 weights file (Keras `save_weights` or a whole saved model).
        expected: the module's state-dict shapes, used to recognise a Theano-layout file.

    Returns:
        state dict `<layer>.weight` / `<layer>.bias` for every layer the file holds weights for;
        the caller checks it against the module (missing, unexpected, mis-shaped).
    """
    state: dict[str, torch.Tensor] = {}
    for layer, datasets in _read_h5_layers(path).items():
        kernel, bias = _kernel_and_bias(path, layer, datasets)
        target = tuple(expected.get(f"{layer}.weight", ()))
        weight = _keras_kernel_to_torch(path, layer, kernel, target)
        state[f"{layer}.weight"] = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
        state[f"{layer}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
    return state


def check_state_dict(state: dict[str, torch.Tensor], expected: dict[str, torch.Size], path: Path) -> None:
    """Raise one WeightsError naming every missing, unexpected and mis-shaped tensor of `path`."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k}: file {tuple(state[k].shape)}, model {tuple(expected[k])}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected)}")
    if misshaped:
        problems.append(f"mis-shaped tensors: {'; '.join(misshaped)}")
    if problems:
        raise WeightsError(
            f"{path} does not match the C3D Sports-1M network (conv1..conv5b, fc6, fc7, fc8 with "
            f"487 classes): {' | '.join(problems)}"
        )


def read_weights(path: Path, expected: dict[str, torch.Size]) -> tuple[dict[str, torch.Tensor], str]:
    """Read and check a C3D weight file of either format.

    Args:
        path: a c3d.pickle state dict or a Keras C3D .h5.
        expected: the module's state-dict shapes.

    Returns:
        (state dict in the module's layout, float32; format name 'pickle' or 'keras_h5').
    """
    fmt = weights_format(path)
    state = read_pickle(path) if fmt == "pickle" else read_keras_h5(path, expected)
    check_state_dict(state, expected, path)
    return {k: v.float() for k, v in state.items()}, fmt
