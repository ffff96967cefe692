"""The ``deskprov`` command: serve, import, export, db, admin, superadmin, secrets.

Every command reads the same settings (``DESKPROV_*`` environment variables, flags override).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from pathlib import Path

from provisioning import event_loop
from provisioning.settings import Settings, SettingsError, load_settings


def _add_settings_flags(parser: argparse.ArgumentParser, listeners: bool = False) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (env DESKPROV_DB); default SQLite in the data dir")
    parser.add_argument("--data-dir", help="where the SQLite database and uploads live (env DESKPROV_DATA_DIR)")
    if listeners:
        parser.add_argument("--host", help="address to listen on (env DESKPROV_HOST)")
        parser.add_argument("--http-port", type=int, help="phone-facing HTTP port (env DESKPROV_HTTP_PORT)")
        parser.add_argument("--api-port", type=int, help="admin API and web UI port (env DESKPROV_API_PORT)")
        parser.add_argument("--tftp-port", type=int, help="TFTP port (env DESKPROV_TFTP_PORT)")
        parser.add_argument("--workers", type=int,
                            help="processes sharing the phone HTTP(S) ports (env DESKPROV_WORKERS; default 1)")


def _settings(args: argparse.Namespace) -> Settings:
    names = ("db", "data_dir", "host", "http_port", "api_port", "tftp_port", "workers")
    return load_settings({n: getattr(args, n, None) for n in names})


def _admin_app_factory():
    """The admin side lives in ``api`` (which depends on the core, not the other way round)."""
    return importlib.import_module("api.app").make_admin_app


async def _serve(settings: Settings) -> int:
    from provisioning.server import Server, run_until_signalled

    await run_until_signalled(Server(settings, admin_app=_admin_app_factory()))
    return 0


async def _with_session(settings: Settings, work):
    from provisioning.changes import tracked_sessionmaker
    from provisioning.db import engine_for, upgrade
    from provisioning.key_rotation import check_key

    engine = engine_for(settings)
    try:
        await upgrade(engine)
        await check_key(engine)  # never seal new secrets under a key the other nodes do not have
        async with tracked_sessionmaker(engine, [])() as session:
            return await work(session)
    finally:
        await engine.dispose()


async def _import(settings: Settings, path: str) -> int:
    from provisioning.orgfile import OrgFileError, import_text

    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        print(f"deskprov import: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        report = await _with_session(
            settings, lambda s: import_text(s, data, source=path, media_dir=settings.data_dir / "messages"))
    except OrgFileError as exc:
        print(exc.format(), file=sys.stderr)
        print("deskprov import: nothing was changed", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


async def _export(settings: Settings, organization: str | None, with_secrets: bool) -> int:
    from sqlalchemy import select

    from provisioning.model import Organization
    from provisioning.orgfile import export

    async def work(session):
        names = [organization] if organization else \
            (await session.execute(select(Organization.name).order_by(Organization.name))).scalars().all()
        return [await export(session, name, with_secrets) for name in names]

    try:
        documents = await _with_session(settings, work)
    except LookupError as exc:
        print(f"deskprov export: {exc.args[0]}", file=sys.stderr)
        return 1
    sys.stdout.write("---\n".join(documents))
    return 0


def _read_password(from_stdin: bool) -> str | None:
    """The password from the first line of stdin, or asked for on the terminal (never argv)."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n") or None
    import getpass

    if not sys.stdin.isatty():
        print("deskprov: give --password-stdin to read the password from standard input", file=sys.stderr)
        return None
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Again: "):
        print("deskprov: the passwords differ", file=sys.stderr)
        return None
    return first


