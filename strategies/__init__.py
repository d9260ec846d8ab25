"""Hypothesis strategies for compatlab, all derived from the catalogue.

Nothing here keeps its own list of devices or properties: what exists, and
which values are interesting, comes from ``compatlab.catalogue``.
"""

from strategies.configs import configs, device_specs, property_values, vcpu_counts, versions
from strategies.hints import arbitrary_hints, hint_entries, hint_values, mutated_blobs

__all__ = [
    "configs",
    "device_specs",
    "property_values",
    "vcpu_counts",
    "versions",
    "arbitrary_hints",
    "hint_entries",
    "hint_values",
    "mutated_blobs",
]
