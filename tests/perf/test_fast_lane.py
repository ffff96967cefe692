"""The phone listener's fast lane (provisioning/phone_protocol.py), spoken to over raw sockets.

It answers plain GET/HEAD requests itself (from memory at once, a miss after reading the
database) and must answer exactly as the aiohttp handler does; everything else (pipelining,
static files, query strings, uploads) goes to aiohttp with every byte intact.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import update

from provisioning import http as phone_http
from provisioning.device_auth import REALM, digest_response
from provisioning.model import Device
from conftest import EXAMPLE, fix_device_credentials, import_org

pytestmark = pytest.mark.timeout(60)

MAC = "805ec0aabb01"
UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"
USER, PASSWORD = f"dp{MAC}", f"golden-{MAC}"


@pytest.fixture
async def server(make_server, tmp_path):
    (tmp_path / "tftp_root").mkdir()
    srv = await make_server(tftp_root=str(tmp_path / "tftp_root"))
    await import_org(srv, EXAMPLE.read_text())
    await fix_device_credentials(srv)
    async with srv.sessions() as session:  # provisioned long ago: every fetch must prove itself
        await session.execute(update(Device).values(first_contact_until=None))
        await session.commit()
    return srv


class Connection:
    """One keep-alive connection that answers digest challenges like a phone (one nonce, counting)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.nonce = ""
        self.count = 0

    @classmethod
    async def open(cls, port: int) -> "Connection":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def request(self, path: str, method: str = "GET", extra: str = "", version: str = "1.1",
                uri: str | None = None) -> bytes:
        auth = ""
        if self.nonce:
            self.count += 1
            nc = f"{self.count:08x}"
            response = digest_response(USER, PASSWORD, method, uri or path, self.nonce, nc, "c0ffee")
            auth = (f'Authorization: Digest username="{USER}", realm="{REALM}", nonce="{self.nonce}", '
                    f'uri="{uri or path}", response="{response}", qop=auth, nc={nc}, cnonce="c0ffee"\r\n')
        return f"{method} {path} HTTP/{version}\r\nHost: prov\r\nUser-Agent: {UA}\r\n{auth}{extra}\r\n".encode()

    async def read_answer(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
        length = 0 if head_only or status == 304 else int(headers.get("content-length", 0))
        body = await asyncio.wait_for(self.reader.readexactly(length), 10)
        return status, headers, body

    async def get(self, path: str, **kwargs) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(self.request(path, **kwargs))
        answer = await self.read_answer(head_only=kwargs.get("method") == "HEAD")
        if answer[0] == 401:  # learn the nonce, as a phone does, and ask again
            self.nonce = re.search(r'nonce="([^"]+)"', answer[1]["www-authenticate"]).group(1)
            self.count = 0
            self.writer.write(self.request(path, **kwargs))
            answer = await self.read_answer(head_only=kwargs.get("method") == "HEAD")
        return answer

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_the_lane_answers_cached_and_cold_fetches_as_aiohttp_would(server):
    lane = server.lanes[0]
    phone = await Connection.open(server.http_port)
    status, headers, body = await phone.get(f"/{MAC}.cfg")   # cold: read from the database, in the lane
    assert status == 200 and b"account.1.user_name" in body
    again = await phone.get(f"/{MAC}.cfg")                    # cached: from memory
    assert again[0] == 200 and again[2] == body
    assert lane.handed_over == 0 and lane.answered >= 3       # challenge, cold file, cached file

    # The same file through aiohttp (a query string is aiohttp's to read): the same answer
    status_a, headers_a, body_a = await phone.get(f"/{MAC}.cfg?via=aiohttp", uri=f"/{MAC}.cfg?via=aiohttp")
    assert lane.handed_over == 1
    assert (status_a, body_a) == (status, body)
    for name in ("etag", "cache-control", "content-type", "content-length"):
        assert headers_a[name] == headers[name], name
    await phone.close()


async def test_head_conditional_and_http_1_0(server):
    phone = await Connection.open(server.http_port)
    status, headers, body = await phone.get(f"/{MAC}.cfg")
    head = await phone.get(f"/{MAC}.cfg", method="HEAD")
    assert head[0] == 200 and head[2] == b"" and head[1]["content-length"] == str(len(body))
    unchanged = await phone.get(f"/{MAC}.cfg", extra=f"If-None-Match: {headers['etag']}\r\n")
    assert unchanged[0] == 304 and unchanged[1]["etag"] == headers["etag"] and unchanged[2] == b""
    assert server.lanes[0].handed_over == 0
    # HTTP/1.0 without keep-alive: answered, then the connection ends
    phone.writer.write(phone.request(f"/{MAC}.cfg", version="1.0"))
    status, headers, _ = await phone.read_answer()
    assert status == 200 and headers.get("connection") == "close"
    assert await asyncio.wait_for(phone.reader.read(), 5) == b""
    await phone.close()


async def test_pipelined_requests_go_to_aiohttp_in_order(server):
    phone = await Connection.open(server.http_port)
    await phone.get(f"/{MAC}.cfg")                          # learn the nonce
    phone.writer.write(phone.request(f"/{MAC}.boot") + phone.request(f"/{MAC}.cfg"))
    first, second = await phone.read_answer(), await phone.read_answer()
    assert first[0] == second[0] == 200
    assert b"#!version" in first[2] and b"account.1" in second[2]
    assert server.lanes[0].handed_over == 1
    await phone.close()


async def test_a_request_arriving_during_a_cold_read_waits_its_turn(server):
    """Written right behind a request the lane is still reading the database for: answered
    after it, in order (the lane reads nothing more from the connection until then)."""
    phone = await Connection.open(server.http_port)
    await phone.get(f"/{MAC}.boot")                          # nonce learnt, the device's access cached
    server.cache.clear()                                     # every file cold again
    phone.writer.write(phone.request(f"/{MAC}.cfg"))
    await phone.writer.drain()
    await asyncio.sleep(0)                                   # the lane has taken the first one
    phone.writer.write(phone.request(f"/{MAC}.boot"))
    first, second = await phone.read_answer(), await phone.read_answer()
    assert first[0] == second[0] == 200
    assert b"account.1" in first[2] and b"#!version" in second[2]
    await phone.close()


async def test_static_files_and_odd_requests_are_aiohttps(server):
    static = server.settings.tftp_root / "ringtone.wav"
    static.write_bytes(b"RIFF" + bytes(2000))
    phone = await Connection.open(server.http_port)
    status, headers, body = await phone.get("/ringtone.wav")
    assert status == 200 and body == static.read_bytes() and "public" in headers["cache-control"]
    assert server.lanes[0].handed_over == 1
    await phone.close()


async def test_an_idle_connection_is_closed(server, monkeypatch):
    monkeypatch.setattr(phone_http, "REQUEST_TIMEOUT", 0.3)
    phone = await Connection.open(server.http_port)
    phone.writer.write(b"GET /" + MAC.encode() + b".cfg HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    assert await asyncio.wait_for(phone.reader.read(), 5) == b""
    await phone.close()


async def test_connection_close_is_honoured(server):
    """``Connection: close`` (how many phones and curl ask): answered, then the connection ends,
    a cold fetch (answered after a database read) as well as a cached one."""
    for _ in ("cold", "cached"):
        phone = await Connection.open(server.http_port)
        phone.writer.write(phone.request(f"/{MAC}.cfg", extra="Connection: close\r\n"))
        status, headers, _ = await phone.read_answer()
        assert status == 401 and headers.get("connection") == "close"
        assert await asyncio.wait_for(phone.reader.read(), 5) == b""
        await phone.close()
