"""Gigaset pro profile for the simulator: N510 IP PRO, N610/N670/N870 IP PRO DECT systems, P82x desk phones.

Follows ``shared/reference/vendors.md`` section 7 and the Gigaset pro wiki:

* User-Agent (SIP and HTTP) ``Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106;7C2F80XXXXXX;Handset=250``:
  the MAC (uppercase) is there on current software (2.2x, inferred threshold 2.20), the handset
  capacity from 2.26; older software and the N510 send no MAC.
* The DECT systems fetch ``<MAC>.xml`` (uppercase) from their provisioning URL. The N510 profile is a
  ``<ProviderFrame><Provider>`` file that the device ignores unless MAC_ADDRESS is its own MAC and
  VERSION is a DDMMYYHHMM stamp; the Nx70 file is ``<provisioning version="1.1" productID="e2">``
  with ``<nvm><param name value/>`` entries and ``<oper>`` operations (``add_hs``).
* The P82x desk phone is Snom-based: ``GigasetP82x.htm``, ``GigasetP82x-<MAC>.htm``, setting-files
  containers in Snom's XML format (parsed with the Snom simulator's parser, not the server's).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from simulators.phone import Account, BootContext, PhoneState, register_profile
from simulators.snom import SnomStyleProfile

__all__ = ["GigasetProfile", "HANDSETS"]

#: Handset capacity reported in the User-Agent (";Handset=N").
HANDSETS = {"N870": 250, "N870E": 250, "N670": 20, "N610": 20}
DESK_MODELS = {"P82X"}
#: SipProvider.N.TransportProtocol codes as the server writes them (unverified against the device).
TRANSPORTS = {"1": "udp", "2": "tcp", "3": "tls"}
_VERSION = re.compile(r"^(0[1-9]|[12]\d|3[01])(0[1-9]|1[0-2])\d\d([01]\d|2[0-3])[0-5]\d$")


@register_profile
class GigasetProfile(SnomStyleProfile):
    """``model`` ``N870``/``N670``/``N610``/``N510`` (DECT) or ``P82x`` (desk)."""

    vendor = "gigaset"
    file_prefix = "Gigaset"

    @property
    def desk(self) -> bool:
        return self.model.upper() in DESK_MODELS

    def _sw(self) -> tuple[int, ...]:
        m = re.search(r"V?(\d+)\.(\d+)", self.firmware.split("/")[-1].split(".", 1)[-1])
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

    def user_agent(self) -> str:
        if self._user_agent_override:
            return self._user_agent_override
        if self.desk:
            return f"Mozilla/4.0 (compatible; Gigaset{self.model}-SIP {self.firmware} {self.mac_upper})"
        text = f"Gigaset {self.model} IP PRO/{self.firmware}"
        if self.model.upper() == "N510":
            return text
        sw = self._sw()
        if sw >= (2, 20):
            text += f";{self.mac_upper}"
        if sw >= (2, 26) and self.model.upper() in HANDSETS:
            text += f";Handset={HANDSETS[self.model.upper()]}"
        return text

    async def boot(self, ctx: BootContext) -> None:
        if self.desk:
            await self.boot_desk(ctx)
            return
        name = f"{self.mac_upper}.xml"
        data = await ctx.fetch(name)
        if data is None:
            return
        try:
            root = ET.fromstring(data)
        except ET.ParseError as exc:
            ctx.error(f"{name}: not well-formed XML: {exc}")
            return
        if root.tag == "ProviderFrame":
            self._apply_provider_frame(ctx, name, root)
        elif root.tag == "provisioning":
            self._apply_nvm(ctx, name, root)
        else:
            ctx.error(f"{name}: unknown root element <{root.tag}>")

    # -- N510 ----------------------------------------------------------------------------------
    def _apply_provider_frame(self, ctx: BootContext, name: str, root: ET.Element) -> None:
        provider = root.find("Provider")
        if provider is None:
            ctx.error(f"{name}: no <Provider> element")
            return
        values = {child.tag: child.get("value", "") for child in provider}
        if values.get("MAC_ADDRESS", "").upper() != self.mac_upper:
            ctx.error(f"{name}: MAC_ADDRESS {values.get('MAC_ADDRESS')!r} is not this device's; profile ignored")
            return
        if not _VERSION.match(values.get("VERSION", "")):
            ctx.error(f"{name}: VERSION {values.get('VERSION')!r} is not DDMMYYHHMM; profile ignored")
            return
        ctx.state.applied.append(name)
        ctx.state.settings.update(values)

    # -- N610/N670/N870 ------------------------------------------------------------------------
    def _apply_nvm(self, ctx: BootContext, name: str, root: ET.Element) -> None:
        if root.get("version") != "1.1" or not root.get("productID"):
            ctx.warn(f"{name}: provisioning version {root.get('version')!r} productID {root.get('productID')!r}")
        nvm = root.find("nvm")
        if nvm is None:
            ctx.error(f"{name}: no <nvm> element")
            return
        for element in nvm:
            if element.tag == "param":
                ctx.state.settings[element.get("name", "")] = element.get("value", "")
            elif element.tag == "oper":
                ctx.state.boot_settings[f"oper:{element.get('name')}:{element.get('value')}"] = ",".join(
                    f"{p.get('name')}={p.get('value')}" for p in element)
            else:
                ctx.warn(f"{name}: unexpected <{element.tag}> in <nvm>")
        ctx.state.applied.append(name)

    def finalize(self, state: PhoneState) -> None:
        if self.desk:
            super().finalize(state)
            return
        s = state.settings
        if "MAC_ADDRESS" in s:  # N510
            for index in sorted({int(m.group(1)) for k in s if (m := re.match(r"^S_SIP_LOGIN_ID_(\d+)$", k))}):
                state.accounts[index] = Account(
                    index=index,
                    enabled=s.get(f"B_SIP_ACCOUNT_IS_ACTIVE_{index}") == "true",
                    label=s.get(f"S_SIP_ACCOUNT_NAME_{index}", ""),
                    display_name=s.get(f"S_SIP_DISPLAYNAME_{index}", ""),
                    user_name=s.get(f"S_SIP_USER_ID_{index}", ""),
                    auth_name=s.get(f"S_SIP_LOGIN_ID_{index}", ""),
                    password=s.get(f"S_SIP_PASSWORD_{index}", ""),
                    server=s.get(f"S_SIP_REGISTRAR_{index}", ""),
                    port=int(s[f"I_SIP_SERVER_PORT_{index}"]) if s.get(f"I_SIP_SERVER_PORT_{index}", "").isdigit()
                    else None,
                )
            return
        added = {key.split(":")[2] for key in state.boot_settings if key.startswith("oper:add_hs:")}
        handsets = sorted({m.group(1) for k in s if (m := re.match(r"^SipAccount\.(\d+)\.", k))})
        for hs in handsets:
            if hs not in added:
                state.warnings.append(f"SipAccount.{hs} has no add_hs operation: no handset slot")
            provider = s.get(f"SipAccount.{hs}.ProviderId", "0")
            port = s.get(f"SipProvider.{provider}.RegServerPort", "")
            state.accounts[int(hs)] = Account(
                index=int(hs),
                enabled=True,
                label=s.get(f"SipAccount.{hs}.DisplayName", ""),
                display_name=s.get(f"SipAccount.{hs}.DisplayName", ""),
                user_name=s.get(f"SipAccount.{hs}.UserName", ""),
                auth_name=s.get(f"SipAccount.{hs}.AuthName", ""),
                password=s.get(f"SipAccount.{hs}.AuthPassword", ""),
                server=s.get(f"SipProvider.{provider}.RegServerAddress", ""),
                port=int(port) if port.isdigit() else None,
                transport=TRANSPORTS.get(s.get(f"SipProvider.{provider}.TransportProtocol", ""), "udp"),
            )
        state.timezone = s.get("DmGlobal.0.TimeZone")
