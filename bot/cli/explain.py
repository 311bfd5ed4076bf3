"""`relaycheck explain "SENDER -> RECIPIENT"`: which relay scenario, and would EXO relay it.

`--batch FILE` (or `-` for standard input) answers one pair per line as JSON Lines, for admins
who check every forwarding mailbox or a list of senders at once: the tenant and the connector
certificates are loaded once, and a line that cannot be read becomes an `error` object for that
line while the others are still answered.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.cli.common import (
    add_config_argument,
    add_time_argument,
    now_from,
    resolve_config,
    run_async,
)
from bot.terminal import render_text
from checks.errors import RelaycheckError
from checks.explain import Situation, explain, explain_in, prepare
from checks.model import Config
from checks.observe import observe_connector_certificates, observe_files_only
from checks.probes.exports import load_tenant
from checks.rules.addresses import parse_pair
from checks.rules.certificates import CertificateObservation
from checks.rules.tenant import TenantFacts
from checks.sources import explain_tenant

EXIT_SOME_FAILED = 1


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Classify SENDER -> RECIPIENT (the SMTP envelope: MAIL FROM and RCPT TO) into a relay "
        "scenario (to-tenant, accepted-sender, ndr, unregistered-sender, forwarding) and say "
        "whether Exchange Online would relay it with today's connectors and certificates."
    )
    add_config_argument(parser)
    add_time_argument(parser)
    parser.add_argument(
        "--via", metavar="ADDR", help="the on-prem mailbox that forwarded the message"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--batch",
        metavar="FILE",
        help="explain one pair per line of FILE ('-': standard input); prints one JSON object "
        "per line with 'line' and 'input' ('error' for a line that cannot be read); exit 1 "
        "when any line failed",
    )
    parser.add_argument(
        "pair", nargs="*", metavar="PAIR", help='"SENDER -> RECIPIENT" (use <> for a bounce)'
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.batch is not None:
        if args.pair:
            raise RelaycheckError(
                "give the pair as an argument or the pairs with --batch, not both"
            )
        return run_batch(args)
    if not args.pair:
        raise RelaycheckError(
            'the pair is required: relaycheck explain "SENDER -> RECIPIENT" (or --batch FILE)'
        )
    envelope = parse_pair(" ".join(args.pair), via=args.via)
    config = resolve_config(args)
    now = now_from(args)
    facts, certificates = _observe(config, now)
    result = explain(envelope, facts, forwards=config.forwards, certificates=certificates, now=now)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(result, now=now))
    return 0


def _open_batch(name: str) -> TextIO:
    if name == "-":
        return sys.stdin
    path = Path(name)
    try:
        # undecodable bytes become U+FFFD: that line then fails on its own, the rest go on
        return path.open(encoding="utf-8-sig", errors="replace", newline=None)
    except FileNotFoundError:
        raise RelaycheckError(f"--batch: {name}: no such file") from None
    except IsADirectoryError:
        raise RelaycheckError(f"--batch: {name}: is a folder, not a file of pairs") from None
    except OSError as err:
        raise RelaycheckError(f"--batch: {name}: cannot read ({err.strerror})") from None


def run_batch(args: argparse.Namespace) -> int:
    stream = _open_batch(args.batch)
    try:
        config = resolve_config(args)
        now = now_from(args)
        facts, certificates = _observe(config, now)
        situation = prepare(facts, forwards=config.forwards, certificates=certificates, now=now)
        interactive = stream.isatty()
        failed = write_batch(
            stream, situation, sys.stdout, via=args.via, chunk_lines=1 if interactive else 256
        )
    finally:
        if stream is not sys.stdin:
            stream.close()
    return EXIT_SOME_FAILED if failed else 0


def batch_lines(
    lines: Iterable[str], situation: Situation, *, via: str | None = None
) -> Iterable[tuple[dict[str, Any], bool]]:
    """(object, ok) per non-blank line: the `--json` object plus `line` and `input`, or an
    `error` object for a line that cannot be answered. Blank lines and `#` comments are
    skipped (and still counted, so `line` is the line number in the file)."""
    for number, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            answer = explain_in(situation, parse_pair(stripped, via=via)).to_json()
        except RelaycheckError as err:
            yield {"line": number, "input": text, "error": str(err)}, False
            continue
        # `input` is the line as given (as in error objects); the parsed envelope, which is
        # `input` in the single `--json` object, is kept as `envelope`
        yield {"line": number, "input": text, "envelope": answer.pop("input"), **answer}, True


def write_batch(
    lines: Iterable[str],
    situation: Situation,
    out: TextIO,
    *,
    via: str | None = None,
    chunk_lines: int = 256,
) -> int:
    """Write one compact JSON object per answered line; returns how many lines failed.

    Lines go out `chunk_lines` at a time (a few large writes, not one per line); someone
    typing pairs into a terminal gets each answer at once (`chunk_lines=1`)."""
    failed = 0
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    chunk: list[str] = []
    for item, ok in batch_lines(lines, situation, via=via):
        failed += not ok
        chunk.append(encode(item))
        if len(chunk) >= chunk_lines:
            out.write("\n".join(chunk) + "\n")
            chunk.clear()
    if chunk:
        out.write("\n".join(chunk) + "\n")
    out.flush()
    return failed


def _observe(
    config: Config, now: datetime
) -> tuple[TenantFacts, dict[str, CertificateObservation]]:
    """Everything the answer depends on that is read from the world: tenant and certificates.

    Without Graph and with certificates only from files, that is reading files: no event loop
    (and no asyncio, probe or httpx imports) for the common `relaycheck explain`."""
    if not config.microsoft365.enabled:
        facts = load_tenant(config)  # what `explain_tenant` does without Graph
        certificates = observe_files_only(config, facts, now=now, environ=os.environ)
        if certificates is not None:
            return facts, certificates
    return run_async(_observe_async(config, now))


async def _observe_async(
    config: Config, now: datetime
) -> tuple[TenantFacts, dict[str, CertificateObservation]]:
    facts = await explain_tenant(config, now=now, environ=os.environ)
    return facts, await observe_connector_certificates(config, facts, now=now)
