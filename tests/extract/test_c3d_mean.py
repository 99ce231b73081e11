"""The Sports-1M mean: the real cube, .npy round trips, Caffe .binaryproto parsing, the fallback."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from claws.extract.c3d import CHANNEL_MEANS_BGR, MEAN_SHAPE, WeightsError, load_mean
from claws.extract.c3d_mean import parse_blobproto


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(payload)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def legacy_blob(data: np.ndarray, dims=(1, 3, 128, 171), length: int = 16, packed: bool = True) -> bytes:
    """BlobProto with num/channels/height/width = fields 1..4, a C3D `length` varint, float data."""
    header = b"".join(_field(i + 1, 0, d) for i, d in enumerate(dims)) + _field(7, 0, length)
    values = data.astype("<f4").ravel()
    if packed:
        return header + _field(5, 2, values.tobytes())
    return header + b"".join(_field(5, 5, struct.pack("<f", v)) for v in values)


def shaped_blob(data: np.ndarray) -> bytes:
    """BVLC BlobProto: shape = field 7 (BlobShape, packed int64 dims), data = field 5."""
    dims = b"".join(_varint(d) for d in data.shape)
    return _field(7, 2, _field(1, 2, dims)) + _field(5, 2, data.astype("<f4").ravel().tobytes())


def test_real_mean_cube_has_the_documented_channel_means(shared_data: Path) -> None:
    cube = load_mean(shared_data / "c3d" / "train01_16_128_171_mean.npy.bz2")
    assert cube.shape == MEAN_SHAPE and cube.dtype == np.float32
    np.testing.assert_allclose(cube.mean(axis=(1, 2, 3)), CHANNEL_MEANS_BGR, atol=0.005)
    crop = cube[:, :, 8:120, 29:141].mean(axis=(1, 2, 3))
    np.testing.assert_allclose(crop, (95.14, 102.86, 107.76), atol=0.005)  # SOURCES.md, BGR


def test_no_mean_file_gives_channel_means() -> None:
    cube = load_mean(None)
    assert cube.shape == MEAN_SHAPE and cube.dtype == np.float32
    assert cube[0, 3, 5, 7] == np.float32(90.25) and cube[2, 15, 127, 170] == np.float32(101.41)


def test_npy_round_trip_and_leading_num_axis(tmp_path: Path) -> None:
    cube = np.random.default_rng(0).uniform(0, 255, MEAN_SHAPE)
    np.save(tmp_path / "mean.npy", cube[None])
    np.testing.assert_array_equal(load_mean(tmp_path / "mean.npy"), cube.astype(np.float32))


def test_binaryproto_legacy_fields_reshape_in_caffe_memory_order(tmp_path: Path) -> None:
    cube = np.random.default_rng(1).uniform(0, 255, MEAN_SHAPE).astype(np.float32)
    path = tmp_path / "train01_16_128_171_mean.binaryproto"
    path.write_bytes(legacy_blob(cube))
    np.testing.assert_array_equal(load_mean(path), cube)


def test_binaryproto_with_blobshape(tmp_path: Path) -> None:
    cube = np.random.default_rng(2).uniform(0, 255, (1, *MEAN_SHAPE)).astype(np.float32)
    path = tmp_path / "mean.binaryproto"
    path.write_bytes(shaped_blob(cube))
    np.testing.assert_array_equal(load_mean(path), cube[0])


def test_parse_blobproto_unpacked_floats_and_shape() -> None:
    data = np.array([[1.5, -2.0, 3.25], [0.0, 7.0, 8.5]], dtype=np.float32)
    values, shape = parse_blobproto(legacy_blob(data, dims=(1, 1, 2, 3), length=1, packed=False))
    np.testing.assert_array_equal(values, data.ravel())
    assert shape is None
    values, shape = parse_blobproto(shaped_blob(data))
    assert shape == (2, 3)
    np.testing.assert_array_equal(values.reshape(shape), data)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("small.binaryproto", legacy_blob(np.zeros(10)), "10 values"),
        ("cut.binaryproto", legacy_blob(np.zeros(1000))[:-7], "truncated"),
        ("mean.npy.bz2", b"not bz2 at all", "not a readable C3D mean cube"),
    ],
)
def test_bad_mean_files_name_the_file(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message) as err:
        load_mean(path)
    assert str(path) in str(err.value)


def test_wrong_mean_shape_and_missing_file(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((3, 128, 171)))
    with pytest.raises(WeightsError, match=r"shape \(3, 128, 171\)"):
        load_mean(tmp_path / "flat.npy")
    with pytest.raises(WeightsError, match="not found"):
        load_mean(tmp_path / "absent.npy")
