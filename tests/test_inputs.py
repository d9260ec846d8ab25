"""compatlab.inputs: user files are regular files, bounded, and fail in one line; JSON
and TOML documents are nested at most MAX_NESTING levels and hold only text."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from compatlab.errors import ConfigError, InputError
from compatlab.inputs import (
    MAX_NESTING,
    InputFileError,
    loads_json,
    loads_toml,
    read_bytes,
    read_text,
)


def _fifo(tmp: Path) -> Path:
    p = tmp / "fifo"
    os.mkfifo(p)
    return p


def _loop(tmp: Path) -> Path:
    (tmp / "a").symlink_to(tmp / "b")
    (tmp / "b").symlink_to(tmp / "a")
    return tmp / "a"


def _socket(tmp: Path) -> Path:
    p = tmp / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    return p


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (_fifo, "is a FIFO"),
        (lambda tmp: Path("/dev/zero"), "is a character device"),
        (lambda tmp: tmp, "is a directory"),
        (_socket, "cannot read"),  # a socket cannot even be opened
        (_loop, "a symlink loop"),
        (lambda tmp: tmp / "missing", "No such file"),
    ],
    ids=["fifo", "dev-zero", "directory", "socket", "symlink-loop", "missing"],
)
def test_what_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, make: object, says: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(InputFileError, match=says) as info:
        read_bytes(path, what="config")
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_an_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret"
    path.write_text("x")

    def denied(*args: object) -> int:  # as for a mode-0 file and a user who is not root
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(InputFileError, match=f"{path}: cannot read input file: Permission denied"):
        read_bytes(path)


def test_the_size_cap_refuses_instead_of_truncating(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 101)
    with pytest.raises(InputFileError, match="101 bytes, more than the 100 bytes allowed"):
        read_bytes(path, limit=100)
    assert read_bytes(path, limit=101) == b"x" * 101


def test_text_must_be_utf8_and_callers_choose_the_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"driver = \xff")
    with pytest.raises(ConfigError, match=r"config is not UTF-8 text \(byte 9\)"):
        read_text(path, what="config", error=ConfigError)
    path.write_text("ok = 1\n")
    assert read_text(path) == "ok = 1\n"
    assert issubclass(InputFileError, InputError)


# -- JSON and TOML documents ------------------------------------------------------------------


def test_nesting_is_capped_at_exactly_max_nesting_levels() -> None:
    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth

    assert loads_json(nested(MAX_NESTING), "x.json") is not None
    with pytest.raises(InputFileError, match=r"x\.json: not an input file \(nests deeper than 32"):
        loads_json(nested(MAX_NESTING + 1), "x.json")
    # a TOML document is a table: one level, then the dotted key's tables, then the value
    key = ".".join(["a"] * MAX_NESTING)
    assert loads_toml(f"{key} = 1\n", "x.toml") is not None
    with pytest.raises(InputFileError, match="nests deeper than 32"):
        loads_toml(f"{key}.a = 1\n", "x.toml")
    with pytest.raises(InputFileError, match="nests deeper than 32"):
        loads_toml(f"[{key}.a]\n", "x.toml")
    with pytest.raises(InputFileError, match="nests deeper than 32"):
        loads_toml("x = " + nested(MAX_NESTING), "x.toml")


def test_a_long_dotted_key_is_refused_before_tomllib_sees_it() -> None:
    """tomllib takes seconds for a key of 10 000 parts (its time grows with the square
    of the key's length); the guard takes milliseconds for a million."""
    import time

    started = time.perf_counter()
    with pytest.raises(InputFileError, match="nests deeper than 32"):
        loads_toml("a" + ".a" * 10**6 + " = 1\n", "x.toml")
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "text",
    [
        'doc = "' + "a." * 100 + '"\n',
        "doc = '" + "a." * 100 + "'\n",
        'doc = """\n' + "a." * 100 + '\n\\""" still in the string"""\n',
        "doc = '''\n" + "a." * 100 + "\n'''\n",
        "# " + "a." * 100 + "\nx = 1\n",
        '"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h" = 1\n',
    ],
    ids=["basic-string", "literal-string", "multi-line-string", "multi-line-literal",
         "comment", "quoted-key-with-dots"],
)  # fmt: skip
def test_dots_in_strings_and_comments_are_not_keys(text: str) -> None:
    assert isinstance(loads_toml(text, "x.toml"), dict)


@pytest.mark.parametrize(
    ("loads", "text", "says"),
    [
        (loads_json, '{"a": "\\ud800"}', "lone surrogate at character 0"),
        (loads_json, '{"\\udfff": 1}', "lone surrogate"),
        (loads_json, "9" * 5000, "an integer of more than 4300 digits"),
        (loads_toml, "a = " + "9" * 5000, "an integer of more than 4300 digits"),
        (loads_json, "{", "not valid JSON: line 1 column 2"),
        (loads_toml, "a = [", "not valid TOML"),
    ],
    ids=["surrogate-value", "surrogate-key", "json-huge-int", "toml-huge-int", "json", "toml"],
)
def test_what_the_parsers_refuse_is_one_line_naming_the_source(
    loads: object, text: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=r"^c\.x: not a config file") as info:
        loads(text, "c.x", what="config file", error=ConfigError)  # type: ignore[operator]
    assert says in str(info.value) and "\n" not in str(info.value)
