"""Benchmark: `relaycheck scan --json` (the real CLI, a subprocess) against the TLS floor.

Not a test. The floor is a bare asyncio client in this process that does the same SMTP dialogue
as the probe (banner, EHLO, STARTTLS, TLS handshake, read the presented chain, QUIT, close, and
the default probe's second session offering only the other key type, `[probe] every_key_type`)
with the same concurrency and nothing else: no start-up, no parsing, no rules, no JSON. The CLI run
includes everything a user waits for: interpreter start, imports, config, probes, rules, JSON.

The loopback STARTTLS servers run in a child process (`--serve`), so they compete with neither
side for the GIL; each endpoint is its own listener on its own address spread over 127.0.0.0/8
(127.1.0.1, 127.1.0.2, ...), as a large estate spreads over many hosts. Rounds are interleaved
(each round: floor and CLI at 500, then floor and CLI at 5,000), and the medians are compared:
the ratio CLI/floor at 500 endpoints (target <= 1.3x; also the median of each round's own
ratio, which cancels a machine that drifts between rounds), the growth from 500 to 5,000 endpoints
for both (target <= 11x for the CLI) and the CLI's peak RSS (VmHWM, target <= 200 MB).
CPU seconds of both are printed too (a loaded machine stretches wall time; CPU time shows what
each side costs).
relaycheck's modules are byte-compiled first, as an installed package is.

    .venv/bin/python bench/bench_scan.py [--sizes 500 5000] [--rounds 3] [--concurrency 50]
    .venv/bin/python bench/bench_scan.py --sizes 20 200 --rounds 1      # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EHLO_NAME = "bench.relaycheck.test"
TIMEOUT = 20.0


def address(index: int) -> str:
    """The index-th loopback address, spread over 127.0.0.0/8 (never .0 or .255)."""
    block, host = divmod(index, 254)
    return f"127.{1 + block // 256}.{block % 256}.{host + 1}"


# --------------------------------------------------------------------------- servers (child)


async def _serve_one(
    context: ssl.SSLContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        writer.write(b"220 mail.bench.contoso.com ESMTP bench\r\n")
        while True:
            line = (await reader.readline()).strip().upper()
            if not line:
                return
            if line.startswith(b"EHLO"):
                writer.write(b"250-mail.bench.contoso.com\r\n250-SIZE 1000000\r\n")
                writer.write(b"250-STARTTLS\r\n250 8BITMIME\r\n")
            elif line == b"STARTTLS":
                writer.write(b"220 2.0.0 ready\r\n")
                await writer.drain()
                await writer.start_tls(context)
            elif line == b"QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                writer.close()  # graceful: an abort here could reset the 221 in flight
                async with asyncio.timeout(5):
                    await writer.wait_closed()
                return
            else:
                writer.write(b"502 5.5.2 not implemented\r\n")
    except (ConnectionError, ssl.SSLError, OSError, TimeoutError):
        pass
    finally:
        writer.transport.abort()


async def _serve(count: int, tmp: Path) -> None:
    from tests.fakes.pki import Pki

    pki = Pki(tmp_path=tmp)
    leaf = pki.leaf(["*.bench.contoso.com"])
    context = leaf.server_context(tmp)
    servers = []
    for index in range(count):
        server = await asyncio.start_server(
            lambda r, w: _serve_one(context, r, w), address(index), 0, backlog=512
        )
        servers.append(server)
    ports = [int(s.sockets[0].getsockname()[1]) for s in servers]
    print(json.dumps({"ca_file": str(pki.ca_file), "ports": ports}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    for server in servers:
        server.close()


# --------------------------------------------------------------------------- the floor


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return int(line[:3])


async def _floor_one(host: str, port: int, context: ssl.SSLContext, index: int) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await _reply(reader)
        writer.write(f"EHLO {EHLO_NAME}\r\n".encode())
        await _reply(reader)
        writer.write(b"STARTTLS\r\n")
        await _reply(reader)
        await writer.start_tls(context, server_hostname=f"mx{index}.bench.contoso.com")
        ssl_object = writer.get_extra_info("ssl_object")
        chain = ssl_object._sslobj.get_unverified_chain()  # what the probe reads too
        writer.write(b"QUIT\r\n")
        await _reply(reader)
        writer.close()
        await writer.wait_closed()
        return len(chain)
    finally:
        writer.transport.abort()


async def _floor_other_key_type(host: str, port: int, context: ssl.SSLContext) -> None:
    """The second session relaycheck's default probe makes (`[probe] every_key_type`): the same
    dialogue offering only RSA-authenticated TLS 1.2 suites, which an ECDSA-only server refuses.
    The floor makes it too, so both sides do the same SMTP dialogues and handshakes."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await _reply(reader)
        writer.write(f"EHLO {EHLO_NAME}\r\n".encode())
        await _reply(reader)
        writer.write(b"STARTTLS\r\n")
        await _reply(reader)
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.start_tls(context, server_hostname=None)
    finally:
        writer.transport.abort()


