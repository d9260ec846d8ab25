"""Strategies for compat hints: arbitrary hint values, and blobs to attack the decoder."""

from __future__ import annotations

from typing import Literal

from hypothesis import strategies as st

from compatlab.config import MAX_VCPUS
from compatlab.hints import HintEntry, Hints, encode
from compatlab.versions import Version, active_versions

# Surrogates (category Cs) cannot be encoded.
_NO_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
_NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=_NO_SURROGATES), min_size=1, max_size=12
)

hint_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.text(st.characters(codec="utf-8", exclude_categories=_NO_SURROGATES), max_size=20),
)


def hint_entries() -> st.SearchStrategy[HintEntry]:
    """One device entry with any property names and values; shrinks towards an entry
    with one-character names and no properties."""
    return st.builds(
        HintEntry,
        identity=_NAMES,
        driver=_NAMES,
        properties=st.lists(
            st.tuples(_NAMES, hint_values), unique_by=lambda kv: kv[0], max_size=8
        ).map(tuple),
    )


def arbitrary_hints() -> st.SearchStrategy[Hints]:
    """Any well-formed hints value (not necessarily meaningful for the catalogue),
    with any vCPU count a machine takes; shrinks towards no devices from the newest
    version, with one vCPU."""
    return st.builds(
        Hints,
        version=st.sampled_from(list(reversed(active_versions())))
        | st.builds(Version, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
        entries=st.lists(hint_entries(), unique_by=lambda e: e.identity, max_size=5).map(tuple),
        vcpus=st.integers(1, MAX_VCPUS),
    )


@st.composite
def mutated_blobs(draw: st.DrawFn) -> bytes:
    """A valid blob with bytes flipped, cut, inserted or overwritten; shrinks towards the
    unmodified blob of empty hints."""
    blob = bytearray(encode(draw(arbitrary_hints())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "overwrite"]))
        pos = draw(st.integers(0, max(len(blob) - 1, 0)))
        if op == "flip" and blob:
            blob[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del blob[pos:]
        elif op == "insert":
            blob[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif blob:
            blob[pos] = draw(st.integers(0, 255))
    return bytes(blob)
