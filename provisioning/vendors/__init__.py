"""The vendor plugins, in the order identification tries them."""

from __future__ import annotations

from provisioning.vendors.base import VendorPlugin
from provisioning.vendors.yealink import plugin as yealink

PLUGINS: tuple[VendorPlugin, ...] = (yealink,)
BY_NAME: dict[str, VendorPlugin] = {p.name: p for p in PLUGINS}


def vendor_for_mac(mac: str) -> VendorPlugin | None:
    """The vendor whose OUI the MAC carries, if it is one we know."""
    for plugin in PLUGINS:
        if plugin.owns_mac(mac):
            return plugin
    return None


def find_model(vendor: str | None, model: str | None):
    """Catalogue entry for a (vendor, model) pair as stored on a device; None when unknown."""
    plugin = BY_NAME.get(vendor or "")
    return plugin.find_model(model) if plugin else None
