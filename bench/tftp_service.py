"""The TFTP service alone against tftpd-hpa: N phones fetch their files at once (issue 9).

``bootstorm.py``'s tftp phase measures the whole server (guard, cache, renders). This one
isolates the TFTP layer, so a change to ``provisioning/tftp.py`` can be measured on its own,
before and after, on the same files:

* every phone has its own config (3-9 KB, random bytes) and fetches it after two files shared
  by all phones (a 2 KB boot file and a 24 KB common file), lock-step, blksize 1428 and tsize,
  from its own loopback address (bench/loadgen.py ``tftp_fleet``);
* deskprov: ``TftpService`` in a separate process. **warm**: resolve answers from a dict.
  **cold**: every file is "rendered" first: resolve hands the work to an asyncio loop (as
  ``Server`` does) which waits ``--render-ms`` (a database round trip and a render) and keeps
  the bytes; a TftpService that cannot take a future (before issue 9) blocks on it instead;
* tftpd-hpa serves the same files from disk (fork per transfer).

    .venv/bin/python bench/tftp_service.py --phones 1000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from baselines import TftpdHpa, make_world_readable  # noqa: E402
from common import UsageSampler, machine  # noqa: E402
from loadgen import TftpPhone, tftp_fleet  # noqa: E402


def make_files(root: Path, phones: int, seed: int) -> tuple[list[TftpPhone], dict[str, bytes]]:
    rng = random.Random(seed)
    files = {"boot.cfg": rng.randbytes(2_048), "common/model.cfg": rng.randbytes(24_576)}
    fleet = []
    for i in range(phones):
        name = f"cfg{i:05d}.cfg"
        files[name] = rng.randbytes(rng.randint(3_000, 9_000))
        ip = f"127.1.{i // 250}.{i % 250 + 1}"
        fleet.append(TftpPhone(ip, ["boot.cfg", "common/model.cfg", name], blksize=1428, tsize=True))
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return fleet, files


# ------------------------------------------------------------------------------------------------
# the deskprov side (a child process: `--serve`)


def serve(root: Path, mode: str, render_ms: float, port_file: Path) -> None:
    from provisioning import tftp as tftp_mod

    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    defers = hasattr(tftp_mod, "MAX_WINDOWSIZE")  # a TftpService that takes futures (issue 9)
    rendered: dict[str, bytes] = {}

    async def render(name: str) -> bytes | None:
        await asyncio.sleep(render_ms / 1000)
        data = files.get(name)
        if data is not None:
            rendered[name] = data
        return data

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def resolve(name: str, ip: str):
            if mode == "warm":
                return files.get(name)
            if name in rendered:
                return rendered[name]
            future = asyncio.run_coroutine_threadsafe(render(name), loop)
            return future if defers else future.result(timeout=10)

        service = tftp_mod.TftpService("127.0.0.1", 0, resolve)  # the default caps, as `deskprov serve`
        await service.start()
        port_file.write_text(str(service.port))
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await service.stop()

    asyncio.run(main())


class DeskprovTftp:
    def __init__(self, root: Path, mode: str, render_ms: float) -> None:
        self.root, self.mode, self.render_ms = root, mode, render_ms
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "DeskprovTftp":
        port_file = Path(tempfile.mktemp(prefix="deskprov-tftp-port-"))
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.root), "--mode", self.mode,
                                      "--render-ms", str(self.render_ms), "--port-file", str(port_file)],
                                     cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the TFTP service did not start")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        port_file.unlink()
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


# ------------------------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, flush=True)


async def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="deskprov-tftp-bench-"))
    try:
        root = work / "files"
        root.mkdir()
        phones, files = make_files(root, args.phones, args.seed)
        make_world_readable(work)
        report: dict = {"machine": machine(), "phones": len(phones), "files": sum(len(p.files) for p in phones),
                        "render_ms": args.render_ms, "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
                        "rounds": {"deskprov warm": [], "deskprov cold": [], "tftpd-hpa": []}}
        for r in range(args.rounds):
            for name in ("tftpd-hpa", "deskprov warm", "deskprov cold"):
                server = TftpdHpa(root) if name == "tftpd-hpa" else DeskprovTftp(root, name.split()[1], args.render_ms)
                with server:
                    await asyncio.sleep(0.5)
                    with UsageSampler(server.proc.pid) as usage:
                        result = await tftp_fleet(phones, "127.0.0.1", server.port, expected=files, seed=r)
                d = {**result.as_dict(), "server": usage.as_dict()}
                report["rounds"][name].append(d)
                say(f"  round {r + 1} {name:13}: {d['seconds']:6.2f} s for {d['files']} files, errors {d['errors']}, "
                    f"mismatches {d['content_mismatches']}, busy {d['busy_refusals']}, retransmits {d['retransmits']}, "
                    f"p99 file {d['file']['p99_ms']:.0f} ms")
        hpa = sorted(x["seconds"] for x in report["rounds"]["tftpd-hpa"])
        for name in ("deskprov warm", "deskprov cold"):
            ratios = [d["seconds"] / t["seconds"] for d, t in zip(report["rounds"][name], report["rounds"]["tftpd-hpa"])]
            report[name.replace(" ", "_") + "_ratio"] = round(sorted(ratios)[len(ratios) // 2], 2)
            say(f"{name} vs tftpd-hpa: ratio {report[name.replace(' ', '_') + '_ratio']} (per round "
                f"{[round(x, 2) for x in ratios]}; tftpd-hpa {[round(x, 2) for x in hpa]} s)")
        report["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--render-ms", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "tftp_service.json"))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="warm", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve), args.mode, args.render_ms, Path(args.port_file))
        return 0
    report = asyncio.run(run(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    say(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
