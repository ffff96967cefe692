"""Gigaset pro: N510 IP PRO, the N610/N670/N870 IP PRO DECT systems and the Snom-based P82x desk phones.

Facts (shared/reference/vendors.md section 7; Gigaset pro wiki, checked with the search tool):

- N510 IP PRO with option 66 fetches ``<MAC>.xml``, MAC UPPERCASE
  (https://teamwork.gigaset.com/gigawiki/plugins/viewsource/viewpagesrc.action?pageId=785974523).
  Its profile is a ``<ProviderFrame><Provider>`` file: MAC_ADDRESS, VERSION (DDMMYYHHMM),
  PROFILE_NAME, I_PHONE_SYSTEM and per account ``B_SIP_ACCOUNT_IS_ACTIVE_n``, ``S_SIP_LOGIN_ID_n``,
  ``S_SIP_PASSWORD_n``, ``S_SIP_USER_ID_n``, ``S_SIP_DISPLAYNAME_n``, ``S_SIP_DOMAIN_n``,
  ``S_SIP_SERVER_n``, ``I_SIP_SERVER_PORT_n``, ``S_SIP_REGISTRAR_n`` ("The XML provisioning file",
  https://teamwork.gigaset.com/gigawiki/display/GPPPO/The+XML+provisioning+file). "If [MAC or
  VERSION are] not correct, no settings will be changed".
- N610/N670/N870 IP PRO fetch what their URL template (``%MACD.xml``) gives: ``<MAC>.xml``
  (uppercase, inferred from the wiki's example). Format ``<provisioning version="1.1"
  productID="e2"><nvm><param name=... value=.../></nvm></provisioning>`` (wiki, "SIP multicast",
  https://teamwork.gigaset.com/gigawiki/plugins/viewsource/viewpagesrc.action?pageId=1049428309).
  The parameter names below (SipProvider.N.*, SipAccount.<handset>.*, DmGlobal.0.NtpServer /
  TimeZone, the ``add_hs`` operation) are the ones Wazo's Nx70 plugin writes: NOT verified against
  the Gigaset wiki, which the search tool could not reach for them.
  Every line of the device is one handset's own SIP account (handset N = line N).
- P82x desk phones are Snom-based: DHCP option 114 with a directory gives ``GigasetP82x.htm``,
  ``GigasetP82x-<MAC>.htm`` and ``GigasetP82x-firmware.htm`` (pro-wiki "Server URL/DHCP",
  https://pro-wiki.gigaset.com/bin/view/GPPPO/Products/Desktop%20IP%20PRO/FAQ%20Desktop/FAQ%20Desktop%20-%20%20Auto%20Provisioning%20Whitepaper/Server%20URL/DHCP/),
  in Snom's XML format (``<settings><phone-settings>``, ``user_name idx``... "Configuration files",
  https://teamwork.gigaset.com/gigawiki/x/jIdYWg), with Snom's provisioning polling
  (https://teamwork.gigaset.com/gigawiki/display/GPPPO/Provisioning+polling) and ``<tbook>``
  directory ("Local Phonebook - XML format",
  https://teamwork.gigaset.com/gigawiki/display/GPPPO/Local+Phonebook+-+XML+format).
- User-Agent (SIP and HTTP): ``Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106;7C2F80XXXXXX;Handset=250``;
  older software has no MAC (``N720-DM-PRO/70.040.00.000.000``).
- Resync ``check-sync;reboot=false``, reboot ``check-sync;reboot=true`` (the reboot needs SW >= 2.52,
  ``SystemSettings.global.CheckSyncRebootEnabled=1`` and a NOTIFY to a registered account;
  https://teamwork.gigaset.com/gigawiki/pages/viewpage.action?pageId=1348174511).
- DECT handsets have no programmable keys: any key on a DECT model is refused at import.
"""

from __future__ import annotations

import re
import zlib

