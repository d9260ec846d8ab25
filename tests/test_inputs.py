"""compatlab.inputs: user files are regular files, bounded, and fail in one line."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from compatlab.errors import ConfigError, InputError
from compatlab.inputs import InputFileError, read_bytes, read_text


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
