"""The phone-facing HTTP listener: GET/HEAD of config files, conditional on the ETag."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from provisioning.certs import mac_from_certificate
from provisioning.serving import Outcome, Provisioner
from provisioning.uploads import UploadError

PROVISIONER = web.AppKey("provisioner", Provisioner)

#: Phones never send large headers; refuse anything bigger early (aiohttp answers 400/431).
MAX_LINE = 4096
MAX_FIELD = 4096
#: Stands for the MAC of a verified client certificate whose names cannot be read: it matches
#: no device, so the request gets common files only (fail closed, not a 500).
UNREADABLE_CERTIFICATE = "unreadable-certificate"
#: Seconds a client may take to send a request head (and an idle keep-alive connection may stay
#: open): aiohttp's own default is an hour, which lets a slowloris hold connections forever.
#: Read by Server._listen when a listener starts.
REQUEST_TIMEOUT = 15.0
#: Seconds a client may take to send an upload's body once its head has arrived.
BODY_TIMEOUT = 30.0


class MalformedRequestNoise(logging.Filter):
    """aiohttp logs every malformed request it refuses (400, 431) at ERROR with a traceback; on
    listeners that face the internet that is noise burying the real errors. Such a record
    becomes one INFO line without the traceback; a handler's failure (500) stays an ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno < logging.ERROR or not isinstance(exc, HttpProcessingError) or exc.code >= 500:
            return True
        detail = (str(exc.message).splitlines() or [""])[0][:200]
        record.msg, record.args = f"{record.getMessage()}: {exc.code} {detail}", None
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)

    @classmethod
    def install(cls, logger: logging.Logger = logging.getLogger("aiohttp.server")) -> None:
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to a fetch: status, headers (Content-Length aside) and body."""

    status: int
    headers: dict[str, str]
    body: bytes = b""


_TEXT = "text/plain; charset=utf-8"


def answer(outcome: Outcome, if_none_match: str | None) -> Answer | None:
    """What a fetch's outcome looks like over HTTP; None for a static file (sent from disk).
    Shared by the aiohttp handler and the memory-only fast lane (provisioning/phone_protocol.py),
    so both answer byte for byte alike."""
    if outcome.challenge:  # the device must prove who it is (HTTP digest, provisioning/device_auth.py)
        return Answer(401, {"WWW-Authenticate": outcome.challenge, "Cache-Control": "no-store",
                            "Content-Type": _TEXT}, b"Unauthorized\n")
    if outcome.status:
        return Answer(outcome.status, {"Retry-After": str(outcome.retry_after), "Content-Type": _TEXT},
                      f"{outcome.reason}\n".encode())
    if outcome.static_path is not None:
        return None
    if outcome.file is None:
        return Answer(404, {"Content-Type": _TEXT}, b"Not Found\n")
    rendered = outcome.file
    headers = {"ETag": rendered.etag, "Cache-Control": "private, no-store" if outcome.mac else "no-cache"}
    if if_none_match and rendered.etag in _etags(if_none_match):
        return Answer(304, headers)
    return Answer(200, {**headers, "Content-Type": rendered.content_type}, rendered.body)


async def _serve(request: web.Request) -> web.StreamResponse:
    provisioner = request.app[PROVISIONER]
    outcome = await provisioner.fetch(
        request.path, user_agent=request.headers.get("User-Agent"),
        client_ip=_client(request), transport="https" if request.secure else "http",
        certificate_mac=certificate_mac(request.transport), authorization=request.headers.get("Authorization"),
        method=request.method,
    )
    reply = answer(outcome, request.headers.get("If-None-Match"))
    if reply is None:
        return web.FileResponse(outcome.static_path, headers={"Cache-Control": "public, max-age=3600"})
    if reply.status == 304:
        return web.Response(status=304, headers=reply.headers)
    return web.Response(status=reply.status, headers=reply.headers, body=reply.body)


def _client(request: web.Request) -> str:
    guard = request.app[PROVISIONER].guard
    return guard.client_address(request.remote or "", request.headers.get("X-Forwarded-For"))


def certificate_mac(transport) -> str | None:
    """The MAC in the device's verified TLS client certificate, if it presented one."""
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    try:
        return mac_from_certificate(der)
    except ValueError:  # a verified certificate whose names do not parse: it may have no device file
        return UNREADABLE_CERTIFICATE


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


async def _upload(request: web.Request) -> web.StreamResponse:
    """Devices PUT local settings and logs (Poly); the body size is capped by client_max_size."""
    provisioner = request.app[PROVISIONER]
    if (request.content_length or 0) > provisioner.settings.max_upload_bytes:
        # refuse a declared oversize body at once instead of waiting for it
        response = web.Response(status=413, text="Request Entity Too Large\n")
        response.force_close()
        return response
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            data = await request.read()  # 413 past client_max_size (also after decompression)
    except TimeoutError:
        response = web.Response(status=408, text="Request Timeout\n")
        response.force_close()  # the connection ends after this (aiohttp drains <= 10 s more of the body)
        return response
    except RequestPayloadError:  # e.g. a Content-Encoding that does not decode
        response = web.Response(status=400, text="Bad Request\n")
        response.force_close()
        return response
    try:
        outcome = await provisioner.store(request.path, data, user_agent=request.headers.get("User-Agent"),
                                          client_ip=_client(request))
    except UploadError as exc:
        return web.Response(status=507, text=f"{exc.strerror}\n")
    if outcome.status:  # banned, over its share, or the database is away
        return web.Response(status=outcome.status, text=f"{outcome.reason}\n",
                            headers={"Retry-After": str(outcome.retry_after)})
    if not outcome.found:
        return web.Response(status=404, text="Not Found\n")
    return web.Response(status=204)


async def _not_allowed(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD", "PUT"])


def make_phone_app(provisioner: Provisioner) -> web.Application:
    app = web.Application(client_max_size=provisioner.settings.max_upload_bytes)
    app[PROVISIONER] = provisioner
    app.router.add_get("/{path:.*}", _serve)  # HEAD too
    app.router.add_put("/{path:.*}", _upload)
    app.router.add_route("*", "/{path:.*}", _not_allowed)
    return app
