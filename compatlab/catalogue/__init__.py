"""The device catalogue: types, property history as data, and config-space builders."""

from compatlab.catalogue.active import active_catalogue, using_catalogue
from compatlab.catalogue.loader import builtin_catalogue
from compatlab.catalogue.model import Catalogue, CompatEntry, DeviceType

__all__ = [
    "Catalogue",
    "CompatEntry",
    "DeviceType",
    "active_catalogue",
    "builtin_catalogue",
    "using_catalogue",
]
