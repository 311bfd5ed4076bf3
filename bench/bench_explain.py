"""Benchmark: explain decisions per second, in-process and through `relaycheck explain --batch`.

Not a test. On the built-in Contoso example (tenant from its exports, the connector certificate
from its file), over the KB 3169958 scenarios and a spread of sender domains:

* in-process: `explain()` on parsed envelopes with the tenant and certificates loaded once
  (target >= 20,000 decisions/s), and the same with parsing and `to_json()` included;
* end to end: `relaycheck explain --batch FILE` on 50,000 lines, start-up and JSON output
  included (target >= 10,000 pairs/s).

Each measurement runs `--rounds` times, interleaved, and the median is printed. relaycheck's
modules are byte-compiled first, as an installed package is.

    .venv/bin/python bench/bench_explain.py [--rounds 3] [--lines 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checks.config import load_config  # noqa: E402
from checks.explain import explain  # noqa: E402
from checks.observe import observe_connector_certificates  # noqa: E402
from checks.rules.addresses import parse_pair  # noqa: E402
from checks.rules.certificates import CertificateObservation  # noqa: E402
from checks.rules.tenant import TenantFacts  # noqa: E402
from checks.sources import explain_tenant  # noqa: E402

EXAMPLE = ROOT / "examples" / "contoso" / "relaycheck.toml"
BASE_PAIRS = (
    "<> -> john@fabrikam.com",
    "app@fabrikam.com -> someone@tailspintoys.com",
    "john@fabrikam.com -> kate@tailspintoys.com",
    "kate@contoso.com -> kate@tailspintoys.com",
    "john@fabrikam.com -> kate@contoso.com",
    "alerts@contoso.co.jp -> ops@example.net",
    "Kate@Contoso.com -> <mailto:x@tailspintoys.com|x@tailspintoys.com>",
    "noreply@bücher.example -> kate@contoso.com",
)


def pairs(count: int) -> list[str]:
    """`count` pairs: the scenarios above, with senders spread over 100 domains."""
    result = []
    for index in range(count):
        base = BASE_PAIRS[index % len(BASE_PAIRS)]
        if index % 3 == 0 and base.startswith("app@"):
            base = base.replace("fabrikam.com", f"partner{index % 100}.example")
        result.append(base)
    return result


def in_process(texts: list[str], rounds: int) -> tuple[float, float]:
    config = load_config(EXAMPLE)
    now = datetime.now(UTC)

    async def observe() -> tuple[TenantFacts, dict[str, CertificateObservation]]:
        facts = await explain_tenant(config, now=now, environ=os.environ)
        return facts, await observe_connector_certificates(config, facts, now=now)

    facts, certificates = asyncio.run(observe())
    envelopes = [parse_pair(t) for t in texts]
    decide, whole = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for envelope in envelopes:
            explain(envelope, facts, forwards=config.forwards, certificates=certificates, now=now)
        decide.append(len(envelopes) / (time.perf_counter() - started))
        started = time.perf_counter()
        for text in texts:
            explain(
                parse_pair(text),
                facts,
                forwards=config.forwards,
                certificates=certificates,
                now=now,
            ).to_json()
        whole.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(decide), statistics.median(whole)


def batch(path: Path, count: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "explain",
            "--config",
            str(EXAMPLE),
            "--batch",
            str(path),
        ],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    elapsed = time.perf_counter() - started
    lines = done.stdout.count(b"\n")
    if done.returncode != 0 or lines != count:
        raise SystemExit(f"--batch failed (exit {done.returncode}, {lines} lines): {done.stderr!r}")
    return count / elapsed


def compile_sources() -> None:
    """Byte-compile relaycheck's own modules, as installing a package does (pip compiles on
    install). An editable install run with PYTHONDONTWRITEBYTECODE set would otherwise compile
    every module from source on each start, which no installed CLI does."""
    for package in ("checks", "bot"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    args = parser.parse_args()
    compile_sources()
    texts = pairs(args.decisions)
    decide, whole = [], []
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pairs.txt"
        path.write_text("\n".join(pairs(args.lines)) + "\n", encoding="utf-8")
        for _ in range(args.rounds):
            d, w = in_process(texts, 1)
            decide.append(d)
            whole.append(w)
            rates.append(batch(path, args.lines))
    print(f"example tenant, {args.rounds} interleaved rounds, medians:")
    print(f"in-process explain():                {statistics.median(decide):>9,.0f} decisions/s")
    print(f"in-process parse + explain + to_json: {statistics.median(whole):>8,.0f} pairs/s")
    print(
        f"relaycheck explain --batch ({args.lines:,} lines, end to end): "
        f"{statistics.median(rates):>8,.0f} pairs/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
