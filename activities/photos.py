"""The photo pipeline: untrusted bytes in, two clean re-encoded images out.

Pure work: no request, no model, no storage, so it can be tested with bytes,
timed in a benchmark (``python -m tests.bench_photos``) and run in another
process unchanged.

Every photo is decoded with Pillow (HEIC through pillow-heif), turned upright,
converted to sRGB and re-encoded from its pixels alone, so nothing the phone or
the sender put in the file (EXIF with GPS, XMP, ICC, comments, trailing data)
reaches the outputs. Outputs are progressive JPEG at quality 85: for a 12 MP
photo's display copy WebP at quality 80 was 33% smaller (15% at equal PSNR)
but took 6-8x as long to encode (330-470 ms against 52-56 ms), and JPEG opens
in every WebView WeChat runs in (WebP needs iOS 14) and every tool.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
from dataclasses import dataclass

import pillow_heif
from PIL import Image as PILImage
from PIL import ImageChops, ImageCms, ImageOps

# Once, at import: Image.open then recognises HEIC/HEIF by its bytes. Thumbnails,
# depth maps and auxiliary images inside the container are never used.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

# What phones send, as Pillow names the decoders. Anything else, TIFF and the
# rarer formats where most of Pillow's CVEs are, is never parsed. The JPEG
# opener also returns phones' multi-picture JPEGs (format "MPO"; only the first
# picture is used): "MPO" is no opener of its own, and naming it raises KeyError.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "HEIF")
CONTENT_TYPE = "image/jpeg"
EXTENSION = "jpg"
JPEG_OPTIONS = {"quality": 85, "progressive": True, "optimize": True}

UNSUPPORTED = "不是支持的图片格式（支持 JPEG、PNG、WebP、HEIC、GIF）"
CORRUPT = "图片已损坏或不完整"
MARKUP = "图片里夹带了网页或脚本代码"

# The display copy may come out up to 1/16 smaller than display_size when that
# lets libjpeg decode at 1/2, 1/4 or 1/8 scale: a 4032 px photo decodes at
# 2016 px in half the time, with no resampling after. Pillow's draft() only
# reduces when the whole box still fits, so draft("RGB", (2048, 2048)) would
# decode a 12 MP photo at full size.
DRAFT_SLACK = 1 / 16

# Real photos' bytes are compressed data, close to random. At any one position
# random bytes spell "<html" followed by a space or ">" (any case) with odds of
# 2**4 / 256**5 * 7 / 256, about 4e-13; "<?php " about 2e-13, "<script" 9e-16,
# "<!doctype" 3e-20: about 1 in 170,000 photos of 10 MB by chance. A bare
# "<svg" is far likelier (2e-9, nearly 1 in 50 photos of 10 MB), so an SVG is
# refused only when its tag comes with a closing tag or the SVG namespace,
# which an SVG needs to run as one.
_MARKUP_TAGS = re.compile(rb"<(?:script|!doctype|html[\s>]|\?php\s)", re.IGNORECASE)
_SVG_TAG = re.compile(rb"<svg", re.IGNORECASE)
_SVG_PROOF = re.compile(rb"</svg|www\.w3\.org/2000/svg", re.IGNORECASE)

# What Pillow's decoders and pillow-heif raise on malformed input (Pillow's
# own fuzz tests expect most of these), and their warnings where warnings are
# made errors.
_DECODE_ERRORS = (
    Warning,
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    RuntimeError,
    NotImplementedError,
    OverflowError,
    ZeroDivisionError,
)
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


class PhotoRejected(Exception):
    """The bytes are not a photo xgc takes; ``reason`` says why, in Chinese, for the fan."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Image:
    """One encoded output."""

    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class ProcessedPhoto:
    display: Image
    thumbnail: Image
    # The format both outputs are encoded in.
    content_type: str
    extension: str
    # SHA-256 (hex) and length of the bytes that came in.
    sha256: str
    original_bytes: int


def process_photo(
    data: bytes, *, max_bytes: int, max_pixels: int, display_size: int, thumbnail_size: int
) -> ProcessedPhoto:
    """Decode data as a photo and return its display copy and thumbnail.

    The display copy's long side is at most display_size, the thumbnail's at
    most thumbnail_size; neither is ever enlarged. Raise PhotoRejected when
    data is not a supported, whole photo within max_bytes and max_pixels.
    """
    if len(data) > max_bytes:
        raise PhotoRejected(f"图片太大（最多 {_megabytes(max_bytes)} MB）")
    image = _open(data, max_pixels)
    if _MARKUP_TAGS.search(data) or (_SVG_TAG.search(data) and _SVG_PROOF.search(data)):
        raise PhotoRejected(MARKUP)
    icc_profile = image.info.get("icc_profile")
    # Pillow reads every CMYK JPEG as Adobe's inverted CMYK; without Adobe's
    # marker the writer did not invert it (as browsers assume too).
    plain_cmyk = image.mode == "CMYK" and "adobe" not in image.info
    image = _decode(image, display_size)
    # Each step replaces image, so the full-size pixels are dropped as soon as
    # the display-sized copy exists; everything after works at display size.
    image = _resample_ready(image)
    image = _fit(image, display_size)
    _upright(image)
    if plain_cmyk:
        image = ImageChops.invert(image)
    display = _pixels_only(_srgb(image, icc_profile))
    del image
    thumbnail = _fit(display, thumbnail_size)
    return ProcessedPhoto(
        display=_encode(display),
        thumbnail=_encode(thumbnail),
        content_type=CONTENT_TYPE,
        extension=EXTENSION,
        sha256=hashlib.sha256(data).hexdigest(),
        original_bytes=len(data),
    )


