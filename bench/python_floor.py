"""The Python floor: the least one CPython process can do per cached, digest-checked request here.

A third baseline for the cached-HTTP phase, beside nginx. It serves the same pre-rendered files
from a dict with uvloop and llhttp (httptools), the same stack as deskprov's fast lane, and checks
every device file's digest answer with deskprov's own ``parse_authorization`` and
``DigestAuthority`` (fresh nonce counts, as deskprov does). Nothing else: no source guard, no
identification of the phone, no access facts, no fetch audit, no inbox, no resync tracking, none
of the fast lane's checks of the request head. So it is not a server to use; it tells how much
of deskprov's gap to nginx is the language and the digest check (this floor's gap) and how much
is deskprov's own per-request work (the rest).

Usage: ``python bench/python_floor.py PORT CONF`` where CONF is a JSON file
``{"root": dir, "credentials": {username: password}, "protected": [path, ...]}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httptools

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provisioning import event_loop  # noqa: E402
from provisioning.device_auth import Check, DigestAuthority, parse_authorization  # noqa: E402


def _answer(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra) \
        + body


class Floor(asyncio.Protocol):
    def __init__(self, files: dict[str, bytes], protected: set[str], credentials: dict[str, str],
                 digest: DigestAuthority) -> None:
        self.files, self.protected, self.credentials, self.digest = files, protected, credentials, digest
        self.parser = httptools.HttpRequestParser(self)
        self.url, self.authorization = b"", None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"authorization":
            self.authorization = value.decode("latin-1")

    def on_message_complete(self) -> None:
        path, authorization = self.url.decode("latin-1"), self.authorization
        self.url, self.authorization = b"", None
        body = self.files.get(path)
        if body is None:
            return self.transport.write(_answer(b"404 Not Found", b"Not Found\n"))
        if path in self.protected:
            params = parse_authorization(authorization)
            password = self.credentials.get(params.get("username", "")) if params else None
            if password is None or self.digest.check(params, method="GET", path=path, username=params["username"],
                                                     password=password) is not Check.ok:
                challenge = b"WWW-Authenticate: %s\r\n" % self.digest.challenge().encode()
                return self.transport.write(_answer(b"401 Unauthorized", b"Unauthorized\n", challenge))
        self.transport.write(_answer(b"200 OK", body))


async def serve(port: int, conf: dict) -> None:
    root = Path(conf["root"])
    files = {"/" + p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    protected, credentials, digest = set(conf["protected"]), conf["credentials"], DigestAuthority()
    server = await asyncio.get_running_loop().create_server(
        lambda: Floor(files, protected, credentials, digest), "127.0.0.1", port, backlog=4096)
    await server.serve_forever()


if __name__ == "__main__":
    event_loop.run(serve(int(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())), "uvloop")
