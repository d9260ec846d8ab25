"""Reading files a user hands compatlab: regular files only, and bounded.

Every file compatlab reads from a user (configs, hints, candidate files, findings,
corpus entries, run folders) goes through :func:`read_bytes` or :func:`read_text`:

- a path that is not a regular file (a FIFO, a device such as ``/dev/zero``, a
  directory, a socket) is refused at once, before anything is read from it: the
  file is opened without blocking and checked with ``fstat`` on the open
  descriptor, so a FIFO never blocks and a path swapped between the check and the
  read cannot slip through;
- at most ``limit`` bytes are read (:data:`MAX_INPUT_BYTES` unless the format
  has its own cap); a larger file is refused, not truncated;
- a symlink loop, a missing or unreadable file is one :class:`InputFileError`
  naming the path, never a traceback.

The errors are :class:`~compatlab.errors.InputError` (exit 2). ``error`` lets a
caller raise its own subclass (``ConfigError``, ``HintsFormatError``, …) so that
its messages and handlers stay as they are.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from compatlab.errors import InputError

#: The default cap on one input file: far above any real config, candidate file,
#: findings file or run record, far below what would hurt.
MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputFileError(InputError):
    """A file that cannot be read as input: not a regular file, too large, missing,
    unreadable, or not text."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _size(n: int) -> str:
    return (
        f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 and n % (1024 * 1024) == 0 else f"{n} bytes"
    )


def read_bytes(
    path: str | Path,
    *,
    what: str = "input file",
    limit: int = MAX_INPUT_BYTES,
    error: type[InputError] = InputFileError,
) -> bytes:
    """The bytes of the regular file ``path`` (``what`` names it in errors), at most
    ``limit`` of them."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{p}: cannot read {what}: a symlink loop") from None
        raise error(f"{p}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{p}: is {_kind(info.st_mode)}, not a {what}")
        if info.st_size > limit:
            raise error(
                f"{p}: {what} is {info.st_size} bytes, more than the {_size(limit)} allowed"
            )
        chunks: list[bytes] = []
        left = limit + 1  # the file may grow while it is read
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise error(f"{p}: cannot read {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise error(f"{p}: {what} is more than the {_size(limit)} allowed")
    return data


def read_text(
    path: str | Path,
    *,
    what: str = "input file",
    limit: int = MAX_INPUT_BYTES,
    error: type[InputError] = InputFileError,
) -> str:
    """The UTF-8 text of the regular file ``path``, bounded as :func:`read_bytes`."""
    data = read_bytes(path, what=what, limit=limit, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None