async def _create_account(settings: Settings, args: argparse.Namespace) -> int:
    from provisioning.accounts import AccountError, create_org_admin, create_superadmin
    from provisioning.clock import SystemClock
    from provisioning.passwords import WeakPassword

    password = _read_password(args.password_stdin)
    if password is None:
        print(f"deskprov {args.command}: no password given; nothing was changed", file=sys.stderr)
        return 2
    now = SystemClock().now()
    try:
        if args.command == "superadmin":
            admin = await _with_session(settings, lambda s: create_superadmin(s, args.username, password, now,
                                                                              name=args.name or ""))
            print(f"super admin {admin.username} created")
        else:
            if not (args.number or args.username):
                print("deskprov admin create: give --number or --username", file=sys.stderr)
                return 2
            user, created = await _with_session(settings, lambda s: create_org_admin(
                s, args.organization, password, now, number=args.number, username=args.username, name=args.name))
            print(f"{'created' if created else 'updated'} admin {user.name} (user {user.id}) of {args.organization}")
    except (AccountError, WeakPassword) as exc:
        print(f"deskprov {args.command} create: {exc}", file=sys.stderr)
        return 1
    return 0


async def _db(settings: Settings, action: str) -> int:
    from provisioning.db import engine_for, revision, upgrade

    engine = engine_for(settings)
    try:
        if action == "upgrade":
            await upgrade(engine)
        current, head = await revision(engine)
        print(f"database {settings.database_url}: revision {current or 'none'} (newest {head})")
    finally:
        await engine.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deskprov", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (env DESKPROV_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the phone-facing HTTP/TFTP listeners and the admin API")
    _add_settings_flags(serve, listeners=True)

    imp = sub.add_parser("import", help="create or update an organisation from a YAML file ('-' for stdin)")
    imp.add_argument("file")
    _add_settings_flags(imp)

    exp = sub.add_parser("export", help="write organisations as YAML (the import format) to stdout")
    exp.add_argument("--organization", "-o", help="only this organisation (default: all)")
    exp.add_argument("--secrets", action="store_true",
                     help="include SIP credentials and password hashes (handle with care)")
    _add_settings_flags(exp)

    admin = sub.add_parser("admin", help="organisation admins: 'admin create' makes (or promotes) one")
    admin.add_argument("action", choices=["create"])
    admin.add_argument("--organization", required=True, help="the organisation's name")
    admin.add_argument("--number", help="the admin's fixed number (login); an existing user is promoted")
    admin.add_argument("--username", help="a username to log in with (instead of or beside the number)")
    admin.add_argument("--name", help="the admin's name (for a new user)")
    admin.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input")
    _add_settings_flags(admin)

    superadmin = sub.add_parser("superadmin", help="provider staff: 'superadmin create' makes one")
    superadmin.add_argument("action", choices=["create"])
    superadmin.add_argument("--username", required=True)
    superadmin.add_argument("--name", help="display name")
    superadmin.add_argument("--password-stdin", action="store_true",
                            help="read the password from the first line of standard input")
    _add_settings_flags(superadmin)

    db = sub.add_parser("db", help="database schema ('revision' is for developers: autogenerate the next migration)")
    db.add_argument("action", choices=["upgrade", "current", "revision"])
    db.add_argument("--message", "-m", default="schema change", help="with 'revision': what the migration does")
    _add_settings_flags(db)

    bind = sub.add_parser("bind", help="bind a device to a user (its line 1): 'deskprov bind MAC USER'")
    bind.add_argument("mac", help="the device's MAC, any spelling")
    bind.add_argument("user", help="the user's number (any spelling), extension or username")
    bind.add_argument("--model", help="e.g. 'Yealink T46S' (default: what the device said when seen)")
    _add_settings_flags(bind)

    inbox = sub.add_parser("inbox", help="devices seen but not bound to a user, newest first")
    _add_settings_flags(inbox)

    discover = sub.add_parser("discover", help="look for devices on the LAN and list them live")
    discover.add_argument("--snmp", metavar="CIDR", action="append", default=[],
                          help="scan these hosts/networks with SNMP (repeatable)")
    discover.add_argument("--community", default="public", help="SNMP v2c community")
    discover.add_argument("--snmp-port", type=int, default=161, help="SNMP port of the scanned hosts")
    discover.add_argument("--mdns", action="store_true", help="browse mDNS announcements")
    discover.add_argument("--pnp", action="store_true", help="answer SIP plug-and-play SUBSCRIBEs meanwhile")
    discover.add_argument("--interface", default=None,
                          help="address of the LAN interface for mDNS and PnP (default: the pnp_interface setting)")
    discover.add_argument("--seconds", type=float, default=10.0, help="how long to listen")
    _add_settings_flags(discover)

    dhcp = sub.add_parser("dhcp", help="DHCP helpers for the technician")
    dhcp_kinds = dhcp.add_subparsers(dest="dhcp_command", required=True)
    snippet = dhcp_kinds.add_parser("snippet", help="option 66/43/160/150/114 lines per vendor class")
    snippet.add_argument("--server", required=True, choices=["isc", "kea", "dnsmasq"])
    snippet.add_argument("--url", help="provisioning URL (default: the server's)")
    snippet.add_argument("--tftp-server", help="IP of a TFTP server for Cisco option 150")
    snippet.add_argument("--vendor", action="append", help="only these vendors (repeatable)")
    _add_settings_flags(snippet)

    cert = sub.add_parser("cert", help="write a self-signed server certificate and key (labs and tests)")
    cert.add_argument("names", nargs="+", help="host names and IP addresses the phones use")
    cert.add_argument("--out", default=None, help="directory (default: <data dir>/tls)")
    cert.add_argument("--days", type=int, default=825)
    _add_settings_flags(cert)

    secrets_cmd = sub.add_parser("secrets", help="the key sealing SIP passwords and device credentials at rest")
    secrets_cmd.add_argument("action", choices=["new-key", "rotate", "check"],
                             help="new-key: print a fresh key; rotate: re-seal every secret under the first key "
                                  "of secret_key (give 'NEW,OLD'); check: open a sample of the stored secrets")
    _add_settings_flags(secrets_cmd)

    # composes the routing engine with the simulators: loaded by name, the core imports no simulator
    importlib.import_module("simulators.simulate_cli").add_simulate_parser(sub)
    return parser


