"""Property tests for every parser that reads untrusted input.

Contract for each: on *any* input it returns a well-formed value or raises its own documented
error, never anything else, and it does so quickly (no regex blow-up on long hostile input).

Known bugs in code this suite does not own are pinned by ``xfail(strict=True)`` tests with the
smallest input that shows them; when the bug is fixed the test XPASSes and the marker must go.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from provisioning.certs import _name, issue, mac_from_certificate, new_key
from provisioning.discovery import snmp
from provisioning.discovery.pnp import mac_from_sip_user
from provisioning.mac import MacError, colon_mac, normalize_mac
from provisioning.orgfile import OrgFileError, parse
from provisioning.serving import MAX_PATH, BadPath, clean_path
from provisioning.sip import MAX_LINE, SipParseError, parse_message
from provisioning.vendors import BY_NAME, PLUGINS
from provisioning.vendors.base import FileKind, FileRequest, UserAgentInfo

ROOT = Path(__file__).resolve().parents[2]
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CANONICAL_MAC = re.compile(r"[0-9a-f]{12}")

# Text as it arrives from the wire: any code point that survives a UTF-8 decode with
# surrogateescape (so lone surrogates too), with a bias towards the characters parsers split on.
_any_char = st.characters(codec=None) | st.sampled_from(list("/\\.:;-_ \t\r\n\0%@+=\"'<>?#&~"))
any_text = st.text(_any_char, max_size=300)
hexdigits = st.text("0123456789abcdefABCDEF", min_size=0, max_size=14)


def _mac_spellings(mac: str) -> list[str]:
    pairs = [mac[i:i + 2] for i in range(0, 12, 2)]
    return [mac, mac.upper(), ":".join(pairs), "-".join(pairs).upper(), f"{mac[:4]}.{mac[4:8]}.{mac[8:]}"]


unicast_macs = st.integers(1, 2 ** 48 - 2).map(lambda n: f"{n:012x}").filter(lambda m: not int(m[1], 16) & 1)


# --------------------------------------------------------------------------------------------
# Vendor plugins: User-Agent and path matchers
# --------------------------------------------------------------------------------------------

#: Real-looking prefixes, so generated input reaches past each plugin's first check.
UA_PREFIXES = ["", "Yealink SIP-", "Yealink ", "yealink-sip ", "VP530 ", "FileTransport Poly", "FileTransport PolycomVVX-",
               "Fanvil ", "Cisco/", "Linksys/", "Sipura/", "Cisco-CP", "Grandstream ", "Grandstream Model HW ",
               "snom", "Mozilla/4.0 (compatible; snom", "Gigaset ", "Gigaset N", "HT8", "GXP"]
user_agents = st.builds(lambda p, s, m, t: p + s + (" " + m if m else "") + t,
                        st.sampled_from(UA_PREFIXES),
                        st.text(st.characters(codec="ascii") | st.sampled_from("0123456789.-_ /"), max_size=60),
                        st.none() | unicast_macs.flatmap(lambda m: st.sampled_from(_mac_spellings(m))),
                        any_text.map(lambda s: s[:40]))

PATH_SHAPES = ["{m}.cfg", "{m}.boot", "{m}.xml", "{m}-local.cfg", "{m}-contact.xml", "{m}-phonebook.xml",
               "{m}-phone.cfg", "{m}-web.cfg", "{m}-app.log", "{m}-boot.log", "{m}-directory.xml",
               "{m}-deskprov.cfg", "{m}-xmldirectory.xml", "cfg{m}", "cfg{m}.xml", "cfg{m}.bin", "SEP{M}.cnf.xml",
               "spa{m}.xml", "fv{m}-phonebook.xml", "pb{m}/phonebook.xml", "{M}.xml", "snom{m}.xml",
               "y000000000000.boot", "y000000000066.cfg", "y{d}.cfg", "000000000000.cfg", "{m}"]
paths = st.one_of(
    any_text,
    st.builds(lambda shape, mac, junk, d: shape.format(m=mac, M=mac.upper(), d=d) + junk,
              st.sampled_from(PATH_SHAPES), unicast_macs | hexdigits,
              st.sampled_from(["", "", "", " ", "\0", "/", ".bak", "%00", "\n"]),
              st.text("0123456789", min_size=0, max_size=14)),
)


def _check_ua_info(plugin, info) -> None:
    assert isinstance(info, UserAgentInfo), info
    assert info.vendor == plugin.name
    assert info.mac is None or CANONICAL_MAC.fullmatch(info.mac) and normalize_mac(info.mac) == info.mac, info
    for text in (info.model, info.firmware):
        assert text is None or isinstance(text, str)


def _check_file_request(plugin, filename: str, req) -> None:
    assert isinstance(req, FileRequest), req
    assert req.vendor == plugin.name and req.vendor in BY_NAME
    assert isinstance(req.kind, FileKind)
    assert isinstance(req.name, str) and req.name
    if req.kind in (FileKind.device, FileKind.upload):
        # a device's file is bound to exactly one canonical MAC, and that MAC is in the name asked for
        assert req.mac is not None, req
    if req.mac is not None:
        assert CANONICAL_MAC.fullmatch(req.mac) and normalize_mac(req.mac) == req.mac, req
        assert req.mac in filename.lower().replace(":", "").replace("-", ""), (filename, req)
    if req.kind is FileKind.common:
        assert req.mac is None, req  # a shared file never names a device


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
@PROPS
@given(ua=st.one_of(any_text, user_agents))
def test_match_user_agent_never_raises_and_is_well_formed(plugin, ua):
    info = plugin.match_user_agent(ua)
    if info is not None:
        _check_ua_info(plugin, info)


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
@PROPS
@given(filename=paths)
def test_match_path_never_raises_and_is_well_formed(plugin, filename):
    req = plugin.match_path(filename)
    if req is not None:
        _check_file_request(plugin, filename, req)


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_matchers_are_linear_on_long_hostile_input(plugin):
    """No catastrophic backtracking: 20k characters of near-misses take milliseconds."""
    samples = [prefix + filler * 5000 for prefix in ("", "Yealink SIP-T46S ", "FileTransport Poly", "Fanvil X4 ",
                                                    "Cisco/SPA", "Grandstream ", "snom", "Gigaset ")
               for filler in ("a1", "1.", "V1 ", ":0", " 1", "-a")]
    for text in samples:
        started = time.perf_counter()
        plugin.match_user_agent(text)
        plugin.match_path(text[:4000])
        assert time.perf_counter() - started < 0.25, (plugin.name, text[:40])


@PROPS
@given(mac=unicast_macs, vendor=st.sampled_from(PLUGINS))
def test_user_agent_mac_is_the_one_sent(mac, vendor):
    """Whatever spelling a UA carries its MAC in, a plugin that reads it reads the right one."""
    for spelling in _mac_spellings(mac):
        for ua in (f"Yealink SIP-T46S 66.86.0.15 {spelling}", f"Fanvil X4 2.4.5 {spelling}"):
            info = vendor.match_user_agent(ua)
            if info is not None and info.mac is not None:
                assert info.mac == mac


# --------------------------------------------------------------------------------------------
# serving.clean_path
# --------------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"[A-Za-z0-9._+@-]+")


@PROPS
@given(raw=st.one_of(any_text, paths, st.lists(st.sampled_from(["..", ".", "", "a", "%2e", "\\", "b.cfg", "\0"]),
                                                max_size=8).map("/".join)))
@example(raw="/" * 300)
@example(raw="a" * MAX_PATH)
@example(raw="é" * 128)
@example(raw="\udcff")
def test_clean_path_returns_a_safe_relative_path_or_bad_path(raw):
    try:
        path = clean_path(raw)
    except BadPath:
        return
    assert not path.startswith("/")
    assert len(path.encode("utf-8", "surrogateescape")) <= MAX_PATH
    segments = path.split("/")
    assert all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments), path
    assert clean_path(path) == path  # idempotent


# --------------------------------------------------------------------------------------------
# mac.normalize_mac and the MAC extractors built on it
# --------------------------------------------------------------------------------------------


@PROPS
@given(raw=st.one_of(any_text, hexdigits, unicast_macs.flatmap(lambda m: st.sampled_from(_mac_spellings(m))),
                     st.integers(), st.none(), st.binary(max_size=20)))
def test_normalize_mac_is_canonical_or_mac_error(raw):
    try:
        mac = normalize_mac(raw)
    except MacError:
        return
    assert CANONICAL_MAC.fullmatch(mac)
    assert mac not in ("000000000000", "ffffffffffff") and not int(mac[1], 16) & 1
    assert normalize_mac(mac) == mac == normalize_mac(colon_mac(mac, upper=True))


@PROPS
@given(mac=unicast_macs)
def test_every_spelling_of_a_mac_normalises_to_it(mac):
    for spelling in _mac_spellings(mac):
        assert normalize_mac(f"  {spelling}\t") == mac


@PROPS
@given(user=st.one_of(st.none(), any_text, unicast_macs.map(lambda m: "MAC%3a" + m.upper())))
def test_pnp_mac_from_sip_user_is_canonical_or_none(user):
    mac = mac_from_sip_user(user)
    assert mac is None or normalize_mac(mac) == mac


# --------------------------------------------------------------------------------------------
# SNMP answers: discovery.snmp.identify
# --------------------------------------------------------------------------------------------

oids = st.one_of(any_text, st.lists(st.integers(0, 2 ** 40) | st.text("0123456789", min_size=1, max_size=12),
                                    max_size=16).map(lambda parts: "1.3.6.1.4.1." + ".".join(map(str, parts))))
EXTRA_KEYS = ["ent_model", "ent_software_rev", "grandstream_firmware", "yealink_model", "yealink_firmware", "other"]


@PROPS
@given(descr=st.none() | any_text | user_agents, oid=st.none() | oids, name=st.none() | any_text,
       mac=st.none() | any_text | unicast_macs,
       extra=st.none() | st.dictionaries(st.sampled_from(EXTRA_KEYS), any_text | user_agents, max_size=6))
def test_snmp_identify_never_raises(descr, oid, name, mac, extra):
    result = snmp.identify(descr, oid, name, mac, extra)
    assert isinstance(result, tuple) and len(result) == 3
    vendor, model, firmware = result
    assert vendor is None or vendor in BY_NAME, vendor
    assert all(v is None or isinstance(v, str) for v in (model, firmware))


@pytest.mark.parametrize("oid", ["1.3.6.1.4.1.²", "1.3.6.1.4.1.٣٧٤٥٩.1", "1.3.6.1.4.1." + "9" * 5000])
def test_snmp_identify_hostile_enterprise_number(oid):
    vendor, _, _ = snmp.identify("", oid, None, None)
    assert vendor is None


# --------------------------------------------------------------------------------------------
# certs.mac_from_certificate
# --------------------------------------------------------------------------------------------

_KEY = new_key()
_CERT_DER = issue(_name("805ec0aabb01", organization="Example Vendor", serial="SN 12"), _KEY, None, _KEY,
                  client=True).public_bytes(Encoding.DER)


@st.composite
def mutated_der(draw):
    data = bytearray(_CERT_DER)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if op == "set":
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos]
        else:
            del data[pos:]
    return bytes(data)


def _bad_utf8_subject(der: bytes) -> bytes:
    """The certificate with one byte of the MAC in its subject's UTF8String replaced by 0xFF."""
    at = der.rfind(b"805ec0aabb01")  # the subject (the issuer, before it, names the same)
    return der[:at] + b"\xff" + der[at + 1:]


