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

JSON and TOML documents are parsed by :func:`loads_json` and :func:`loads_toml`
(or read and parsed by :func:`read_json` and :func:`read_toml`): a malformed
document, one nested deeper than :data:`MAX_NESTING` levels, an integer too long
to convert or a string that is not Unicode text (a lone surrogate, which JSON's
``\\ud800`` escapes can make) is one error naming the file. The check walks the
parsed document without recursion, so it costs time linear in the document.

The errors are :class:`~compatlab.errors.InputError` (exit 2). ``error`` lets a
caller raise its own subclass (``ConfigError``, ``HintsFormatError``, …) so that
its messages and handlers stay as they are.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compatlab.errors import InputError

#: The default cap on one input file: far above any real config, candidate file,
#: findings file or run record, far below what would hurt.
MAX_INPUT_BYTES = 16 * 1024 * 1024

#: The deepest nesting of tables and lists a JSON or TOML input may have. The
#: deepest real document (a candidate's ``types.T.properties.P.variants`` list of
#: tables) nests six levels; 32 leaves room and stays far below the depth at which
#: the parsers themselves recurse too deep.
MAX_NESTING = 32


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
            raise error(f"{p}: is {_kind(info.st_mode)}, not {_a(what)}")
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


def kind_of(value: object) -> str:
    """What a JSON/TOML value is, as error messages say it: "a table", "a list", …"""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return "null" if value is None else f"a {type(value).__name__}"


def check_document(
    data: Any, source: str, *, what: str, error: type[InputError], nesting: int = MAX_NESTING
) -> Any:
    """``data`` (a parsed JSON/TOML document) if it nests at most ``nesting`` levels
    and holds only strings that are Unicode text; walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, source, what, error)
        elif isinstance(value, dict | list):
            if depth >= nesting:
                raise _bad(source, what, f"nests deeper than {nesting} levels", error)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, source, what, error)
                stack.append((item, depth + 1))
    return data


def _check_text(text: str, source: str, what: str, error: type[InputError]) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _bad(
                source,
                what,
                f"a string that is not Unicode text: a lone surrogate at character {exc.start}",
                error,
            ) from None


def _a(what: str) -> str:
    return f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"


def _bad(source: str, what: str, reason: str, error: type[InputError]) -> InputError:
    """ "SOURCE: not a WHAT (REASON)", the one form of every content error."""
    return error(f"{source}: not {_a(what)} ({reason})")


def _too_deep(source: str, what: str, error: type[InputError]) -> InputError:
    return _bad(source, what, f"nests deeper than {MAX_NESTING} levels", error)


def _too_long(source: str, what: str, error: type[InputError]) -> InputError:
    digits = sys.get_int_max_str_digits() or "thousands of"
    return _bad(source, what, f"an integer of more than {digits} digits", error)


def loads_json(
    text: str, source: str, *, what: str = "input file", error: type[InputError] = InputFileError
) -> Any:
    """The JSON document ``text`` (``source`` names it in errors), checked by
    :func:`check_document`."""
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise _bad(source, what, f"not valid JSON: {where}: {exc.msg}", error) from None
    except RecursionError:
        raise _too_deep(source, what, error) from None
    except ValueError:  # the only other one json raises: an integer past the digit limit
        raise _too_long(source, what, error) from None
    return check_document(data, source, what=what, error=error)


# TOML's strings and comments, which may hold anything: multi-line basic and literal
# strings first, then one-line ones, then comments. _dotted_too_deep masks each to
# "s": a quoted key part stays a part, and no chain runs on past a comment's newline.
# Possessive runs, so that an unterminated string costs one linear scan.
_TOML_OPAQUE = (
    r'"""(?:[^"\\]++|\\[\s\S]|"(?!""))*+"""'
    r"|'''(?:[^']++|'(?!''))*+'''"
    r'|"(?:[^"\\\n]++|\\.)*+"'
    r"|'[^'\n]*+'"
    r"|#[^\n]*+"
)
# More than MAX_NESTING dotted parts of a key (bare, or quoted and masked to "s").
# Parts start where a bare key can (the look-behind) and are taken whole (possessive),
# so the search is linear in the text.
_TOML_DOTTED = rf"(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]++[ \t]*+\.[ \t]*+){{{MAX_NESTING}}}"


def _dotted_too_deep(text: str) -> bool:
    """Does ``text`` hold a dotted TOML key of more than :data:`MAX_NESTING` parts?

    Such a key nests deeper than the cap allows, and tomllib's time grows with the
    square of a key's length (10 000 parts take seconds), so it is refused before
    tomllib sees it. Outside strings and comments a chain of that many dots can only
    be a key: no TOML value holds more than one dot.
    """
    import re

    if text.count(".") < MAX_NESTING:
        return False
    masked = re.sub(_TOML_OPAQUE, "s", text)
    return re.search(_TOML_DOTTED, masked) is not None


def loads_toml(
    text: str, source: str, *, what: str = "input file", error: type[InputError] = InputFileError
) -> Any:
    """The TOML document ``text`` (``source`` names it in errors), checked by
    :func:`check_document`; a dotted key deeper than the cap is refused before it
    is parsed (:func:`_dotted_too_deep`)."""
    import tomllib

    if _dotted_too_deep(text):
        raise _too_deep(source, what, error)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(source, what, f"not valid TOML: {exc}", error) from None
    except RecursionError:
        raise _too_deep(source, what, error) from None
    except ValueError:  # an integer past the digit limit
        raise _too_long(source, what, error) from None
    return check_document(data, source, what=what, error=error)


def _read_document(
    loads: Callable[..., Any], path: str | Path, what: str, limit: int, error: type[InputError]
) -> Any:
    text = read_text(path, what=what, limit=limit, error=error)
    return loads(text, str(path), what=what, error=error)


def read_json(
    path: str | Path,
    *,
    what: str = "input file",
    limit: int = MAX_INPUT_BYTES,
    error: type[InputError] = InputFileError,
) -> Any:
    """The JSON document in the regular file ``path``, read by :func:`read_text` and
    parsed by :func:`loads_json`."""
    return _read_document(loads_json, path, what, limit, error)


def read_toml(
    path: str | Path,
    *,
    what: str = "input file",
    limit: int = MAX_INPUT_BYTES,
    error: type[InputError] = InputFileError,
) -> Any:
    """The TOML document in the regular file ``path``, read by :func:`read_text` and
    parsed by :func:`loads_toml`."""
    return _read_document(loads_toml, path, what, limit, error)