async def _secrets(settings: Settings, action: str) -> int:
    """Rotation: set DESKPROV_SECRET_KEY="NEW,OLD" on every node, run ``secrets rotate`` once,
    then drop OLD from the setting."""
    from provisioning.db import engine_for, upgrade
    from provisioning.key_rotation import check_key, rotate

    engine = engine_for(settings)
    try:
        await upgrade(engine)
        if action == "check":
            print(f"secret key {engine_key_id(engine)} opens the stored secrets ({await check_key(engine)} checked)")
            return 0
        report = await rotate(engine)
    finally:
        await engine.dispose()
    for name, count in report.resealed.items():
        print(f"{name}: {count} re-sealed")
    print(f"{report.total} values re-sealed under key {engine_key_id(engine)}, {report.current} already under it"
          + (f", {report.skipped} changed meanwhile (sealed by their writer)" if report.skipped else "")
          + "; older keys can now be removed from secret_key")
    return 0


def engine_key_id(engine) -> str:
    from provisioning.secretbox import box_of

    return box_of(engine.sync_engine.dialect).key_id


async def _bind(settings: Settings, args: argparse.Namespace) -> int:
    from provisioning.discovery.inbox import BindError, bind
    from provisioning.mac import MacError

    async def work(session):
        device = await bind(session, args.mac, args.user, model=args.model)
        await session.commit()
        return device

    try:
        device = await _with_session(settings, work)
    except (BindError, MacError) as exc:
        print(f"deskprov bind: {exc}; nothing was changed", file=sys.stderr)
        return 1
    print(f"bound {device.mac} ({device.vendor or 'vendor not yet known'} {device.model or ''}) to {args.user}")
    return 0


