"""The vendor plugins: every module in this package that defines ``plugin`` is one.

Adding a vendor is adding a module (plus its templates); nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil

from provisioning.vendors.base import PhoneModel, VendorPlugin


def _discover() -> tuple[VendorPlugin, ...]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base" or info.name.startswith("_"):
            continue
        plugin = getattr(importlib.import_module(f"{__name__}.{info.name}"), "plugin", None)
        if isinstance(plugin, VendorPlugin):
            found.append(plugin)
    return tuple(found)


PLUGINS: tuple[VendorPlugin, ...] = _discover()
BY_NAME: dict[str, VendorPlugin] = {p.name: p for p in PLUGINS}


def vendor_for_mac(mac: str) -> VendorPlugin | None:
    """The vendor whose OUI the MAC carries, if it is one we know."""
    for plugin in PLUGINS:
        if plugin.owns_mac(mac):
            return plugin
    return None


def find_model(vendor: str | None, model: str | None) -> PhoneModel | None:
    """Catalogue entry for a (vendor, model) pair as stored on a device; None when unknown."""
    plugin = BY_NAME.get(vendor or "")
    return plugin.find_model(model) if plugin else None
