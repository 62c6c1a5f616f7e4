"""Write small EER files for tests (no EER encoder exists in Python).

EER (Thermo Fisher's electron event representation) is a BigTIFF whose pages
are raw detector frames, each one strip compressed with a run-length code:
per electron, the number of empty pixels before it (``skipbits`` wide, the
all-ones value meaning "skip that many, no electron") followed by sub-pixel
bits; a final skip that lands exactly on the end of the frame terminates it.
Codes are packed least significant bit first. This writes compression 65001
(7 skip bits, 2 + 2 sub-pixel bits) with zero sub-pixel offsets, and checks
its own output with :func:`imagecodecs.eer_decode`.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

SKIP_BITS = 7
SUB_BITS = 4


def encode_frame(frame: np.ndarray) -> bytes:
    """One binary ``(H, W)`` frame (0/1 per pixel) as an EER 65001 bitstream."""
    flat = np.asarray(frame).ravel()
    if flat.max(initial=0) > 1:
        raise ValueError("an EER raw frame holds at most one electron per pixel")
    maxskip = (1 << SKIP_BITS) - 1
    value = 0
    nbits = 0

    def put(v: int, width: int) -> None:
        nonlocal value, nbits
        value |= int(v) << nbits
        nbits += width

    def skip(gap: int) -> int:
        while gap >= maxskip:
            put(maxskip, SKIP_BITS)
            gap -= maxskip
        return gap

    last = 0
    for e in np.flatnonzero(flat):
        put(skip(int(e) - last), SKIP_BITS)
        put(0, SUB_BITS)
        last = int(e) + 1
    put(skip(flat.size - last), SKIP_BITS)
    n = (nbits + 7) // 8 + 4
    n += n % 2  # the decoder wants an even byte count
    return value.to_bytes(n, "little")


def write_eer(path: str | Path, frames: np.ndarray, *, pixel_size_m: float | None = None) -> Path:
    """Write binary frames ``(F, H, W)`` as an EER file; returns the path."""
    path = Path(path)
    frames = np.asarray(frames)
    n_frames, height, width = frames.shape
    meta = f'<metadata><item name="numberOfFrames">{n_frames}</item>'
    if pixel_size_m is not None:
        meta += f'<item name="sensorPixelSize.height" unit="m">{pixel_size_m}</item>'
        meta += f'<item name="sensorPixelSize.width" unit="m">{pixel_size_m}</item>'
    xml = (meta + "</metadata>").encode()

    out = bytearray(b"II" + struct.pack("<HHHQ", 43, 8, 0, 0))
    strips = []
    for f in frames:
        strips.append(len(out))
        data = encode_frame(f)
        out += data
        strips.append(len(data))
    xml_at = len(out)
    out += xml + b"\0" * (len(xml) % 2)

    short, long_, long8, undefined = 3, 4, 16, 7
    next_slot = 8  # where the previous IFD's "next" pointer lives (header first)
    for i in range(n_frames):
        offset, count = strips[2 * i], strips[2 * i + 1]
        entries = [
            (256, long_, 1, width),
            (257, long_, 1, height),
            (258, short, 1, 1),
            (259, short, 1, 65001),
            (262, short, 1, 1),
            (273, long8, 1, offset),
            (277, short, 1, 1),
            (278, long_, 1, height),
            (279, long8, 1, count),
        ]
        if i == 0:
            entries.append((65001, undefined, len(xml), xml_at))
        if len(out) % 2:
            out += b"\0"
        ifd_at = len(out)
        struct.pack_into("<Q", out, next_slot, ifd_at)
        out += struct.pack("<Q", len(entries))
        for tag, typ, cnt, val in entries:
            out += struct.pack("<HHQQ", tag, typ, cnt, val)
        next_slot = len(out)
        out += struct.pack("<Q", 0)
    path.write_bytes(bytes(out))
    return path
