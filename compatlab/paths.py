"""Where compatlab reads its built-in data and where a run leaves what it writes.

Two kinds of place, kept apart:

* **Built-in data, read only**, shipped inside the package: the known findings
  (``findings.toml``), the recorded real-QEMU captures (``qemu/``), the candidate
  releases (``candidates/``), the recorded binary-gate verdicts (``gate/``) and the
  report templates. A built wheel carries them under ``compatlab/corpora/`` and
  ``compatlab/report/templates/`` (pyproject's ``force-include``); a source checkout,
  and so an editable install, reads the repository's ``corpora/`` and
  ``reports/templates/``. ``$COMPATLAB_CORPORA`` names another data folder.
* **State a run writes**, under the working directory unless told otherwise: the
  runs folder (``reports/runs/``; ``check --out`` or ``$COMPATLAB_RUNS_DIR``) and the
  failure corpus (``corpora/failures/``; ``check --failures-dir`` or
  ``$COMPATLAB_FAILURES_DIR``). The same two places in a checkout, in CI and in a
  user's own folder: results show up next to where ``compatlab check`` ran, and the
  failure corpus, replayed by every later run, is the project's to keep (commit it),
  not the package's, whose folder may not even be writable.

Every resolver takes the explicit value (a command-line option) first, then the
environment variable, then the default, and reads ``environ`` (default: the
process environment) only when called. The CLI resolves each place once and passes
the :class:`~pathlib.Path` on, so a task that runs in another process, or on
another machine, never consults its own environment.

Upstream of everything: this module depends on the standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CORPORA_ENV = "COMPATLAB_CORPORA"
RUNS_ENV = "COMPATLAB_RUNS_DIR"
FAILURES_ENV = "COMPATLAB_FAILURES_DIR"

#: Defaults of the writable places, relative to the working directory.
DEFAULT_RUNS_DIR = Path("reports") / "runs"
DEFAULT_FAILURES_DIR = Path("corpora") / "failures"

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _packaged_or_checkout(packaged: Path, checkout: Path) -> Path:
    """The copy a built wheel carries, else the source checkout's folder."""
    return packaged if packaged.is_dir() else checkout


def builtin_corpora() -> Path:
    """The built-in data folder: the wheel's ``compatlab/corpora/``, else the
    checkout's ``corpora/``."""
    return _packaged_or_checkout(_PACKAGE / "corpora", _CHECKOUT / "corpora")


def templates_dir() -> Path:
    """The report templates: the wheel's ``compatlab/report/templates/``, else the
    checkout's ``reports/templates/``."""
    return _packaged_or_checkout(
        _PACKAGE / "report" / "templates", _CHECKOUT / "reports" / "templates"
    )


def _resolve(
    explicit: str | os.PathLike[str] | None,
    variable: str,
    default: Path,
    environ: Mapping[str, str] | None,
) -> Path:
    if explicit is not None and str(explicit) != "":
        return Path(explicit)
    configured = (os.environ if environ is None else environ).get(variable, "")
    return Path(configured) if configured else default


def corpora_dir(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The read-only data folder: ``explicit``, else ``$COMPATLAB_CORPORA``, else
    :func:`builtin_corpora`."""
    return _resolve(explicit, CORPORA_ENV, builtin_corpora(), environ)


def findings_file(corpora: Path | None = None) -> Path:
    """The known findings in ``corpora`` (default: :func:`corpora_dir`)."""
    return (corpora if corpora is not None else corpora_dir()) / "findings.toml"


def captures_dir(corpora: Path | None = None) -> Path:
    """The recorded real-QEMU captures in ``corpora`` (default: :func:`corpora_dir`)."""
    return (corpora if corpora is not None else corpora_dir()) / "qemu"


def runs_dir(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """Where runs are kept: ``explicit``, else ``$COMPATLAB_RUNS_DIR``, else
    ``reports/runs`` under the working directory."""
    return _resolve(explicit, RUNS_ENV, DEFAULT_RUNS_DIR, environ)


def failures_dir(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The failure corpus: ``explicit``, else ``$COMPATLAB_FAILURES_DIR``, else
    ``corpora/failures`` under the working directory."""
    return _resolve(explicit, FAILURES_ENV, DEFAULT_FAILURES_DIR, environ)


def unwritable(path: str | os.PathLike[str], *, folder: bool = True) -> str | None:
    """Why compatlab could not write ``path`` — a folder it creates if need be, or
    with ``folder=False`` a file it creates or replaces — or None when it can.

    Only looks, and creates nothing: a command checks its output places this way
    before any work starts, so that a run never ends unable to keep its results.
    """
    p = Path(os.path.abspath(path))
    try:
        if p.exists():
            if p.is_dir() != folder:
                return "is a folder, not a file" if p.is_dir() else "is not a folder"
            mode = os.W_OK | (os.X_OK if folder else 0)
            return None if os.access(p, mode) else "is not writable"
        parent = p.parent
        while not parent.exists() and not parent.is_symlink():
            parent = parent.parent
        if not parent.is_dir():
            return f"{parent} is not a folder"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot be created: {parent} is not writable"
    except OSError as exc:
        return f"cannot be checked: {exc.strerror or exc}"
    return None
