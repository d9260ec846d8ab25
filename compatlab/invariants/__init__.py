"""The invariant suite: named checks over generated inputs (DESIGN.md §3)."""

from compatlab.invariants.registry import (
    Case,
    Failure,
    Invariant,
    Scope,
    System,
    Violation,
    get,
    in_suite,
    invariant,
    registered,
)

__all__ = [
    "registered",
    "get",
    "in_suite",
    "invariant",
    "Invariant",
    "Case",
    "System",
    "Scope",
    "Failure",
    "Violation",
]
