"""atheris harness: the SIP parser (provisioning/sip.py) along the path the PnP responder takes.

For any datagram: ``parse_message`` returns a message or raises ``SipParseError`` -- and never
its catch-all "internal parser error" (that is a parser bug hidden as a verdict). The header
accessors raise only ``SipParseError``. A SUBSCRIBE that passes the responder's checks
(provisioning/discovery/pnp.py ``_datagram``) can always be answered: ``make_response(...)``
serialises and the answer parses back. Whatever parsed re-serialises and parses again.

    python fuzz/fuzz_sip.py -max_total_time=60 fuzz/corpus/sip fuzz/seeds/sip
"""

from __future__ import annotations

import sys

import _common  # noqa: F401  (sys.path)
import atheris

with atheris.instrument_imports(include=["provisioning"]):
    from provisioning.discovery.pnp import mac_from_sip_user
    from provisioning.mac import normalize_mac
    from provisioning.sip import (SipParseError, SipRequest, make_response, parse_auth_params, parse_message,
                                  parse_uri)


def _parse(data: bytes):
    try:
        return parse_message(data)
    except SipParseError as exc:
        if "internal parser error" in str(exc):
            raise _common.Finding(str(exc)) from exc.__cause__
        return None


def TestOneInput(data: bytes) -> None:
    msg = _parse(data)
    if msg is None:
        return
    for accessor in ("call_id", "cseq", "from_addr", "to_addr", "vias", "top_via", "event"):
        try:
            getattr(msg, accessor)
        except SipParseError:
            pass
    for name in ("Authorization", "WWW-Authenticate", "Proxy-Authenticate"):
        value = msg.headers.get(name)
        if value is not None:
            try:
                parse_auth_params(value)
            except SipParseError:
                pass
    # round trip: what parsed serialises, and that parses again
    try:
        again = msg.to_bytes()
    except SipParseError:
        again = None
    if again is not None and len(again) <= 8192:
        _parse(again)
    if not isinstance(msg, SipRequest) or msg.method != "SUBSCRIBE":
        return
    # the responder's validation (pnp._datagram), then its answer
    try:
        kind, params = msg.event
        _, (_, cseq_method) = msg.call_id, msg.cseq
        via, from_addr = msg.top_via, msg.from_addr
        msg.to_addr  # noqa: B018
    except SipParseError:
        return
    try:
        user = parse_uri(msg.uri).user
    except SipParseError:
        user = None
    mac = mac_from_sip_user(user)
    if mac is not None and normalize_mac(mac) != mac:
        raise _common.Finding(f"non-canonical MAC {mac!r} from {user!r}")
    if kind != "ua-profile" or cseq_method != "SUBSCRIBE":
        return
    ok = make_response(msg, 200, "OK", to_tag="fuzz1234", vias=msg.headers.get_all("Via"),
                       extra=[("Contact", "<sip:127.0.0.1:5060>"), ("Expires", "0")])
    try:
        wire = ok.to_bytes()
    except SipParseError as exc:
        raise _common.Finding(f"validated SUBSCRIBE cannot be answered: {exc}") from exc
    if _parse(wire) is None and len(wire) <= 8192:
        raise _common.Finding("our own 200 OK does not parse")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
