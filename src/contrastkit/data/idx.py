"""A reader for the IDX format of MNIST and Fashion-MNIST (plain or gzip'd).

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim``
big-endian ``uint32`` sizes, then the values in row-major order, big-endian.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

#: IDX type byte -> numpy big-endian dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({error}); re-download the file") from error


def read_idx(path: str | Path, *, expected_ndim: int | None = None, expected_dtype: int | None = None) -> np.ndarray:
    """Read one IDX file (gzip'd or not; detected from its first bytes) into a numpy array.

    Args:
        path: the file.
        expected_ndim: the number of dimensions the file must have (3 for images, 1 for labels); ``None`` accepts any.
        expected_dtype: the IDX type byte the file must have (``0x08`` for unsigned bytes); ``None`` accepts any.

    Returns:
        A read-only array of the file's shape, in native byte order.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: on a bad magic number, an unexpected dtype or rank, or a size that does not
            match the header (truncated or trailing bytes). The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: expected an IDX file (4-byte magic number 0x0000TTNN), got only {len(raw)} bytes")
    zero_a, zero_b, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero_a != 0 or zero_b != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}; expected 0x0000TTNN with type TT in "
            f"{{08, 09, 0b, 0c, 0d, 0e}} and NN >= 1 dimensions (is this an IDX file?)"
        )
    if expected_dtype is not None and type_code != expected_dtype:
        raise ValueError(f"{path}: expected IDX type 0x{expected_dtype:02x}, got 0x{type_code:02x}")
    if expected_ndim is not None and ndim != expected_ndim:
        raise ValueError(f"{path}: expected an IDX file with {expected_ndim} dimension(s), got {ndim}")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"{path}: truncated IDX header; expected {header_size} bytes, got {len(raw)}")
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected_bytes = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected_bytes:
        problem = "truncated" if len(raw) < expected_bytes else "has trailing bytes"
        raise ValueError(
            f"{path}: IDX data {problem}; the header says shape {shape} of {dtype.name} "
            f"({expected_bytes} bytes in all), got {len(raw)} bytes"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    array = array.astype(dtype.newbyteorder("="), copy=False) if dtype.byteorder == ">" else array
    array.setflags(write=False)
    return array


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzip'd when ``compress`` or when the name ends in ``.gz``).

    Used by tests and to export small data sets; the inverse of :func:`read_idx`.
    """
    path = Path(path)
    array = np.asarray(array)
    codes = {np.dtype(dtype.str.replace(">", "=")): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(
            f"write_idx: unsupported dtype {array.dtype}; expected one of uint8, int8, int16, int32, float32, float64"
        )
    big_endian = IDX_DTYPES[codes[native]]
    header = bytes([0, 0, codes[native], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(big_endian, copy=False).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload) if compress else payload)
