"""Rendering a `ScanReport`: a table for people, JSON for scripts, an exit code for monitors.

The exit code follows the monitoring-plugin convention (Nagios, Icinga, Checkmk) so a scan can
be dropped into an existing monitor unchanged: 0 all ok, 1 worst is a warning, 2 worst is
critical, 3 the scan itself could not run (UNKNOWN).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from checks.model import Finding, Severity

EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3

_EXIT = {
    Severity.OK: EXIT_OK,
    Severity.INFO: EXIT_OK,
    Severity.WARNING: EXIT_WARNING,
    Severity.CRITICAL: EXIT_CRITICAL,
}
_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2, Severity.OK: 3}


def exit_code(findings: Sequence[Finding]) -> int:
    worst = max((f.severity for f in findings), default=Severity.OK)
    return _EXIT[worst]


def sorted_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Worst first, then by subject and check, so the table reads like a to-do list."""
    return sorted(findings, key=lambda f: (_ORDER[f.severity], f.subject, f.check.value, f.cause))


def to_json(findings: Sequence[Finding], summary: dict[str, Any]) -> dict[str, Any]:
    return {"findings": [f.to_json() for f in sorted_findings(findings)], "summary": summary}


# invisible or reordering characters besides Cc/Cf/Cs: line and paragraph separators
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def escape_invisible(text: str, *, keep: str = "") -> str:
    """Show control, bidirectional and zero-width characters as visible escapes.

    Why: a certificate subject, a connector name or a user's input is printed into a
    terminal. `\x1b[2K\r\x1b[32mOK` would erase a CRITICAL row and paint OK in its place;
    U+202E (right-to-left override) makes `rtl\u202emoc.live` read as another name. C0/C1
    controls and DEL become `\x1b`-style escapes, format characters (bidi overrides and
    isolates, zero-width space/joiners, BOM, soft hyphen) `U+202E`-style ones. `keep` names
    characters to pass through (Slack text keeps newlines and tabs)."""
    if text.isascii() and text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if ch in keep or unicodedata.category(ch) not in _INVISIBLE_CATEGORIES:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"U+{ord(ch):04X}")
    return "".join(out)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(
    findings: Sequence[Finding], summary: dict[str, Any], *, show_ok: bool = False
) -> str:
    """A fixed-width table; OK rows are counted, not listed, unless `show_ok`."""
    rows = [f for f in sorted_findings(findings) if show_ok or f.severity > Severity.INFO]
    lines: list[str] = []
    if rows:
        subject_width = min(max(len(escape_invisible(f.subject)) for f in rows), 28)
        check_width = max(len(f.check.value) for f in rows)
        header = f"{'SEVERITY':<8}  {'CHECK':<{check_width}}  {'SUBJECT':<{subject_width}}  MESSAGE"
        lines.append(header)
        for finding in rows:
            lines.append(
                f"{finding.severity.value.upper():<8}  {finding.check.value:<{check_width}}  "
                f"{_clip(escape_invisible(finding.subject), subject_width):<{subject_width}}  "
                f"{escape_invisible(finding.message)}"
            )
    counts = summary.get("counts", {})
    parts = [f"{counts.get(s.value, 0)} {s.value}" for s in Severity if counts.get(s.value)]
    lines.append(
        f"{len(findings)} findings"
        + (f" ({', '.join(parts)})" if parts else "")
        + f"; worst: {summary.get('worst', 'ok')}"
    )
    return "\n".join(lines) + "\n"
