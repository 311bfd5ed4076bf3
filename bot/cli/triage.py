"""`relaycheck triage TEXT|FILE|-` and `relaycheck triage --trace FILE`.

Without `--config` no config and no network: the answer comes from the text alone, so it works
on the laptop of whoever holds the NDR, before anyone has found the relaycheck configuration.
With `--config` the answer adds what the tenant's connectors, accepted domains and the last
scheduled scan (the state file, read only when it exists) say about the likely cause.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.alerting.store import Store
from bot.cli.common import resolve_config
from checks.i18n import _, format_moment
from checks.model import Config, Finding
from checks.probes.exports import load_tenant
from checks.probes.trace import read_trace
from checks.rules.lifecycle import CertificateSnapshot
from checks.rules.replies import (
    MAX_INPUT_BYTES,
    UNKNOWN_KEY,
    Triage,
    TriageInputError,
    triage_all,
)
from checks.rules.trace import TraceSummary, summarise, summary_line
from checks.rules.triage_context import with_tenant_hints

WIDTH = 100


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Recognise what Exchange Online answered (e.g. '550 5.7.64 TenantAttribution; "
        "Relay Access Denied SMTP') by its codes and tokens and print, for every distinct "
        "status in the text, what it means, the likely causes, what to check and fix, and "
        "which relaycheck checks would catch it. TEXT may be a file (an NDR with headers, "
        "a log excerpt; up to 1 MB) or '-' for standard input. --trace summarises a "
        "message-trace CSV export instead."
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="add what this tenant's configuration and last scan say about the cause",
    )
    parser.add_argument(
        "--trace",
        metavar="FILE",
        help="summarise a message-trace CSV (Get-MessageTraceV2 / Get-MessageTraceDetailV2 "
        "| Export-Csv, or the historical search report)",
    )
    parser.add_argument(
        "text", nargs="*", metavar="TEXT", help="the reply as pasted, a file, or '-'"
    )
    parser.set_defaults(handler=run)


def _read_limited(stream: Any, shown: str) -> str:
    data: bytes = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise TriageInputError(
            f"{shown} is too long (more than {MAX_INPUT_BYTES} bytes, 1 MB): pass the bounce or the log "
            "excerpt, not a whole mailbox or log file"
        )
    return decode_text(data)


def decode_text(data: bytes) -> str:
    """A pasted bounce as bytes: UTF-8 or UTF-16 with a BOM, UTF-8, else Japanese Shift_JIS."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


def read_input(words: list[str]) -> str:
    """TEXT words joined, the file a single word names, or standard input for `-`."""
    if words == ["-"]:
        return _read_limited(sys.stdin.buffer, "standard input")
    if len(words) == 1 and "\n" not in words[0] and len(words[0]) < 4096:
        path = Path(words[0])
        try:
            is_file = path.is_file()
        except OSError:
            is_file = False
        if is_file:
            try:
                with path.open("rb") as handle:
                    return _read_limited(handle, str(path))
            except OSError as err:
                raise TriageInputError(f"{path}: cannot read ({err.strerror})") from None
    return " ".join(words)


def _state(config: Config) -> tuple[list[tuple[Finding, datetime]], dict[str, CertificateSnapshot]]:
    path = config.state.path
    if not path.is_file():
        return [], {}
    with Store.open(path) as store:
        findings = [(o.finding, o.opened_at) for o in store.open_findings()]
        return findings, store.latest_certificates()


