"""Enumeration defence for the phone-facing listeners, per source address.

A source whose requests keep being refused (unknown MACs, files that are not its own, failed
authentication) is banned for a while; a source holding more than its share of concurrent
requests gets ``503 Retry-After``. Legitimate phones ask for a handful of files and mostly get
them, so thresholds far above a boot's needs stop a MAC scan after a few dozen guesses without
ever touching a working phone on another address.
"""

from __future__ import annotations

import ipaddress
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Callable, Iterable


@dataclass(frozen=True)
class GuardSettings:
    #: refusals within ``refusal_window`` seconds that get a source banned
    refusal_burst: int = 30
    refusal_window: float = 60.0
    ban_seconds: float = 300.0
    #: concurrent requests one source may have in flight on a listener
    max_concurrent_per_source: int = 32
    #: reverse proxies whose X-Forwarded-For is believed (CIDRs)
    trusted_proxies: tuple[str, ...] = ()


@dataclass
class Verdict:
    allowed: bool
    status: int = 200          # 429 banned, 503 over its concurrency share
    retry_after: int = 0
    reason: str = ""


@dataclass
class _Source:
    refusals: deque = field(default_factory=deque)
    banned_until: float = 0.0
    in_flight: int = 0


class SourceGuard:
    def __init__(self, settings: GuardSettings = GuardSettings(), clock: Callable[[], float] = time.monotonic,
                 log=None) -> None:
        self.settings = settings
        self._clock = clock
        self._sources: dict[str, _Source] = defaultdict(_Source)
        self._proxies = [ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies]
        self._log = log
        self.counters: dict[str, int] = defaultdict(int)

    # -- who is asking -----------------------------------------------------------------------
    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The real client: the rightmost X-Forwarded-For hop not added by a trusted proxy."""
        if not self._proxies or not forwarded_for or not self._trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop if _is_ip(hop) else peer
        return hops[0] if hops and _is_ip(hops[0]) else peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._proxies)

    # -- admission ---------------------------------------------------------------------------
    def admit(self, source: str) -> Verdict:
        """Call before serving; a True verdict must be paired with ``release``."""
        state = self._sources[source]
        now = self._clock()
        if state.banned_until > now:
            self.counters["banned_requests"] += 1
            return Verdict(False, 429, int(state.banned_until - now) + 1, "source is banned")
        if state.in_flight >= self.settings.max_concurrent_per_source:
            self.counters["over_share"] += 1
            return Verdict(False, 503, 1, "source exceeds its concurrency share")
        state.in_flight += 1
        return Verdict(True)

    def release(self, source: str) -> None:
        state = self._sources.get(source)
        if state is not None:
            state.in_flight = max(0, state.in_flight - 1)
            self._forget_if_idle(source, state)

    def refused(self, source: str, reason: str) -> None:
        """Count a refusal; ban the source when they come in a burst."""
        self.counters["refusals"] += 1
        state = self._sources[source]
        now = self._clock()
        window = self.settings.refusal_window
        state.refusals.append(now)
        while state.refusals and state.refusals[0] < now - window:
            state.refusals.popleft()
        if len(state.refusals) >= self.settings.refusal_burst and state.banned_until <= now:
            state.banned_until = now + self.settings.ban_seconds
            state.refusals.clear()
            self.counters["bans"] += 1
            if self._log:
                self._log.warning("banned %s for %.0f s: %d refused requests within %.0f s (last: %s)", source,
                                  self.settings.ban_seconds, self.settings.refusal_burst, window, reason)

    def banned(self) -> list[tuple[str, float]]:
        now = self._clock()
        return [(s, st.banned_until - now) for s, st in self._sources.items() if st.banned_until > now]

    def _forget_if_idle(self, source: str, state: _Source) -> None:
        if not state.in_flight and not state.refusals and state.banned_until <= self._clock():
            self._sources.pop(source, None)

    def sweep(self) -> None:
        """Drop the bookkeeping of sources with nothing pending (bounded memory under a scan)."""
        now = self._clock()
        for source, state in list(self._sources.items()):
            while state.refusals and state.refusals[0] < now - self.settings.refusal_window:
                state.refusals.popleft()
            self._forget_if_idle(source, state)

    def __len__(self) -> int:
        return len(self._sources)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_networks(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(ipaddress.ip_network(v.strip(), strict=False)) for v in values if v.strip())
