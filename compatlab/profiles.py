"""Hypothesis profiles, registered in one place.

- ``dev``: seconds, for the edit-test loop;
- ``ci``: the whole version matrix in a couple of minutes;
- ``nightly``: deep and random, saving failures to the example database;
- ``gate``: derandomized, so a release gate gives the same verdict every time;
- ``fuzz``: as long as you like, for exploratory search.

Hypothesis loads a built-in profile called ``ci`` by itself whenever a CI
environment variable is set (derandomized, no database). compatlab re-registers
``ci`` with its own settings and always loads the chosen profile explicitly, so
the profile a user picks — by ``--profile``, ``--hypothesis-profile`` or
``HYPOTHESIS_PROFILE`` — is the one that runs, in CI and out of it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from compatlab.errors import ConfigError, did_you_mean

DEFAULT_PROFILE = "dev"
DATABASE_DIR = ".hypothesis/compatlab"

_COMMON = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        # A property test may drive the gate or a check run, which search with
        # Hypothesis themselves (tests/test_gate_properties.py does on purpose).
        HealthCheck.nested_given,
    ],
}

PROFILES: dict[str, dict[str, object]] = {
    "dev": {"max_examples": 5, "database": None, **_COMMON},
    "ci": {"max_examples": 12, "database": None, "derandomize": False, **_COMMON},
    "nightly": {"max_examples": 200, **_COMMON},
    "gate": {"max_examples": 25, "database": None, "derandomize": True, **_COMMON},
    "fuzz": {
        "max_examples": 5000,
        "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        **_COMMON,
    },
}


_registered = False


def register() -> None:
    """Register every compatlab profile with Hypothesis, once per process (the
    gate loads profiles from inside running tests, where Hypothesis would warn)."""
    global _registered
    if _registered:
        return
    _registered = True
    for name, options in PROFILES.items():
        opts = dict(options)
        if "database" not in opts:
            opts["database"] = DirectoryBasedExampleDatabase(DATABASE_DIR)
        # Derive from Hypothesis' defaults, not from whatever profile is loaded (its
        # own "ci" when a CI variable is set), so each profile means the same
        # everywhere.
        settings.register_profile(
            name,
            parent=settings.get_profile("default"),
            **opts,
        )


def choose(name: str | None = None) -> str:
    """The profile to use: ``name``, else $HYPOTHESIS_PROFILE, else ``dev``."""
    chosen = name or os.environ.get("HYPOTHESIS_PROFILE") or DEFAULT_PROFILE
    if chosen not in PROFILES:
        raise ConfigError(f"unknown profile {chosen!r}{did_you_mean(chosen, PROFILES)}")
    return chosen


def load(name: str | None = None) -> str:
    """Register the profiles and load the chosen one; returns its name."""
    register()
    chosen = choose(name)
    settings.load_profile(chosen)
    return chosen
