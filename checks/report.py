"""Rendering a `ScanReport`: a table for people, JSON for scripts, an exit code for monitors.

The exit code follows the monitoring-plugin convention (Nagios, Icinga, Checkmk) so a scan can
be dropped into an existing monitor unchanged: 0 all ok, 1 worst is a warning, 2 worst is
critical, 3 the scan itself could not run (UNKNOWN). `render_nagios` prints what such a monitor
reads: one status line with perfdata (days left per certificate), then one line per problem.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from checks.i18n import _, ngettext
from checks.model import CheckId, Finding, Severity, Thresholds

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


def _width(text: str) -> int:
    """Columns a terminal gives `text` (CJK characters take two)."""
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


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


def dumps_json(
    findings: Sequence[Finding], summary: dict[str, Any], *, pretty: bool = False
) -> str:
    """The `scan --json` document as one string: compact for scripts, indented when `pretty`.

    One string written once: `json.dump` to a pipe writes every token separately (about
    300,000 writes for 500 endpoints), and the indentation alone doubles the bytes. Encoded by
    orjson: byte for byte what `json.dumps(ensure_ascii=False)` gives for this document (compact
    or indented by two), ~10x faster (the 2.8 MB of a 500-endpoint scan: 3 ms instead of 30)."""
    document = to_json(findings, summary)
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if pretty else 0)
    return orjson.dumps(document, option=option).decode()


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
        subject_label, check_label = _("SUBJECT"), _("CHECK")
        subject_width = max(
            min(max(len(escape_invisible(f.subject)) for f in rows), 28), _width(subject_label)
        )
        check_width = max(*(len(f.check.value) for f in rows), _width(check_label))
        header = (
            _pad(_("SEVERITY"), 8)
            + "  "
            + _pad(check_label, check_width)
            + "  "
            + _pad(subject_label, subject_width)
            + "  "
            + _("MESSAGE")
        )
        lines.append(header)
        indent = " " * (8 + 2 + check_width + 2 + subject_width + 2)
        for finding in rows:
            cell = f"{finding.severity.value.upper():<8}"
            if style is not None:
                cell = style(finding.severity, cell)
            message, *more = _wrapped(escape_invisible(finding.message), width, indent)
            lines.append(
                f"{cell}  {finding.check.value:<{check_width}}  "
                f"{_clip(escape_invisible(finding.subject), subject_width):<{subject_width}}  {message}"
            )
            lines.extend(indent + line for line in more)
            if finding.severity > Severity.INFO:
                for step in _fix_steps(finding):
                    first, *rest = _wrapped(
                        _("fix: {step}").format(step=escape_invisible(step)),
                        width,
                        indent + "     ",
                    )
                    lines.append(indent + first)
                    lines.extend(indent + "     " + line for line in rest)
    counts = summary.get("counts", {})
    parts = [f"{counts.get(s.value, 0)} {s.value}" for s in Severity if counts.get(s.value)]
    lines.append(
        ngettext("{count} finding", "{count} findings", len(findings)).format(count=len(findings))
        + (f" ({', '.join(parts)})" if parts else "")
        + "; "
        + _("worst: {severity}").format(severity=summary.get("worst", "ok"))
    )
    return "\n".join(lines) + "\n"


_STATUS = {
    Severity.OK: "OK",
    Severity.INFO: "OK",
    Severity.WARNING: "WARNING",
    Severity.CRITICAL: "CRITICAL",
}


def _days(finding: Finding) -> int | None:
    value = finding.details.get("days_left")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _short(finding: Finding) -> str:
    """A problem in a few words for the status line (the full message follows below it)."""
    days = _days(finding)
    if finding.check is CheckId.CERT_EXPIRY and days is not None:
        if days < 0:
            return f"{finding.subject} expired {-days} days ago"
        if days == 0:
            return f"{finding.subject} expires today"
        return f"{finding.subject} expires in {days} day{'s' if days != 1 else ''}"
    return f"{finding.subject} {finding.check.value}: {_clip(finding.message, 60)}"


def _perf_label(text: str) -> str:
    """A perfdata label: quoted, with quotes doubled and no '=' (the plugin API's rules)."""
    return "'" + text.replace("'", "''").replace("=", "_") + "'"


def perfdata(findings: Sequence[Finding], thresholds: Thresholds) -> list[str]:
    """`'NAME days'=DAYS;WARN;CRIT;;` for every certificate judged (its cert-expiry finding).

    A subject with several certificates (a pool, a dual ECDSA+RSA server) names each by key
    type, then by fingerprint, so every label is unique."""
    expiry = [f for f in findings if f.check is CheckId.CERT_EXPIRY and _days(f) is not None]
    per_subject: dict[str, int] = {}
    for finding in expiry:
        per_subject[finding.subject] = per_subject.get(finding.subject, 0) + 1
    labels: list[tuple[str, int]] = []
    used: set[str] = set()
    for finding in sorted(expiry, key=lambda f: (f.subject, f.cause)):
        name = f"{finding.subject} days"
        if per_subject[finding.subject] > 1:
            key_type = finding.details.get("key_type")
            name = f"{finding.subject} {key_type} days" if key_type else name
            if name in used:
                fingerprint = str(finding.details.get("fingerprint_sha256", finding.cause))
                name = f"{finding.subject} {key_type or ''} {fingerprint[:8]} days".replace(
                    "  ", " "
                )
        used.add(name)
        days = _days(finding)
        assert days is not None
        labels.append((name, days))
    return [
        f"{_perf_label(name)}={days};{thresholds.warning_days};{thresholds.critical_days};;"
        for name, days in labels
    ]


def render_nagios(
    findings: Sequence[Finding], summary: dict[str, Any], *, thresholds: Thresholds
) -> str:
    """Monitoring-plugin output: `RELAYCHECK STATUS - counts: problems | perfdata`, then the
    full message of each problem on its own line (the plugin API's long text)."""
    worst = max((f.severity for f in findings), default=Severity.OK)
    problems = [f for f in sorted_findings(findings) if f.severity > Severity.INFO]
    counts = summary.get("counts", {})
    if problems:
        parts = [
            f"{counts.get(s.value, 0)} {s.value}"
            for s in (Severity.CRITICAL, Severity.WARNING)
            if counts.get(s.value)
        ]
        text = f"{', '.join(parts)}: " + "; ".join(_short(f) for f in problems)
    else:
        text = f"{len(findings)} findings, no problems"
    line = f"RELAYCHECK {_STATUS[worst]} - {text.replace('|', '/')}"
    perf = perfdata(findings, thresholds)
    if perf:
        line += " | " + " ".join(perf)
    details = [
        f"{f.severity.value.upper()} {f.check.value} {f.subject}: {f.message}".replace("|", "/")
        for f in problems
    ]
    return "\n".join([line, *details]) + "\n"