CERT_FIX = ("provisioning/certs.py mac_from_certificate(): cryptography parses the subject and the "
            "extensions lazily, so `cert.subject` / `cert.extensions` raise ValueError on a malformed "
            "name (invalid UTF-8 in a UTF8String, a wrong tag); wrap those reads in the same "
            "`except ValueError: return None`")


@PROPS
@given(der=st.one_of(st.binary(max_size=2000), mutated_der()))
@example(der=_bad_utf8_subject(_CERT_DER))
@example(der=_CERT_DER)
@example(der=b"")
def test_mac_from_certificate_never_raises(der):
    mac = mac_from_certificate(der)
    assert mac is None or normalize_mac(mac) == mac
    if der == _CERT_DER:
        assert mac == "805ec0aabb01"


@PROPS
@given(cn=any_text.filter(lambda s: 0 < len(s) <= 64 and "\0" not in s), san=st.lists(any_text, max_size=3))
def test_mac_from_certificate_with_hostile_names(cn, san):
    """Certificates whose subject and SAN carry arbitrary text: a MAC or None, no exception."""
    try:
        subject = _name(cn)
    except ValueError:
        assume(False)
    key = new_key()
    cert = issue(subject, key, None, key, client=True)
    if san:
        try:
            builder = x509.CertificateBuilder().subject_name(subject).issuer_name(subject) \
                .public_key(key.public_key()).serial_number(1).not_valid_before(cert.not_valid_before_utc) \
                .not_valid_after(cert.not_valid_after_utc) \
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in san]), critical=False)
            cert = builder.sign(key, hashes.SHA256())
        except (ValueError, UnicodeError):
            pass
    mac = mac_from_certificate(cert.public_bytes(Encoding.DER))
    assert mac is None or normalize_mac(mac) == mac


