"""Untrusted image bytes from the line: sniff, size-check and decode without surprises.

Only JPEG and PNG are accepted. The pixel count is read from the header *before* decoding, so a
decompression bomb (a small file that claims a huge image) is refused without allocating it. A JPEG
is decoded by libjpeg-turbo in strict mode (``simplejpeg``): entropy data that ends before the last
block (a cut-off upload, even with an end-of-image marker appended) is refused as truncated, where
OpenCV would fill the missing part with grey; bytes after the end-of-image marker (some cameras append
metadata) are ignored. A PNG without its ``IEND`` chunk is refused as truncated.
"""

from __future__ import annotations

import struct

import numpy as np

from jangin.core import InferenceError

__all__ = ["ImageTooLarge", "UnsupportedMedia", "decode_checked", "image_size", "sniff"]

#: Default largest image accepted (pixels): 40 MP, above any line camera here.
MAX_PIXELS = 40_000_000
_PNG = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class UnsupportedMedia(InferenceError):
    """The request is not a JPEG or PNG image (HTTP 415)."""


class ImageTooLarge(InferenceError):
    """The image has more pixels than allowed (HTTP 413)."""


def sniff(data: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or None, from the magic bytes."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == _PNG:
        return "png"
    return None


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` read from a JPEG or PNG header, without decoding.

    Raises:
        UnsupportedMedia: Neither JPEG nor PNG.
        InferenceError: The header is damaged.
    """
    kind = sniff(data)
    if kind == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InferenceError("PNG without an IHDR header")
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if kind == "jpeg":
        i, n = 2, len(data)
        while i + 4 <= n:
            if data[i] != 0xFF:
                raise InferenceError(f"damaged JPEG: no marker at byte {i}")
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            (seg,) = struct.unpack(">H", data[i + 2 : i + 4])
            if marker in _SOF:
                if i + 9 > n:
                    break
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(w), int(h)
            if marker == 0xDA:  # start of scan before any frame header
                break
            i += 2 + seg
        raise InferenceError("damaged or truncated JPEG: no frame header")
    raise UnsupportedMedia(f"not a JPEG or PNG image (starts {bytes(data[:8])!r})", hint="send a JPEG or PNG")


def decode_checked(data: bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode JPEG / PNG bytes to a BGR uint8 array after checking type, size and completeness.

    Raises:
        UnsupportedMedia: Not a JPEG or PNG.
        ImageTooLarge: More than ``max_pixels`` pixels (checked from the header, before decoding).
        InferenceError: Empty, truncated or undecodable.
    """
    import cv2

    if not data:
        raise InferenceError("no image data", hint="send the image as the request body or a multipart file")
    w, h = image_size(data)
    if w <= 0 or h <= 0:
        raise InferenceError(f"image header says {w}x{h} pixels")
    if w * h > max_pixels:
        raise ImageTooLarge(f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels}")
    tail = bytes(data[-32:]).rstrip(b"\x00")
    if sniff(data) == "jpeg":
        img = _decode_jpeg(data)
        if img is not None:
            return img
    elif b"IEND" not in tail:
        raise InferenceError("truncated PNG: no IEND chunk", hint="the upload was cut off; resend it")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise InferenceError(f"{len(data)} bytes could not be decoded as an image")
    return img


#: libjpeg messages that mean the entropy-coded data is incomplete or damaged.
_JPEG_DAMAGE = ("premature end", "corrupt jpeg", "truncated", "bogus", "invalid", "huffman")


def _decode_jpeg(data: bytes) -> np.ndarray | None:
    """Decode a JPEG strictly (BGR); None when libjpeg-turbo cannot convert its colour space (CMYK…)
    and OpenCV should decode it.

    Raises:
        InferenceError: Truncated or damaged entropy-coded data.
    """
    import simplejpeg

    try:
        return np.ascontiguousarray(simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True))
    except ValueError as exc:
        msg = str(exc)
        if "extraneous bytes" in msg:  # stray bytes between segments: the image data itself is whole
            return np.ascontiguousarray(simplejpeg.decode_jpeg(data, colorspace="BGR", strict=False))
        if any(k in msg.lower() for k in _JPEG_DAMAGE):
            raise InferenceError(
                f"truncated or damaged JPEG: {msg}", hint="the upload was cut off or corrupted; resend it"
            ) from None
        if bytes(data).rfind(b"\xff\xd9") < 0:
            raise InferenceError(
                "truncated JPEG: no end-of-image marker", hint="the upload was cut off; resend it"
            ) from None
        return None
