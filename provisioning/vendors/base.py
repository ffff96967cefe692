"""The vendor plugin interface, the model catalogue types and the vendor-neutral render context.

A vendor plugin knows how its devices ask (User-Agent, file names, MAC case), what its models
have (the catalogue: data, not code), and how to write the neutral model in its format. It never
touches the database: the render context is a plain snapshot built by provisioning.render.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from provisioning.mac import MacError, normalize_mac


@dataclass(frozen=True)
class ExpansionModule:
    name: str
    keys: int          # programmable keys per module (all pages)
    max_modules: int


@dataclass(frozen=True)
class PhoneModel:
    """One catalogue entry. ``common_file`` is the per-model file the vendor requests, if any."""

    vendor: str
    name: str
    family: str
    lines: int
    line_keys: int
    expansion: ExpansionModule | None = None
    common_file: str | None = None
    kind: str = "desk"  # desk | dect | ata
    generic: bool = False

    def key_capacity(self, module: int) -> int:
        if module == 0:
            return self.line_keys
        if self.expansion and 1 <= module <= self.expansion.max_modules:
            return self.expansion.keys
        return 0


@dataclass(frozen=True)
class UserAgentInfo:
    """What a request's User-Agent says about the device (any field may be unknown)."""

    vendor: str
    model: str | None = None
    firmware: str | None = None
    mac: str | None = None


class FileKind(enum.StrEnum):
    device = "device"  # belongs to one device; may carry its SIP secrets
    common = "common"  # shared by every device of a vendor or model; never carries secrets
    upload = "upload"  # written by the device (local settings, logs); read back only by it


@dataclass(frozen=True)
class FileRequest:
    """A requested file name, recognised by a vendor plugin."""

    vendor: str
    kind: FileKind
    #: canonical name used as cache key, e.g. ``805ec0aabb01.cfg`` or ``y000000000066.cfg``
    name: str
    mac: str | None = None
    #: the catalogue model the name implies (per-model common files), if any
    model: str | None = None


# ---------------------------------------------------------------------------------------------
# Render context: a read-only snapshot of what a device's files say.


@dataclass(frozen=True)
class LineContext:
    index: int
    label: str
    display_name: str
    user_name: str      # SIP user part the line registers (the user's number or extension)
    auth_username: str
    password: str
    registrar: str
    port: int
    transport: str      # udp | tcp | tls
    outbound_proxy: str | None
    voicemail_number: str


@dataclass(frozen=True)
class KeyContext:
    module: int
    slot: int
    type: str           # a provisioning.model.KeyType value
    value: str          # what the key dials / watches: extension, number, orbit or digits
    label: str
    line_index: int
    pickup_code: str    # directed pickup prefix for BLF keys


@dataclass(frozen=True)
class ContactContext:
    name: str
    number: str
    mobile: str | None = None
    company: str | None = None


@dataclass(frozen=True)
class CommonContext:
    """What every file may use: platform settings, no tenant data, no secrets."""

    provisioning_url: str
    ntp_server: str
    timezone: str
    language: str
    resync_minutes: int


@dataclass(frozen=True)
class DeviceContext(CommonContext):
    mac: str = ""
    model: PhoneModel | None = None
    organization: str = ""
    lines: Sequence[LineContext] = ()
    keys: Sequence[KeyContext] = ()
    #: The organisation's external contacts granted to any user on the device's lines.
    contacts: Sequence[ContactContext] = ()
    vlan: int | None = None
    admin_password: str = ""
    #: The device's config-encryption key when its files are to be encrypted (provisioning/
    #: config_crypto.py), else ""; written into its secret-bearing file the vendor's way.
    config_key: str = ""
    #: The device has been served its key: its encryptable files now go out encrypted.
    config_key_delivered: bool = False
    #: the device's own HTTP digest credentials for fetching its files (provisioning/device_auth.py)
    provisioning_username: str = ""
    provisioning_password: str = ""


# ---------------------------------------------------------------------------------------------


