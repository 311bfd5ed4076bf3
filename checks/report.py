"""Rendering a `ScanReport`: a table for people, JSON for scripts, an exit code for monitors.

The exit code follows the monitoring-plugin convention (Nagios, Icinga, Checkmk) so a scan can
be dropped into an existing monitor unchanged: 0 all ok, 1 worst is a warning, 2 worst is
critical, 3 the scan itself could not run (UNKNOWN).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from checks.model import CheckId, Finding, Severity

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


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fix_steps(finding: Finding) -> list[str]:
    fix = finding.details.get("fix")
    if finding.check is not CheckId.RELAY_SCENARIO or not isinstance(fix, list):
        return []
    return [str(step) for step in fix]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"


def _wrapped(text: str, width: int | None, indent: str) -> list[str]:
    """The message column: whole on one line without a width (pipes), else wrapped under
    itself, so a long message never pushes the next row out of line."""
    if width is None or width - len(indent) < 30:
        return [text]
    lines = textwrap.wrap(
        text, width=width - len(indent), break_long_words=False, break_on_hyphens=False
    )
    return lines or [""]


def render_table(
    findings: Sequence[Finding],
    summary: dict[str, Any],
    *,
    show_ok: bool = False,
    width: int | None = None,
    style: Callable[[Severity, str], str] | None = None,
) -> str:
    """A fixed-width table; OK and info rows are counted, not listed, unless `show_ok`.

    A check asked for with `--only` that is not set up is always listed (it says what to
    configure), and a refused relay scenario is followed by its fix, the steps explain prints.
    `width` (a terminal's) wraps messages under their column; `style` colours the severity
    cell after it was padded, so colour codes never shift the columns."""
    rows = [
        f
        for f in sorted_findings(findings)
        if show_ok or f.severity > Severity.INFO or f.details.get("not_set_up")
    ]
    lines: list[str] = []
    if rows:
        subject_width = max(min(max(len(f.subject) for f in rows), 28), len("SUBJECT"))
        check_width = max(*(len(f.check.value) for f in rows), len("CHECK"))
        header = f"{'SEVERITY':<8}  {'CHECK':<{check_width}}  {'SUBJECT':<{subject_width}}  MESSAGE"
        lines.append(header)
        indent = " " * (8 + 2 + check_width + 2 + subject_width + 2)
        for finding in rows:
            cell = f"{finding.severity.value.upper():<8}"
            if style is not None:
                cell = style(finding.severity, cell)
            message, *more = _wrapped(finding.message, width, indent)
            lines.append(
                f"{cell}  {finding.check.value:<{check_width}}  "
                f"{_clip(finding.subject, subject_width):<{subject_width}}  {message}"
            )
            lines.extend(indent + line for line in more)
            if finding.severity > Severity.INFO:
                for step in _fix_steps(finding):
                    first, *rest = _wrapped(f"fix: {step}", width, indent + "     ")
                    lines.append(indent + first)
                    lines.extend(indent + "     " + line for line in rest)
    counts = summary.get("counts", {})
    parts = [f"{counts.get(s.value, 0)} {s.value}" for s in Severity if counts.get(s.value)]
    lines.append(
        plural(len(findings), "finding")
        + (f" ({', '.join(parts)})" if parts else "")
        + f"; worst: {summary.get('worst', 'ok')}"
    )
    return "\n".join(lines) + "\n"