from provisioning.vendors.base import (
    CommonContext,
    DeviceContext,
    FileKind,
    FileRequest,
    PhoneModel,
    UserAgentInfo,
    mac_or_none,
)
from provisioning.vendors.snom import SnomStyle

#: name, family, lines, programmable keys, kind, format of the per-device file.
_CATALOGUE = [
    ("N510", "N510", 6, 0, "dect", "providerframe"),
    ("N610", "Nx70", 20, 0, "dect", "nvm"),
    ("N670", "Nx70", 20, 0, "dect", "nvm"),
    ("N870", "Nx70", 250, 0, "dect", "nvm"),
    ("N870E", "Nx70", 250, 0, "dect", "nvm"),
    # Snom-based desk phone; 12 identities and 12 function keys are assumed (unverified).
    ("P82x", "Desktop", 12, 12, "desk", "snom"),
]

MODELS: dict[str, PhoneModel] = {
    name: PhoneModel("gigaset", name, family, lines, keys, None,
                     common_file=f"Gigaset{name}.htm" if kind == "desk" else None, kind=kind)
    for name, family, lines, keys, kind, _ in _CATALOGUE
}
#: An unknown Gigaset is most likely a newer DECT system of the Nx70 kind.
MODELS["generic"] = PhoneModel("gigaset", "generic", "generic", lines=6, line_keys=0, kind="dect", generic=True)
FORMATS = {name: fmt for name, _, _, _, _, fmt in _CATALOGUE} | {"generic": "nvm"}

# "Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106;7C2F80123456;Handset=250", "N720-DM-PRO/70.040.00.000.000"
_UA_DECT = re.compile(
    r"^(?:Gigaset[\s_-]+)?(?P<model>[A-Z]\d{3}[A-Z]?)(?P<suffix>(?:[\s-](?:IP|DM|PRO))*)/(?P<firmware>[^;\s]+)"
    r"(?:;(?P<mac>[0-9A-Fa-f]{12}))?(?P<rest>;.*)?\Z")
# P82x: Snom's format with the Gigaset name, e.g. "Mozilla/4.0 (compatible; GigasetP82x-SIP 10.1.54 ... MAC)".
_UA_DESK = re.compile(r"\bGigaset[\s_-]?(?P<model>P\d{2}[0-9Xx])(?:[-/]SIP)?[\s/](?P<firmware>\d+(?:\.\d+)+)(?P<rest>.*)$",
                      re.IGNORECASE)
_UA_MAC = re.compile(r"\b(?P<mac>[0-9A-F]{12})\b")

_MAC_UPPER = r"(?P<mac>[0-9A-F]{12})"
_COMMON_CONTAINER = re.compile(r"^Gigaset(?P<model>[A-Za-z0-9]+)\.htm\Z")
_COMMON_SETTINGS = re.compile(r"^Gigaset(?P<model>[A-Za-z0-9]+)\.xml\Z")
_DEVICE_CONTAINER = re.compile(rf"^Gigaset(?P<model>[A-Za-z0-9]+)-{_MAC_UPPER}\.htm\Z")
_DEVICE_SETTINGS = re.compile(rf"^{_MAC_UPPER}\.xml\Z")
_DEVICE_TBOOK = re.compile(rf"^Gigaset-{_MAC_UPPER}-tbook\.xml\Z")

#: SipProvider.N.TransportProtocol values (unverified).
_TRANSPORT = {"udp": "1", "tcp": "2", "tls": "3"}


def _model_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def profile_version(body: str) -> str:
    """A DDMMYYHHMM stamp that changes whenever the N510 profile does (same content, same stamp)."""
    h = zlib.crc32(body.encode())
    day, h = 1 + h % 28, h // 28
    month, h = 1 + h % 12, h // 12
    year, h = 20 + h % 80, h // 80
    hour, h = h % 24, h // 24
    minute = h % 60
    return f"{day:02d}{month:02d}{year:02d}{hour:02d}{minute:02d}"


