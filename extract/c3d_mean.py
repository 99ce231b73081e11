"""The Sports-1M C3D mean: a `.npy` / `.npy.bz2` cube, a Caffe `.binaryproto`, or per-channel means.

The cube has shape (3, 16, 128, 171) = (C in BGR order, T, H, W), float32, and is subtracted from the
resized 128x171 frames before the centre crop (DESIGN.md "C3D preprocessing").

`.binaryproto` files are Caffe `BlobProto` messages, parsed here from the protobuf wire format (no
Caffe or protobuf install). The header fields differ between BVLC Caffe (num=1, channels=2,
height=3, width=4, data=5 packed floats, diff=6, shape=7 BlobShape{repeated int64 dim=1},
double_data=8) and the C3D fork (which adds a `length` field), so the reader does not trust header
field numbers: the data is the largest float payload (field 8 is read as doubles), the shape is
the BlobShape when there is one, and otherwise the blob is reshaped in Caffe's memory order
(num, channels, length, height, width), which is row-major whatever the header numbering.
"""

from __future__ import annotations

import bz2
import io
import logging
from pathlib import Path

import numpy as np

from claws.extract.c3d_weights import WeightsError

log = logging.getLogger(__name__)

MEAN_SHAPE = (3, 16, 128, 171)  # (C BGR, T, H, W) of the Sports-1M mean cube
# Whole-cube channel means (B, G, R) of train01_16_128_171_mean (shared/data/SOURCES.md), used when
# no cube is given.
CHANNEL_MEANS_BGR = (90.25, 97.66, 101.41)
BLOB_SHAPE_FIELD = 7  # BVLC BlobProto.shape
DOUBLE_DATA_FIELD = 8  # BVLC BlobProto.double_data


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at `pos`; returns (value, next position)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end of the message")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Every (field number, wire type, value) of one protobuf message, in file order."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {field})")
        if pos > len(buf):
            raise ValueError(f"field {field} runs past the end of the message (truncated file?)")
        out.append((field, wire, value))
    return out


def parse_blobproto(buf: bytes) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """Parse a Caffe BlobProto.

    Args:
        buf: the serialized message (the whole .binaryproto file).

    Returns:
        (flat float32 data, dims of the BlobShape or None when the file has only legacy fields).
    """
    payloads: dict[int, list[np.ndarray]] = {}
    shape = None
    for field, wire, value in _fields(buf):
        if field == BLOB_SHAPE_FIELD and wire == 2:
            shape = tuple(v for f, w, v in _fields(value) if f == 1 and w == 0) or _packed_dims(value)
        elif wire in (1, 2, 5) and isinstance(value, bytes):
            dtype = "<f8" if field == DOUBLE_DATA_FIELD or wire == 1 else "<f4"
            if len(value) % np.dtype(dtype).itemsize == 0:
                payloads.setdefault(field, []).append(np.frombuffer(value, dtype=dtype))
    if not payloads:
        raise ValueError("no float data in the BlobProto")
    data = max((np.concatenate(parts) for parts in payloads.values()), key=len)
    return data.astype(np.float32), shape


def _packed_dims(value: bytes) -> tuple[int, ...]:
    """The packed `repeated int64 dim = 1` of a BlobShape."""
    dims = []
    for _, wire, packed in _fields(value):
        pos = 0
        while wire == 2 and pos < len(packed):
            dim, pos = _varint(packed, pos)
            dims.append(dim)
    return tuple(dims)


def _read_npy(path: Path) -> np.ndarray:
    """A .npy or .npy.bz2 array, without allowing pickled objects."""
    if path.name.endswith(".bz2"):
        with bz2.open(path, "rb") as f:
            return np.load(io.BytesIO(f.read()), allow_pickle=False)
    return np.load(path, allow_pickle=False)


def _read_binaryproto(path: Path) -> np.ndarray:
    """A mean cube from a Caffe .binaryproto, shaped by its BlobShape or Caffe's memory order."""
    data, shape = parse_blobproto(path.read_bytes())
    if shape is not None and int(np.prod(shape)) == data.size:
        return data.reshape(shape)
    if data.size != int(np.prod(MEAN_SHAPE)):
        raise ValueError(f"{data.size} values, expected {int(np.prod(MEAN_SHAPE))} = 3x16x128x171")
    return data.reshape(MEAN_SHAPE)


def load_mean(path: Path | None) -> np.ndarray:
    """The mean subtracted from resized frames, as a (3, 16, 128, 171) float32 BGR cube.

    Args:
        path: a `.npy`, `.npy.bz2` or Caffe `.binaryproto` mean cube; None for the per-channel
            BGR means (90.25, 97.66, 101.41) broadcast to the cube's shape.

    Returns:
        (3, 16, 128, 171) float32, channels in BGR order.
    """
    if path is None:
        log.info("no mean cube given: subtracting per-channel BGR means %s", CHANNEL_MEANS_BGR)
        channel = np.asarray(CHANNEL_MEANS_BGR, dtype=np.float32)[:, None, None, None]
        return np.ascontiguousarray(np.broadcast_to(channel, MEAN_SHAPE))
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"C3D mean file not found: {path}; pass a .npy/.npy.bz2/.binaryproto cube or none")
    try:
        cube = _read_binaryproto(path) if path.suffix == ".binaryproto" else _read_npy(path)
    except (ValueError, OSError, EOFError) as err:
        raise WeightsError(
            f"{path} is not a readable C3D mean cube ({err}); expected a (3, 16, 128, 171) BGR "
            "array as .npy / .npy.bz2, or the Caffe train01_16_128_171_mean.binaryproto"
        ) from err
    cube = np.asarray(cube)
    if cube.ndim == 5 and cube.shape[0] == 1:
        cube = cube[0]
    if cube.shape != MEAN_SHAPE:
        raise WeightsError(f"{path}: mean cube has shape {cube.shape}, expected {MEAN_SHAPE} (C BGR, T, H, W)")
    return cube.astype(np.float32)
