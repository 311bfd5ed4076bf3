"""Alert messages as Block Kit, rendered purely from lifecycle events.

Rendering is separate from sending (healthchecks' `payload()` vs `notify()`): the cycle renders
each event into `OutboxDraft`s inside the same transaction that records the event, so what is
delivered later is exactly what was decided, even after a restart with another config. Built
with slack_sdk's model classes, whose `to_dict()` enforces Slack's limits; tests call it.

Every string that came from a certificate, the tenant or the config goes through `_esc`, so a
subject such as `CN=<!channel>` cannot ping anybody.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.mrkdwn import escape_mrkdwn, neutralise
from bot.records import OutboxDraft
from checks.model import AlertSettings, CheckId, Finding, Severity
from checks.rules.lifecycle import (
    CertificateSnapshot,
    Event,
    EventKind,
    subject_label,
)

ACK_ACTION = "relaycheck_ack"
SNOOZE_1D_ACTION = "relaycheck_snooze_1d"
SNOOZE_7D_ACTION = "relaycheck_snooze_7d"
RUNBOOK_ACTION = "relaycheck_runbook"

MAX_LISTED = 20  # findings listed in one message before "...and N more"
SECTION_LIMIT = 3000
HEADER_LIMIT = 150

_ICON = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
    Severity.OK: ":white_check_mark:",
}

_TITLE = {
    EventKind.OPENED: "New",
    EventKind.ESCALATED: "Escalated",
    EventKind.REOPENED: "Back again",
    EventKind.FLAPPING: "Flapping",
}


def _esc(text: str) -> str:
    """Escape mrkdwn control characters (`& < >`) in text we did not write ourselves."""
    return escape_mrkdwn(text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_where = subject_label


def _finding_lines(findings: Sequence[Finding], *, struck: bool = False) -> str:
    lines = [
        f"{_ICON[f.severity]} *{_esc(_where(f))}*: {_esc(_clip(f.message, 300))}"
        for f in findings[:MAX_LISTED]
    ]
    if struck:
        # Slack's ~strike~ does not span lines: strike each one
        lines = [f"~{line}~" for line in lines]
    if len(findings) > MAX_LISTED:
        lines.append(f"…and {len(findings) - MAX_LISTED} more")
    return _clip("\n".join(lines), SECTION_LIMIT)


def _names(labels: Sequence[str], limit: int = MAX_LISTED) -> str:
    """`a, b, c and N more`: a list of subjects that stays short whatever its length."""
    text = ", ".join(labels[:limit])
    if len(labels) > limit:
        text += f" and {len(labels) - limit} more"
    return text


def _buttons(event_id: str, settings: AlertSettings) -> ActionsBlock:
    elements = [
        ButtonElement(text="Acknowledge", action_id=ACK_ACTION, value=event_id, style="primary"),
        ButtonElement(text="Snooze 1 day", action_id=SNOOZE_1D_ACTION, value=event_id),
        ButtonElement(text="Snooze 7 days", action_id=SNOOZE_7D_ACTION, value=event_id),
    ]
    if settings.runbook_url:
        elements.append(
            ButtonElement(text="Runbook", action_id=RUNBOOK_ACTION, url=settings.runbook_url)
        )
    return ActionsBlock(block_id="relaycheck_alert_actions", elements=elements)


def _title(event: Event) -> str:
    findings = event.findings
    check = findings[0].check.value
    if len(findings) == 1:
        subject = _where(findings[0])
    elif event.details.get("storm"):
        subject = f"{len(findings)} at once"
    else:
        subject = f"{len(findings)} endpoints share one cause"
    # header text is plain_text: Slack does not interpret mrkdwn there (no `& < >` escaping),
    # but a bidi override in a subject would still spoof it
    return _clip(
        neutralise(f"{_TITLE.get(event.kind, event.kind.value)} {check}: {subject}"), HEADER_LIMIT
    )


def _dicts(blocks: Iterable[Block]) -> tuple[dict[str, Any], ...]:
    return tuple(b.to_dict() for b in blocks)


def _fix_block(findings: Sequence[Finding]) -> SectionBlock | None:
    """The steps that make a refused relay scenario relay again (explain's own fix)."""
    refused = [
        f
        for f in findings
        if f.check is CheckId.RELAY_SCENARIO and f.details.get("accepted") is False
    ]
    steps = list(dict.fromkeys(str(s) for f in refused for s in f.details.get("fix") or ()))
    if not steps:
        return None
    lines = [f"{n}. {_esc(_clip(step, 600))}" for n, step in enumerate(steps[:MAX_LISTED], 1)]
    return SectionBlock(
        text=MarkdownTextObject(text=_clip("*Fix:*\n" + "\n".join(lines), SECTION_LIMIT))
    )


def refused_scenarios_first(items: Sequence[Any]) -> list[Any]:
    """Open findings with refused relay scenarios first: the mail that bounces right now."""

    def refused(item: Any) -> bool:
        f: Finding = item.finding
        return f.check is CheckId.RELAY_SCENARIO and f.details.get("accepted") is False

    return sorted(items, key=lambda item: not refused(item))


def render_alert(event: Event, settings: AlertSettings) -> OutboxDraft:
    """The channel message for an opened/escalated/reopened/flapping event.

    A refused relay scenario opens with the mail that bounces and the reply Exchange Online
    gives ("NDRs from on-prem to internet senders are refused: 550 5.7.64 ..."), then the fix."""
    severity = event.severity
    blocks: list[Block] = [
        HeaderBlock(text=_title(event)),
        SectionBlock(text=MarkdownTextObject(text=_finding_lines(event.findings))),
    ]
    fix = _fix_block(event.findings)
    if fix is not None:
        blocks.append(fix)
    context = [f"{_ICON[severity]} *{severity.value}*"]
    if event.reason:
        context.append(_esc(_clip(event.reason, 500)))
    if event.acknowledged_by:
        context.append(f"acknowledged by <@{_esc(event.acknowledged_by)}>")
    if event.details.get("storm"):
        context.append(
            f"{len(event.findings)} {event.findings[0].check.value} findings in one run, "
            "sent as one message; the buttons act on all of them"
        )
    fingerprints = {f.details.get("fingerprint_sha256") for f in event.findings}
    fingerprint = fingerprints.pop() if len(fingerprints) == 1 else None
    if isinstance(fingerprint, str) and fingerprint:
        context.append(f"certificate `{_esc(fingerprint[:16])}…`")
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(context))]))
    blocks.append(_buttons(event.id, settings))
    text = f"{severity.value}: {_title(event)}"
    if len(event.findings) > 1:
        # the notification text is all a phone shows: name the members there too
        text += f" ({_names([_where(f) for f in event.findings])})"
    return OutboxDraft(
        id=f"{event.id}#post",
        event_id=event.id,
        action="post",
        text=_clip(_esc(text), SECTION_LIMIT),
        blocks=_dicts(blocks),
        keys=event.keys,
    )


