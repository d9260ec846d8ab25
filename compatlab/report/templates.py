"""The report templates (:func:`compatlab.paths.templates_dir`), filled with
:class:`string.Template`."""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

from compatlab.errors import ConfigError
from compatlab.paths import templates_dir

TEMPLATES_DIR: Path = templates_dir()


@cache
def _template(name: str) -> string.Template:
    path = TEMPLATES_DIR / name
    try:
        return string.Template(path.read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError(
            f"report template {path} not found (an incomplete install: reinstall compatlab)"
        ) from None


def raw(name: str) -> str:
    """A template file's text as is (the stylesheet)."""
    return _template(name).template


def render(name: str, **values: object) -> str:
    """Fill template ``name``; a placeholder without a value is a defect, so it raises."""
    return _template(name).substitute({k: str(v) for k, v in values.items()})
