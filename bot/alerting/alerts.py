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
from checks.i18n import N_, _, format_day, format_moment, ngettext
from checks.model import AlertSettings, CheckId, Finding, Severity
from checks.rules.lifecycle import (
    CertificateSnapshot,
    Event,
    EventKind,
    subject_label,
)
from checks.titles import check_title

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

# "{check}: {subject}" headers per alert kind (an alert kind is an EventKind)
ALERT_TITLES = {
    EventKind.OPENED: N_("New {check}: {subject}"),
    EventKind.ESCALATED: N_("Escalated {check}: {subject}"),
    EventKind.REOPENED: N_("Back again {check}: {subject}"),
    EventKind.FLAPPING: N_("Flapping {check}: {subject}"),
    EventKind.RESOLVED: N_("Resolved {check}: {subject}"),
    EventKind.CERT_CHANGED: N_("Certificate changed: {subject}"),
    EventKind.NOTE: N_("Note {check}: {subject}"),
}


def _esc(text: str) -> str:
    """Escape mrkdwn control characters (`& < >`) in text we did not write ourselves."""
    return escape_mrkdwn(text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_where = subject_label


def _day(iso_text: str) -> str:
    """A stored ISO 8601 time as a day in the current language."""
    try:
        return format_day(datetime.fromisoformat(iso_text))
    except ValueError:
        return iso_text[:10]


def _finding_lines(findings: Sequence[Finding], *, struck: bool = False) -> str:
    lines = [
        f"{_ICON[f.severity]} *{_esc(_where(f))}*: {_esc(_clip(f.message, 300))}"
        for f in findings[:MAX_LISTED]
    ]
    if struck:
        # Slack's ~strike~ does not span lines: strike each one
        lines = [f"~{line}~" for line in lines]
    if len(findings) > MAX_LISTED:
        lines.append(_("…and {count} more").format(count=len(findings) - MAX_LISTED))
    return _clip("\n".join(lines), SECTION_LIMIT)


def _names(labels: Sequence[str], limit: int = MAX_LISTED) -> str:
    """`a, b, c and N more`: a list of subjects that stays short whatever its length."""
    text = ", ".join(labels[:limit])
    if len(labels) > limit:
        text += " " + _("and {count} more").format(count=len(labels) - limit)
    return text


def runbook_url_for(settings: AlertSettings, anchor: str) -> str | None:
    """`[alerts] runbook_url` + `#<check id>`: the runbook's sections are anchored by their ids."""
    if not settings.runbook_url:
        return None
    return f"{settings.runbook_url.split('#', 1)[0]}#{anchor}"


def _buttons(event_id: str, settings: AlertSettings, anchor: str = "") -> ActionsBlock:
    elements = [
        ButtonElement(text=_("Acknowledge"), action_id=ACK_ACTION, value=event_id, style="primary"),
        ButtonElement(text=_("Snooze 1 day"), action_id=SNOOZE_1D_ACTION, value=event_id),
        ButtonElement(text=_("Snooze 7 days"), action_id=SNOOZE_7D_ACTION, value=event_id),
    ]
    url = runbook_url_for(settings, anchor) if anchor else settings.runbook_url
    if url:
        elements.append(ButtonElement(text=_("Runbook"), action_id=RUNBOOK_ACTION, url=url))
    return ActionsBlock(block_id="relaycheck_alert_actions", elements=elements)


def _title(event: Event) -> str:
    findings = event.findings
    check = findings[0].check.value
    if len(findings) == 1:
        subject = _where(findings[0])
    elif event.details.get("storm"):
        subject = _("{count} at once").format(count=len(findings))
    else:
        subject = _("{count} endpoints share one cause").format(count=len(findings))
    # header text is plain_text: Slack does not interpret mrkdwn there, so no escaping needed
    title = ALERT_TITLES.get(event.kind, N_("{check}: {subject}"))
    # (no `& < >` escaping in plain_text), but a bidi override in a subject would spoof it
    return _clip(neutralise(_(title).format(check=check, subject=subject)), HEADER_LIMIT)


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
        text=MarkdownTextObject(
            text=_clip("*" + _("Fix:") + "*\n" + "\n".join(lines), SECTION_LIMIT)
        )
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
    context = [
        f"{_ICON[severity]} *{severity.value}*",
        check_title(event.findings[0].check),
    ]
    if event.reason:
        context.append(_esc(_clip(event.reason, 500)))
    if event.acknowledged_by:
        context.append(_("acknowledged by {user}").format(user=f"<@{_esc(event.acknowledged_by)}>"))
    if event.details.get("storm"):
        context.append(
            _(
                "{count} {check} findings in one run, sent as one message; the buttons act on "
                "all of them"
            ).format(count=len(event.findings), check=event.findings[0].check.value)
        )
    fingerprints = {f.details.get("fingerprint_sha256") for f in event.findings}
    fingerprint = fingerprints.pop() if len(fingerprints) == 1 else None
    if isinstance(fingerprint, str) and fingerprint:
        context.append(
            _("certificate {fingerprint}").format(fingerprint=f"`{_esc(fingerprint[:16])}…`")
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(context))]))
    blocks.append(_buttons(event.id, settings, event.findings[0].check.value))
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
    reply_text = ":white_check_mark: " + _("Resolved: {subjects} ({reason})").format(
        subjects=_esc(resolved), reason=_esc(event.reason)
    )
    still_open = int(event.details.get("still_open") or 0)
    if still_open:
        remaining = [str(s) for s in event.details.get("still_open_subjects", [])]
        reply_text += "; " + _("{count} still open").format(count=still_open)
        if remaining:
            reply_text += f": {_esc(_names(remaining))}"
    elif event.resolved_before:
        reply_text += "; " + _("all {count} resolved").format(
            count=len(event.findings) + len(event.resolved_before)
        )
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
    subject = (
        _("all {count}: {names}").format(count=len(members), names=names)
        if event.resolved_before
        else names
    )
    header = _clip(
        neutralise(_(ALERT_TITLES[EventKind.RESOLVED]).format(check=check, subject=subject)),
        HEADER_LIMIT,
    )
    note = ":white_check_mark: " + _("resolved {when} ({reason})").format(
        when=format_moment(event.at), reason=_esc(event.reason)
    )
    if event.acknowledged_by:
        note += " · " + _("acknowledged by {user}").format(user=f"<@{_esc(event.acknowledged_by)}>")
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
        text=_clip(
            ":repeat: "
            + _("{subject} keeps changing: {reason}").format(
                subject=_esc(_where(event.findings[0])), reason=_esc(event.reason)
            ),
            3000,
        ),
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
        listed += " " + _("…and {count} more").format(count=len(sources) - MAX_LISTED)
    lines = ["*" + _("Served by:") + f"* {listed}"]
    if d["issuer_changed"]:
        lines.append("*" + _("Issuer:") + f"* {_esc(old['issuer'])} → {_esc(new['issuer'])}")
    else:
        lines.append("*" + _("Issuer:") + f"* {_esc(new['issuer'])} (" + _("unchanged") + ")")
    if d["names_added"]:
        lines.append("*" + _("Names added:") + "* " + ", ".join(_esc(n) for n in d["names_added"]))
    if d["names_removed"]:
        lines.append(
            ":warning: *"
            + _("Names removed:")
            + "* "
            + ", ".join(_esc(n) for n in d["names_removed"])
        )
    lines.append("*" + _("Expires:") + f"* {_day(old['not_after'])} → {_day(new['not_after'])}")
    lines.append("*" + _("Chain length:") + f"* {old['chain_length']} → {new['chain_length']}")
    if d.get("client_auth_dropped"):
        lines.append(
            ":warning: "
            + _(
                "the new certificate no longer allows TLS client authentication (clientAuth), "
                "which it needs as the client certificate an MTA presents"
            )
        )
    if d["issuer_changed"] or d.get("subject_changed"):
        lines.append(
            ":warning: "
            + _(
                "issuer or subject changed: an Exchange send connector that selects its "
                "certificate by {selector} must be updated, or mail stops with 454 4.7.5"
            ).format(selector=_esc(SEND_CONNECTOR_SELECTOR))
        )
    lines.append(
        "*"
        + _("Fingerprint:")
        + f"* `{_esc(old['fingerprint'][:16])}…` → `{_esc(new['fingerprint'][:16])}…`"
    )
    fixed = d.get("fixed") or []
    worse = d.get("new_problems") or []
    if fixed:
        lines.append(
            ":white_check_mark: *"
            + _("Better:")
            + "* "
            + "; ".join(
                f"{_esc(f['check'])} ({_esc(_clip(f['message'], 120))})" for f in fixed[:MAX_LISTED]
            )
        )
    if worse:
        lines.append(
            ":red_circle: *"
            + _("Worse:")
            + "* "
            + "; ".join(
                f"{_esc(f['check'])} ({_esc(_clip(f['message'], 120))})" for f in worse[:MAX_LISTED]
            )
        )
    title = _(ALERT_TITLES[EventKind.CERT_CHANGED]).format(check="cert-changed", subject=sources[0])
    blocks: list[Block] = [
        HeaderBlock(text=_clip(neutralise(title), HEADER_LIMIT)),
        SectionBlock(text=MarkdownTextObject(text=_clip("\n".join(lines), SECTION_LIMIT))),
    ]
    return OutboxDraft(
        id=f"{event.id}#post",
        event_id=event.id,
        action="post",
        text=_esc(_("Certificate changed on {sources}").format(sources=", ".join(sources[:5]))),
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
    blocks: list[Block] = [
        HeaderBlock(text=_("relaycheck weekly digest {day}").format(day=format_day(now)))
    ]
    open_findings = refused_scenarios_first(open_findings)
    if open_findings:
        lines = []
        for item in open_findings[:MAX_LISTED]:
            f: Finding = item.finding
            age = (now - item.opened_at).days
            extra = (
                ", " + _("acknowledged by {user}").format(user=f"<@{_esc(item.acknowledged_by)}>")
                if item.acknowledged_by
                else ""
            )
            lines.append(
                f"{_ICON[f.severity]} *{_esc(f.check.value)}* {_esc(_where(f))}: "
                f"{_esc(_clip(f.message, 200))} ("
                + ngettext("open {days} d", "open {days} d", age).format(days=age)
                + f"{extra})"
            )
        if len(open_findings) > MAX_LISTED:
            lines.append(_("…and {count} more").format(count=len(open_findings) - MAX_LISTED))
        body = (
            "*"
            + _("Open findings ({count})").format(count=len(open_findings))
            + "*\n"
            + "\n".join(lines)
        )
    else:
        body = "*" + _("Open findings:") + "* " + _("none") + " :tada:"
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(body, SECTION_LIMIT))))
    blocks.append(DividerBlock())
    expiring = sorted(
        (c for c in certificates if (c.not_after - now).days <= settings.digest_days),
        key=lambda c: (c.not_after, c.source),
    )
    if expiring:
        lines = [
            f"*{_esc(c.source)}*: "
            + ngettext(
                "{name} expires {day} ({days} day)",
                "{name} expires {day} ({days} days)",
                (c.not_after - now).days,
            ).format(
                name=_esc(c.names[0] if c.names else c.subject),
                day=format_day(c.not_after),
                days=(c.not_after - now).days,
            )
            for c in expiring[:MAX_LISTED]
        ]
        if len(expiring) > MAX_LISTED:
            lines.append(_("…and {count} more").format(count=len(expiring) - MAX_LISTED))
        within = _("Certificates expiring within {days} days").format(days=settings.digest_days)
        certs = f"*{within}*\n" + "\n".join(lines)
    else:
        within = _("Certificates expiring within {days} days").format(days=settings.digest_days)
        certs = f"*{within}:* " + _("none")
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(certs, SECTION_LIMIT))))
    return OutboxDraft(
        id=f"{digest_id}#post",
        event_id=digest_id,
        action="post",
        text=_("relaycheck weekly digest: {open} open, {expiring} expiring").format(
            open=len(open_findings), expiring=len(expiring)
        ),
        blocks=_dicts(blocks),
    )
