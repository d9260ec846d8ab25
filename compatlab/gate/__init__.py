"""Release gating: is it safe to ship emulator release N?

Two gates, one question:

- :mod:`~compatlab.gate.candidate`: release N as data (a candidate file on the
  catalogue as it stood, docs/candidate-format.md), run through the run engine:
  the cross-version invariants from every older version to N, and the
  one-version ones on N itself;
- :mod:`~compatlab.gate.explain`: for each failure, the property behind it and the
  history entry that would fix it;
- :mod:`~compatlab.gate.binary`: two real QEMU binaries compared on the machine
  types both offer, device type by device type, through the run engine too (the
  ``binaries-agree`` invariant).

Candidate files themselves (parse, apply, releases as candidates) are catalogue
data and live in :mod:`compatlab.catalogue.candidate`, below the run engine,
which needs them to run a candidate's tasks anywhere.
"""

from __future__ import annotations

from compatlab.gate.binary import (
    GateVerdict,
    binary_gate,
    binary_tasks,
    compare_records,
    save_verdict,
)
from compatlab.gate.candidate import (
    CANDIDATE_INVARIANTS,
    GATE_INVARIANTS,
    CandidateVerdict,
    GateFailure,
    GateTaskError,
    broken_entries,
    candidate_gate,
    candidate_ref,
    gate_problems,
    gate_tasks,
)
from compatlab.gate.explain import Explanation, explain

__all__ = [
    "candidate_gate",
    "binary_gate",
    "CandidateVerdict",
    "GateVerdict",
    "GateFailure",
    "GateTaskError",
    "GATE_INVARIANTS",
    "CANDIDATE_INVARIANTS",
    "explain",
    "Explanation",
    "gate_tasks",
    "gate_problems",
    "broken_entries",
    "candidate_ref",
    "compare_records",
    "binary_tasks",
    "save_verdict",
]
