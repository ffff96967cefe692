"""Tests for the phone simulator (simulators/).

The fixture servers here are written by hand and serve hand-written files, so
these tests check the simulator against the vendor rules, independent of the
provisioning server.
"""

from __future__ import annotations

import ast
import asyncio
import json
import pathlib
import socket
import struct
import sys
import threading
import time

import aiohttp
import pytest
from aiohttp import web

from simulators.phone import Phone, PhoneState
from simulators.tftp_client import TftpClient, TftpError, TftpTimeout, tftp_get_async
from simulators.yealink import YealinkProfile, parse_config, ConfigError

MAC = "80:5E:C0:AA:BB:01"
MAC_FLAT = "805ec0aabb01"
UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"

COMMON_66 = """#!version:1.0.0.1
# per-model common file
local_time.time_zone = +1
local_time.time_zone_name = Germany(Berlin)
lang.gui = English
lang.wui = German
account.1.label = Common
account.1.sip_server.1.address = pbx.example.com
account.1.sip_server.1.port = 5060
account.1.sip_server.1.transport_type = 0
linekey.5.type = 13
linekey.5.value = 0800123
linekey.5.label = Reception
features.dnd.enable =
"""

MAC_CFG = """#!version:1.0.0.1
account.1.enable = 1
account.1.label = Alice
account.1.display_name = Alice Smith
account.1.auth_name = 1001a
account.1.user_name = 1001
account.1.password = s3cr#t=x
account.1.sip_server.1.port = 5061
account.1.sip_server.1.transport_type = 2

linekey.3.type = 16
linekey.3.line = 1
linekey.3.value = 1002
linekey.3.label = Bob
linekey.3.extension = *8
linekey.5.label = Front desk
linekey.7.type = 27
expansion_module.1.key.2.type = 16
expansion_module.1.key.2.line = 1
expansion_module.1.key.2.value = 1010
expansion_module.1.key.2.label = Carol
lang.gui = %NULL%
account.2.enable = 1
account.2.user_name = 1002
"""

MAC_BOOT = f"""#!version:1.0.0.1
## the MAC-oriented boot file
include:config "y000000000066.cfg"
include:config "{MAC_FLAT}.cfg"
overwrite_mode = 1
"""


def new_firmware_files() -> dict[str, str]:
    return {f"{MAC_FLAT}.boot": MAC_BOOT, "y000000000066.cfg": COMMON_66, f"{MAC_FLAT}.cfg": MAC_CFG}


# --- HTTP fixture --------------------------------------------------------------


class HttpFixture:
    """Serves ``files`` at ``/``; records (path, User-Agent) of every request."""

    def __init__(self) -> None:
        self.files: dict[str, str | bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.requests.append((path, request.headers.get("User-Agent", "")))
        body = self.files.get(path.lstrip("/"))
        if body is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=body.encode() if isinstance(body, str) else body)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]


@pytest.fixture
async def http():
    srv = HttpFixture()
    await srv.start()
    yield srv
    await srv.stop()


# --- TFTP fixture --------------------------------------------------------------