def render_resolution(event: Event) -> tuple[OutboxDraft, ...]:
    """Resolution of the findings of one message.

    The last members to resolve edit the original message (no more buttons; it lists every
    finding it was about) and thread a short reply under it. A partial resolution (other members
    of the message still open) is only a thread reply: an edit would make the message look
    resolved while part of it is still broken.
    """
    resolved = _names([_where(f) for f in event.findings])
    reply_text = f":white_check_mark: Resolved: {_esc(resolved)} ({_esc(event.reason)})"
    still_open = int(event.details.get("still_open") or 0)
    if still_open:
        remaining = [str(s) for s in event.details.get("still_open_subjects", [])]
        reply_text += f"; {still_open} still open"
        if remaining:
            reply_text += f": {_esc(_names(remaining))}"
    elif event.resolved_before:
        reply_text += f"; all {len(event.findings) + len(event.resolved_before)} resolved"
    replaced = bool(event.details.get("replaced_by"))
    reply = OutboxDraft(
        id=f"{event.id}#reply",
        event_id=event.id,
        action="reply",
        text=_clip(reply_text + ".", 3000),
        reply_to=event.reply_to,
        keys=event.keys,
    )
    if still_open:
        return (reply,)
    members = (*event.findings, *event.resolved_before)
    names = _names([_where(f) for f in members])
    check = members[0].check.value
    header = _clip(
        neutralise(
            f"Resolved {check}: all {len(members)}: {names}"
            if event.resolved_before
            else f"Resolved {check}: {names}"
        ),
        HEADER_LIMIT,
    )
    note = f":white_check_mark: resolved {event.at:%Y-%m-%d %H:%M} UTC ({_esc(event.reason)})"
    if event.acknowledged_by:
        note += f" · acknowledged by <@{_esc(event.acknowledged_by)}>"
    update_blocks: list[Block] = [
        HeaderBlock(text=header),
        SectionBlock(text=MarkdownTextObject(text=_finding_lines(members, struck=True))),
        ContextBlock(elements=[MarkdownTextObject(text=note)]),
    ]
    update = OutboxDraft(
        id=f"{event.id}#update",
        event_id=event.id,
        action="update",
        text=_esc(header),
        blocks=_dicts(update_blocks),
        reply_to=event.reply_to,
        keys=event.keys,
    )
    # replaced by a new certificate: the cert-changed message tells it; no reply of its own
    return (update,) if replaced else (update, reply)


