"""The standard capture sweep of a device, derived from the catalogue.

For one device type and one QEMU binary it lists one-device configs:

- the device with its catalogue ``example`` properties on every machine type;
- every guest-visible property over a spread of values (from the property's
  ``sweep`` list in the catalogue, else from its type and range: see
  :mod:`compatlab.catalogue.values`), on the
  binary's newest, oldest and a middle machine type;
- cases QEMU should refuse: a value one past the range, a malformed value, an
  unknown property, and the type's ``refuse`` combinations.

Backend names (``drive=``, ``netdev=``, …) are made unique per config so that
configs can share one QEMU start.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from compatlab.catalogue import Catalogue
from compatlab.catalogue.values import property_values
from compatlab.config import parse_device_string
from compatlab.versions import Version


@dataclass(frozen=True, slots=True)
class SweepItem:
    machine: Version
    device: str


def _machines(machines: Sequence[Version]) -> list[Version]:
    picks = [machines[-1], machines[0], machines[len(machines) // 2]]
    return list(dict.fromkeys(picks))


def sweep(
    catalogue: Catalogue, driver: str, binary: Version, machines: Sequence[Version]
) -> Iterator[SweepItem]:
    dtype = catalogue.device(driver, binary)
    base = dtype.example or driver
    for machine in machines:
        yield SweepItem(machine, base)
    props = catalogue.properties(driver, binary)
    for prop in props.values():
        if not prop.guest_visible:
            continue
        for value in property_values(prop):
            text = f"{base},{prop.name}={value}"
            for machine in _machines(machines):
                yield SweepItem(machine, text)
    extra = [f"{base},{combo}" for combo in dtype.refuse] + [f"{base},no-such-property=1"]
    for text in extra:
        for machine in _machines(machines):
            yield SweepItem(machine, text)


def uniquify_links(
    catalogue: Catalogue, items: Sequence[SweepItem], binary: Version
) -> list[SweepItem]:
    """Give every link property (backend name) a value unique to its config."""
    out = []
    for n, item in enumerate(items):
        spec = parse_device_string(item.device)
        props = catalogue.properties(spec.driver, binary)
        parts = item.device.split(",")
        renamed = [parts[0]]
        for part in parts[1:]:
            name, eq, value = part.partition("=")
            if eq and name in props and props[name].type.kind == "link" and value:
                part = f"{name}={value}{n}"
            renamed.append(part)
        out.append(SweepItem(item.machine, ",".join(renamed)))
    return out
