"""An image file's width and height from its header, without decoding it.

A replay still is checked before OpenCV decodes it: a 12000x12000 PNG decoded whole took the daemon
to 961 MB, and a large photo can be decoded at a fraction of its size (cv2.IMREAD_REDUCED_*). OpenCV
has no call that reads only the header, so the formats a replay accepts (camera.IMAGE_SUFFIXES) are
read here: PNG, JPEG, BMP, WebP and TIFF. Only the fields that give the size are read; anything else,
including a header that is cut short or malformed, gives None.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

MAX_JPEG_SEGMENTS = 1000  # a real JPEG reaches its frame header within a few dozen
MAX_TIFF_ENTRIES = 1000
# JPEG start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_size(f: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from the header of the image file open in `f` (at its start); None when it is
    none of PNG, JPEG, BMP, WebP or TIFF, or the header is broken."""
    try:
        head = f.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return _pair(struct.unpack(">II", head[16:24]))
        if head.startswith(b"\xff\xd8"):
            f.seek(2)
            return _jpeg(f)
        if head.startswith(b"BM"):
            return _bmp(head)
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            return _webp(head)
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(f, "<" if head[:2] == b"II" else ">", head)
    except (struct.error, OSError, ValueError):  # cut short, or an offset past the end
        return None
    return None


def _pair(size: tuple[int, int]) -> tuple[int, int] | None:
    return size if size[0] > 0 and size[1] > 0 else None


def _jpeg(f: BinaryIO) -> tuple[int, int] | None:
    for _ in range(MAX_JPEG_SEGMENTS):
        byte = f.read(1)
        while byte == b"\xff":  # fill bytes before a marker
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            continue
        (length,) = struct.unpack(">H", f.read(2))
        if marker in _SOF:
            _precision, height, width = struct.unpack(">BHH", f.read(5))
            return _pair((width, height))
        if marker == 0xD9 or length < 2:  # the end of the image, or a broken segment
            return None
        f.seek(length - 2, 1)
    return None


def _bmp(head: bytes) -> tuple[int, int] | None:
    (header_size,) = struct.unpack("<I", head[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return _pair(struct.unpack("<HH", head[18:22]))
    width, height = struct.unpack("<ii", head[18:26])
    return _pair((abs(width), abs(height)))  # a negative height is a top-down bitmap


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # lossy: the key frame's start code, then 14-bit sizes
        width, height = struct.unpack("<HH", head[26:30])
        return _pair((width & 0x3FFF, height & 0x3FFF))
    if chunk == b"VP8L" and head[20] == 0x2F:  # lossless: 14-bit width-1 and height-1, packed
        (bits,) = struct.unpack("<I", head[21:25])
        return _pair(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        return _pair((int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1))
    return None


def _tiff(f: BinaryIO, order: str, head: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    (offset,) = struct.unpack(order + "I", head[4:8])
    f.seek(offset)
    (count,) = struct.unpack(order + "H", f.read(2))
    size: dict[int, int] = {}
    for _ in range(min(count, MAX_TIFF_ENTRIES)):
        tag, kind, _count, value = struct.unpack(order + "HHI4s", f.read(12))
        if tag in (256, 257):
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2] if kind == 3 else value)[0]
    return _pair((size[256], size[257])) if len(size) == 2 else None