class TftpFixture:
    """A small threaded TFTP server: RRQ with optional blksize/tsize (OACK).

    ``options=False`` behaves like an RFC 1350-only server; ``drop_rrqs`` ignores
    that many requests (to exercise client retransmission); ``stray=True`` sends
    a DATA packet from a foreign port mid-transfer (to exercise TID checks).
    """

    def __init__(self, files: dict[str, str | bytes], *, options: bool = True, drop_rrqs: int = 0, stray: bool = False):
        self.files = files
        self.options = options
        self.drop_rrqs = drop_rrqs
        self.stray = stray
        self.stray_reply: bytes | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.acks: list[int] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                pkt, client = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if struct.unpack("!H", pkt[:2])[0] != 1:
                continue
            fields = pkt[2:].split(b"\0")
            name, opts = fields[0].decode(), {}
            for i in range(2, len(fields) - 1, 2):
                if fields[i]:
                    opts[fields[i].decode().lower()] = fields[i + 1].decode()
            self.requests.append((name, opts))
            if self.drop_rrqs > 0:
                self.drop_rrqs -= 1
                continue
            threading.Thread(target=self._transfer, args=(name, opts, client), daemon=True).start()

    def _wait_ack(self, s: socket.socket, client, block: int, resend: bytes) -> bool:
        for _ in range(10):
            try:
                pkt, src = s.recvfrom(2048)
            except socket.timeout:
                s.sendto(resend, client)
                continue
            if src != client:
                continue
            op, num = struct.unpack("!HH", pkt[:4])
            if op == 4 and num == block:
                self.acks.append(num)
                return True
            if op == 5:
                return False
        return False

    def _transfer(self, name: str, opts: dict[str, str], client) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.3)
        try:
            body = self.files.get(name)
            if body is None:
                s.sendto(struct.pack("!HH", 5, 1) + b"File not found\0", client)
                return
            data = body.encode() if isinstance(body, str) else body
            blksize = 512
            if opts and self.options:
                oack = b""
                if "blksize" in opts:
                    blksize = min(int(opts["blksize"]), 65464)
                    oack += b"blksize\0%d\0" % blksize
                if "tsize" in opts:
                    oack += b"tsize\0%d\0" % len(data)
                pkt = struct.pack("!H", 6) + oack
                s.sendto(pkt, client)
                if not self._wait_ack(s, client, 0, pkt):
                    return
            if self.stray:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                    other.bind(("127.0.0.1", 0))
                    other.settimeout(1)
                    other.sendto(struct.pack("!HH", 3, 1) + b"EVIL", client)
                    try:
                        self.stray_reply = other.recvfrom(2048)[0]
                    except socket.timeout:
                        pass
            block = 1
            while True:
                chunk = data[(block - 1) * blksize : block * blksize]
                pkt = struct.pack("!HH", 3, block & 0xFFFF) + chunk
                s.sendto(pkt, client)
                if not self._wait_ack(s, client, block & 0xFFFF, pkt):
                    return
                if len(chunk) < blksize:
                    return
                block += 1
        finally:
            s.close()


@pytest.fixture
def tftp_factory():
    servers: list[TftpFixture] = []

    def make(files, **kw) -> TftpFixture:
        srv = TftpFixture(files, **kw)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


def t46s(firmware: str = "66.86.0.15") -> YealinkProfile:
    return YealinkProfile("T46S", MAC, firmware)


# --- Yealink over HTTP -----------------------------------------------------------


async def test_new_firmware_boots_through_mac_boot_file(http: HttpFixture):
    http.files.update(new_firmware_files())
    http.files["y000000000000.boot"] = "#!version:1.0.0.1\ninclude:config \"never.cfg\"\n"
    state = await Phone(t46s()).boot_http(http.url)

    assert http.paths == [f"/{MAC_FLAT}.boot", "/y000000000066.cfg", f"/{MAC_FLAT}.cfg"]
    assert {ua for _, ua in http.requests} == {UA}
    assert state.user_agent == UA
    assert state.requested == [f"{MAC_FLAT}.boot", "y000000000066.cfg", f"{MAC_FLAT}.cfg"]
    assert [f.status for f in state.fetched] == [200, 200, 200]
    assert state.applied == [f"{MAC_FLAT}.boot", "y000000000066.cfg", f"{MAC_FLAT}.cfg"]
    assert state.errors == [] and state.warnings == []
    assert state.boot_settings == {"overwrite_mode": "1"}
    assert_alice_state(state)


def assert_alice_state(state: PhoneState) -> None:
    acc = state.accounts[1]
    assert acc.enabled and acc.registered
    assert acc.label == "Alice"  # MAC file overrides the common file
    assert acc.display_name == "Alice Smith"
    assert (acc.user_name, acc.auth_name, acc.password) == ("1001", "1001a", "s3cr#t=x")
    assert (acc.server, acc.port, acc.transport) == ("pbx.example.com", 5061, "tls")
    acc2 = state.accounts[2]
    assert acc2.enabled and not acc2.registered  # no server, no password

    blf = state.keys[(0, 3)]
    assert (blf.type, blf.value, blf.label, blf.line, blf.extension) == ("blf", "1002", "Bob", 1, "*8")
    sd = state.keys[(0, 5)]  # type/value from the common file, label overridden by the MAC file
    assert (sd.type, sd.value, sd.label) == ("speed_dial", "0800123", "Front desk")
    assert state.keys[(0, 7)].type == "other:27"
    exp = state.keys[(1, 2)]
    assert (exp.module, exp.slot, exp.type, exp.value, exp.label, exp.line) == (1, 2, "blf", "1010", "Carol", 1)

    assert state.timezone == "+1" and state.timezone_name == "Germany(Berlin)"
    assert state.language is None  # reset by %NULL%
    assert "lang.gui" not in state.settings
    assert state.web_language == "German"
    assert state.settings["features.dnd.enable"] == ""  # empty values are kept
    assert state.settings["account.1.label"] == "Alice"


