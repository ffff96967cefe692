"""The SIP parser's contract: any bytes give a message or SipParseError, and build->parse round-trips."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioning.sip import (
    MAX_DATAGRAM, MAX_HEADERS, MAX_LINE, Headers, SipParseError, SipRequest, SipResponse,
    build_digest_authorization, canonical_header, digest_response, make_response, new_branch, parse_auth_params,
    parse_cseq, parse_event, parse_message, parse_name_addr, parse_params, parse_uri, parse_via,
)

SNOM = (b'SUBSCRIBE sip:MAC%3a00135E874B49@intern.snom.de SIP/2.0\r\n'
        b'Via: SIP/2.0/UDP 192.168.10.67:5060;rport\r\n'
        b'From: <sip:MAC%3a00135E874B49@intern.snom.de>;tag=658512961\r\n'
        b'To: <sip:MAC%3a00135E874B49@intern.snom.de>\r\n'
        b'Call-ID: 1930770594@192.168.10.67\r\n'
        b'CSeq: 1 SUBSCRIBE\r\n'
        b'Event: ua-profile;profile-type="device";vendor="OEM";model="OEM";version="7.1.19"\r\n'
        b'Expires: 0\r\nAccept: application/url\r\nContact: <sip:192.168.10.67:5060>\r\n'
        b'Content-Length: 0\r\n\r\n')

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_error(data: bytes):
    try:
        return parse_message(data)
    except SipParseError as exc:
        assert "internal parser error" not in str(exc), exc  # a parser bug, not a verdict
        return None


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_parse_or_raise_sip_parse_error(data):
    _parse_or_error(data)


@st.composite
def mutated(draw, base: bytes = SNOM):
    """The Snom capture with a few bytes flipped, inserted, deleted or the whole thing cut."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["set", "insert", "delete", "cut", "dup"]))
        byte = draw(st.sampled_from([0, 9, 10, 13, 32, 34, 44, 58, 59, 60, 62, 64, 0xC3, 0xFF])
                    | st.integers(0, 255))
        if op == "set":
            data[pos] = byte
        elif op == "insert":
            data.insert(pos, byte)
        elif op == "delete":
            del data[pos]
        elif op == "cut":
            del data[pos:]
        else:
            data[pos:pos] = data[pos: pos + draw(st.integers(1, 200))]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_capture_parses_or_raises_and_accessors_too(data):
    msg = _parse_or_error(data)
    if msg is None:
        return
    for accessor in ("call_id", "cseq", "from_addr", "to_addr", "vias", "event"):
        try:
            getattr(msg, accessor)
        except SipParseError:
            pass
    # What parsed re-serialises to something that parses to the same thing.
    try:
        again = parse_message(msg.to_bytes())
    except SipParseError:
        return  # e.g. grew past a size limit: each invalid byte became a 3-byte U+FFFD
    def content(m):
        return [h for h in m.headers.items() if canonical_header(h[0]) != "content-length"], m.body
    assert content(again) == content(msg)
    assert type(again) is type(msg)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)


@FUZZ
@given(_text)
def test_header_value_parsers_raise_only_sip_parse_error(text):
    for parser in (parse_name_addr, parse_uri, parse_via, parse_cseq, parse_event, parse_params,
                   parse_auth_params):
        try:
            parser(text)
        except SipParseError:
            pass


# --------------------------------------------------------------------------- round trip

_token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
                 min_size=1, max_size=20)
_method = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12)
_host = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)
_uri = st.builds(lambda user, host, port: f"sip:{user + '@' if user else ''}{host}{':' + str(port) if port else ''}",
                 st.none() | st.from_regex(r"[A-Za-z0-9%=.\-_]{1,20}", fullmatch=True), _host,
                 st.none() | st.integers(1, 65535))
# Header values: any non-control text without leading/trailing blanks (those are not content).
_value = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029"),
                 max_size=80).map(lambda s: s.strip(" \t")).filter(lambda s: s == s.strip(" \t"))
_headers = st.lists(st.tuples(_token.filter(lambda n: n.lower() not in ("content-length", "l")), _value),
                    max_size=30)


@FUZZ
@given(_method, _uri, _headers, st.binary(max_size=1500))
def test_request_round_trip(method, uri, headers, body):
    req = SipRequest(method, uri, headers, body)
    parsed = parse_message(req.to_bytes())
    assert isinstance(parsed, SipRequest)
    assert (parsed.method, parsed.uri, parsed.body) == (method, uri, body)
    assert parsed.headers.items() == headers + [("Content-Length", str(len(body)))]


@FUZZ
@given(st.integers(100, 699), _value, _headers, st.binary(max_size=500))
def test_response_round_trip(status, reason, headers, body):
    resp = SipResponse(status, reason, headers, body)
    parsed = parse_message(resp.to_bytes())
    assert isinstance(parsed, SipResponse)
    assert (parsed.status, parsed.reason, parsed.body) == (status, reason, body)
    assert parsed.headers.items()[:-1] == headers


# --------------------------------------------------------------------------- examples


def test_snom_capture():
    msg = parse_message(SNOM)
    assert isinstance(msg, SipRequest) and msg.method == "SUBSCRIBE"
    assert parse_uri(msg.uri).user == "MAC%3a00135E874B49"
    assert msg.event == ("ua-profile", {"profile-type": "device", "vendor": "OEM", "model": "OEM",
                                        "version": "7.1.19"})
    assert msg.top_via.host == "192.168.10.67" and "rport" in msg.top_via.params
    assert msg.top_via.branch is None
    assert msg.from_addr.tag == "658512961" and msg.to_addr.tag is None
    assert msg.cseq == (1, "SUBSCRIBE")


