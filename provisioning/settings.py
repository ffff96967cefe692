"""One settings object for every deskprov command.

Values come from, in rising priority: built-in defaults, an optional TOML file
(``DESKPROV_CONFIG``), ``DESKPROV_*`` environment variables, and command-line flags.
The defaults are the ones ``make run`` needs: everything on 127.0.0.1, SQLite under ``var/``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from provisioning import PROJECT_ROOT


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    http_port: int = 8080
    api_port: int = 8081
    tftp_port: int = 6969
    #: TFTP sessions open at once, in all and from one client address (the NAT of one site);
    #: beyond them a request gets ERROR 0 "server busy" and the phone retries.
    tftp_max_sessions: int = 500
    tftp_max_sessions_per_client: int = 20
    data_dir: Path = PROJECT_ROOT / "var"
    db: str = ""  # SQLAlchemy URL; empty means SQLite in data_dir
    templates_dir: Path = PROJECT_ROOT / "templates" / "phones"
    tftp_root: Path = PROJECT_ROOT / "tftp_root"
    #: The URL phones are told to provision from (written into boot/common files).
    #: Empty: derived from host and http_port.
    public_url: str = ""
    #: Defaults for organisations that do not set their own.
    default_timezone: str = "Europe/Stockholm"
    default_language: str = "sv"
    ntp_server: str = "pool.ntp.org"
    #: Resync polling: phones re-check their config every this many minutes, randomised
    #: per device within +-resync_jitter_minutes so a fleet never polls in step.
    resync_interval_minutes: int = 1440
    resync_jitter_minutes: int = 120
    #: Enumeration defence (provisioning/guard.py): refusals of one source within the window that
    #: get it banned, for how long, and how many requests one source may have in flight.
    guard_refusal_burst: int = 60
    guard_refusal_window: int = 60
    guard_ban_seconds: int = 300
    guard_max_concurrent_per_source: int = 32
    #: HTTPS for phones: on when a certificate is given. With ``tls_client_ca`` (a file or a
    #: directory of the vendors' CA bundles) devices may present their factory certificate, and
    #: must when ``tls_require_client_cert`` is set; a device then gets only its own files.
    https_port: int = 8443
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    tls_require_client_cert: bool = False
    #: SIP plug-and-play (provisioning/discovery/pnp.py): the multicast group and port phones
    #: SUBSCRIBE to, and the address of the interface to listen on. Loopback by default: the
    #: operator names the LAN interface's address, so nothing leaves the host unless asked.
    pnp_enabled: bool = True
    pnp_group: str = "224.0.1.75"
    pnp_port: int = 5060
    pnp_interface: str = "127.0.0.1"
    #: mDNS (provisioning/discovery/mdns.py): advertise the provisioning service and put devices
    #: that announce themselves in the inbox, on the pnp_interface address. Off by default.
    mdns_enabled: bool = False
    #: Resync push (provisioning/sync.py): the address NOTIFYs are sent from (the LAN address in
    #: production) and how long changes to one device are gathered before one NOTIFY goes out.
    sip_source_address: str = "127.0.0.1"
    resync_debounce_seconds: int = 5
    #: Reverse proxies (comma-separated CIDRs) whose X-Forwarded-For names the real client.
    trusted_proxies: str = ""
    #: Largest file a device may upload (Poly local settings, logs); bigger ones get 413.
    max_upload_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    #: Admin API sessions: a browser-session cookie lasts at most this many hours on the server,
    #: "keep me logged in" this many days.
    session_hours: int = 12
    remember_days: int = 30
    #: Mark the session cookie Secure (on whenever the admin side is served over HTTPS).
    cookie_secure: bool = False
    #: How often deactivation dates and expired sessions are checked.
    deactivation_check_seconds: int = 60
    #: Largest profile picture accepted (bigger ones get 413).
    max_picture_bytes: int = 2 * 1024 * 1024
    #: Key(s) that seal SIP passwords and device credentials in the database (provisioning/secretbox.py):
    #: base64 32-byte keys, comma-separated, the first seals. Empty: a key file in data_dir, made
    #: on first start. Nodes sharing one PostgreSQL database must all be given the same key here.
    secret_key: str = dataclasses.field(default="", repr=False)
    #: Fetch audit trail (provisioning/fetch_audit.py): rows older than this many days are deleted
    #: (0 keeps them forever).
    fetch_audit_retention_days: int = 90
    #: Bytes of rendered files and device snapshots each server process keeps (least recently
    #: used evicted first; an evicted file is rendered again when next asked for).
    cache_max_bytes: int = 128 * 1024 * 1024
    #: Processes serving the phone HTTP(S) ports together (SO_REUSEPORT). The first also runs
    #: TFTP, plug-and-play, mDNS, the admin listener and the periodic jobs.
    workers: int = 1
    #: The event loop servers run on: "uvloop" (libuv; used when installed) or "asyncio".
    event_loop: str = "uvloop"

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite+aiosqlite:///{self.data_dir / 'deskprov.sqlite3'}"

    @property
    def provisioning_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/") + "/"
        return f"http://{self.host}:{self.http_port}/"

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **_coerce_all(changes))


_ENV_PREFIX = "DESKPROV_"
EVENT_LOOPS = ("uvloop", "asyncio")


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = kinds.get(name)
    if kind is None:
        raise SettingsError(f"unknown setting {name!r}")
    if value is None:
        return None
    try:
        if kind == "int":
            number = int(value)
            if name.endswith("_port") and not 0 <= number <= 65535:
                raise SettingsError(f"{name} must be a port number 0-65535, not {value!r}")
            if name.startswith("tftp_max_sessions") and number < 1:
                raise SettingsError(f"{name} must be at least 1, not {value!r}")
            if name == "workers" and not 1 <= number <= 64:
                raise SettingsError(f"workers must be 1-64, not {value!r}")
            if name == "fetch_audit_retention_days" and number < 0:
                raise SettingsError(f"fetch_audit_retention_days must not be negative, not {value!r}")
            if name == "cache_max_bytes" and number < 0:
                raise SettingsError(f"cache_max_bytes must not be negative, not {value!r}")
            return number
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise SettingsError(f"{name} must be true or false, not {value!r}")
        if kind == "Path":
            return Path(value).expanduser().resolve()
        if name == "event_loop" and value not in EVENT_LOOPS:
            raise SettingsError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {value!r}")
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(f"{name} must be a {kind}, not {value!r}") from exc
    return value


def _coerce_all(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _coerce(k, v) for k, v in values.items() if v is not None}


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings: defaults < TOML file < environment < explicit overrides (CLI flags)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_file = env.get(_ENV_PREFIX + "CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                values.update(tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read settings file {config_file}: {exc}") from exc
    known = {f.name for f in fields(Settings)}
    for name in known:
        raw = env.get(_ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return Settings(**_coerce_all(values))