def _rsa_only_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("aRSA")
    return context


async def floor(targets: list[tuple[str, int]], concurrency: int) -> tuple[float, float, int]:
    """Seconds, CPU seconds of this process, and failures of one floor pass."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    other = _rsa_only_context()
    limit = asyncio.Semaphore(concurrency)
    failures = 0
    reasons: dict[str, str] = {}

    async def one(index: int, host: str, port: int) -> None:
        nonlocal failures
        async with limit:
            try:
                async with asyncio.timeout(TIMEOUT):
                    if await _floor_one(host, port, context, index) < 1:
                        failures += 1
                    await _floor_other_key_type(host, port, other)
            except (OSError, TimeoutError, ssl.SSLError) as err:
                failures += 1
                reasons[type(err).__name__] = str(err)

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(one(i, h, p) for i, (h, p) in enumerate(targets)))
    cpu = time.process_time() - cpu
    if reasons:
        print(f"  floor failures: {reasons}", file=sys.stderr)
    return time.perf_counter() - started, cpu, failures


# --------------------------------------------------------------------------- the CLI


def write_config(
    path: Path, targets: list[tuple[str, int]], ca_file: str, concurrency: int
) -> None:
    lines = [
        '[tenant]\nname = "bench"\naccepted_domains = ["bench.contoso.com"]\n',
        f"[trust]\nca_file = {json.dumps(ca_file)}\n",
        f'[probe]\nehlo_name = "{EHLO_NAME}"\ntimeout_seconds = 10\nconcurrency = {concurrency}\n',
        "[dns]\nenabled = false\n",
    ]
    for index, (host, port) in enumerate(targets):
        lines.append(
            f'[[endpoints]]\nname = "mx{index}"\nhost = "mx{index}.bench.contoso.com"\n'
            f'address = "{host}"\nport = {port}\ntls = "starttls"\nrole = "smarthost"\n'
        )
    path.write_text("\n".join(lines))


class PeakRss:
    """The peak RSS of one process, read from /proc/PID/status (VmHWM) until it exits.

    `wait4`'s `ru_maxrss` would not do: Linux carries the parent's high-water mark across
    fork and exec into the child's, so every CLI would report at least this process's size."""

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.kib = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.done.is_set():
            try:
                for line in self.path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.kib = max(self.kib, int(line.split()[1]))
            except (OSError, ValueError):
                return  # gone (or a zombie without memory): the last reading stands
            self.done.wait(0.01)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.kib


def cli_with_rss(config: Path) -> tuple[float, float, int, int, int]:
    """One `relaycheck scan --json`: seconds, CPU seconds, peak RSS (KiB), findings, non-ok.

    CPU time comes from `wait4` (the child's own); the peak RSS from `PeakRss`."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "scan", "--config", str(config), "--json"],
            stdout=out,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
        peak = PeakRss(process.pid)
        _pid, _status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        rss = peak.stop()
        process.returncode = 0  # reaped here; keep Popen from waiting again
        out.seek(0)
        document = json.loads(out.read())
    bad = sum(1 for f in document["findings"] if f["severity"] in ("warning", "critical"))
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, rss, len(document["findings"]), bad


def compile_sources() -> None:
    """Byte-compile relaycheck's own modules, as installing a package does (pip compiles on
    install). An editable install run with PYTHONDONTWRITEBYTECODE set would otherwise compile
    every module from source on each start, which no installed CLI does."""
    for package in ("checks", "bot"):
        compileall.compile_dir(ROOT / package, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument(
        "--endpoints", type=int, help="one size only (the earlier flag; same as --sizes N)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    compile_sources()
    if args.serve:
        asyncio.run(_serve(args.serve, Path(args.tmp)))
        return 0
    if args.endpoints is not None:
        args.sizes = [args.endpoints]
    if min(args.sizes) < 1 or args.rounds < 1:
        parser.error("--sizes and --rounds must be at least 1")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(max(args.sizes)), "--tmp", tmpdir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert server.stdout is not None
        assert server.stdin is not None
        started = json.loads(server.stdout.readline())
        ports: list[int] = started["ports"]
        everything = [(address(i), port) for i, port in enumerate(ports)]
        results: dict[int, dict[str, list[float]]] = {}
        configs: dict[int, Path] = {}
        try:
            for size in args.sizes:
                configs[size] = tmp / f"bench-{size}.toml"
                write_config(configs[size], everything[:size], started["ca_file"], args.concurrency)
                # warm-up: page cache, accept queues, the server's first handshakes
                asyncio.run(floor(everything[:size], args.concurrency))
                results[size] = {k: [] for k in ("floor", "cli", "rss", "floor_cpu", "cli_cpu")}
            # each round runs every size, floor then CLI, so the growth from 500 to 5,000 is
            # measured within the same minutes of machine noise as the ratios
            for _ in range(args.rounds):
                for size in args.sizes:
                    rows = results[size]
                    targets = everything[:size]
                    seconds, floor_cpu, failures = asyncio.run(floor(targets, args.concurrency))
                    rows["floor"].append(seconds)
                    rows["floor_cpu"].append(floor_cpu)
                    elapsed, cli_cpu, rss, total, bad = cli_with_rss(configs[size])
                    rows["cli"].append(elapsed)
                    rows["cli_cpu"].append(cli_cpu)
                    rows["rss"].append(rss / 1024)
                    print(
                        f"  {size:>5} endpoints: floor {seconds:6.2f} s (cpu {floor_cpu:.2f}, "
                        f"{failures} failed)  cli {elapsed:6.2f} s (cpu {cli_cpu:.2f}, "
                        f"{total} findings, {bad} not ok, peak RSS {rss / 1024:.0f} MB)",
                        flush=True,
                    )
        finally:
            server.stdin.close()
            server.wait(timeout=60)
    print(f"concurrency {args.concurrency}, {args.rounds} interleaved rounds, medians:")
    for size, rows in results.items():
        f, c = statistics.median(rows["floor"]), statistics.median(rows["cli"])
        fc, cc = statistics.median(rows["floor_cpu"]), statistics.median(rows["cli_cpu"])
        # each round's own ratio, floor and CLI minutes apart: drift of the machine cancels
        paired = statistics.median(x / y for x, y in zip(rows["cli"], rows["floor"], strict=True))
        print(
            f"{size:>5} endpoints: floor {f:6.2f} s  relaycheck scan --json {c:6.2f} s  "
            f"ratio {c / f:.2f}x (per round {paired:.2f}x)  (cpu {fc:.2f} vs {cc:.2f} s: "
            f"{cc / fc:.2f}x)  peak RSS {max(rows['rss']):.0f} MB"
        )
    if len(results) >= 2:
        small, large = min(results), max(results)
        grow_cli = statistics.median(results[large]["cli"]) / statistics.median(
            results[small]["cli"]
        )
        grow_floor = statistics.median(results[large]["floor"]) / statistics.median(
            results[small]["floor"]
        )
        print(
            f"growth {small} -> {large}: relaycheck {grow_cli:.2f}x, floor {grow_floor:.2f}x "
            f"(linear would be {large / small:.0f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
