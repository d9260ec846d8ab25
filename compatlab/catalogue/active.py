"""The catalogue in use: the built-in one, or a candidate the gate activates.

Resolution, realization, the strategies and the invariants all ask
:func:`active_catalogue` (and :func:`compatlab.versions.known_version` asks for the
active version list), so running the whole suite against a candidate catalogue is
one ``with using_catalogue(candidate):`` block, without threading a parameter
through every check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from compatlab.catalogue.loader import builtin_catalogue
from compatlab.catalogue.model import Catalogue
from compatlab.versions import using_versions

_ACTIVE: ContextVar[Catalogue | None] = ContextVar("compatlab_catalogue", default=None)


def active_catalogue() -> Catalogue:
    """The catalogue in use (the built-in one unless a block activated another)."""
    return _ACTIVE.get() or builtin_catalogue()


@contextmanager
def using_catalogue(catalogue: Catalogue) -> Iterator[Catalogue]:
    """Make ``catalogue`` and its versions the ones in use inside the block."""
    with using_versions(catalogue.versions):
        token = _ACTIVE.set(catalogue)
        try:
            yield catalogue
        finally:
            _ACTIVE.reset(token)
