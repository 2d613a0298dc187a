"""Benchmark the photo pipeline: ``python -m tests.bench_photos``.

It makes a 12-megapixel photo-like JPEG (gradients and noise at three scales,
so that it compresses like a photo: about 4 MB), stored sideways with EXIF
orientation 6 and a GPS position, as a phone held upright writes it. Then, in
one run, it times activities.photos.process_photo against the leanest Pillow
code that makes the same two outputs (reduced-scale decode, rotate, resize,
encode: nothing else), and measures the peak memory each adds, in a fresh
process per variant (VmHWM from /proc/self/status, before and after one photo).
Last it times the display copy's encoding as JPEG and as WebP. It prints
figures and issue 12's two targets with pass or FAIL; it takes about 15 s.
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pillow_heif
from PIL import Image, ImageChops, features

from activities import photos

PROJECT = Path(__file__).resolve().parent.parent
LIMITS = {
    "max_bytes": 10 * 2**20,
    "max_pixels": 40_000_000,
    "display_size": 2048,
    "thumbnail_size": 320,
}
ROUNDS = 21
# Issue 12's targets for the pipeline.
MAX_RATIO = 1.3
MAX_MB_PER_PHOTO = 100


def photo_like(width: int = 4032, height: int = 3024) -> Image.Image:
    """Return gradients with fine, medium and coarse noise: a photo to a JPEG encoder."""
    small = (width // 8, height // 8)
    channels = (
        Image.linear_gradient("L").resize(small).rotate(30),
        Image.radial_gradient("L").resize(small),
        Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(small),
    )
    image = Image.merge("RGB", channels).resize((width, height), Image.Resampling.BILINEAR)
    for scale, sigma in ((1, 6), (16, 40), (64, 40)):
        noise = Image.effect_noise((width // scale, height // scale), sigma)
        noise = Image.merge(
            "RGB",
            (
                noise,
                noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                noise.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
            ),
        ).resize((width, height), Image.Resampling.BICUBIC)
        image = ImageChops.add(image, noise, offset=-128)
    return image


def phone_jpeg() -> bytes:
    """Return the test photo as a phone stores it: sideways, orientation 6, with GPS."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "BenchPhone", "BenchPhone 12", 6
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (31.0, 14.0, 20.5), "E", (121.0, 28.0, 10.0)
    buffer = io.BytesIO()
    photo_like().save(buffer, "JPEG", quality=93, exif=exif)
    return buffer.getvalue()