# --------------------------------------------------------------------------------------------
# SIP: what tests/test_sip_parser.py does not already cover
# --------------------------------------------------------------------------------------------


def test_sip_parser_is_linear_on_hostile_heads():
    """Header lines at the length limit full of the characters the value parsers split on."""
    for filler in (";", "<", '"', "\\", ",", "a=", "%", " ", ":"):
        line = ("Via: SIP/2.0/UDP h" + filler * MAX_LINE)[:MAX_LINE]
        head = "SUBSCRIBE sip:a@b SIP/2.0\r\n" + "\r\n".join([line] * 3) + "\r\n\r\n"
        started = time.perf_counter()
        try:
            msg = parse_message(head.encode())
            for accessor in ("call_id", "cseq", "from_addr", "to_addr", "vias", "event"):
                try:
                    getattr(msg, accessor)
                except SipParseError:
                    pass
        except SipParseError:
            pass
        assert time.perf_counter() - started < 0.5, filler


# --------------------------------------------------------------------------------------------
# orgfile.parse (YAML imports)
# --------------------------------------------------------------------------------------------

_scalar = st.one_of(
    st.sampled_from(["X", "Exempel AB", "x.example.net", "+46854689901", "80:5E:C0:AA:BB:01", "Yealink T46S",
                     "line", "blf", "201", "~", "null", "true", "''", '""', "-", "?", ":", "&a", "*a", "!!str",
                     "!!binary", "|", ">", "#", "%", "@", "`", "0x1F", "0o17", "1e400", ".inf", "-.nan", "1_000"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=20),
)
_keys = st.sampled_from(["organization", "name", "sip_domain", "users", "phones", "mac", "model", "user", "keys",
                         "slot", "type", "target", "number", "phonebooks", "lines", "sip", "password", "x"])


def _yaml_ish(depth: int = 3):
    leaves = _scalar
    if depth == 0:
        return leaves
    inner = _yaml_ish(depth - 1)
    return st.one_of(
        leaves,
        st.lists(st.tuples(_keys | _scalar, inner), max_size=4).map(
            lambda items: "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"),
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
    )


yaml_documents = st.one_of(
    st.lists(st.tuples(_keys, _yaml_ish()), max_size=5).map(lambda items: "".join(f"{k}: {v}\n" for k, v in items)),
    st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["- ", "", "? "]), _keys, _scalar), max_size=12).map(
        lambda lines: "".join(f"{' ' * n}{dash}{k}: {v}\n" for n, dash, k, v in lines)),
    any_text,
)