def render_note(event: Event) -> OutboxDraft:
    """A quiet thread reply (flapping), never a channel message."""
    return OutboxDraft(
        id=f"{event.id}#reply",
        event_id=event.id,
        action="reply",
        text=_clip(f":repeat: {_esc(_where(event.findings[0]))}: {_esc(event.reason)}", 3000),
        reply_to=event.reply_to,
        keys=event.keys,
    )


SEND_CONNECTOR_SELECTOR = "TlsCertificateName '<I>issuer<S>subject'"


def render_cert_change(event: Event) -> OutboxDraft:
    """What changed in a served certificate: issuer, names, expiry, chain length."""
    d = event.details
    old, new = d["old"], d["new"]
    sources = [str(s) for s in d["sources"]]
    listed = ", ".join(_esc(s) for s in sources[:MAX_LISTED])
    if len(sources) > MAX_LISTED:
        listed += f" …and {len(sources) - MAX_LISTED} more"
    lines = [f"*Served by:* {listed}"]
    if d["issuer_changed"]:
        lines.append(f"*Issuer:* {_esc(old['issuer'])} → {_esc(new['issuer'])}")
    else:
        lines.append(f"*Issuer:* {_esc(new['issuer'])} (unchanged)")
    if d["names_added"]:
        lines.append("*Names added:* " + ", ".join(_esc(n) for n in d["names_added"]))
    if d["names_removed"]:
        lines.append(":warning: *Names removed:* " + ", ".join(_esc(n) for n in d["names_removed"]))
    lines.append(f"*Expires:* {old['not_after'][:10]} → {new['not_after'][:10]}")
    lines.append(f"*Chain length:* {old['chain_length']} → {new['chain_length']}")
    if d.get("client_auth_dropped"):
        lines.append(
            ":warning: the new certificate no longer allows TLS client authentication "
            "(clientAuth), which it needs as the client certificate an MTA presents"
        )
    if d["issuer_changed"] or d.get("subject_changed"):
        lines.append(
            ":warning: issuer or subject changed: an Exchange send connector that selects its "
            f"certificate by {_esc(SEND_CONNECTOR_SELECTOR)} must be "
            "updated, or mail stops with 454 4.7.5"
        )
    lines.append(
        f"*Fingerprint:* `{_esc(old['fingerprint'][:16])}…` → `{_esc(new['fingerprint'][:16])}…`"
    )
    fixed = d.get("fixed") or []
    worse = d.get("new_problems") or []
    if fixed:
        lines.append(
            ":white_check_mark: *Better:* "
            + "; ".join(
                f"{_esc(f['check'])} ({_esc(_clip(f['message'], 120))})" for f in fixed[:MAX_LISTED]
            )
        )
    if worse:
        lines.append(
            ":red_circle: *Worse:* "
            + "; ".join(
                f"{_esc(f['check'])} ({_esc(_clip(f['message'], 120))})" for f in worse[:MAX_LISTED]
            )
        )
    blocks: list[Block] = [
        HeaderBlock(text=_clip(neutralise(f"Certificate changed: {sources[0]}"), HEADER_LIMIT)),
        SectionBlock(text=MarkdownTextObject(text=_clip("\n".join(lines), SECTION_LIMIT))),
    ]
    return OutboxDraft(
        id=f"{event.id}#post",
        event_id=event.id,
        action="post",
        text=_esc(f"Certificate changed on {', '.join(sources[:5])}"),
        blocks=_dicts(blocks),
    )