def add_tenant_hints(answers: tuple[Triage, ...], config: Config) -> tuple[Triage, ...]:
    """The answers with what this tenant's config, exports and state file say (no network)."""
    facts = load_tenant(config)
    findings, certificates = _state(config)
    return with_tenant_hints(
        answers,
        connectors=facts.connectors,
        accepted=facts.accepted_domains,
        findings=findings,
        certificates=certificates,
    )


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args) if args.config else None
    if args.trace:
        if args.text:
            raise TriageInputError("--trace FILE summarises a trace; give no TEXT with it")
        layout, rows = read_trace(Path(args.trace))
        summary = summarise(
            rows,
            layout=layout,
            accepted=load_tenant(config).accepted_domains if config else (),
            forwards=config.forwards if config else (),
        )
        if args.json:
            json.dump(summary.to_json(), sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(render_trace_text(summary))
        return 0
    if not args.text:
        raise TriageInputError("triage needs TEXT, a file, '-' (standard input) or --trace FILE")
    answers = triage_all(read_input(args.text))
    if not answers:
        raise TriageInputError(
            _(
                "no Exchange Online reply recognised; paste the line with the status code "
                "(e.g. '550 5.7.64 ... ATTR36' or '450 4.4.317 ...')"
            )
        )
    if config is not None:
        answers = add_tenant_hints(answers, config)
    if args.json:
        json.dump(answers_json(answers), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_answers_text(answers))
    return 0


def answers_json(answers: tuple[Triage, ...]) -> dict[str, Any]:
    """The first status's fields at the top (as before several statuses were explained), and
    every status in order under `statuses`."""
    first = next((a for a in answers if a.key != UNKNOWN_KEY), answers[0])
    return {**first.to_json(), "statuses": [a.to_json() for a in answers]}


def class_text(answer: Triage) -> str:
    """Temporary or permanent, in words an on-call engineer acts on."""
    if answer.permanent is None:
        return _("no status code in the text")
    if answer.permanent:
        return _("permanent failure (5.x.x): the message bounced")
    return _("temporary failure (4.x.x): the sender retries, then bounces")


def _wrap(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    ) or [first.rstrip()]


def render_triage_text(result: Triage) -> str:
    """A screenful for a terminal: meaning first, then what to do, then what to run."""
    lines = [*_wrap(f"{result.code}: {result.meaning}", "", "  ")]
    lines.extend(_wrap(class_text(result), "  ", "  "))
    if result.hints:
        lines.extend(["", _("This tenant:")])
        for hint in result.hints:
            lines.extend(_wrap(hint, "  * ", "    "))
    if result.causes:
        lines.extend(["", _("Likely causes:")])
        for cause in result.causes:
            lines.extend(_wrap(cause, "  - ", "    "))
    if result.fixes:
        lines.append(_("Check and fix:"))
        for index, step in enumerate(result.fixes, 1):
            lines.extend(_wrap(step, f"  {index}. ", "     "))
    labelled = (
        (_("Caught by:"), ", ".join(c.value for c in result.check_ids)),
        (_("Scenarios:"), ", ".join(s.value for s in result.scenarios)),
        (_("Note:"), result.note or ""),
    )
    for label, value in labelled:
        if value:
            lines.extend(_wrap(value, f"{label} ", " " * 11))
    return "\n".join(lines) + "\n"


def render_answers_text(answers: tuple[Triage, ...]) -> str:
    """Every status, in the order the text has them, separated by a rule."""
    parts = [render_triage_text(a) for a in answers]
    if len(answers) > 1:
        head = (
            _("{count} different statuses in the text, in order of appearance:").format(
                count=len(answers)
            )
            + "\n\n"
        )
        return head + ("\n" + "-" * 40 + "\n\n").join(parts)
    return parts[0]


def render_trace_text(summary: TraceSummary) -> str:
    """The trace summary for a terminal: counts, when, who, and the fix."""
    lines = [summary_line(summary) + f" ({summary.layout})"]
    if summary.first_seen and summary.last_seen:
        lines.append(
            _("First seen {first}, last seen {last}").format(
                first=format_moment(summary.first_seen), last=format_moment(summary.last_seen)
            )
        )
    if summary.statuses:
        lines.extend(["", _("Per status:")])
        for status in summary.statuses:
            lines.append(f"  {status.count:>6}  {status.code}")
    if summary.scenarios:
        lines.extend(["", _("Per scenario:")])
        for scenario, count in summary.scenarios:
            lines.append(f"  {count:>6}  {scenario}")
    for title, pairs in (
        (_("Top senders:"), summary.top_senders),
        (_("Top recipients:"), summary.top_recipients),
    ):
        if pairs:
            lines.extend(["", title])
            lines.extend(f"  {count:>6}  {address}" for address, count in pairs)
    if summary.fixes:
        lines.extend(["", _("Fix:")])
        for index, step in enumerate(summary.fixes, 1):
            lines.extend(_wrap(step, f"  {index}. ", "     "))
    return "\n".join(lines) + "\n"