class Gigaset(SnomStyle):
    name = "gigaset"
    display_name = "Gigaset"
    ouis = frozenset({"7c2f80", "002104", "589ec6", "14b370"})
    models = MODELS
    resync_event = "check-sync;reboot=false"
    reboot_event = "check-sync;reboot=true"

    def find_model(self, name: str | None) -> PhoneModel | None:
        """``N870 IP PRO``, ``N720-DM-PRO``, ``P820`` and ``P82x`` spellings too."""
        if not name:
            return None
        key = re.sub(r"(ippro|dmpro|pro)$", "", _model_key(name.removeprefix("Gigaset").strip()))
        if re.fullmatch(r"p82[0-9x]", key):
            key = "p82x"
        for model in self.models.values():
            if _model_key(model.name) == key:
                return model
        return None

    # -- identification ------------------------------------------------------------------------
    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        text = user_agent.strip()
        if match := _UA_DESK.search(text):
            model = self.find_model(match["model"])
            mac = next((m for c in _UA_MAC.finditer(match["rest"]) if (m := mac_or_none(c["mac"]))), None)
            return UserAgentInfo(self.name, model.name if model else match["model"], match["firmware"], mac)
        match = _UA_DECT.match(text)
        if match and (text.startswith("Gigaset") or "PRO" in match["suffix"]):
            model = self.find_model(match["model"])
            return UserAgentInfo(self.name, model.name if model else match["model"], match["firmware"],
                                 mac_or_none(match["mac"]))
        if text.lower().startswith("gigaset"):
            return UserAgentInfo(vendor=self.name)
        return None

    def match_path(self, filename: str) -> FileRequest | None:
        if match := _COMMON_CONTAINER.match(filename) or _COMMON_SETTINGS.match(filename):
            model = self.find_model(match["model"])
            return FileRequest(self.name, FileKind.common, filename, model=model.name if model else None)
        if match := _DEVICE_CONTAINER.match(filename):
            mac = mac_or_none(match["mac"])
            model = self.find_model(match["model"])
            return FileRequest(self.name, FileKind.device, filename, mac=mac,
                               model=model.name if model else None) if mac else None
        if match := _DEVICE_SETTINGS.match(filename) or _DEVICE_TBOOK.match(filename):
            mac = mac_or_none(match["mac"])
            return FileRequest(self.name, FileKind.device, filename, mac=mac) if mac else None
        return None

    # -- rendering -----------------------------------------------------------------------------
    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        raw_model = (_COMMON_CONTAINER.match(request.name) or _COMMON_SETTINGS.match(request.name))["model"]
        model = self.find_model(raw_model)
        if model is not None and model.kind != "desk":
            return None
        if request.name.endswith(".htm"):
            return templates.render("snom/container.htm.j2", files=[f"Gigaset{raw_model}.xml"])
        return templates.render("snom/common.xml.j2", vendor_name="Gigaset", model_name=raw_model,
                                **self._common_values(ctx))

    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        mac = ctx.mac.upper()
        fmt = FORMATS.get(ctx.model.name, "nvm")
        if fmt == "snom":
            if request.name.endswith(".htm"):
                return templates.render("snom/container.htm.j2", files=[f"{mac}.xml", f"Gigaset-{mac}-tbook.xml"])
            if request.name == f"{mac}.xml":
                return templates.render("snom/device.xml.j2", **self._device_values(ctx))
            if request.name == f"Gigaset-{mac}-tbook.xml":
                return templates.render("snom/tbook.xml.j2", contacts=ctx.contacts)
            return None
        if request.name != f"{mac}.xml":
            return None
        if fmt == "providerframe":
            values = {"ctx": ctx, "mac_upper": mac, "lines": ctx.lines}
            body = templates.render("gigaset/n510.xml.j2", version="{version}", **values).decode()
            return templates.render("gigaset/n510.xml.j2", version=profile_version(body), **values)
        return templates.render("gigaset/nx70.xml.j2", ctx=ctx, mac_upper=mac, lines=ctx.lines,
                                transport=_TRANSPORT)


plugin = Gigaset()
