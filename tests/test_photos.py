"""The photo pipeline takes what phones send and nothing else, and keeps only pixels.

Every image is made here with Pillow (and pillow-heif for HEIC): no fixture
files, no database.
"""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib

import pillow_heif
import pytest
from hypothesis import given, settings, strategies
from PIL import Image, ImageChops, ImageCms, ImageFile, PngImagePlugin

from activities import photos
from activities.photos import PhotoRejected, process_photo

LIMITS = {
    "max_bytes": 10 * 2**20,
    "max_pixels": 40_000_000,
    "display_size": 2048,
    "thumbnail_size": 320,
}
SMALL = {**LIMITS, "display_size": 64, "thumbnail_size": 16}
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 160, 0), (0, 0, 255), (255, 255, 255)
GPS_TEXT = "XGC-SECRET-GPS-DATUM"
COMMENT_TEXT = b"XGC-SECRET-COMMENT"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description>XGC-SECRET-XMP</rdf:Description></rdf:RDF></x:xmpmeta>'
)
# What Pillow reports of a bare progressive JPEG.
JPEG_INFO = {"jfif", "jfif_version", "jfif_unit", "jfif_density", "progressive", "progression"}
SECRETS = (GPS_TEXT.encode(), COMMENT_TEXT, b"XGC-SECRET-XMP", b"XGC-SECRET-MAKE", b"Exif")


# Building test images -------------------------------------------------------


def marked(size=(96, 64), colour=GREEN, marker=RED, mode="RGB") -> Image.Image:
    """Return a flat image with a marker block in its top-left corner."""
    image = Image.new(mode, size, colour)
    image.paste(marker, (0, 0, size[0] // 4, size[1] // 4))
    return image


def exif(orientation: int | None = None) -> Image.Exif:
    """Return EXIF with a camera, a GPS position and, if given, an orientation."""
    data = Image.Exif()
    data[0x010F] = "XGC-SECRET-MAKE"  # Make
    if orientation:
        data[0x0112] = orientation
    gps = data.get_ifd(0x8825)
    gps[1], gps[2] = "N", (31.0, 14.0, 20.5)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "E", (121.0, 28.0, 10.0)  # GPSLongitudeRef, GPSLongitude
    gps[18] = GPS_TEXT  # GPSMapDatum
    return data


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(image: Image.Image, **options) -> bytes:
    return encode(image, "JPEG", quality=95, **options)


def heic(image: Image.Image, **options) -> bytes:
    pillow_heif.register_heif_opener()
    return encode(image, "HEIF", quality=95, **options)


def decoded(output: photos.Image) -> Image.Image:
    image = Image.open(io.BytesIO(output.data))
    assert image.format == "JPEG"
    assert image.size == (output.width, output.height)
    return image


def close(actual, expected, tolerance=12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def rejected(data: bytes, **limits) -> str:
    with pytest.raises(PhotoRejected) as caught:
        process_photo(data, **{**SMALL, **limits})
    return caught.value.reason


def without_segment(data: bytes, marker: int) -> bytes:
    """Return a JPEG without its marker segments of one kind (e.g. 0xEE, Adobe's APP14)."""
    out, position = bytearray(data[:2]), 2
    while data[position + 1] != 0xDA:  # up to the start of scan
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if data[position + 1] != marker:
            out += data[position : position + 2 + length]
        position += 2 + length
    return bytes(out + data[position:])


# A wide-gamut RGB profile: pixels are turned into XYZ (D50) by a gamma curve
# or the sRGB curve and a matrix of the primaries, as Adobe's and Apple's are.
def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def icc_profile(name: str, primaries, curve: bytes) -> bytes:
    """Return a minimal ICC v2 RGB display profile (matrix and curves)."""
    text = name.encode() + b"\0"
    tags = [
        (b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 78),
        (b"cprt", b"text\0\0\0\0public domain\0"),
        (b"wtpt", _xyz(*D50)),
        *(
            (sig, _xyz(*xyz))
            for sig, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries, strict=True)
        ),
        *((sig, curve) for sig in (b"rTRC", b"gTRC", b"bTRC")),
    ]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", start + len(body), len(data))
        body += data
    header = struct.pack(">I", start + len(body)) + b"\0" * 4 + bytes([2, 0x10, 0, 0])
    header += b"mntrRGB XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24 + _xyz(*D50)[8:]
    return header.ljust(128, b"\0") + struct.pack(">I", len(tags)) + table + body


D50 = (0.9642, 1.0, 0.8249)
GAMMA_563 = b"curv\0\0\0\0" + struct.pack(">IH", 1, 563) + b"\0\0"  # 2.2 (563/256)
SRGB_CURVE = b"para\0\0\0\0" + struct.pack(">HH", 3, 0)
SRGB_CURVE += b"".join(_s15(v) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))
# Primaries adapted to D50, as the published profiles give them.
ADOBE_RGB = (
    "Adobe RGB (1998) test",
    ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457)),
    GAMMA_563,
    lambda v: v ** (563 / 256),
)
DISPLAY_P3 = (
    "Display P3 test",
    (
        (0.515121, 0.241182, -0.001053),
        (0.291977, 0.692245, 0.041885),
        (0.157104, 0.066574, 0.784073),
    ),
    SRGB_CURVE,
    lambda v: v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4,
)
SRGB_PRIMARIES = (
    (0.4360747, 0.2225045, 0.0139322),
    (0.3850649, 0.7168786, 0.0971045),
    (0.1430804, 0.0606169, 0.7141733),
)


