"""Plain-text rendering of an explanation, for the terminal (`explain`, `demo`).

Pure: the Slack rendering lives in `bot/slack/blocks.py`; both read the same `Explanation`.
"""

from __future__ import annotations

from datetime import datetime

from checks.explain import Explanation
from checks.report import escape_invisible
from checks.rules.certcheck import days_left


def _certificate_line(result: Explanation, now: datetime) -> str | None:
    observation = result.certificate
    if observation is None:
        return None
    leaf = observation.leaf
    if leaf is None:
        return f"not observed ({observation.error or 'no certificate'})"
    days = days_left(leaf, now)
    chain = observation.verdict.status.value if observation.verdict else "not verified"
    if days > 0:
        left = f"valid until {leaf.not_after:%Y-%m-%d} ({_days(days)} left)"
    elif leaf.not_after > now:
        left = f"valid until {leaf.not_after:%Y-%m-%d %H:%M} UTC (less than a day left)"
    else:
        # `--at` after the expiry: say so, never "-3 days"
        left = f"EXPIRED on {leaf.not_after:%Y-%m-%d}, {_days(max(-days, 1))} before {now:%Y-%m-%d}"
    return (
        f"{', '.join(leaf.names) or leaf.subject}; {left}; chain {chain}; from {observation.source}"
    )


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def render_text(result: Explanation, *, now: datetime, indent: str = "") -> str:
    env = result.envelope
    sender = env.sender.display if env.sender else "<>"
    lines = [
        f"{indent}{sender} -> {env.recipient.display}"
        + (f" (via {env.via.display})" if env.via else "")
    ]
    lines.append(f"{indent}Scenario:    {result.scenario.value} - {result.scenario.title}")
    if not result.relay:
        verdict = "ACCEPTED: delivered into the tenant (not a relay)"
    elif result.accepted:
        verdict = f"RELAYED through connector '{result.connector}'"
        if result.assumption:
            verdict += f", {result.assumption}"
    else:
        verdict = f"REFUSED: {result.smtp_response}"
    lines.append(f"{indent}Verdict:     {verdict}")
    if result.relay and not result.accepted and result.smtp_response_aliases:
        aliases = "; ".join(result.smtp_response_aliases)
        lines.append(f"{indent}             (also seen as: {aliases})")
    cert = _certificate_line(result, now)
    if cert:
        lines.append(f"{indent}Certificate: {cert}")
    lines.append(f"{indent}Why:")
    lines.extend(f"{indent}  - {reason}" for reason in result.reasons)
    if result.warnings:
        lines.append(f"{indent}Warnings:")
        lines.extend(f"{indent}  ! {warning}" for warning in result.warnings)
    if result.fix:
        lines.append(f"{indent}Fix:")
        lines.extend(f"{indent}  {n}. {step}" for n, step in enumerate(result.fix, 1))
    # connector names, certificate names and addresses came from the tenant or a user
    return "\n".join(escape_invisible(line) for line in lines) + "\n"
