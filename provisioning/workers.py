"""Several server processes sharing the phone-facing ports: ``deskprov serve --workers N``.

One Python process serves cached configs at roughly one core's worth; a boot storm needs all the
cores. Each worker is a complete ``Server`` process that binds the phone HTTP(S) ports with
SO_REUSEPORT, so the kernel spreads incoming connections over them. Worker 0 (the primary)
also runs everything that must exist once: TFTP, SIP plug-and-play, mDNS, the admin listener and
the deactivation job. The others serve phones only.

Every worker is its own node in the change log (see ``provisioning.changes``): a change made
through any of them, or the admin API, or another host, reaches every worker's cache through the
log (at once on PostgreSQL with LISTEN/NOTIFY, within the poll interval on SQLite). Resync push
runs in every worker, for the devices that worker served: a device's address is learnt from its
own fetches, which land on whichever worker the kernel picked.

The supervisor (this module, the process ``deskprov serve`` starts) does no serving: it starts
the workers, restarts one that dies (after a pause that grows if it keeps dying), and on SIGTERM
or SIGINT stops them all and waits for them.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.connection import wait
from typing import Callable

from provisioning import event_loop
from provisioning.settings import Settings

log = logging.getLogger("deskprov.workers")

#: A worker that lived shorter than this is "dying at start": wait longer before the next try.
STABLE_SECONDS = 10.0
MAX_RESTART_DELAY = 30.0
STOP_TIMEOUT = 20.0


def reserve_port(host: str) -> socket.socket:
    """A free port for the workers to share (the setting said 0): bound with SO_REUSEPORT and
    never listened on, so it stays ours and the kernel gives it no connections."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock


def _worker(settings: Settings, index: int) -> None:
    """A worker process's body: one Server until SIGTERM/SIGINT."""
    import importlib

    from provisioning.server import Server, run_until_signalled

    logging.basicConfig(level=settings.log_level.upper(),
                        format=f"%(asctime)s %(levelname)s %(name)s[w{index}]: %(message)s")
    admin_app = importlib.import_module("api.app").make_admin_app if index == 0 else None
    event_loop.run(run_until_signalled(Server(settings, admin_app=admin_app, phone_only=index > 0)),
                   settings.event_loop)


class Supervisor:
    def __init__(self, settings: Settings, target: Callable[[Settings, int], None] = _worker) -> None:
        self._reserved: list[socket.socket] = []
        if settings.http_port == 0:
            self._reserved.append(reserve_port(settings.host))
            settings = settings.replace(http_port=self._reserved[-1].getsockname()[1])
        if settings.tls_cert and settings.https_port == 0:
            self._reserved.append(reserve_port(settings.host))
            settings = settings.replace(https_port=self._reserved[-1].getsockname()[1])
        self.settings = settings
        self._target = target
        self._context = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
        self._workers: dict[int, multiprocessing.Process] = {}
        self._started: dict[int, float] = {}
        self._delay: dict[int, float] = {}
        self._due: dict[int, float] = {}
        self._stopping = False
        self.restarts = 0

    def _start(self, index: int) -> None:
        process = self._context.Process(target=self._target, args=(self.settings, index),
                                        name=f"deskprov-worker-{index}", daemon=False)
        process.start()
        self._workers[index] = process
        self._started[index] = time.monotonic()
        log.info("worker %d started (pid %d)", index, process.pid)

    def stop(self, *_signal) -> None:
        self._stopping = True

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        log.info("%d workers share phone HTTP port %d", self.settings.workers, self.settings.http_port)
        for index in range(self.settings.workers):
            self._start(index)
        try:
            while not self._stopping:
                self._watch()
        finally:
            self._stop_all()
            for sock in self._reserved:
                sock.close()
        return 0

    def _watch(self) -> None:
        alive = [p.sentinel for p in self._workers.values() if p.exitcode is None]
        wait(alive, timeout=0.5)
        now = time.monotonic()
        for index, process in list(self._workers.items()):
            if process.exitcode is None or self._stopping or index in self._due:
                continue
            lived = now - self._started[index]
            delay = 1.0 if lived >= STABLE_SECONDS else min(self._delay.get(index, 0.5) * 2, MAX_RESTART_DELAY)
            self._delay[index] = delay
            self._due[index] = now + delay
            log.error("worker %d (pid %d) exited with %s after %.0f s; restarting in %.0f s",
                      index, process.pid, process.exitcode, lived, delay)
        for index, due in list(self._due.items()):
            if now >= due and not self._stopping:
                del self._due[index]
                self.restarts += 1
                self._start(index)
        if self._due and not self._stopping:
            time.sleep(min(0.2, max(0.0, min(self._due.values()) - now)))

    def _stop_all(self) -> None:
        log.info("stopping %d workers", len(self._workers))
        for process in self._workers.values():
            if process.exitcode is None:
                process.terminate()  # SIGTERM: each stops cleanly
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self._workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                log.error("worker pid %d did not stop in %.0f s; killing it", process.pid, STOP_TIMEOUT)
                process.kill()
                process.join(5)
