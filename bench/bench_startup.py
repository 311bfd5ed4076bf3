"""Cold start of `relaycheck explain` against `python -c "import ssl"`, interleaved, same run.

Not a test. Each round runs both once as fresh processes (the same interpreter, the built-in
Contoso example as configuration, stdout to a pipe) and times them to exit; the rounds alternate
so machine noise hits both alike. Prints the medians and their ratio (target: <= 6x).
relaycheck's modules are byte-compiled first, as an installed package is.

    .venv/bin/python bench/bench_startup.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "contoso" / "relaycheck.toml"
PAIR = "john@fabrikam.com -> kate@tailspintoys.com"


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True)
    return time.perf_counter() - started


def compile_sources() -> None:
    """Byte-compile relaycheck's own modules, as installing a package does (pip compiles on
    install). An editable install run with PYTHONDONTWRITEBYTECODE set would otherwise compile
    every module from source on each start, which no installed CLI does."""
    for package in ("checks", "bot"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    compile_sources()
    env = {**os.environ, "RELAYCHECK_CONFIG": str(EXAMPLE)}
    os.environ.update(env)
    commands = {
        "python -c 'import ssl'": [sys.executable, "-c", "import ssl"],
        "relaycheck explain": [sys.executable, "-m", "bot.cli", "explain", PAIR],
        "relaycheck --help": [sys.executable, "-m", "bot.cli", "--help"],
        "relaycheck scan --help": [sys.executable, "-m", "bot.cli", "scan", "--help"],
    }
    for argv in commands.values():  # warm the page cache and the .pyc files once
        timed(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, argv in commands.items():
            times[name].append(timed(argv))
    base = statistics.median(times["python -c 'import ssl'"])
    print(f"rounds: {args.rounds} (interleaved; medians)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>24}: {median * 1000:7.1f} ms  ({median / base:.2f}x import ssl)")
    ratio = statistics.median(times["relaycheck explain"]) / base
    print(f"ratio explain / import ssl: {ratio:.2f}x (target <= 6x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