async def test_fallback_to_common_boot_file_with_absolute_include(http: HttpFixture):
    http.files.update(new_firmware_files())
    del http.files[f"{MAC_FLAT}.boot"]
    http.files["site/extra.cfg"] = "#!version:1.0.0.1\nlinekey.5.label = Site\n"
    http.files["y000000000000.boot"] = (
        "#!version:1.0.0.1\n"
        'include:config "y000000000066.cfg"\n'
        f'include:config "{MAC_FLAT}.cfg"\n'
        f'include:config "{http.url}site/extra.cfg"\n'
    )
    state = await Phone(t46s()).boot_http(http.url)
    assert http.paths == [f"/{MAC_FLAT}.boot", "/y000000000000.boot", "/y000000000066.cfg", f"/{MAC_FLAT}.cfg", "/site/extra.cfg"]
    assert [f.result for f in state.fetched] == ["not_found", "ok", "ok", "ok", "ok"]
    assert state.fetched[0].status == 404
    assert state.errors == []
    assert state.keys[(0, 5)].label == "Site"
    assert state.accounts[1].registered


async def test_new_firmware_falls_back_to_legacy_files(http: HttpFixture):
    http.files.update(new_firmware_files())
    del http.files[f"{MAC_FLAT}.boot"]
    state = await Phone(t46s()).boot_http(http.url.rstrip("/"))
    assert http.paths == [f"/{MAC_FLAT}.boot", "/y000000000000.boot", "/y000000000066.cfg", f"/{MAC_FLAT}.cfg"]
    assert state.errors == []
    assert_alice_state(state)


async def test_legacy_firmware_order(http: HttpFixture):
    http.files.update(new_firmware_files())  # the .boot file exists but old firmware never asks
    state = await Phone(t46s("66.80.0.15")).boot_http(http.url)
    assert http.paths == ["/y000000000066.cfg", f"/{MAC_FLAT}.cfg"]
    assert http.requests[0][1] == "Yealink SIP-T46S 66.80.0.15 80:5e:c0:aa:bb:01"
    assert_alice_state(state)


async def test_legacy_firmware_uses_model_code_not_firmware_prefix(http: HttpFixture):
    await Phone(YealinkProfile("T48S", MAC, "66.73.0.50")).boot_http(http.url)
    await Phone(YealinkProfile("T21P_E2", MAC, "52.80.0.3")).boot_http(http.url)
    await Phone(YealinkProfile("T28P", MAC, "2.73.0.50")).boot_http(http.url)
    assert http.paths == [
        "/y000000000065.cfg", f"/{MAC_FLAT}.cfg",
        "/y000000000052.cfg", f"/{MAC_FLAT}.cfg",
        "/y000000000000.cfg", f"/{MAC_FLAT}.cfg",
    ]  # fmt: skip


async def test_malformed_file_is_recorded_not_fatal(http: HttpFixture):
    http.files.update(new_firmware_files())
    http.files[f"{MAC_FLAT}.cfg"] = MAC_CFG.replace("#!version:1.0.0.1\n", "")
    state = await Phone(t46s()).boot_http(http.url)
    assert len(state.errors) == 1 and f"{MAC_FLAT}.cfg" in state.errors[0]
    assert state.applied == [f"{MAC_FLAT}.boot", "y000000000066.cfg"]
    assert state.accounts[1].label == "Common"  # only the common file applied
    assert not state.accounts[1].registered
    assert state.keys == {(0, 5): state.keys[(0, 5)]}


async def test_malformed_mac_boot_falls_through_to_common_boot(http: HttpFixture):
    http.files.update(new_firmware_files())
    http.files[f"{MAC_FLAT}.boot"] = 'include:config "y000000000066.cfg"\n'
    http.files["y000000000000.boot"] = '#!version:1.0.0.1\ninclude:config "y000000000066.cfg"\n'
    state = await Phone(t46s()).boot_http(http.url)
    assert http.paths == [f"/{MAC_FLAT}.boot", "/y000000000000.boot", "/y000000000066.cfg"]
    assert len(state.errors) == 1 and "rejected" in state.errors[0]


async def test_server_errors_and_unreachable_server_are_recorded(http: HttpFixture):
    state = await Phone(t46s()).boot_http("http://127.0.0.1:9/")  # discard port: refused
    assert state.errors and all(f.result == "error" for f in state.fetched)
    assert len(state.fetched) == 4  # the phone still walks the whole boot path