def expected_srgb(rgb, primaries, decode) -> tuple[int, ...]:
    """Convert rgb from a matrix profile to sRGB by hand, independently of LittleCMS."""
    linear = [decode(c / 255) for c in rgb]
    xyz = [sum(primaries[c][i] * linear[c] for c in range(3)) for i in range(3)]
    m = [[SRGB_PRIMARIES[c][i] for c in range(3)] for i in range(3)]  # XYZ = m @ rgb
    det = (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )
    inverse = [
        [
            (m[(j + 1) % 3][(i + 1) % 3] * m[(j + 2) % 3][(i + 2) % 3])
            - (m[(j + 1) % 3][(i + 2) % 3] * m[(j + 2) % 3][(i + 1) % 3])
            for j in range(3)
        ]
        for i in range(3)
    ]
    out = []
    for row in inverse:
        v = min(1.0, max(0.0, sum(row[k] * xyz[k] for k in range(3)) / det))
        v = 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
        out.append(round(v * 255))
    return tuple(out)


# Accepted formats -----------------------------------------------------------


def _mpo(image: Image.Image) -> bytes:
    second = Image.new("RGB", image.size, BLUE)
    return encode(image, "MPO", save_all=True, append_images=[second], quality=95)


FORMATS = {
    "JPEG": lambda image: jpeg(image),
    "MPO": _mpo,
    "PNG": lambda image: encode(image, "PNG"),
    "WEBP": lambda image: encode(image, "WEBP", quality=95),
    "GIF": lambda image: encode(image, "GIF"),
    "HEIF": lambda image: heic(image),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_phone_format_is_accepted_and_re_encoded_as_jpeg(fmt):
    """JPEG, MPO, PNG, WebP, GIF and HEIC come out as JPEG with their pixels."""
    data = FORMATS[fmt](marked())
    assert Image.open(io.BytesIO(data)).format == fmt
    photo = process_photo(data, **LIMITS)
    assert (photo.content_type, photo.extension) == ("image/jpeg", "jpg")
    display = decoded(photo.display)
    assert display.size == (96, 64)
    assert close(display.getpixel((4, 4)), RED, 30)
    assert close(display.getpixel((80, 40)), GREEN, 30)
    assert decoded(photo.thumbnail).size == (96, 64)


def test_only_the_first_frame_of_an_animated_gif_is_taken():
    """An animated GIF gives its first frame."""
    frames = [Image.new("RGB", (40, 30), colour) for colour in (RED, BLUE, GREEN)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    display = decoded(process_photo(data, **LIMITS).display)
    assert close(display.getpixel((20, 15)), RED)


# Orientation ----------------------------------------------------------------


def stored_for_orientation_6(upright: Image.Image) -> Image.Image:
    """Return the pixels as a phone held upright stores them with orientation 6."""
    return upright.transpose(Image.Transpose.ROTATE_90)


@pytest.mark.parametrize(
    ("size", "display_size", "expected"),
    [((64, 96), 2048, (64, 96)), ((300, 400), 100, (75, 100)), ((150, 210), 100, (71, 100))],
    ids=["small", "draft-decoded", "resized"],
)
def test_exif_orientation_6_comes_out_upright(size, display_size, expected):
    """A photo stored sideways with orientation 6 is turned upright, after any shrinking."""
    upright = marked(size)
    data = jpeg(stored_for_orientation_6(upright), exif=exif(orientation=6))
    photo = process_photo(data, **{**LIMITS, "display_size": display_size, "thumbnail_size": 40})
    display = decoded(photo.display)
    assert display.size == expected
    width, height = expected
    assert close(display.getpixel((width // 10, height // 10)), RED, 30)
    assert close(display.getpixel((width - 3, height - 3)), GREEN, 30)
    assert close(display.getpixel((width - 3, 2)), GREEN, 30)
    thumbnail = decoded(photo.thumbnail)
    assert thumbnail.height == 40 and thumbnail.width < 40
    assert close(thumbnail.getpixel((2, 2)), RED, 40)


def test_heic_orientation_comes_out_upright():
    """HEIC's rotation (applied by pillow-heif) is not applied twice."""
    upright = marked((64, 96))
    # From EXIF bytes pillow-heif writes the rotation into the container (irot),
    # as phones do; readers follow irot and ignore EXIF's orientation.
    data = heic(stored_for_orientation_6(upright), exif=exif(orientation=6).tobytes())
    assert Image.open(io.BytesIO(data)).info["original_orientation"] == 6
    display = decoded(process_photo(data, **LIMITS).display)
    assert display.size == (64, 96)
    assert close(display.getpixel((5, 5)), RED, 30)


# Metadata -------------------------------------------------------------------


def _png_with_metadata(image: Image.Image) -> bytes:
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", COMMENT_TEXT.decode())
    text.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return encode(image, "PNG", pnginfo=text, exif=exif(), icc_profile=_adobe_profile())


def _adobe_profile() -> bytes:
    return icc_profile(*ADOBE_RGB[:3])


WITH_METADATA = {
    "JPEG": lambda image: jpeg(
        image, exif=exif(), comment=COMMENT_TEXT, xmp=XMP, icc_profile=_adobe_profile()
    ),
    "PNG": _png_with_metadata,
    "WEBP": lambda image: encode(image, "WEBP", exif=exif(), xmp=XMP, icc_profile=_adobe_profile()),
    "HEIF": lambda image: heic(image, exif=exif(), xmp=XMP),
    "GIF": lambda image: encode(image, "GIF", comment=COMMENT_TEXT),
}


@pytest.mark.parametrize("fmt", WITH_METADATA)
def test_all_metadata_is_stripped_from_both_outputs(fmt):
    """No EXIF (no GPS), XMP, ICC profile or comment reaches the display copy or the thumbnail."""
    data = WITH_METADATA[fmt](marked((400, 300)))
    source = Image.open(io.BytesIO(data))
    assert source.getexif() or "comment" in source.info
    photo = process_photo(data, **{**LIMITS, "display_size": 200, "thumbnail_size": 50})
    for output in (photo.display, photo.thumbnail):
        image = decoded(output)
        assert not image.getexif()
        assert not {"exif", "icc_profile", "comment", "xmp"} & set(image.info)
        assert image.info.keys() <= JPEG_INFO
        for secret in SECRETS:
            assert secret not in output.data


# Colour -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmyk", "rgb"),
    [
        ((0, 255, 255, 0), (255, 0, 0)),
        ((255, 0, 255, 0), (0, 255, 0)),
        ((0, 0, 0, 128), (127, 127, 127)),
    ],
    ids=["red", "green", "grey"],
)
def test_adobe_cmyk_jpeg_becomes_rgb_with_the_right_colour(cmyk, rgb):
    """A CMYK JPEG as Photoshop writes it (inverted, with Adobe's marker) gives its colour."""
    data = jpeg(Image.new("CMYK", (32, 32), cmyk))
    assert b"Adobe" in data
    display = decoded(process_photo(data, **LIMITS).display)
    assert display.mode == "RGB"
    assert close(display.getpixel((16, 16)), rgb, 8)


def test_plain_cmyk_jpeg_without_adobe_marker_is_not_inverted():
    """A CMYK JPEG without Adobe's marker stores plain CMYK, and gives its colour too."""
    # Pillow inverts on saving: save the inverse to store plain (0, 255, 255, 0).
    stored = jpeg(ImageChops.invert(Image.new("CMYK", (32, 32), (0, 255, 255, 0))))
    data = without_segment(stored, 0xEE)
    assert b"Adobe" not in data
    display = decoded(process_photo(data, **LIMITS).display)
    assert close(display.getpixel((16, 16)), RED, 8)


@pytest.mark.parametrize("profile", [ADOBE_RGB, DISPLAY_P3], ids=["adobe-rgb", "display-p3"])
def test_wide_gamut_photo_is_converted_to_srgb(profile):
    """Pixels tagged Adobe RGB or Display P3 come out as the same colour in sRGB."""
    name, primaries, curve, decode = profile
    colour = (200, 80, 60)
    data = jpeg(Image.new("RGB", (32, 32), colour), icc_profile=icc_profile(name, primaries, curve))
    expected = expected_srgb(colour, primaries, decode)
    assert not close(colour, expected, 10)  # the conversion matters for this colour
    display = decoded(process_photo(data, **LIMITS).display)
    assert display.mode == "RGB"
    assert close(display.getpixel((16, 16)), expected, 4)


def test_srgb_photo_keeps_its_colours():
    """Pixels tagged sRGB are left as they are."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = jpeg(Image.new("RGB", (32, 32), (200, 80, 60)), icc_profile=srgb)
    display = decoded(process_photo(data, **LIMITS).display)
    assert close(display.getpixel((16, 16)), (200, 80, 60), 4)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_transparency_is_flattened_onto_white(fmt):
    """Transparent pixels of a PNG, WebP or GIF become white, opaque ones keep their colour."""
    if fmt == "GIF":
        # Palette entry 1, black, is the transparent one.
        image = Image.new("P", (40, 30), 1)
        image.putpalette([*BLUE, 0, 0, 0])
        image.paste(0, (0, 0, 20, 30))
        data = encode(image, "GIF", transparency=1)
    else:
        image = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
        image.paste((*BLUE, 255), (0, 0, 20, 30))
        data = encode(image, fmt, lossless=True) if fmt == "WEBP" else encode(image, fmt)
    display = decoded(process_photo(data, **LIMITS).display)
    assert close(display.getpixel((35, 15)), WHITE, 4)
    assert close(display.getpixel((5, 15)), BLUE, 20)


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    """A 16-bit greyscale PNG keeps its mid-greys."""
    data = encode(Image.new("I;16", (32, 32), 32768), "PNG")
    display = decoded(process_photo(data, **LIMITS).display)
    assert abs(display.getpixel((16, 16)) - 128) <= 3


# Limits -----------------------------------------------------------------------


def black_png(width: int, height: int) -> bytes:
    """Return a valid 1-bit black PNG, compressed row by row (Pillow would hold it all)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    compressor, row = zlib.compressobj(9), bytes(1 + (width + 7) // 8)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _never_decode(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize("side", [20_000, 10_000, 7_000], ids=["400MP", "100MP", "49MP"])
def test_decompression_bomb_is_refused_before_decoding(side, monkeypatch):
    """A tiny PNG declaring more pixels than allowed is refused from its header, quickly."""
    data = black_png(side, side)
    assert struct.unpack(">II", data[16:24]) == (side, side)  # IHDR
    assert len(data) < 60_000
    _never_decode(monkeypatch)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Pillow only warns between 89 MP and 179 MP; a warning made an error is refused too.
        warnings.simplefilter("error")
        assert rejected(data, **LIMITS) == "图片像素太多（最多 4000 万像素）"
    assert time.perf_counter() - started < 0.5


def test_too_many_bytes_is_refused_before_parsing(monkeypatch):
    """Bytes over max_bytes are refused without being looked at."""
    data = jpeg(marked())

    def refuse(*args, **kwargs):
        raise AssertionError("the bytes were parsed")

    monkeypatch.setattr(Image, "open", refuse)
    assert rejected(data, max_bytes=len(data) - 1).startswith("图片太大")
    assert rejected(b"x" * (5 * 2**20 + 1), max_bytes=5 * 2**20) == "图片太大（最多 5 MB）"


def test_reasons_name_the_limits():
    """The fan reads the limits in use: MB and 万像素."""
    data = jpeg(marked((400, 300)))
    assert rejected(data, max_pixels=100_000) == "图片像素太多（最多 10 万像素）"
    assert rejected(b"x" * 1_500_001, max_bytes=1_500_000) == "图片太大（最多 1.5 MB）"


# Refused bytes --------------------------------------------------------------


def _tiff() -> bytes:
    return encode(marked(), "TIFF")


NOT_PHOTOS = {
    "html-named-jpg": b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>',
    "pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
    "tiff": _tiff(),
    "bmp": encode(marked(), "BMP"),
    "avif": encode(marked(), "AVIF"),
    "empty": b"",
    "text": "一张照片".encode(),
}


@pytest.mark.parametrize("name", NOT_PHOTOS)
def test_other_formats_are_refused(name):
    """HTML, SVG, PDF, TIFF, BMP, AVIF and anything else are not photos xgc takes."""
    assert rejected(NOT_PHOTOS[name]) == "不是支持的图片格式（支持 JPEG、PNG、WebP、HEIC、GIF）"


def _noise(size=(200, 150)) -> Image.Image:
    return Image.effect_noise(size, 60).convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "HEIF"])
def test_truncated_photo_is_refused(fmt):
    """A photo cut in half is damaged, whatever its format (verify() misses JPEG's)."""
    data = FORMATS[fmt](_noise())
    assert rejected(data[: len(data) // 2]) == "图片已损坏或不完整"


def test_truncated_jpeg_is_refused_even_when_only_the_end_is_missing():
    """Only decoding finds a JPEG missing its last bytes."""
    data = jpeg(_noise())
    Image.open(io.BytesIO(data[:-200])).verify()  # what Django's ImageField relies on
    assert rejected(data[:-200]) == "图片已损坏或不完整"


def test_loading_truncated_images_stays_off():
    """The process-wide switch that would accept truncated photos is left off."""
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def _with_comment(data: bytes, comment: bytes) -> bytes:
    """Return a JPEG with a comment segment right after its start."""
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


POLYGLOTS = {
    "html-after-end": jpeg(marked()) + b"<html><body><script>alert(1)</script></body></html>",
    "script-in-comment": _with_comment(jpeg(marked()), b"<ScRiPt>alert(1)</script>"),
    "doctype-in-comment": _with_comment(jpeg(marked()), b"<!DOCTYPE html>"),
    "php-in-exif": jpeg(marked(), exif=b"Exif\0\0<?php system($_GET['c']); ?>"),
    "svg-in-comment": _with_comment(
        jpeg(marked()), b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    ),
    "png-with-html": encode(marked(), "PNG") + b"<HTML>\n<body onload=alert(1)>",
    "gif-with-svg": encode(marked(), "GIF", comment=b"<svg onload=alert(1)></svg>"),
}


@pytest.mark.parametrize("name", POLYGLOTS)
def test_photo_carrying_a_web_page_or_script_is_refused(name):
    """A valid photo whose bytes also carry HTML, SVG, script or PHP is refused."""
    data = POLYGLOTS[name]
    Image.open(io.BytesIO(data)).load()  # a real, decodable image
    assert rejected(data) == "图片里夹带了网页或脚本代码"


@pytest.mark.parametrize("text", [b"<svg", b"<html5", b"<?phpx", b"<scrip", b"</svg>"], ids=repr)
def test_short_chance_matches_are_not_refused(text):
    """Byte runs that compressed data produces by chance, alone, do not refuse a photo."""
    photo = process_photo(_with_comment(jpeg(marked()), text), **SMALL)
    assert text not in photo.display.data


# Outputs ----------------------------------------------------------------------


def test_same_bytes_give_the_same_sha256():
    """The hash is of the bytes that came in, so a photo attached twice is recognised."""
    data = jpeg(marked())
    first, second = process_photo(data, **LIMITS), process_photo(data, **LIMITS)
    other = process_photo(jpeg(marked(colour=BLUE)), **LIMITS)
    assert first.sha256 == second.sha256 != other.sha256
    assert len(first.sha256) == 64 and int(first.sha256, 16) >= 0
    assert first.original_bytes == len(data)


@pytest.mark.parametrize(
    ("size", "display", "thumbnail"),
    [
        ((40, 30), (40, 30), (16, 12)),
        ((60, 64), (60, 64), (15, 16)),
        ((150, 90), (64, 38), (16, 10)),
        ((90, 150), (38, 64), (10, 16)),
        ((520, 400), (64, 49), (16, 12)),
        ((400, 520), (49, 64), (12, 16)),
        ((1000, 200), (64, 13), (16, 3)),
        ((10, 10), (10, 10), (10, 10)),
    ],
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_outputs_fit_their_box_and_are_never_enlarged(size, display, thumbnail, fmt):
    """The long sides are at most display_size and thumbnail_size, and never grow."""
    photo = process_photo(FORMATS[fmt](marked(size)), **SMALL)
    assert (photo.display.width, photo.display.height) == display
    assert (photo.thumbnail.width, photo.thumbnail.height) == thumbnail
    assert decoded(photo.display).size == display
    assert decoded(photo.thumbnail).size == thumbnail


def test_jpeg_decodes_at_reduced_scale_within_a_sixteenth_of_display_size():
    """A JPEG 4 to 8 times display_size decodes at 1/4 scale instead of being resampled."""
    photo = process_photo(jpeg(marked((504, 378))), **SMALL)
    # 504 / 8 = 63 px: at most 1/16 short of 64, and no resampling.
    assert (photo.display.width, photo.display.height) == (63, 48)


# Robustness -------------------------------------------------------------------

SEEDS = {fmt: FORMATS[fmt](_noise((48, 32))) for fmt in ("JPEG", "PNG", "WEBP", "GIF", "HEIF")}


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    fmt=strategies.sampled_from(sorted(SEEDS)),
    changes=strategies.lists(
        strategies.tuples(strategies.floats(0, 1), strategies.integers(0, 255)), max_size=6
    ),
    cut=strategies.floats(0.05, 1),
)
def test_damaged_photos_are_refused_or_processed_never_an_error(fmt, changes, cut):
    """Any damage to a photo ends as a refusal or a photo, never as another exception."""
    data = bytearray(SEEDS[fmt])
    for where, value in changes:
        data[int(where * (len(data) - 1))] = value
    try:
        process_photo(bytes(data[: max(1, int(len(data) * cut))]), **SMALL)
    except PhotoRejected:
        pass
