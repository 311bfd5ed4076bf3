"""Plain-text rendering of an explanation, for the terminal (`explain`, `demo`).

Pure: the Slack rendering lives in `bot/slack/blocks.py`; both read the same `Explanation`.
"""

from __future__ import annotations

from datetime import datetime

from checks.explain import Explanation
from checks.i18n import _, format_day, format_moment, ngettext
from checks.report import escape_invisible
from checks.rules.certcheck import days_left


def _certificate_line(result: Explanation, now: datetime) -> str | None:
    observation = result.certificate
    if observation is None:
        return None
    leaf = observation.leaf
    if leaf is None:
        return _("not observed ({reason})").format(reason=observation.error or _("no certificate"))
    days = days_left(leaf, now)
    chain = observation.verdict.status.value if observation.verdict else _("not verified")
    if days > 0:
        left = ngettext(
            "valid until {day} ({days} day left)", "valid until {day} ({days} days left)", days
        ).format(day=format_day(leaf.not_after), days=days)
    elif leaf.not_after > now:
        left = _("valid until {when} (less than a day left)").format(
            when=format_moment(leaf.not_after)
        )
    else:
        # `--at` after the expiry: say so, never "-3 days"
        ago = max(-days, 1)
        left = ngettext(
            "EXPIRED on {day}, {days} day before {now}",
            "EXPIRED on {day}, {days} days before {now}",
            ago,
        ).format(day=format_day(leaf.not_after), days=ago, now=format_day(now))
    return _("{names}; {left}; chain {chain}; from {source}").format(
        names=", ".join(leaf.names) or leaf.subject,
        left=left,
        chain=chain,
        source=observation.source,
    )


def _label(text: str) -> str:
    """A label padded to the 13 columns the values start at (wide characters count twice)."""
    width = sum(2 if ord(c) > 0x2E7F else 1 for c in text)
    return text + " " * max(1, 13 - width)


def render_text(result: Explanation, *, now: datetime, indent: str = "") -> str:
    env = result.envelope
    sender = env.sender.display if env.sender else "<>"
    lines = [
        f"{indent}{sender} -> {env.recipient.display}"
        + (f" (via {env.via.display})" if env.via else "")
    ]
    lines.append(
        indent + _label(_("Scenario:")) + f"{result.scenario.value} - {result.scenario.title}"
    )
    if not result.relay:
        verdict = _("ACCEPTED: delivered into the tenant (not a relay)")
    elif result.accepted:
        verdict = _("RELAYED through connector '{connector}'").format(connector=result.connector)
        if result.assumption:
            verdict += f", {result.assumption}"
    else:
        verdict = _("REFUSED: {reply}").format(reply=result.smtp_response)
        if result.smtp_response_aliases:
            aliases = "; ".join(result.smtp_response_aliases)
            verdict += f"\n{indent}{' ' * 13}" + _("(also seen as: {aliases})").format(
                aliases=aliases
            )
    lines.append(indent + _label(_("Verdict:")) + verdict)
    cert = _certificate_line(result, now)
    if cert:
        lines.append(indent + _label(_("Certificate:")) + cert)
    lines.append(indent + _("Why:"))
    lines.extend(f"{indent}  - {reason}" for reason in result.reasons)
    if result.warnings:
        lines.append(indent + _("Warnings:"))
        lines.extend(f"{indent}  ! {warning}" for warning in result.warnings)
    if result.fix:
        lines.append(indent + _("Fix:"))
        lines.extend(f"{indent}  {n}. {step}" for n, step in enumerate(result.fix, 1))
    # connector names, certificate names and addresses came from the tenant or a user
    # an entry may hold its own line break (the verdict and its aliases): escape each line
    return "\n".join(escape_invisible(part) for line in lines for part in line.split("\n")) + "\n"
