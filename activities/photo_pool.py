"""Fans' photos are processed in a process of their own, not in the request thread.

Decoding and re-encoding a 12-megapixel JPEG takes about 130 ms of CPU, much
of it holding the GIL: in the request thread it would stall the other threads
of the gunicorn worker, the fans signing in among them. Here the request thread
hands the bytes to a photo process and waits with the GIL released.

Each gunicorn worker (each process that asks) starts its own pool on its first
photo: ``PHOTO_PROCESSES`` processes (1 by default: photos of one worker are
then done one at a time, so no fan's photos take more than one core). They are
started with "spawn", a fresh interpreter (about 0.1 s to the first answer),
which is safe in a process that already runs threads; forking one is not.
Not "forkserver": it starts no faster here for a single process, and a
forkserver outlived its SIGKILLed parent, keeping its children. A photo
process is the worker's own child and exits when it sees the worker gone.
The photo processes lower their own priority by ``PHOTO_NICE``, so that when
both cores are busy the scheduler serves the web threads first.

``PHOTO_PROCESSES=0`` processes in the calling thread (the tests).

A photo process that dies (the OOM killer) breaks the pool: every photo sent
to it is tried once more in a new pool, then PhotoUnavailable. A photo with no
result within ``PHOTO_TIMEOUT`` seconds, waiting included, is PhotoUnavailable;
a photo process busy with one photo for that long ends itself, printing where
it was stuck, and the pool is replaced. Photo processes exit with their
worker, and within PARENT_CHECK_SECONDS of its death when it is killed.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from django.conf import settings

from .photos import ProcessedPhoto, process_photo

logger = logging.getLogger(__name__)

START_METHOD = "spawn"
# How often a photo process checks that the process that started it still runs.
PARENT_CHECK_SECONDS = 1.0
# A broken pool is replaced this many times for one photo before giving up.
RETRIES = 1


class PhotoUnavailable(Exception):
    """No photo process returned the photo in time; the fan may send it again later."""


def process(
    data: bytes | Path,
    *,
    max_bytes: int,
    max_pixels: int,
    display_size: int,
    thumbnail_size: int,
) -> ProcessedPhoto:
    """Return process_photo(data, ...) computed in a photo process (or here with PHOTO_PROCESSES=0).

    data may be the path of a file holding the photo (an upload Django wrote
    to disk): the photo process reads it, so that its megabytes are neither
    held in the worker's memory nor copied through a pipe under the GIL.

    Raise PhotoRejected as process_photo does, and PhotoUnavailable when the
    photo processes failed or took longer than PHOTO_TIMEOUT.
    """
    limits = {
        "max_bytes": max_bytes,
        "max_pixels": max_pixels,
        "display_size": display_size,
        "thumbnail_size": thumbnail_size,
    }
    if settings.PHOTO_PROCESSES == 0:
        return process_photo(_bytes(data), **limits)
    seconds = settings.PHOTO_TIMEOUT
    for attempt in range(1, RETRIES + 2):
        pool = _pool()
        try:
            # RuntimeError: the pool is broken (BrokenProcessPool is one) or
            # another thread shut it down when it broke.
            future = pool.submit(_in_child, data, limits, seconds)
        except RuntimeError as error:
            _discard(pool, error, attempt)
            continue
        try:
            return future.result(timeout=seconds)
        except (BrokenProcessPool, CancelledError) as error:
            # A photo process died: every photo sent to the pool fails so.
            _discard(pool, error, attempt)
        except TimeoutError:
            # Dropped if it is still queued; a photo process busy with it for
            # PHOTO_TIMEOUT exits by itself.
            future.cancel()
            logger.warning("A photo took more than PHOTO_TIMEOUT (%s s)", seconds)
            raise PhotoUnavailable(f"no result in {seconds} s") from None
    logger.error("Photo processes failed %d times in a row: the photo is refused", RETRIES + 1)
    raise PhotoUnavailable("the photo processes keep failing")


_lock = threading.Lock()
# (pool, the pid and settings it was made for)
_current: tuple[ProcessPoolExecutor, tuple[int, int, int]] | None = None


def _pool() -> ProcessPoolExecutor:
    """Return this process's pool for the current settings, made on first use."""
    global _current
    key = (os.getpid(), settings.PHOTO_PROCESSES, settings.PHOTO_NICE)
    with _lock:
        if _current is not None and _current[1] == key:
            return _current[0]
        old, _current = _current, None
        if old is not None and old[1][0] == key[0]:
            # Settings changed (tests): let the old pool finish and go.
            old[0].shutdown(wait=False)
        pool = ProcessPoolExecutor(
            max_workers=key[1],
            mp_context=multiprocessing.get_context(START_METHOD),
            initializer=_child_started,
            initargs=(key[0], key[2]),
        )
        _current = (pool, key)
        return pool


def _discard(pool: ProcessPoolExecutor, error: BaseException, attempt: int) -> None:
    """Forget a broken pool, so that the next photo starts a new one."""
    global _current
    logger.warning("Photo processes failed (attempt %d): %r", attempt, error)
    with _lock:
        if _current is not None and _current[0] is pool:
            _current = None
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop this process's photo processes, waiting for them (tests; exit does it too)."""
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None and current[1][0] == os.getpid():
        current[0].shutdown(wait=True, cancel_futures=True)


# Run in the photo process --------------------------------------------------


def _child_started(parent: int, nice: int) -> None:
    """Lower this photo process's priority and make it exit when its parent is gone."""
    if nice:
        os.nice(nice)
    threading.Thread(target=_exit_without, args=(parent,), daemon=True).start()


def _exit_without(parent: int) -> None:
    # A worker killed by SIGKILL (the OOM killer, gunicorn's timeout) runs no
    # exit code: its photo processes would wait on the call queue for ever.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _bytes(data: bytes | Path) -> bytes:
    return data.read_bytes() if isinstance(data, Path) else data


def _in_child(data: bytes | Path, limits: dict[str, int], seconds: float) -> ProcessedPhoto:
    # faulthandler's watchdog is a C thread: it ends the process even when a
    # decoder never returns to Python, and prints where it was stuck.
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        return process_photo(_bytes(data), **limits)
    finally:
        faulthandler.cancel_dump_traceback_later()