def _megabytes(size: int) -> str:
    return f"{size // 2**20}" if size % 2**20 == 0 else f"{size / 1e6:g}"


def _open(data: bytes, max_pixels: int) -> PILImage.Image:
    """Read the header only, and refuse what is not one of FORMATS or too large."""
    try:
        image = PILImage.open(io.BytesIO(data), formats=FORMATS)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        # Pillow's own limit (89 MP warns, 179 MP raises) is far above ours;
        # the warning is an exception only where warnings are made errors.
        raise PhotoRejected(_too_many_pixels(max_pixels)) from None
    except _DECODE_ERRORS:
        raise PhotoRejected(CORRUPT if _looks_supported(data) else UNSUPPORTED) from None
    if image.width * image.height > max_pixels:
        raise PhotoRejected(_too_many_pixels(max_pixels))
    return image


def _too_many_pixels(max_pixels: int) -> str:
    return f"图片像素太多（最多 {max_pixels / 10_000:g} 万像素）"


def _looks_supported(data: bytes) -> bool:
    """Tell whether data starts like one of FORMATS, so that failing to open it means damage."""
    return (
        data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a"))
        or (data.startswith(b"RIFF") and data[8:12] == b"WEBP")
        or (data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS)
    )


def _decode(image: PILImage.Image, display_size: int) -> PILImage.Image:
    """Decode the pixels, a JPEG at the smallest scale that still fills the display copy.

    Only load() finds a truncated JPEG. HEIC has no reduced-scale decoding: a
    12 MP HEIC always decodes at full size.
    """
    if image.format in ("JPEG", "MPO"):
        scale = _draft_scale(max(image.size), display_size)
        image.draft("RGB", (max(1, image.width // scale), max(1, image.height // scale)))
    try:
        image.load()
    except _DECODE_ERRORS:
        raise PhotoRejected(CORRUPT) from None
    return image


def _draft_scale(long_side: int, display_size: int) -> int:
    for scale in (8, 4, 2):
        if -(-long_side // scale) >= display_size * (1 - DRAFT_SLACK):
            return scale
    return 1


def _resample_ready(image: PILImage.Image) -> PILImage.Image:
    """Return image in a mode that resizes smoothly: L, LA, RGB, RGBA or CMYK."""
    mode, transparent = image.mode, "transparency" in image.info
    if mode in ("RGBA", "LA") or (mode in ("RGB", "L", "CMYK") and not transparent):
        return image
    if mode.startswith("I"):
        # 16-bit greyscale PNG: scale to 8 bits (convert() would clip at 255).
        return image.point(lambda value: value * (1 / 256)).convert("L")
    if mode == "1":
        return image.convert("L")
    if transparent or mode == "PA":
        return image.convert("RGBA")
    return image.convert("RGB")


def _fit(image: PILImage.Image, limit: int) -> PILImage.Image:
    """Return image shrunk so that its long side is at most limit, never enlarged."""
    width, height = image.size
    if max(width, height) <= limit:
        return image
    if width >= height:
        size = (limit, max(1, round(height * limit / width)))
    else:
        size = (max(1, round(width * limit / height)), limit)
    return image.resize(size, PILImage.Resampling.BICUBIC, reducing_gap=2.0)


def _upright(image: PILImage.Image) -> None:
    """Apply the EXIF orientation in place, after shrinking (it costs a full copy)."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except _DECODE_ERRORS:
        # Unreadable EXIF: the photo is still a photo, shown as stored.
        pass


def _srgb(image: PILImage.Image, icc_profile: bytes | None) -> PILImage.Image:
    """Return image as L or sRGB RGB, flattened onto white."""
    if image.mode == "CMYK":
        return _transform(image, icc_profile, "CMYK") or image.convert("RGB")
    if image.mode in ("LA", "RGBA"):
        background = PILImage.new(
            image.mode[0] if image.mode == "LA" else "RGB", image.size, "white"
        )
        background.paste(image, mask=image.getchannel("A"))
        image = background
    if image.mode == "RGB":
        return _transform(image, icc_profile, "RGB") or image
    return image


def _transform(
    image: PILImage.Image, icc_profile: bytes | None, mode: str
) -> PILImage.Image | None:
    """Return image converted to sRGB through its ICC profile, or None to leave it as it is."""
    if not icc_profile:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if mode == "RGB" and "srgb" in ImageCms.getProfileDescription(profile).lower():
            return None
        # A profile of its own per call (0.1 ms): LittleCMS handles are not
        # meant to be shared between threads.
        srgb = ImageCms.createProfile("sRGB")
        transform = ImageCms.buildTransform(profile, srgb, mode, "RGB")
        return ImageCms.applyTransform(image, transform)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken profile, or one for another colour space than the pixels:
        # keep the pixels as they are rather than refuse the photo.
        return None


def _pixels_only(image: PILImage.Image) -> PILImage.Image:
    """Return a new image sharing image's pixels and nothing else: empty info, no EXIF."""
    fresh = PILImage.new(image.mode, image.size, None)
    fresh.im = image.im
    return fresh


def _encode(image: PILImage.Image) -> Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **JPEG_OPTIONS)
    return Image(data=buffer.getvalue(), width=image.width, height=image.height)
