"""The report templates in ``reports/templates/``, filled with :class:`string.Template`."""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

from compatlab.errors import ConfigError

# A checkout (and an editable install) reads reports/templates/; a built wheel
# carries a copy inside the package (pyproject's force-include).
_PACKAGED = Path(__file__).resolve().parent / "templates"
TEMPLATES_DIR = (
    _PACKAGED
    if _PACKAGED.is_dir()
    else Path(__file__).resolve().parents[2] / "reports" / "templates"
)


@cache
def _template(name: str) -> string.Template:
    path = TEMPLATES_DIR / name
    try:
        return string.Template(path.read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError(
            f"report template {path} not found (run from a compatlab checkout)"
        ) from None


def raw(name: str) -> str:
    """A template file's text as is (the stylesheet)."""
    return _template(name).template


def render(name: str, **values: object) -> str:
    """Fill template ``name``; a placeholder without a value is a defect, so it raises."""
    return _template(name).substitute({k: str(v) for k, v in values.items()})
