"""`relaycheck triage "TEXT"`: what an Exchange Online reply means and what to check.

No config and no network: the answer comes from the reply alone, so it works on the laptop of
whoever holds the NDR, before anyone has found the relaycheck configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from checks.rules.replies import Triage, TriageInputError, triage


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Recognise what Exchange Online answered (e.g. '550 5.7.64 TenantAttribution; "
        "Relay Access Denied SMTP') by its tokens and print what it means, the likely "
        "causes, what to check and fix, and which relaycheck checks would catch it. "
        "TEXT '-' reads the text from standard input."
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("text", nargs="+", metavar="TEXT", help="the reply as pasted")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == ["-"] else " ".join(args.text)
    result = triage(text)
    if result is None:
        raise TriageInputError(
            "no Exchange Online reply recognised; paste the line with the status code "
            "(e.g. '550 5.7.64 ... ATTR36' or '450 4.4.317 ...')"
        )
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_triage_text(result))
    return 0


def render_triage_text(result: Triage, *, width: int = 100) -> str:
    """A screenful for a terminal: meaning first, then what to do, then what to run."""

    def wrap(text: str, first: str, rest: str) -> list[str]:
        return textwrap.wrap(
            text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
        )

    lines = [*wrap(f"{result.code}: {result.meaning}", "", "  "), "", "Likely causes:"]
    for cause in result.causes:
        lines.extend(wrap(cause, "  - ", "    "))
    lines.append("Check and fix:")
    for index, step in enumerate(result.fixes, 1):
        lines.extend(wrap(step, f"  {index}. ", "     "))
    labelled = (
        ("Caught by:", ", ".join(c.value for c in result.check_ids)),
        ("Scenarios:", ", ".join(s.value for s in result.scenarios)),
        ("Note:", result.note or ""),
        ("Also seen:", ", ".join(result.also)),
    )
    for label, value in labelled:
        if value:
            lines.extend(wrap(value, f"{label:<11}", " " * 11))
    return "\n".join(lines) + "\n"