def _parse_or_orgfile_error(data) -> None:
    try:
        parse(data)
    except OrgFileError as exc:
        assert exc.problems and all(isinstance(msg, str) for _, msg in exc.problems)


@PROPS
@given(text=yaml_documents)
def test_orgfile_parse_raises_only_orgfile_error_on_text(text):
    _parse_or_orgfile_error(text)


@PROPS
@given(data=st.one_of(st.binary(max_size=2000), yaml_documents.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_orgfile_parse_raises_only_orgfile_error_on_bytes(data):
    _parse_or_orgfile_error(data)


def _run_isolated(code: str, *, seconds: float, memory_mb: int = 1024) -> subprocess.CompletedProcess | None:
    """Run ``code`` in a child with a memory cap and a time limit (so a bomb cannot hurt this run)."""
    prelude = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({memory_mb} * 2**20, {memory_mb} * 2**20))
    """)
    try:
        return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                              timeout=seconds, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return None


def billion_laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "organization: {name: Lol AB, sip_domain: lol.example}\n" + "\n".join(lines) + f"\nphones: *l{levels - 1}\n"


#: Each of these must give an OrgFileError (a clean "cannot import: ..." for the operator) at once.
ORGFILE_HOSTILE = {
    "billion-laughs": billion_laughs(),
    "deep-flow-nesting": "organization: " + "[" * 5000 + "]" * 5000,
    "deep-block-nesting": "organization:\n" + "".join(" " * i + "-\n" for i in range(3000)),
    "recursive-alias": "organization: &a {name: X, sip_domain: x.example, z: *a}\n",
    "invalid-date": "organization: {name: 2001-02-30, sip_domain: x.example}\n",
    "huge-integer": "organization: {name: X, sip_domain: x.example, sip_port: " + "9" * 5000 + "}\n",
    # PyYAML keeps the last of two equal keys without a word: a user's second "password:" would win
    "duplicate-key": "organization:\n  name: X\n  sip_domain: x.example\n  sip_domain: evil.example\n",
}
ORGFILE_BUGS = {
    "billion-laughs": "orgfile._positions() walks the composed node graph, in which every alias is the same "
                      "node, once per path: a 1 KB file of 9 levels x 9 aliases means 9^9 calls and dict "
                      "entries (6 levels: 1.27 M calls, 10 s under a profiler). Fix: refuse aliases "
                      "(compose_node seeing an AliasEvent; an org file never needs them) or walk each node once",
    "deep-flow-nesting": "PyYAML's composer and constructor recurse once per level: RecursionError escapes "
                         "parse(). Fix: limit the depth (e.g. 32) while composing, and turn RecursionError "
                         "into OrgFileError",
    "deep-block-nesting": "as deep-flow-nesting, with block sequences",
    "recursive-alias": "`&a {z: *a}` composes into a cyclic node graph and orgfile._positions() recurses "
                       "until RecursionError. Fix: refuse aliases (as for billion-laughs)",
    "invalid-date": "SafeLoader's timestamp constructor raises a plain ValueError for 2001-02-30, which "
                    "is not a YAMLError and escapes parse(). Fix: catch ValueError around "
                    "construct_document and report it as a YAML error at the node's line",
    "huge-integer": "SafeLoader's int constructor raises ValueError for a scalar of more than 4300 digits "
                    "(Python's int max-str-digits): escapes parse(). Same fix as invalid-date",
}


@pytest.mark.parametrize("name", [
    name for name in ORGFILE_HOSTILE])
def test_orgfile_hostile_yaml_is_refused_quickly(name, tmp_path):
    """Refused with OrgFileError within 5 s and 1 GiB, in a child process (a bomb must not take the run down)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(ORGFILE_HOSTILE[name])
    result = _run_isolated(f"""
        import sys
        from provisioning.orgfile import OrgFileError, parse
        try:
            parse(open({str(path)!r}, "rb").read())
        except OrgFileError as exc:
            print("refused:", exc.problems[0][1][:200])
            sys.exit(0)
        except BaseException as exc:
            print("escaped:", type(exc).__name__, str(exc)[:200])
            sys.exit(3)
        print("accepted")
        sys.exit(4)
    """, seconds=5)
    assert result is not None, "parse() did not finish within 5 s"
    assert result.returncode == 0, (result.returncode, result.stdout.decode(), result.stderr.decode()[-500:])


def test_orgfile_honest_file_still_parses():
    """Whatever guard fixes the above must not refuse honest files: the example organisation parses."""
    parse((ROOT / "tests" / "data" / "exempel.yaml").read_bytes())


# Each plugin's own file names with a trailing newline: `re.match` with `...$` accepts them
# (`$` matches before a final "\n"). serving.clean_path and the TFTP name policy refuse control
# characters first, so this is defence in depth, but a matcher should not claim such a name.
NEWLINE_NAMES = {
    "cisco": "805ec0aabb01.xml\n", "fanvil": "fv805ec0aabb01-phonebook.xml\n", "gigaset": "805EC0AABB01.xml\n",
    "grandstream": "cfg805ec0aabb01.xml\n", "poly": "805ec0aabb01-phone.cfg\n", "snom": "805EC0AABB01.xml\n",
    "yealink": "805ec0aabb01.cfg\n",
}


@pytest.mark.parametrize("plugin", [
    p for p in PLUGINS], ids=lambda p: p.name)
def test_match_path_refuses_a_trailing_newline(plugin):
    for suffix in ("\n", "\r\n"):
        name = NEWLINE_NAMES.get(plugin.name, "805ec0aabb01.cfg\n").rstrip("\n") + suffix
        assert plugin.match_path(name) is None, name


# A device's file must name a device MAC: not all-zero, broadcast or multicast (normalize_mac
# refuses those). Found by fuzz/fuzz_vendor_matchers.py: two plugins skip the check on some names.
NON_DEVICE_MACS = ["000000000000", "ffffffffffff", "010000000000", "0b0082aabb01"]
DEVICE_NAME_SHAPES = ["{m}.cfg", "{m}.boot", "{m}.xml", "{M}.xml", "{m}-deskprov.cfg", "{m}-phone.cfg", "{m}-local.cfg",
                      "cfg{m}.xml", "cfg{m}", "fv{m}-phonebook.xml", "pb{m}/phonebook.xml", "SEP{M}.cnf.xml",
                      "spa{m}.xml", "{m}-xmldirectory.xml", "{m}-directory.xml", "{m}-phonebook.xml"]
NON_DEVICE_MAC_BUGS = {
    "fanvil": "provisioning/vendors/fanvil.py match_path(): the fv<mac>-phonebook.xml branch returns "
              "match['mac'] unchecked; use mac_or_none() like the other branches",
    "grandstream": "provisioning/vendors/grandstream.py match_path(): cfg<mac>[.xml|.bin] and "
                   "pb<mac>/phonebook.xml return match['mac'] unchecked; use mac_or_none()",
}


@pytest.mark.parametrize("plugin", [
    p for p in PLUGINS], ids=lambda p: p.name)
def test_match_path_never_names_a_non_device_mac(plugin):
    for mac in NON_DEVICE_MACS:
        for shape in DEVICE_NAME_SHAPES:
            name = shape.format(m=mac, M=mac.upper())
            request = plugin.match_path(name)
            assert request is None or request.mac is None, (name, request)