class VendorPlugin(ABC):
    """Base for vendor plugins; subclasses set the class attributes and implement the hooks."""

    name: str
    display_name: str
    ouis: frozenset[str]
    models: Mapping[str, PhoneModel]
    #: neutral key type -> the vendor's code; a type missing here is not supported
    key_codes: Mapping[str, str]
    resync_event: str = "check-sync"
    reboot_event: str = "check-sync;reboot=true"

    # -- identification ------------------------------------------------------------------------
    @abstractmethod
    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        """The device's identity if the User-Agent is one of this vendor's."""

    @abstractmethod
    def match_path(self, filename: str) -> FileRequest | None:
        """The file request if the name is one this vendor's devices ask for."""

    def owns_mac(self, mac: str) -> bool:
        return mac[:6] in self.ouis

    def find_model(self, name: str | None) -> PhoneModel | None:
        """Catalogue lookup tolerant of the spellings devices use (``SIP-T46S``, ``t46s``)."""
        if not name:
            return None
        wanted = _model_key(name)
        for model in self.models.values():
            if _model_key(model.name) == wanted:
                return model
        return None

    def pnp_url(self, provisioning_url: str, mac: str | None = None) -> str:
        """The URL a SIP plug-and-play NOTIFY gives this vendor's phones: the provisioning folder
        (with its trailing slash, which Grandstream insists on); the phone asks for its files there."""
        return provisioning_url.rstrip("/") + "/"

    def generic_model(self) -> PhoneModel:
        for model in self.models.values():
            if model.generic:
                return model
        raise LookupError(f"{self.name} has no generic profile")

    # -- rendering -----------------------------------------------------------------------------
    @abstractmethod
    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        """A shared file (no secrets), or None when this vendor does not serve that name."""

    @abstractmethod
    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        """One device's file, or None when the device has no such file."""

    def render_bootstrap(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        """The device's file for a request that did not prove it is the device (TFTP outside the
        organisation's secret networks): the same file with nothing secret in it -- no accounts,
        no keys, no phonebook, no admin password, no provisioning credentials -- so the device
        learns only the platform settings (server, time, language). None: 404 instead."""
        stripped = dataclasses.replace(ctx, lines=(), keys=(), contacts=(), admin_password="",
                                       provisioning_username="", provisioning_password="",
                                       config_key="", config_key_delivered=False)
        return self.render_device(request, stripped, templates)

    def content_type(self, request: FileRequest) -> str:
        return "text/plain; charset=utf-8"

    # -- config encryption (provisioning/config_crypto.py) ---------------------------------------
    def config_cipher(self, model: PhoneModel):
        """The vendor's config-file encryption for this model, or None (files stay plain)."""
        return None

    def encrypts(self, request: FileRequest, ctx: DeviceContext) -> bool:
        """Whether this device file is one the vendor encrypts (it also carries the key)."""
        return False

    # -- keys ----------------------------------------------------------------------------------
    def validate_keys(self, model: PhoneModel, keys: Iterable[tuple[int, int, str]]) -> list[str]:
        """Problems with (module, slot, type) triples on this model; empty when all fit."""
        problems = []
        for module, slot, key_type in keys:
            capacity = model.key_capacity(module)
            where = f"key {slot}" if module == 0 else f"expansion module {module} key {slot}"
            if capacity == 0:
                problems.append(f"{self.display_name} {model.name} has no programmable keys" if module == 0
                                else f"{self.display_name} {model.name} has no expansion module {module}")
            elif not 1 <= slot <= capacity:
                problems.append(f"{where}: {self.display_name} {model.name} has keys 1-{capacity} there")
            if key_type not in self.key_codes:
                problems.append(f"{where}: {self.display_name} phones have no {key_type} key")
        return problems


def jittered_minutes(mac: str, minutes: int) -> int:
    """A device's resync polling interval: within +-10 % of ``minutes``, stable per MAC, so a
    fleet restarted together does not poll in step."""
    spread = max(1, minutes // 10)
    return max(5, minutes - spread + zlib.crc32(mac.encode()) % (2 * spread + 1))


def _model_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower().removeprefix("sip-"))


def mac_or_none(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return normalize_mac(text)
    except MacError:
        return None