def render_event(event: Event, settings: AlertSettings) -> list[OutboxDraft]:
    """All drafts for one event; an event that must not notify renders nothing."""
    if not event.notify:
        return []
    if event.kind is EventKind.RESOLVED:
        return list(render_resolution(event))
    if event.kind is EventKind.NOTE:
        return [render_note(event)]
    if event.kind is EventKind.CERT_CHANGED:
        return [render_cert_change(event)]
    return [render_alert(event, settings)]


def with_status(blocks: Sequence[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    """A posted message's blocks with a status line (acknowledged, snoozed) replacing any old one.

    `status` is trusted mrkdwn built by the caller (user mentions are `<@U…>` on purpose).
    """
    kept = [b for b in blocks if b.get("block_id") != "relaycheck_status"]
    status_block = ContextBlock(
        block_id="relaycheck_status", elements=[MarkdownTextObject(text=_clip(status, 2000))]
    ).to_dict()
    at = next(
        (i for i, b in enumerate(kept) if b.get("block_id") == "relaycheck_alert_actions"),
        len(kept),
    )
    return [*kept[:at], status_block, *kept[at:]]


def render_digest(
    open_findings: Sequence[Any],
    certificates: Iterable[CertificateSnapshot],
    *,
    now: datetime,
    settings: AlertSettings,
    digest_id: str,
) -> OutboxDraft:
    """The weekly summary: open findings (worst first) and certificates expiring soon.

    `open_findings` are `bot.alerting.store.OpenFinding` values (typed loosely to keep this module free of
    the store's sqlite import).
    """
    blocks: list[Block] = [HeaderBlock(text=f"relaycheck weekly digest {now:%Y-%m-%d}")]
    open_findings = refused_scenarios_first(open_findings)
    if open_findings:
        lines = []
        for item in open_findings[:MAX_LISTED]:
            f: Finding = item.finding
            age = (now - item.opened_at).days
            extra = (
                f", acknowledged by <@{_esc(item.acknowledged_by)}>" if item.acknowledged_by else ""
            )
            lines.append(
                f"{_ICON[f.severity]} *{_esc(f.check.value)}* {_esc(_where(f))}: "
                f"{_esc(_clip(f.message, 200))} (open {age} d{extra})"
            )
        if len(open_findings) > MAX_LISTED:
            lines.append(f"…and {len(open_findings) - MAX_LISTED} more")
        body = f"*Open findings ({len(open_findings)})*\n" + "\n".join(lines)
    else:
        body = "*Open findings:* none :tada:"
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(body, SECTION_LIMIT))))
    blocks.append(DividerBlock())
    expiring = sorted(
        (c for c in certificates if (c.not_after - now).days <= settings.digest_days),
        key=lambda c: (c.not_after, c.source),
    )
    if expiring:
        lines = [
            f"*{_esc(c.source)}*: {_esc(c.names[0] if c.names else c.subject)} expires "
            f"{c.not_after:%Y-%m-%d} ({(c.not_after - now).days} days)"
            for c in expiring[:MAX_LISTED]
        ]
        if len(expiring) > MAX_LISTED:
            lines.append(f"…and {len(expiring) - MAX_LISTED} more")
        certs = f"*Certificates expiring within {settings.digest_days} days*\n" + "\n".join(lines)
    else:
        certs = f"*Certificates expiring within {settings.digest_days} days:* none"
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(certs, SECTION_LIMIT))))
    return OutboxDraft(
        id=f"{digest_id}#post",
        event_id=digest_id,
        action="post",
        text=f"relaycheck weekly digest: {len(open_findings)} open, {len(expiring)} expiring",
        blocks=_dicts(blocks),
    )
