"""The static baselines: the same files pre-rendered to disk, served by nginx (HTTP) and tftpd-hpa (TFTP).

Both run as the benchmark's own processes on loopback high ports with their own configuration,
pid file and logs in a temporary directory; the packages' system services are never started.
Missing packages are installed with apt-get (Debian: ``nginx-light`` or ``nginx``, ``tftpd-hpa``,
``wrk``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import free_port

NGINX_CONF = """
worker_processes {workers};
worker_rlimit_nofile {nofile};
daemon off;
master_process on;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; multi_accept on; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    default_type text/plain;
    {open_file_cache}
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {root};
        location / {{ }}
    }}
}}
"""

APT_PACKAGES = {"nginx": ("nginx-light", "nginx"), "in.tftpd": ("tftpd-hpa",), "wrk": ("wrk",)}


def ensure_tool(binary: str) -> str | None:
    """Path of ``binary``, installing its Debian package when it is missing (None if that fails)."""
    found = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # policy-rc.d keeps the packages' services from being started by the install
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = not policy.exists()
    if added_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        for package in APT_PACKAGES.get(binary, (binary,)):
            r = subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, capture_output=True,
                               timeout=900)
            if r.returncode == 0:
                break
    finally:
        if added_policy:
            policy.unlink(missing_ok=True)
    return shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)


def make_world_readable(root: Path) -> None:
    """nginx workers and tftpd-hpa run as nobody: the tree must be readable by everyone."""
    for path in [root, *root.parents]:
        if str(path) in ("/", "/tmp"):
            break
        path.chmod(path.stat().st_mode | 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Stop a baseline server: ``sig``, then SIGKILL if it is still there after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _wait_tcp(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("did not start listening")


class Nginx:
    def __init__(self, root: Path, work: Path, workers: int = 1, file_cache: bool = True) -> None:
        self.root, self.work, self.workers, self.file_cache = root, work, workers, file_cache
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.binary = ensure_tool("nginx")

    def __enter__(self) -> "Nginx":
        if self.binary is None:
            raise RuntimeError("nginx is not installed and could not be installed")
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = self.work / "nginx.conf"
        # open_file_cache keeps a descriptor per cached file: fit it under the hard limit
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = 262144 if nofile == resource.RLIM_INFINITY else nofile
        conf.write_text(NGINX_CONF.format(workers=self.workers, work=self.work, port=self.port, root=self.root,
                                          nofile=nofile, open_file_cache=self.open_file_cache(nofile)))
        self.proc = subprocess.Popen([self.binary, "-p", str(self.work), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=open(self.work / "nginx-stderr.log", "wb"))
        _wait_tcp(self.port, self.proc)
        return self

    def open_file_cache(self, nofile: int) -> str:
        if not self.file_cache:
            return "open_file_cache off;"
        return f"open_file_cache max={max(1000, min(200_000, nofile - 4096 - 1024))} inactive=60s; open_file_cache_valid 60s;"

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(c) for c in children]

    def __exit__(self, *exc) -> None:
        _stop(self.proc, signal.SIGQUIT)  # graceful: the master stops its workers


class PythonFloor:
    """``bench/python_floor.py``: the same files from one CPython process, digest-checked and
    nothing else (what the language and the digest check alone cost here)."""

    def __init__(self, root: Path, work: Path, credentials: dict[str, str], protected: set[str]) -> None:
        self.root, self.work, self.credentials, self.protected = root, work, credentials, protected
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "PythonFloor":
        self.work.mkdir(parents=True, exist_ok=True)
        conf = self.work / "python-floor.json"
        conf.write_text(json.dumps({"root": str(self.root), "credentials": self.credentials,
                                    "protected": sorted(self.protected)}))
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("python_floor.py")), str(self.port),
                                      str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.work / "python-floor-stderr.log", "wb"))
        _wait_tcp(self.port, self.proc)
        return self

    def __exit__(self, *exc) -> None:
        _stop(self.proc)


class TftpdHpa:
    """``in.tftpd -L -a 127.0.0.1:PORT -s ROOT -u nobody`` in the foreground (fork per transfer)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.binary = ensure_tool("in.tftpd")

    def __enter__(self) -> "TftpdHpa":
        if self.binary is None:
            raise RuntimeError("tftpd-hpa is not installed and could not be installed")
        self.port = free_port(socket.SOCK_DGRAM)
        user = "nobody" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        self.proc = subprocess.Popen([self.binary, "-L", "-a", f"127.0.0.1:{self.port}", "-s", str(self.root),
                                      "-u", user], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError(f"in.tftpd exited: {self.proc.stderr.read().decode(errors='replace')}")
        return self

    def __exit__(self, *exc) -> None:
        _stop(self.proc)