def lean(data: bytes) -> tuple[bytes, bytes]:
    """Make the same two outputs with nothing but decoding, rotating, resizing and encoding."""
    display_size, thumbnail_size = LIMITS["display_size"], LIMITS["thumbnail_size"]
    image = Image.open(io.BytesIO(data))
    # The same reduced scale as process_photo (1/2 for 4032 px), then no resampling.
    image.draft("RGB", (image.width // 2, image.height // 2))
    image.thumbnail((display_size, display_size))
    image = image.transpose(Image.Transpose.ROTATE_270)
    display = io.BytesIO()
    image.save(display, "JPEG", **photos.JPEG_OPTIONS)
    image.thumbnail((thumbnail_size, thumbnail_size))
    thumbnail = io.BytesIO()
    image.save(thumbnail, "JPEG", **photos.JPEG_OPTIONS)
    return display.getvalue(), thumbnail.getvalue()


def pipeline(data: bytes) -> tuple[bytes, bytes]:
    photo = photos.process_photo(data, **LIMITS)
    return photo.display.data, photo.thumbnail.data


VARIANTS = {"process_photo": pipeline, "lean Pillow": lean}


def timings(data: bytes) -> dict[str, list[float]]:
    """Return each variant's times in ms, the variants taking turns."""
    for run in VARIANTS.values():
        run(data)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(ROUNDS):
        for name, run in VARIANTS.items():
            started = time.perf_counter()
            run(data)
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure_memory(variant: str, path: str) -> None:
    """In this fresh process: print how much one photo raises the peak RSS, in KiB."""
    data = Path(path).read_bytes()
    run = VARIANTS[variant]
    # Load the codecs and plugins first, on a small photo.
    small = io.BytesIO()
    photo_like(64, 48).save(small, "JPEG")
    run(small.getvalue())
    before = peak_kib()
    run(data)
    sys.stdout.write(f"{peak_kib() - before}\n")


def memory(variant: str, path: str) -> float:
    """Return the peak RSS one photo adds, in MB, measured in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench_photos", "--memory", variant, path],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1]) * 1024 / 1e6


def encodings(data: bytes) -> list[str]:
    """Time the display copy's encoding as JPEG and as WebP."""
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (image.width // 2, image.height // 2))
    image.load()
    options = {
        "JPEG q85 baseline": ("JPEG", {"quality": 85}),
        "JPEG q85 optimize": ("JPEG", {"quality": 85, "optimize": True}),
        "JPEG q85 progressive+optimize": ("JPEG", photos.JPEG_OPTIONS),
        "WebP q80 method 4 (default)": ("WEBP", {"quality": 80}),
        "WebP q80 method 0 (fastest)": ("WEBP", {"quality": 80, "method": 0}),
    }
    lines = []
    for label, (fmt, kwargs) in options.items():
        best, size = float("inf"), 0
        for _ in range(3):
            buffer = io.BytesIO()
            started = time.perf_counter()
            image.save(buffer, fmt, **kwargs)
            best = min(best, (time.perf_counter() - started) * 1000)
            size = len(buffer.getvalue())
        lines.append(f"  {label:31} {best:6.1f} ms {size / 1e6:6.2f} MB")
    return lines


def main() -> int:
    out = sys.stdout.write
    started = time.perf_counter()
    data = phone_jpeg()
    source = Image.open(io.BytesIO(data))
    out(
        f"Python {platform.python_version()}, Pillow {Image.__version__}, "
        f"pillow-heif {pillow_heif.__version__}, "
        f"libjpeg-turbo {features.version('libjpeg_turbo')}, {os.cpu_count()} cores\n"
        f"photo: {source.width}x{source.height} JPEG, {len(data) / 1e6:.2f} MB, "
        f"EXIF orientation {source.getexif().get(0x0112)}, with GPS\n"
    )
    outputs = {name: run(data) for name, run in VARIANTS.items()}
    for name, (display, thumbnail) in outputs.items():
        sizes = [Image.open(io.BytesIO(output)).size for output in (display, thumbnail)]
        out(f"{name}: display {sizes[0]}, thumbnail {sizes[1]}\n")
    times = timings(data)
    with tempfile.NamedTemporaryFile(suffix=".jpg") as file:
        file.write(data)
        file.flush()
        peaks = {name: memory(name, file.name) for name in VARIANTS}
    medians = {name: statistics.median(values) for name, values in times.items()}
    out(f"\nmedian of {ROUNDS} runs each, taking turns, one thread:\n")
    for name, median in medians.items():
        out(
            f"  {name:14} {median:6.1f} ms (min {min(times[name]):.1f}, "
            f"max {max(times[name]):.1f})  {1000 / median:5.1f} photos/s per core  "
            f"peak RSS +{peaks[name]:.1f} MB per photo\n"
        )
    ratio = medians["process_photo"] / medians["lean Pillow"]
    fastest = min(times["process_photo"]) / min(times["lean Pillow"])
    out(f"  process_photo / lean Pillow: {ratio:.2f} (medians), {fastest:.2f} (minimums)\n")
    added = peaks["process_photo"]
    out(
        f"\ntarget: process_photo / lean Pillow {ratio:.2f}, wanted <= {MAX_RATIO:.2f}: "
        f"{'pass' if ratio <= MAX_RATIO else 'FAIL'}\n"
        f"target: peak RSS per photo at once {added:.1f} MB, wanted <= {MAX_MB_PER_PHOTO} MB: "
        f"{'pass' if added <= MAX_MB_PER_PHOTO else 'FAIL'}\n"
    )
    out("\ndisplay copy (2016x1512) encoded, best of 3:\n")
    out("".join(f"{line}\n" for line in encodings(data)))
    out(f"\ntook {time.perf_counter() - started:.1f} s\n")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        measure_memory(sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.exit(main())
