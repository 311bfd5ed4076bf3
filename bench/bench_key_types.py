"""Benchmark: what asking every address for a second key type costs on one-key-type servers.

Not a test. N loopback STARTTLS listeners, each with one ECDSA certificate (as most servers
have). Each round scans all of them twice, with `[probe] every_key_type = false` (the previous
behaviour: one handshake per address) and `true` (one more session per address offering RSA
only, which these servers refuse), alternating which goes first; the medians and their ratio
are printed, with the sessions each listener saw per scan. The promise measured: at most one
handshake more per address, so the ratio stays at or below about 2 (a whole second session),
and the refused offer is cheaper than a full one.

    .venv/bin/python bench/bench_key_types.py [--endpoints 50] [--rounds 5] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import ServerThread  # the same background-loop listeners

from checks.config import parse_config
from checks.model import Config, Severity
from checks.scan import run_scan
from tests.fakes.pki import Pki


def bench_config(tmp: Path, pki: Pki, ports: list[int], concurrency: int, every: bool) -> Config:
    raw: dict[str, Any] = {
        "tenant": {"name": "bench"},
        "trust": {"ca_file": str(pki.ca_file)},
        "probe": {
            "concurrency": concurrency,
            "timeout_seconds": 5,
            "ehlo_name": "bench.relaycheck.test",
            "every_key_type": every,
        },
        "endpoints": [
            {
                "name": f"mx{i}",
                "host": f"mx{i}.bench.contoso.com",
                "address": "127.0.0.1",
                "port": port,
            }
            for i, port in enumerate(ports)
        ],
    }
    return parse_config(raw, base_dir=tmp)


def one_scan(config: Config, servers: ServerThread) -> tuple[float, float]:
    """(seconds, sessions per listener) of one scan; every endpoint must come back healthy."""
    before = sum(s.connections for s in servers.servers)
    started = time.perf_counter()
    report = asyncio.run(run_scan(config, now=datetime.now(UTC), environ={}))
    seconds = time.perf_counter() - started
    bad = [f for f in report.findings if f.severity > Severity.INFO]
    if bad:
        raise SystemExit(f"unexpected finding: {bad[0].check} {bad[0].message}")
    sessions = (sum(s.connections for s in servers.servers) - before) / len(servers.servers)
    return seconds, sessions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pki = Pki(tmp_path=tmp)
        servers = ServerThread(args.endpoints, tmp, pki)
        try:
            ports = [s.port for s in servers.servers]
            configs = {
                every: bench_config(tmp, pki, ports, args.concurrency, every)
                for every in (False, True)
            }
            times: dict[bool, list[float]] = {False: [], True: []}
            sessions: dict[bool, float] = {}
            one_scan(configs[False], servers)  # warm-up: imports, trust store, first handshakes
            for round_index in range(args.rounds):
                order = (False, True) if round_index % 2 == 0 else (True, False)
                for every in order:
                    seconds, per_listener = one_scan(configs[every], servers)
                    times[every].append(seconds)
                    sessions[every] = per_listener
        finally:
            servers.stop()
    before = statistics.median(times[False])
    after = statistics.median(times[True])
    print(
        f"endpoints:                 {args.endpoints} (loopback, STARTTLS, one ECDSA certificate)"
    )
    print(f"rounds:                    {args.rounds} (interleaved, medians)")
    print(
        f"every_key_type = false:    {before:.3f} s  ({sessions[False]:.0f} session per listener; "
        "the previous behaviour)"
    )
    print(
        f"every_key_type = true:     {after:.3f} s  ({sessions[True]:.0f} sessions per listener; "
        "the second offers RSA only and is refused)"
    )
    print(f"ratio:                     {after / before:.2f}x the previous scan time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
