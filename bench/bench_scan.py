"""Benchmark: `run_scan` over N loopback STARTTLS endpoints vs a sequential openssl loop.

Not a test. Starts N fake SMTP servers (each its own port on 127.0.0.1, its own host name, a
certificate from a private CA) in a background thread with its own event loop, so the servers do
not share the scanner's loop. Then times one relaycheck scan of all N endpoints and a sequential
`openssl s_client -starttls smtp` over a sample of them (all of them by default), and prints
both and the ratio. With a sample smaller than N, the openssl time is extrapolated linearly and
the output says so.

    .venv/bin/python bench/bench_scan.py [--endpoints 200] [--sample 200] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checks.config import parse_config
from checks.model import Severity
from checks.scan import run_scan
from tests.fakes.pki import Pki
from tests.fakes.smtp import FakeSmtpServer, start_fake_smtp


class ServerThread:
    """N fake listeners served by an event loop in a daemon thread."""

    def __init__(self, count: int, tmp: Path, pki: Pki) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        leaf = pki.leaf(["*.bench.contoso.com"])
        future = asyncio.run_coroutine_threadsafe(self._start(count, tmp, leaf), self.loop)
        self.servers: list[FakeSmtpServer] = future.result(timeout=60)

    async def _start(self, count: int, tmp: Path, leaf: object) -> list[FakeSmtpServer]:
        return [await start_fake_smtp(tmp, "good", leaf) for _ in range(count)]  # type: ignore[arg-type]

    def stop(self) -> None:
        async def close_all() -> None:
            for server in self.servers:
                await server.close()

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def openssl_loop(openssl: str, ports: list[int]) -> tuple[float, int]:
    failures = 0
    started = time.perf_counter()
    for index, port in enumerate(ports):
        result = subprocess.run(
            [
                openssl,
                "s_client",
                "-starttls",
                "smtp",
                "-connect",
                f"127.0.0.1:{port}",
                "-servername",
                f"mx{index}.bench.contoso.com",
                "-showcerts",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
        if b"BEGIN CERTIFICATE" not in result.stdout:
            failures += 1
    return time.perf_counter() - started, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--sample", type=int, default=None, help="openssl sample (default: all)")
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    # the fake servers' SSL transports log a notice for each openssl EOF; not our subject
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    openssl = shutil.which("openssl")
    if openssl is None:
        parser.error("openssl is not on PATH; the baseline needs it")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pki = Pki(tmp_path=tmp)
        servers = ServerThread(args.endpoints, tmp, pki)
        try:
            config = parse_config(
                {
                    "tenant": {"name": "bench"},
                    "trust": {"ca_file": str(pki.ca_file)},
                    "probe": {
                        "concurrency": args.concurrency,
                        "timeout_seconds": 5,
                        "ehlo_name": "bench.relaycheck.test",
                    },
                    "endpoints": [
                        {
                            "name": f"mx{i}",
                            "host": f"mx{i}.bench.contoso.com",
                            "address": "127.0.0.1",
                            "port": server.port,
                        }
                        for i, server in enumerate(servers.servers)
                    ],
                },
                base_dir=tmp,
            )
            started = time.perf_counter()
            report = asyncio.run(run_scan(config, now=datetime.now(UTC), environ={}))
            scan_seconds = time.perf_counter() - started
            bad = [f for f in report.findings if f.severity > Severity.INFO]
            ports = [s.port for s in servers.servers]
            sample = ports[: args.sample] if args.sample else ports
            openssl_seconds, openssl_failures = openssl_loop(openssl, sample)
        finally:
            servers.stop()
    extrapolated = openssl_seconds * len(ports) / len(sample)
    print(f"endpoints:            {len(ports)} (loopback, STARTTLS, EC P-256 chain of 2)")
    print(
        f"relaycheck scan:      {scan_seconds:.2f} s  (concurrency {args.concurrency}, "
        f"{len(report.certificates)} chains observed, {len(bad)} non-ok findings)"
    )
    note = "" if len(sample) == len(ports) else f", extrapolated from {len(sample)} sampled"
    print(
        f"openssl s_client loop: {extrapolated:.2f} s  (sequential{note}; "
        f"{openssl_failures} without a certificate)"
    )
    print(f"ratio:                {extrapolated / scan_seconds:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
