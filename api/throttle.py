"""Login throttling per account and per source address, on the server's clock.

After ``per_account`` failed logins for one account within ``window``, that account's logins
are refused (429, Retry-After) until the oldest failure ages out, even with the right
password; the same for ``per_address`` failures from one address over any accounts. Counters
live in the process (a multi-node deployment throttles per node); memory is bounded.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import timedelta

from provisioning.clock import Clock


class LoginThrottle:
    def __init__(self, clock: Clock, per_account: int = 5, per_address: int = 20,
                 window: timedelta = timedelta(minutes=15), max_keys: int = 100_000) -> None:
        self.clock = clock
        self.per_account = per_account
        self.per_address = per_address
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque] = OrderedDict()

    def _recent(self, key: tuple[str, str]) -> deque:
        times = self._failures.get(key)
        if times is None:
            return deque()
        horizon = self.clock.now() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, account: str, address: str) -> int | None:
        """Seconds until a login for ``account`` from ``address`` may be tried, or None if now."""
        waits = []
        for key, limit in ((("account", account), self.per_account), (("address", address), self.per_address)):
            times = self._recent(key)
            if len(times) >= limit:
                waits.append((times[-limit] + self.window - self.clock.now()).total_seconds())
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, account: str, address: str) -> None:
        now = self.clock.now()
        for key in (("account", account), ("address", address)):
            self._failures.setdefault(key, deque(maxlen=max(self.per_account, self.per_address))).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        self._failures.pop(("account", account), None)