async def test_many_concurrent_phones_share_a_session(http: HttpFixture):
    http.files.update(new_firmware_files())
    async with aiohttp.ClientSession() as session:
        phones = [Phone(YealinkProfile("T46S", f"80:5e:c0:00:00:{i:02x}", "66.86.0.15"), session=session) for i in range(30)]
        phones.append(Phone(t46s(), session=session))
        states = await asyncio.gather(*(p.boot_http(http.url) for p in phones))
    for st in states[:-1]:  # no per-MAC files: legacy fallback, common file only
        assert st.requested[:2] == [f"{st.mac}.boot", "y000000000000.boot"]
        assert st.accounts[1].label == "Common"
    assert_alice_state(states[-1])
    assert len({id(s) for s in states}) == len(states)


# --- parser and identity units ------------------------------------------------------


def test_parser_rules():
    parsed = parse_config(
        '\ufeff#!version:1.0.0.1\r\n# c\r\n  a.b = 1 # not a comment\r\nc.d=\r\nnonsense\r\ninclude:config "x.cfg"\r\n'.lstrip(
            "\ufeff"
        ),
        boot=False,
    )
    assert parsed.settings == [("a.b", "1 # not a comment"), ("c.d", "")]
    assert len(parsed.warnings) == 2
    boot = parse_config('#!version:1.0.0.1\ninclude:config "a.cfg"\ninclude:config <http://h/b.cfg>\n', boot=True)
    assert boot.includes == ["a.cfg", "http://h/b.cfg"]
    with pytest.raises(ConfigError):
        parse_config("\n#!version:1.0.0.1\n")
    with pytest.raises(ConfigError):
        parse_config("")


@pytest.mark.parametrize(
    ("model", "firmware", "mac", "expected"),
    [
        ("T46S", "66.86.0.15", "80:5E:C0:AA:BB:01", "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"),
        ("SIP-T23G", "44.80.0.60", "001565 9370F2", "Yealink SIP-T23G 44.80.0.60 00:15:65:93:70:f2"),
        ("T18", "18.0.0.80", "00:15:65:27:3e:05", "yealink SIP-T18 18.0.0.80 00:15:65:27:3e:05"),
        ("W52P", "25.80.0.15", "00:15:65:b8:60:05", "Yealink W52P 25.80.0.15 00:15:65:b8:60:05"),
        ("CP860", "37.72.0.5", "00:15:65:8a:37:86", "Yealink CP860 37.72.0.5 00:15:65:8a:37:86"),
        ("CP920", "78.85.0.5", "00:15:65:5e:16:7c", "Yealink SIP-CP920 78.85.0.5 00:15:65:5e:16:7c"),
        ("VP530P", "23.70.0.40", "00:15:65:31:4b:c0", "VP530P 23.70.0.40 00:15:65:31:4b:c0"),
    ],
)
def test_user_agents(model, firmware, mac, expected):
    assert YealinkProfile(model, mac, firmware).user_agent() == expected


def test_old_user_agent_with_hardware_version():
    p = YealinkProfile("T46G", "00:15:65:4a:a9:37", "28.71.0.81", hardware_version="28.1.0.128.0.0.0")
    assert p.user_agent() == "Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0"


#: Composers of the routing engine and the simulators (the scenario runner, `deskprov simulate`):
#: they drive the engine, so they may import provisioning.routing, and nothing else of the server.
COMPOSERS = {"scenario.py", "simulate_cli.py"}


def test_simulator_never_imports_the_server():
    """Devices parse what they get with their own code: no simulator imports the server, and the
    composers only its routing engine (never the renderer, the vendor plugins or the model)."""
    root = pathlib.Path(__file__).resolve().parent.parent / "simulators"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            server = [n for n in names if n == "provisioning" or n.startswith("provisioning.")]
            if path.name in COMPOSERS:
                server = [n for n in server if not n.startswith("provisioning.routing.")]
            assert not server, (path, server)


async def test_cli_prints_state_json(http: HttpFixture):
    http.files.update(new_firmware_files())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.phone", "--vendor", "yealink", "--model", "T46S",
        "--mac", MAC, "--firmware", "66.86.0.15", "--url", http.url,
        stdout=asyncio.subprocess.PIPE, cwd=str(pathlib.Path(__file__).resolve().parent.parent),
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    data = json.loads(out)
    assert data["user_agent"] == UA
    assert data["accounts"]["1"]["registered"] is True
    assert {"module": 1, "slot": 2}.items() <= data["keys"][-1].items()


