"""The event loop a server process runs on.

uvloop (libuv underneath, by the authors of asyncpg) serves the same aiohttp application with
less Python per request; measured in bench/bootstorm.py's cached phase. It is used when it is
installed (a dependency on Linux and macOS) unless ``event_loop = "asyncio"`` asks for the
standard loop; everything deskprov does works on both (the test suite runs on asyncio's, and
the tests that start ``deskprov serve`` as a process on uvloop).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine

log = logging.getLogger("deskprov")


def run(main: Coroutine[Any, Any, Any], choice: str = "uvloop") -> Any:
    """``asyncio.run(main)`` on the chosen loop (asyncio's own if uvloop is not installed)."""
    factory = None
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed: running on asyncio's event loop")
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
