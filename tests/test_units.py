"""Small pieces with sharp edges: MACs, settings, the cache's bookkeeping, time zones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning.cache import ConfigCache, Refusal, RenderedFile
from provisioning.mac import MacError, normalize_mac
from provisioning.serving import BadPath, clean_path
from provisioning.settings import SettingsError, load_settings
from provisioning.timezones import observes_dst, offset_hours, posix_tz


@pytest.mark.parametrize("text", ["80:5E:C0:AA:BB:01", "80-5e-c0-aa-bb-01", "805e.c0aa.bb01", "805EC0AABB01",
                                  " 80:5e:c0:aa:bb:01 "])
def test_mac_spellings(text):
    assert normalize_mac(text) == "805ec0aabb01"


@pytest.mark.parametrize("text", ["", "80:5E:C0:AA:BB", "80:5E:C0:AA:BB:01:02", "80:5E-C0:AA:BB:01",
                                  "g0:5e:c0:aa:bb:01", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff",
                                  "01:00:5e:00:00:01", "805ec0aabb01x", "80:5e:c0:aa:bb:01\x00", None, 805])
def test_not_macs(text):
    with pytest.raises(MacError):
        normalize_mac(text)


@given(st.text(max_size=40))
def test_mac_parser_never_crashes(text):
    try:
        assert len(normalize_mac(text)) == 12
    except MacError:
        pass


@given(st.text(max_size=300))
def test_clean_path_accepts_only_plain_relative_names(text):
    try:
        path = clean_path(text)
    except BadPath:
        return
    assert ".." not in path.split("/") and not path.startswith("/") and "\\" not in path and "\x00" not in path


def test_settings_layers(tmp_path):
    toml = tmp_path / "deskprov.toml"
    toml.write_text('http_port = 9000\nntp_server = "ntp.example.net"\n')
    settings = load_settings({"api_port": 9100}, environ={"DESKPROV_CONFIG": str(toml), "DESKPROV_HTTP_PORT": "9001",
                                                         "DESKPROV_TFTP_PORT": "1069"})
    assert (settings.http_port, settings.api_port, settings.tftp_port) == (9001, 9100, 1069)
    assert settings.ntp_server == "ntp.example.net"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")


@pytest.mark.parametrize("environ, words", [
    ({"DESKPROV_HTTP_PORT": "80a"}, "http_port must be a int"),
    ({"DESKPROV_API_PORT": "70000"}, "port number"),
])
def test_bad_settings(environ, words):
    with pytest.raises(SettingsError, match=words):
        load_settings(environ=environ)


def test_unknown_setting_in_file(tmp_path):
    toml = tmp_path / "deskprov.toml"
    toml.write_text("htp_port = 9000\n")
    with pytest.raises(SettingsError, match="unknown setting 'htp_port'"):
        load_settings(environ={"DESKPROV_CONFIG": str(toml)})


def test_cache_invalidates_exactly_the_dependents():
    cache = ConfigCache()
    a, b = RenderedFile.of(b"a", "text/plain"), RenderedFile.of(b"b", "text/plain")
    cache.put(("yealink", "m1", "m1.cfg"), a, {("device", 1), ("user", 10), ("user", 11)})
    cache.put(("yealink", "m2", "m2.cfg"), b, {("device", 2), ("user", 11)})
    cache.put(("yealink", None, "y000000000066.cfg"), a, ())
    assert cache.invalidate({("user", 10)}) == 1
    assert cache.get(("yealink", "m1", "m1.cfg")) is None
    assert cache.get(("yealink", "m2", "m2.cfg")) is b
    assert cache.invalidate({("user", 11)}) == 1
    assert len(cache) == 1  # only the common file is left
    assert cache.invalidate({("user", 11)}) == 0


def test_negative_entries_are_bounded():
    cache = ConfigCache(max_negative=100)
    for i in range(1000):
        cache.put(("yealink", f"{i:012x}", f"{i:012x}.cfg"), Refusal("unknown MAC"), {("mac", f"{i:012x}")})
    assert len(cache) == 100
    cache.put(("yealink", "x", "x.cfg"), RenderedFile.of(b"x", "text/plain"), {("device", 1)})
    assert cache.get(("yealink", "x", "x.cfg")) is not None


def test_etag_follows_content():
    assert RenderedFile.of(b"a", "t").etag == RenderedFile.of(b"a", "t").etag != RenderedFile.of(b"b", "t").etag


@pytest.mark.parametrize("zone, rule, offset, dst", [
    ("Europe/Stockholm", "CET-1CEST,M3.5.0,M10.5.0/3", "+1", True),
    ("Europe/London", "GMT0BST,M3.5.0/1,M10.5.0", "0", True),
    ("Asia/Kolkata", "IST-5:30", "+5.5", False),
])
def test_time_zones(zone, rule, offset, dst):
    assert (posix_tz(zone), offset_hours(zone), observes_dst(zone)) == (rule, offset, dst)


def test_the_event_loop_setting_names_a_loop_deskprov_knows():
    import asyncio

    from provisioning import event_loop
    from provisioning.settings import SettingsError, load_settings

    assert load_settings({}, environ={}).event_loop == "uvloop"
    assert load_settings({}, environ={"DESKPROV_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(SettingsError, match="event_loop must be one of uvloop, asyncio"):
        load_settings({"event_loop": "tokio"}, environ={})

    async def loop_name() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert event_loop.run(loop_name(), "uvloop").startswith("uvloop")
    assert event_loop.run(loop_name(), "asyncio").startswith("asyncio")
