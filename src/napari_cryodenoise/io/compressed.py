"""Reading the data block of gzip/bzip2-compressed MRC files (``emd_NNNN.map.gz``).

Compressed files cannot be memory-mapped: the data are decompressed into one array, in
bounded chunks, with a warning above :data:`LARGE_DECOMPRESS_BYTES` and a clear refusal
when the header describes more than the machine's memory.
"""

from __future__ import annotations

import bz2
import gzip
import math
import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["LARGE_DECOMPRESS_BYTES", "read_compressed_block"]

#: Above this many decompressed bytes, reading a compressed file warns about memory.
LARGE_DECOMPRESS_BYTES = 2**30

#: Bytes decompressed per read (the decompressor copies each read once).
_CHUNK = 16 * 2**20


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def read_compressed_block(
    path: Path, compression: str, offset: int, dtype: np.dtype, shape: tuple[int, int, int]
) -> np.ndarray:
    """Decompress the data block of a gzip/bzip2 MRC file into memory.

    Parameters
    ----------
    path : pathlib.Path
        The compressed file.
    compression : {"gzip", "bzip2"}
        Its format.
    offset : int
        Bytes before the data block in the decompressed stream (header and extended header).
    dtype : numpy.dtype
        Stored type, with byte order.
    shape : tuple of int
        ``(nz, ny, nx)``.

    Returns
    -------
    numpy.ndarray
        The data, in memory; peak memory is the array plus one chunk.

    Raises
    ------
    InputError
        For data larger than the machine's memory, damaged or truncated compressed data.

    """
    nbytes = math.prod(shape) * dtype.itemsize
    memory = _physical_memory()
    if memory is not None and nbytes > memory:
        raise InputError(
            f"{path}: the header describes {_gib(nbytes)} of data, more than this machine's "
            f"memory ({_gib(memory)}); a compressed file is read into memory: decompress it "
            "first so that it can be memory-mapped"
        )
    if nbytes > LARGE_DECOMPRESS_BYTES:
        warnings.warn(
            f"{path.name}: decompressing {_gib(nbytes)} into memory (compressed files cannot "
            "be memory-mapped; decompress it once to open it faster)",
            UserWarning,
            stacklevel=3,
        )
    data = np.empty(shape, dtype=dtype)
    view = memoryview(data.reshape(-1).view(np.uint8))
    opener = gzip.open if compression == "gzip" else bz2.open
    done = 0
    try:
        with opener(path, "rb") as fh:
            skipped = len(fh.read(offset))
            while skipped == offset and done < nbytes:
                got = fh.readinto(view[done : done + _CHUNK])  # bounded temporary copies
                if not got:
                    break
                done += got
    except (EOFError, OSError, ValueError, zlib.error) as err:
        raise InputError(
            f"{path}: the {compression} data are damaged or truncated ({err})"
        ) from None
    if done < nbytes:
        nz, ny, nx = shape
        raise InputError(
            f"{path}: file is truncated: the header describes {nx} x {ny} x {nz} voxels "
            f"({nbytes} bytes) but the decompressed data hold only {max(done, 0)} bytes"
        )
    return data
