"""Interesting values of a property, by type: the one table that the capture sweep
(:mod:`compatlab.oracles.sweep`) and the Hypothesis strategies (``strategies/``) use.

A property's own ``sweep`` list in the catalogue wins over the table. Otherwise a
type with few values gives all of them and an integer gives a spread of numbers
within its bounds; the edge values (an integer's maximum, one past it, a malformed
number, an unknown choice) are there for the sweep to ask QEMU about.
"""

from __future__ import annotations

from collections.abc import Sequence

from compatlab.catalogue.properties import PropertyDef, PropType

# Small counts and the powers of two with their neighbours, where widths, vector
# counts and queue sizes change behaviour. The captures in corpora/qemu were taken
# with exactly these: changing them changes the standard capture sweep.
CAPTURE_SPREAD: tuple[int, ...] = (
    0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 32, 33, 64, 65, 128, 255, 256, 2048, 2049,
)  # fmt: skip

# The integers the invariant suite (strategies/suite.py) tries on a property. The
# gate draws its configs from them, so at a fixed seed changing them changes what
# the suite and the gate find.
SUITE_SPREAD: tuple[int, ...] = (0, 1, 2, 3, 4, 8, 16, 31, 32, 64, 128, 256, 1024, 2048)

_CHOICES: dict[str, tuple[str, ...]] = {
    "bool": ("on", "off"),
    "onoffauto": ("on", "off", "auto"),
}


def choices(t: PropType) -> tuple[str, ...]:
    """Every value of a type with few values (bool, on/off/auto, enum); () for others."""
    if t.kind == "enum":
        return t.choices
    return _CHOICES.get(t.kind, ())


def valid_values(t: PropType, spread: Sequence[int] = CAPTURE_SPREAD) -> list[str]:
    """Values of type ``t`` worth trying: its :func:`choices`, or for an integer the
    numbers of ``spread`` within its bounds; [] for free-form types."""
    if t.kind == "enum" or t.kind in _CHOICES:
        return list(choices(t))
    if t.bounds is None:
        return []
    low, high = t.bounds
    return [str(v) for v in spread if low <= v <= high]


def edge_values(t: PropType) -> list[str]:
    """Values of type ``t`` at and past its edge: for an integer its maximum, one past
    it and a malformed number; for an enum an unknown choice. All but the maximum are
    refused."""
    if t.kind == "enum":
        return ["bogus"]
    if t.bounds is None:
        return []
    high = t.bounds[1]
    return [str(high), str(high + 1), "x"]


def property_values(
    prop: PropertyDef, spread: Sequence[int] = CAPTURE_SPREAD, *, edges: bool = True
) -> list[str]:
    """Values worth trying for one property, in order and without repeats: its
    catalogue ``sweep`` list (valid and refused values), else the :func:`valid_values`
    of its type over ``spread`` and, with ``edges``, its :func:`edge_values`."""
    if prop.sweep:
        return list(prop.sweep)
    values = valid_values(prop.type, spread)
    if edges:
        values += edge_values(prop.type)
    return list(dict.fromkeys(values))
