"""Benchmark: the scheduled cycle's time beyond the scan, for 5,000 endpoints' findings.

Not a test. Builds the report a scan of N endpoints produces (each endpoint's findings come from
the real rules, `evaluate_endpoint`, on observed chains: most certificates fine, one in ten
expiring within the warning threshold, one in fifty served by two addresses with different
certificates), then times `run_cycle` with a scan that hands that report back at once, so what
is measured is everything after the scan: lifecycle, certificate-change detection, alert
rendering, and the one store transaction (sqlite, WAL, on disk). Three cycles in a row: the
first (every finding new), a steady one (nothing changed), and one where a tenth of the
certificates were renewed. Each is repeated `--rounds` times on a fresh state file; medians.
Target: each under 1 s for 5,000 endpoints.

    .venv/bin/python bench/bench_cycle.py [--endpoints 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.alerting.cycle import run_cycle  # noqa: E402
from bot.alerting.store import Store  # noqa: E402
from checks.config import parse_config  # noqa: E402
from checks.model import Config  # noqa: E402
from checks.observations import TlsObservation  # noqa: E402
from checks.probes.trust import load_trust_anchors  # noqa: E402
from checks.rules.certcheck import evaluate_endpoint  # noqa: E402
from checks.rules.certificates import CertificateFacts, facts_from_x509  # noqa: E402
from checks.scan import ObservedCertificate, ScanReport, summarize  # noqa: E402
from tests.fakes.pki import Pki  # noqa: E402


def build_config(count: int, tmp: Path, ca_file: Path) -> Config:
    return parse_config(
        {
            "tenant": {"name": "bench", "accepted_domains": ["bench.contoso.com"]},
            "trust": {"ca_file": str(ca_file)},
            "state": {"path": str(tmp / "state.sqlite3")},
            "endpoints": [
                {
                    "name": f"mx{i}",
                    "host": f"mx{i}.bench.contoso.com",
                    "address": f"127.{1 + i // 65024}.{i // 254 % 256}.{i % 254 + 1}",
                    "port": 25,
                }
                for i in range(count)
            ],
        },
        base_dir=tmp,
    )


def build_report(config: Config, pki: Pki, now: datetime, *, renewed: bool = False) -> ScanReport:
    anchors = load_trust_anchors(pki.ca_file, include_system=False)
    intermediate = facts_from_x509(pki.intermediate)
    good = pki.leaf(["*.bench.contoso.com"], days=300 if renewed else 200).facts
    expiring = pki.leaf(["*.bench.contoso.com"], days=20).facts
    old = pki.leaf(["*.bench.contoso.com"], days=100).facts
    findings = []
    observed = []
    for index, endpoint in enumerate(config.endpoints):
        leaf: CertificateFacts = expiring if index % 10 == 0 else good
        if renewed and index % 10 == 5:
            leaf = old
        address = endpoint.address or "127.0.0.1"
        observations = [
            TlsObservation(
                endpoint=endpoint.name,
                host=endpoint.host,
                port=endpoint.port,
                address=address,
                chain=(leaf, intermediate),
                tls_version="TLSv1.3",
                cipher="TLS_AES_256_GCM_SHA384",
                greeting="220 mail.bench.contoso.com ESMTP",
            )
        ]
        if index % 50 == 0:  # a half-renewed pool: a second address, another certificate
            observations.append(
                TlsObservation(
                    endpoint=endpoint.name,
                    host=endpoint.host,
                    port=endpoint.port,
                    address=address.rsplit(".", 1)[0] + ".254",
                    chain=(old, intermediate),
                    tls_version="TLSv1.2",
                )
            )
        findings.extend(
            evaluate_endpoint(
                endpoint, observations, now=now, thresholds=config.thresholds, anchors=anchors
            )
        )
        observed.extend(
            ObservedCertificate(
                subject=endpoint.name, source="endpoint", address=o.address, chain=o.chain
            )
            for o in observations
        )
    return ScanReport(
        findings=tuple(findings),
        summary=summarize(findings),
        started_at=now,
        finished_at=now,
        certificates=tuple(observed),
        accepted_domains=frozenset({"bench.contoso.com"}),
    )


def timed_cycle(config: Config, store: Store, report: ScanReport, now: datetime) -> float:
    async def scan(*_args: Any, **_kwargs: Any) -> ScanReport:
        return report

    async def cycle() -> float:  # returns a float: asyncio.run would repr a CycleResult
        started = time.perf_counter()
        await run_cycle(config, store, now=now, scan=scan, environ={})
        return time.perf_counter() - started

    return asyncio.run(cycle())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"first": [], "steady": [], "renewed": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        pki = Pki(tmp_path=tmp)
        now = pki.now
        config = build_config(args.endpoints, tmp, pki.ca_file)
        first = build_report(config, pki, now)
        renewed = build_report(config, pki, now, renewed=True)
        print(f"{args.endpoints} endpoints: {len(first.findings)} findings per scan")
        for round_ in range(args.rounds):
            state = tmp / f"state-{round_}.sqlite3"
            with Store.open(state) as store:
                times["first"].append(timed_cycle(config, store, first, now))
                later = now + timedelta(hours=6)
                times["steady"].append(timed_cycle(config, store, first, later))
                times["renewed"].append(
                    timed_cycle(config, store, renewed, later + timedelta(hours=6))
                )
    print(f"{args.rounds} rounds, medians of the cycle's time beyond the scan:")
    for name, values in times.items():
        print(f"  {name:>8} cycle: {statistics.median(values) * 1000:7.0f} ms  (target < 1000 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