def test_compact_forms_and_folding_and_lf_only():
    data = (b"SUBSCRIBE sip:MAC001565f4f9e1@224.0.1.75 SIP/2.0\n"
            b"v: SIP/2.0/UDP 10.1.3.239:5059;branch=z9hG4bK1\n"
            b"f: <sip:MAC001565f4f9e1@224.0.1.75>;tag=1\nt: <sip:MAC001565f4f9e1@224.0.1.75>\n"
            b"i: 1@10.1.3.239\nCSeq: 1 SUBSCRIBE\nm: <sip:10.1.3.239:5059>\n"
            b"o: ua-profile;vendor=yealink;\n  model=W52P\nl: 4\n\nbodyEXTRA")
    msg = parse_message(data)
    assert msg.headers.get("Via") and msg.headers.get("From") and msg.headers.get("Contact")
    assert msg.call_id == "1@10.1.3.239"
    assert msg.event == ("ua-profile", {"vendor": "yealink", "model": "W52P"})
    assert msg.body == b"body"  # Content-Length wins over trailing bytes


@pytest.mark.parametrize("data", [
    b"", b"\r\n\r\n", b"SUBSCRIBE sip:a@b SIP/2.0\r\nVia: x",                   # no end of head
    b"SUBSCRIBE sip:a@b SIP/2.0\r\nl: 10\r\n\r\nshort",                           # truncated body
    b"SUBSCRIBE sip:a@b SIP/2.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    b"SUBSCRIBE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
    b"SUBSCRIBE sip:a@b SIP/2.0\r\nBad Header: x\r\n\r\n",
    b"SUBSCRIBE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
    b" folded\r\nSUBSCRIBE sip:a@b SIP/2.0\r\n\r\n",
    b"SUBSCRIBE sip:a@b SIP/2.0\r\nX: a\x00b\r\n\r\n",
    b"SUBSCRIBE sip:a@b SIP/2.0\r\nX: a\rb\r\n\r\n",
    b"SUBSCRIBE  sip:a@b SIP/2.0\r\n\r\n", b"SUBSCRIBE sip:a@b HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"SIP/2.0 999 Nope\r\n\r\n", b"SIP/2.0 20 OK\r\n\r\n",
    b"SUBSCRIBE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * (MAX_HEADERS + 1) + b"\r\n",
    b"SUBSCRIBE sip:a@b SIP/2.0\r\nX: " + b"y" * MAX_LINE + b"\r\n\r\n",
    b"SUBSCRIBE sip:a@b SIP/2.0\r\n\r\n" + b"x" * MAX_DATAGRAM,
])
def test_rejected(data):
    with pytest.raises(SipParseError):
        parse_message(data)


def test_limits_are_inclusive():
    head = b"SUBSCRIBE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * MAX_HEADERS
    assert len(parse_message(head + b"\r\n").headers) == MAX_HEADERS
    padded = head + b"\r\n"
    assert parse_message(padded + b"z" * (MAX_DATAGRAM - len(padded))).body


def test_utf8_replacement_instead_of_errors():
    msg = parse_message(b"NOTIFY sip:a@b SIP/2.0\r\nSubject: caf\xc3\xa9 \xff\r\n\r\n")
    assert msg.headers.get("Subject") == "caf\u00e9 \ufffd"


def test_builder_refuses_header_injection():
    with pytest.raises(ValueError):
        SipRequest("NOTIFY", "sip:a@b", [("Event", "check-sync\r\nX-Evil: 1")]).to_bytes()
    with pytest.raises(ValueError):
        SipRequest("NOTIFY", "sip:a@b", [("Bad Name", "x")]).to_bytes()


def test_make_response_adds_to_tag_once():
    req = parse_message(SNOM)
    ok = make_response(req, 200, to_tag="abc")
    assert ok.to_addr.tag == "abc" and ok.headers.get("Via") == req.headers.get("Via")
    req.headers.set("To", "<sip:x@y>;tag=old")
    assert make_response(req, 200, to_tag="abc").to_addr.tag == "old"
    assert new_branch().startswith("z9hG4bK") and new_branch() != new_branch()


def test_headers_lookup_and_set():
    h = Headers([("f", "<sip:a@b>"), ("X", "1"), ("x", "2")])
    assert h.get("FROM") == "<sip:a@b>" and h.get_all("X") == ["1", "2"]
    h.set("X", "3")
    assert h.items() == [("f", "<sip:a@b>"), ("X", "3")]
    assert "from" in h and "to" not in h


def test_digest_matches_rfc2617_example():
    # RFC 2617 §3.5 (with method GET): response 6629fae49393a05397450978507c4ef1.
    assert digest_response(username="Mufasa", password="Circle Of Life", realm="testrealm@host.com",
                           method="GET", uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                           qop="auth", nc="00000001", cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"
    value = build_digest_authorization('Digest realm="r", nonce="n", qop="auth,auth-int", opaque="o"',
                                       username="u", password="p", method="NOTIFY", uri="sip:a@b")
    scheme, params = parse_auth_params(value)
    assert scheme == "digest" and params["qop"] == "auth" and params["opaque"] == "o"
    assert params["response"] == digest_response(username="u", password="p", realm="r", method="NOTIFY",
                                                 uri="sip:a@b", nonce="n", qop="auth", nc=params["nc"],
                                                 cnonce=params["cnonce"])