# --- TFTP -------------------------------------------------------------------------


async def test_tftp_boot_matches_http_boot(http: HttpFixture, tftp_factory):
    http.files.update(new_firmware_files())
    tftp = tftp_factory(new_firmware_files())
    via_http = await Phone(t46s()).boot_http(http.url)
    via_tftp = await Phone(t46s()).boot_tftp("127.0.0.1", tftp.port)

    assert [name for name, _ in tftp.requests] == via_http.requested
    assert all(opts == {"blksize": "1428", "tsize": "0"} for _, opts in tftp.requests)
    assert {f.transport for f in via_tftp.fetched} == {"tftp"}
    a, b = via_http.to_dict(), via_tftp.to_dict()
    a.pop("fetched"), b.pop("fetched")
    assert a == b
    assert_alice_state(via_tftp)


async def test_tftp_boot_not_found_is_normal(tftp_factory):
    files = new_firmware_files()
    del files[f"{MAC_FLAT}.boot"]
    tftp = tftp_factory(files)
    state = await Phone(t46s()).boot_tftp("127.0.0.1", tftp.port)
    assert [f.result for f in state.fetched] == ["not_found", "not_found", "ok", "ok"]
    assert state.fetched[0].status == 1
    assert state.errors == []
    assert_alice_state(state)


def test_tftp_client_oack_blksize_multiblock(tftp_factory):
    payload = bytes(range(256)) * 20 + b"tail"  # 5124 bytes: 3 full 1428-byte blocks + 840
    exact = b"x" * (1428 * 2)  # exact multiple: needs a final empty block
    srv = tftp_factory({"big.bin": payload, "exact.bin": exact})
    client = TftpClient("127.0.0.1", srv.port, timeout=0.5)

    res = client.get("big.bin", blksize=1428, tsize=True)
    assert res.data == payload
    assert (res.blksize, res.tsize, res.blocks) == (1428, len(payload), 4)
    assert res.options == {"blksize": "1428", "tsize": str(len(payload))}
    # The client returns as soon as it has sent the final ACK; give the server thread a moment.
    deadline = time.monotonic() + 2
    while len(srv.acks) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert srv.acks == [0, 1, 2, 3, 4]

    res = client.get("exact.bin", blksize=1428)
    assert res.data == exact and res.blocks == 3


def test_tftp_client_without_server_options_uses_512(tftp_factory):
    payload = b"y" * 1300
    srv = tftp_factory({"f": payload}, options=False)
    res = TftpClient("127.0.0.1", srv.port, timeout=0.5).get("f", blksize=1428, tsize=True)
    assert res.data == payload and res.blksize == 512 and res.blocks == 3 and res.options == {}


def test_tftp_client_error_reply(tftp_factory):
    srv = tftp_factory({})
    with pytest.raises(TftpError) as info:
        TftpClient("127.0.0.1", srv.port, timeout=0.5).get("missing.cfg", blksize=1428)
    assert info.value.code == 1 and info.value.message == "File not found"
    assert info.value.remote and info.value.not_found


def test_tftp_client_ignores_foreign_tid(tftp_factory):
    payload = b"z" * 3000
    srv = tftp_factory({"f": payload}, stray=True)
    res = TftpClient("127.0.0.1", srv.port, timeout=0.5).get("f", blksize=1428)
    assert res.data == payload
    assert srv.stray_reply is not None and struct.unpack("!HH", srv.stray_reply[:4]) == (5, 5)


def test_tftp_client_retransmits_rrq(tftp_factory):
    srv = tftp_factory({"f": b"hello"}, drop_rrqs=1)
    res = TftpClient("127.0.0.1", srv.port, timeout=0.1, retries=3).get("f")
    assert res.data == b"hello" and res.retransmits >= 1
    assert len(srv.requests) >= 2


def test_tftp_client_times_out():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with pytest.raises(TftpTimeout):
            TftpClient("127.0.0.1", silent.getsockname()[1], timeout=0.05, retries=2).get("f")


async def test_tftp_async_wrapper(tftp_factory):
    srv = tftp_factory({"a.cfg": "#!version:1.0.0.1\n"})
    assert await tftp_get_async("127.0.0.1", srv.port, "a.cfg", blksize=1428) == b"#!version:1.0.0.1\n"