async def _inbox(settings: Settings) -> int:
    from provisioning.discovery.inbox import Inbox

    entries = await _with_session(settings, Inbox.unbound)
    print(f"{'MAC':12}  {'seen by':7}  {'address':15}  {'vendor':11}  {'model':10}  {'firmware':16}  last seen")
    for e in entries:
        print(f"{e.mac:12}  {e.how:7}  {e.ip or '':15}  {e.vendor or '':11}  {e.model or '':10}  "
              f"{e.firmware or '':16}  {e.last_seen_at:%Y-%m-%d %H:%M:%S}")
    print(f"{len(entries)} unbound device(s)")
    return 0


async def _discover(settings: Settings, args: argparse.Namespace) -> int:
    from provisioning.discovery.live import discover

    try:
        return await discover(settings, snmp=args.snmp, snmp_port=args.snmp_port, community=args.community,
                              mdns=args.mdns, pnp=args.pnp,
                              interface=args.interface or settings.pnp_interface, seconds=args.seconds)
    except ValueError as exc:
        print(f"deskprov discover: {exc}", file=sys.stderr)
        return 2


def _dhcp(settings: Settings, args: argparse.Namespace) -> int:
    from provisioning.dhcp import DhcpSnippetError, render_snippet

    try:
        print(render_snippet(args.server, args.url or settings.provisioning_url, tftp_server=args.tftp_server,
                             vendors=args.vendor), end="")
    except DhcpSnippetError as exc:
        print(f"deskprov dhcp snippet: {exc}", file=sys.stderr)
        return 2
    return 0


def _cert(settings: Settings, args: argparse.Namespace) -> int:
    from provisioning.certs import self_signed, write_pair

    try:
        cert_path, key_path = write_pair(Path(args.out) if args.out else settings.data_dir / "tls", "server",
                                         *self_signed(tuple(args.names), days=args.days))
    except (ValueError, OSError) as exc:
        print(f"deskprov cert: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {cert_path} and {key_path}; serve HTTPS with DESKPROV_TLS_CERT={cert_path} "
          f"DESKPROV_TLS_KEY={key_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "simulate":  # needs no settings or database
        return importlib.import_module("simulators.simulate_cli").run_simulate(args)
    if args.command == "secrets" and args.action == "new-key":  # needs no settings or database
        from provisioning.secretbox import new_key_text

        print(new_key_text())
        return 0
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"deskprov: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=(args.log_level or settings.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from provisioning.secretbox import SecretKeyError

    try:
        return _run(args, settings)
    except SecretKeyError as exc:  # the wrong key, or a damaged one: say so and stop (exit 2, no traceback)
        print(f"deskprov {args.command}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        if settings.workers > 1:
            from provisioning.workers import Supervisor

            return Supervisor(settings.replace(log_level=args.log_level or settings.log_level)).run()
        return event_loop.run(_serve(settings), settings.event_loop)
    if args.command == "import":
        return asyncio.run(_import(settings, args.file))
    if args.command == "export":
        return asyncio.run(_export(settings, args.organization, args.secrets))
    if args.command in ("admin", "superadmin"):
        return asyncio.run(_create_account(settings, args))
    if args.command == "bind":
        return asyncio.run(_bind(settings, args))
    if args.command == "inbox":
        return asyncio.run(_inbox(settings))
    if args.command == "discover":
        return asyncio.run(_discover(settings, args))
    if args.command == "dhcp":
        return _dhcp(settings, args)
    if args.command == "cert":
        return _cert(settings, args)
    if args.command == "secrets":
        return asyncio.run(_secrets(settings, args.action))
    if args.action == "revision":
        from provisioning.db import new_revision

        print(f"wrote {new_revision(args.message)}; read it and tidy it before committing")
        return 0
    return asyncio.run(_db(settings, args.action))


if __name__ == "__main__":
    sys.exit(main())
