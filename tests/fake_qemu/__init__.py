"""Fake QEMU binaries for tests: ``fake-qemu`` beside this file, named by release
and misbehaviour (its docstring lists the modes), and a look for what they left
running."""

from __future__ import annotations

import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "fake-qemu"


def fake(folder: Path, release: str, mode: str) -> Path:
    """A fake ``qemu-system-x86_64`` of ``release`` behaving as ``mode``, in ``folder``."""
    link = folder / f"qemu-{release}-{mode}"
    if not link.exists():
        link.symlink_to(SCRIPT)
    return link


def survivors(folder: Path, wait: float = 3.0) -> list[str]:
    """Live (not zombie) processes running a fake from ``folder`` (Linux: /proc),
    once they have had ``wait`` seconds to die: a SIGKILL is delivered when its
    target next runs, which a loaded machine may delay."""
    deadline = time.monotonic() + wait
    while (found := _live(folder)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def _live(folder: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat[stat.rindex(")") + 2 :].split()[0]
        if str(folder) in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found
