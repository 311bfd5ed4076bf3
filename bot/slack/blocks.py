"""Block Kit rendering: pure functions from relaycheck data to slack_sdk model objects.

Why slack_sdk's models and not dicts: the models know Slack's limits (150-character header,
3000-character section, 10 fields, 2000-character button value) and `to_dict()` refuses a block
that breaks them, so a too-long certificate subject fails a test here instead of a Slack call
at 3 a.m. What the models do not know (50 blocks per message, 100 per App Home view, the length
after escaping) is enforced here: long lists are cut to what fits and summarised "…and N more".

Every string that came from a user, a certificate or the tenant goes through `escape_mrkdwn()`
before it reaches mrkdwn text: Slack parses `<!channel>`, `<@U123>` and `<url|label>` anywhere in
mrkdwn, including inside backticks, so an unescaped sender address or connector name could ping a
whole channel through the bot. Nothing here reads a clock, a socket or a file: `now` is passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.mrkdwn import escape_mrkdwn, neutralise
from bot.records import LeaderRecord, OpenFinding, RunRecord
from checks.explain import Explanation
from checks.i18n import N_, _, format_day, format_moment, ngettext
from checks.model import Config, Connector, Endpoint, Finding, Severity, Thresholds
from checks.observations import TlsObservation
from checks.rules.certcheck import days_until, expiry_severity
from checks.rules.certificates import CertificateFacts, CertificateObservation, ChainVerdict
from checks.rules.lifecycle import CertificateSnapshot
from checks.rules.replies import Triage
from checks.rules.tenant import TenantFacts
from checks.titles import triage_title

MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_CHARS = 3000

SHARE_ACTION_ID = "relaycheck_share"

DEFAULT_THRESHOLDS = Thresholds()

SEVERITY_ICON = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
    Severity.OK: ":large_green_circle:",
}

_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def _clip(text: str, limit: int) -> str:
    """Cut already-escaped text to `limit` characters without leaving half an entity."""
    if len(text) <= limit:
        return text
    cut = _PARTIAL_ENTITY.sub("", text[: limit - 1])
    return cut + "…"


def _plain(text: str, limit: int = MAX_HEADER_CHARS) -> str:
    """Plain text needs no `& < >` escaping (Slack renders it literally), but invisible and
    reordering characters are neutralised, and it has a length limit."""
    text = neutralise(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit_lines(lines: Sequence[str], limit: int = MAX_SECTION_CHARS, *, head: str = "") -> str:
    """Join escaped lines under `limit` characters, summarising what does not fit."""
    out = head
    for index, line in enumerate(lines):
        candidate = f"{out}\n{line}" if out else line
        remaining = len(lines) - index - 1
        reserve = len("\n" + _more(remaining)) if remaining else 0
        if len(candidate) + reserve > limit:
            left = len(lines) - index
            summary = _more(left)
            if len(out) + len(summary) + 1 > limit:  # a single huge line: clip it instead
                return _clip(candidate, limit)
            return f"{out}\n{summary}" if out else summary
        out = candidate
    return out or " "


def _more(count: int) -> str:
    return _("…and {count} more").format(count=count)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_clip(text, MAX_SECTION_CHARS)))


def _context(*texts: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=_clip(t, 2000)) for t in texts[:10]])


def _code(text: str) -> str:
    return f"`{escape_mrkdwn(text)}`" if text else "`" + _("(empty)") + "`"


def _when(moment: datetime) -> str:
    return format_moment(moment)


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 3600:
        return _("{n} min").format(n=seconds // 60)
    if seconds < 86400:
        return _("{n} h").format(n=seconds // 3600)
    return _("{n} d").format(n=seconds // 86400)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message: fallback text (notifications, screen readers) plus blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.blocks) > MAX_MESSAGE_BLOCKS:
            raise ValueError(f"{len(self.blocks)} blocks exceed Slack's {MAX_MESSAGE_BLOCKS}")

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": [b.to_dict() for b in self.blocks]}

    def block_dicts(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.blocks]


def _fallback(text: str) -> str:
    return _clip(escape_mrkdwn(text), MAX_FALLBACK_CHARS)


# --------------------------------------------------------------------------- explain


def _certificate_lines(
    observation: CertificateObservation | None,
    connector: str | None,
    now: datetime,
    thresholds: Thresholds,
) -> list[str]:
    if observation is None:
        if connector is None:
            return []
        return [
            _("Connector {connector}: no certificate source configured, not observed").format(
                connector=_code(connector)
            )
        ]
    where = _("from {source}").format(source=escape_mrkdwn(observation.source))
    if observation.error is not None or observation.leaf is None:
        reason = escape_mrkdwn(observation.error or _("no certificate"))
        return [
            ":warning: " + _("not observed {where}: {reason}").format(where=where, reason=reason)
        ]
    return _leaf_lines(observation.leaf, observation.verdict, now, thresholds, where=where)


def _leaf_lines(
    leaf: CertificateFacts,
    verdict: ChainVerdict | None,
    now: datetime,
    thresholds: Thresholds,
    *,
    where: str,
) -> list[str]:
    severity = expiry_severity(leaf.not_after, now, thresholds)
    icon = "" if severity is Severity.OK else SEVERITY_ICON[severity] + " "
    chain = _("not verified")
    if verdict is not None:
        chain = escape_mrkdwn(verdict.status.value)
        if verdict.detail:
            chain += f" ({escape_mrkdwn(verdict.detail)})"
    return [
        *_leaf_summary(leaf, now, icon=icon),
        "*" + _("Chain:") + f"* {chain}",
        "_" + _("observed {where}").format(where=where) + "_",
    ]


def _verdict_text(explanation: Explanation) -> str:
    if not explanation.relay:
        return ":inbox_tray: " + _("*Delivered into the tenant* (not a relay)")
    if explanation.accepted and explanation.assumption:
        return (
            ":grey_question: "
            + _("*Relayed* by Exchange Online")
            + f", {escape_mrkdwn(explanation.assumption)}"
        )
    if explanation.accepted:
        return ":white_check_mark: " + _("*Relayed* by Exchange Online")
    return ":no_entry: " + _("*Refused* by Exchange Online")


def _explanation_blocks(
    explanation: Explanation, now: datetime, thresholds: Thresholds, *, nested: bool
) -> list[Block]:
    env = explanation.envelope
    sender = env.sender.display if env.sender else "<>"  # Unicode domains, as the CLI shows
    blocks: list[Block] = []
    title = f"{explanation.scenario.title} ({explanation.scenario.value})"
    if nested:
        blocks.append(
            _section(
                "*" + _("What happens to mail this mailbox forwards:") + f"* {escape_mrkdwn(title)}"
            )
        )
    else:
        blocks.append(HeaderBlock(text=PlainTextObject(text=_plain(title), emoji=True)))
    route = f"{_code(sender)} → {_code(env.recipient.display)}"
    if env.via is not None:
        route += f" via {_code(env.via.display)}"
    blocks.append(
        _section(
            f"{route}\n" + _("Scenario:") + f" *{escape_mrkdwn(explanation.scenario.title)}* "
            f"(`{explanation.scenario.value}`)\n{_verdict_text(explanation)}"
        )
    )
    reply_lines = []
    if explanation.smtp_response:
        reply_lines.append(
            "*" + _("SMTP reply:") + f"*\n```{escape_mrkdwn(explanation.smtp_response)}```"
        )
        for alias in explanation.smtp_response_aliases:
            reply_lines.append("_" + _("also seen as") + f"_ {_code(alias)}")
    fields = [
        MarkdownTextObject(
            text="*"
            + _("Connector:")
            + "* "
            + (_code(explanation.connector) if explanation.connector else _("none matched"))
        )
    ]
    if (
        explanation.certificate_connector
        and explanation.certificate_connector != explanation.connector
    ):
        fields.append(
            MarkdownTextObject(
                text="*"
                + _("Certificate connector:")
                + f"* {_code(explanation.certificate_connector)}"
            )
        )
    blocks.append(SectionBlock(fields=fields))
    if reply_lines:
        blocks.append(_section("\n".join(reply_lines)))
    cert = _certificate_lines(
        explanation.certificate, explanation.certificate_connector, now, thresholds
    )
    if cert:
        blocks.append(_section(fit_lines(cert, head="*" + _("Certificate as last seen") + "*")))
    if explanation.reasons:
        lines = [f"• {escape_mrkdwn(r)}" for r in explanation.reasons]
        blocks.append(_section(fit_lines(lines, head="*" + _("Why") + "*")))
    if explanation.warnings:
        lines = [f":warning: {escape_mrkdwn(w)}" for w in explanation.warnings]
        blocks.append(_section(fit_lines(lines, head="*" + _("Warnings") + "*")))
    if explanation.fix:
        lines = [f"{i}. {escape_mrkdwn(step)}" for i, step in enumerate(explanation.fix, 1)]
        blocks.append(_section(fit_lines(lines, head="*" + _("Fix") + "*")))
    return blocks


def explanation_message(
    explanation: Explanation,
    *,
    now: datetime,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    share_value: str | None = None,
    shared_by: str | None = None,
) -> Rendered:
    """The answer to `/relaycheck SENDER -> RECIPIENT`; `share_value` adds the share button."""
    blocks = _explanation_blocks(explanation, now, thresholds, nested=False)
    if explanation.forwarded is not None:
        blocks.append(DividerBlock())
        blocks.extend(_explanation_blocks(explanation.forwarded, now, thresholds, nested=True))
    if share_value is not None and len(share_value) <= MAX_BUTTON_VALUE:
        blocks.append(
            ActionsBlock(
                block_id="relaycheck_actions",
                elements=[
                    ButtonElement(
                        text=_("Share in channel"), action_id=SHARE_ACTION_ID, value=share_value
                    )
                ],
            )
        )
    footer = f"relaycheck · {_when(now)}"
    if shared_by is not None:
        footer = (
            _("shared by {user}, checked again when shared").format(
                user=f"<@{escape_mrkdwn(shared_by)}>"
            )
            + f" · {footer}"
        )
    blocks.append(_context(footer))
    verdict = _("relayed") if explanation.accepted else _("refused")
    if not explanation.relay:
        verdict = _("delivered into the tenant")
    text = f"{explanation.scenario.value}: {verdict}"
    if explanation.smtp_response and not explanation.accepted:
        text += f" ({explanation.smtp_response})"
    return Rendered(text=_fallback(text), blocks=blocks[:MAX_MESSAGE_BLOCKS])


# --------------------------------------------------------------------------- cert probe


def _leaf_summary(leaf: CertificateFacts, now: datetime, *, icon: str = "") -> list[str]:
    """What the certificate says about itself; judging it is the rules' job, not rendering's
    (`icon` is a judgement made by the caller with `expiry_severity`)."""
    left = days_until(leaf.not_after, now)
    if left < 0:
        expiry = icon + ngettext(
            "expired {when} ({days} day ago)", "expired {when} ({days} days ago)", -left
        ).format(when=_when(leaf.not_after), days=-left)
    else:
        expiry = icon + ngettext(
            "expires {when} ({days} day left)", "expires {when} ({days} days left)", left
        ).format(when=_when(leaf.not_after), days=left)
    names = [escape_mrkdwn(n) for n in leaf.names]
    shown = ", ".join(names[:10]) + (" " + _more(len(names) - 10) if len(names) > 10 else "")
    return [
        "*" + _("Names:") + f"* {shown or _('(none)')}",
        "*" + _("Subject:") + f"* {escape_mrkdwn(leaf.subject)}",
        "*" + _("Issuer:") + f"* {escape_mrkdwn(leaf.issuer)}",
        "*" + _("Expiry:") + f"* {expiry}",
    ]


def _concerns(finding: Finding, address: str) -> bool:
    """Whether a finding of `evaluate_endpoint` is about `address` (one, or a chain's group)."""
    details = finding.details
    return details.get("address") == address or address in details.get("addresses", ())


def finding_line(finding: Finding) -> str:
    """One finding as the scan reports it: severity, check id, message."""
    return (
        f"{SEVERITY_ICON[finding.severity]} *{finding.severity.value}* "
        f"`{finding.check.value}` {escape_mrkdwn(finding.message)}"
    )


def _address_lines(findings: Sequence[Finding]) -> list[str]:
    """Problems worst first, one line each; the checks that passed, named on one line."""
    problems = sorted(
        (f for f in findings if f.severity is not Severity.OK), key=lambda f: -f.severity.rank
    )
    lines = [finding_line(f) for f in problems]
    failed = {f.check for f in problems}  # cert-weak judges the key and the TLS version apart
    passed = sorted({f.check.value for f in findings if f.check not in failed})
    if passed:
        lines.append(
            f"{SEVERITY_ICON[Severity.OK]} "
            + _("passed:")
            + " "
            + ", ".join(f"`{c}`" for c in passed)
        )
    return lines


def certificate_probe_message(
    endpoint: Endpoint,
    observations: Sequence[TlsObservation],
    findings: Sequence[Finding],
    *,
    now: datetime,
) -> Rendered:
    """The answer to `/relaycheck cert NAME|HOST[:PORT]`: the scan's findings, per address.

    `findings` are what `checks.rules.certcheck.evaluate_endpoint` says about `observations`,
    the same rule the scan runs, so Slack and `relaycheck scan` cannot disagree about an
    endpoint. Each address shows the leaf it served and the findings about it (a finding about
    a chain served by several addresses is shown under each of them).
    """
    target = f"{endpoint.name} ({endpoint.host}:{endpoint.port})"
    worst = max((f.severity for f in findings), default=Severity.OK)
    problems = [f for f in findings if f.severity is not Severity.OK]
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(text=_plain(_("Certificate of {target}").format(target=target)))
        ),
        _context(
            f"{SEVERITY_ICON[worst]} *{worst.value}*",
            ngettext("{n} problem", "{n} problems", len(problems)).format(n=len(problems))
            if problems
            else _("every check passed"),
            ngettext(
                "{n} address probed {when}", "{n} addresses probed {when}", len(observations)
            ).format(n=len(observations), when=_when(now)),
        ),
    ]
    shown: set[int] = set()
    room = MAX_MESSAGE_BLOCKS - len(blocks) - 2
    for obs in observations[:room]:
        address = obs.address or obs.host
        mine = [f for f in findings if _concerns(f, address)]
        shown.update(id(f) for f in mine)
        severity = max((f.severity for f in mine), default=Severity.OK)
        head = (
            f"{SEVERITY_ICON[severity]} *"
            + _("{address} port {port}").format(address=escape_mrkdwn(address), port=obs.port)
            + "*"
        )
        if obs.tls_version:
            head += f" · {escape_mrkdwn(obs.tls_version)}"
        summary = _leaf_summary(obs.leaf, now) if obs.leaf is not None else []
        blocks.append(_section(fit_lines([*summary, *_address_lines(mine)], head=head)))
    if len(observations) > room:
        blocks.append(
            _section(_("…and {count} more addresses").format(count=len(observations) - room))
        )
    if not observations:
        blocks.append(_section(_("No address was probed.")))
    rest = [f for f in findings if id(f) not in shown]
    if rest:
        blocks.append(_section(fit_lines(_address_lines(rest), head="*" + _("Endpoint") + "*")))
    text = _("certificate of {target}: {severity}").format(target=target, severity=worst.value)
    if problems:
        first = max(problems, key=lambda f: f.severity.rank)
        text += f" ({first.check.value}: {first.message})"
    return Rendered(text=_fallback(text), blocks=blocks)


# --------------------------------------------------------------------------- status


def leader_line(leader: LeaderRecord | None) -> str:
    """Which replica leads the scheduled checks, and since when (or that none does now)."""
    if leader is None:
        return _("scheduled checks: no replica has led yet")
    name = escape_mrkdwn(leader.replica)
    if not leader.active:
        return _("scheduled checks: no leader (replica {name}'s lease ended {when})").format(
            name=name, when=_when(leader.until)
        )
    return _("scheduled checks led by replica {name} since {when}").format(
        name=name, when=_when(leader.since)
    )


def _last_scan(run: RunRecord | None, now: datetime) -> str:
    if run is None:
        return _("no scan has run yet")
    at = run.finished_at or run.started_at
    state = _("ok") if run.ok else _("failed")
    return _("last scan {when} ({age} ago, {state})").format(
        when=_when(at), age=_age(now - at), state=state
    )


def _finding_line(item: OpenFinding, now: datetime) -> str:
    f = item.finding
    owner = f"<@{escape_mrkdwn(item.acknowledged_by)}>" if item.acknowledged_by else _("nobody")
    line = (
        f"{SEVERITY_ICON[f.severity]} *{f.severity.value}* `{f.check.value}` "
        f"{escape_mrkdwn(f.subject)}\n{escape_mrkdwn(f.message)}\n"
        + "_"
        + _("open {age} · owner {owner}").format(age=_age(now - item.opened_at), owner=owner)
        + "_"
    )
    if item.snoozed_until is not None and item.snoozed_until > now:
        line += " _· " + _("snoozed until {when}").format(when=_when(item.snoozed_until)) + "_"
    return line


def _worst_first(findings: Iterable[OpenFinding]) -> list[OpenFinding]:
    return sorted(findings, key=lambda o: (-o.finding.severity.rank, o.opened_at))


def status_message(
    findings: Sequence[OpenFinding], *, last_run: RunRecord | None, now: datetime
) -> Rendered:
    """The answer to `/relaycheck status`: open findings, worst first, with age and owner."""
    ordered = _worst_first(findings)
    counts = {s: sum(1 for o in ordered if o.finding.severity is s) for s in Severity}
    summary = " · ".join(
        f"{SEVERITY_ICON[s]} {counts[s]} {s.value}" for s in reversed(Severity) if counts[s]
    )
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(text=_("Open findings: {count}").format(count=len(ordered)))
        ),
        _context(summary or ":large_green_circle: " + _("nothing open"), _last_scan(last_run, now)),
    ]
    room = MAX_MESSAGE_BLOCKS - len(blocks) - 1
    shown = ordered[:room]
    blocks.extend(_section(_finding_line(o, now)) for o in shown)
    if len(ordered) > len(shown):
        blocks.append(
            _section(_("…and {count} more open findings").format(count=len(ordered) - len(shown)))
        )
    text = _("{count} open findings").format(count=len(ordered)) + (
        f" ({summary})" if summary else ""
    )
    return Rendered(text=_fallback(text), blocks=blocks)


# --------------------------------------------------------------------------- help / errors

USAGE_LINES = (
    N_(
        "`/relaycheck SENDER -> RECIPIENT [via MAILBOX]`: which relay scenario a message is, and "
        "whether Exchange Online relays it"
    ),
    N_("`/relaycheck cert NAME|HOST[:PORT]`: probe a configured endpoint (or an allowed host) now"),
    N_("`/relaycheck status`: open findings, worst first"),
    N_(
        "`/relaycheck triage TEXT`: what an Exchange Online reply (NDR, queue error, log line) "
        "means and what to check"
    ),
    N_("the message shortcut *Explain this bounce* explains a pasted NDR or log in a thread reply"),
    N_("`/relaycheck help`: this text"),
)
EXAMPLES = (
    "/relaycheck kate@contoso.com -> kate@tailspintoys.com",
    "/relaycheck <> -> someone@internet.example",
    "/relaycheck john@fabrikam.com -> kate@tailspintoys.com via kate@contoso.com",
    "/relaycheck cert smarthost",
    "/relaycheck cert mail.contoso.com:25",
    "/relaycheck triage 550 5.7.64 TenantAttribution; Relay Access Denied SMTP",
)


def help_message(reason: str | None = None) -> Rendered:
    """Usage with examples; `reason` says why the input was not understood."""
    blocks: list[Block] = []
    if reason:
        blocks.append(_section(f":grey_question: {escape_mrkdwn(reason)}"))
    blocks.append(
        _section(
            _("*relaycheck*: relay triage for Exchange Online")
            + "\n"
            + "\n".join(_(line) for line in USAGE_LINES)
        )
    )
    blocks.append(
        _section("*" + _("Examples") + "*\n```" + escape_mrkdwn("\n".join(EXAMPLES)) + "```")
    )
    text = _("relaycheck usage") + (f": {reason}" if reason else "")
    return Rendered(text=_fallback(text), blocks=blocks)


def error_message(problem: str) -> Rendered:
    """A one-line refusal or failure, with the user's input escaped."""
    return Rendered(
        text=_fallback(problem), blocks=[_section(f":no_entry: {escape_mrkdwn(problem)}")]
    )


def runbook_link(runbook_url: str | None, anchor: str) -> str | None:
    """`[alerts] runbook_url` + `#<id>` (the runbook's sections are anchored by their ids)."""
    if not runbook_url:
        return None
    return f"{runbook_url.split('#', 1)[0]}#{anchor}"


def _status_class(answer: Triage) -> str:
    if answer.permanent is None:
        return _("no status code in the text")
    if answer.permanent:
        return ":no_entry: " + _("permanent failure (5.x.x): the message bounced")
    return ":hourglass_flowing_sand: " + _(
        "temporary failure (4.x.x): the sender retries, then bounces"
    )


def _triage_blocks(result: Triage, runbook_url: str | None, *, short: bool) -> list[Block]:
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_plain(f"Exchange Online: {result.code}"))),
        _section(
            f"*{escape_mrkdwn(result.code)}*: {escape_mrkdwn(result.meaning)}\n"
            + _status_class(result)
        ),
    ]
    if result.hints:
        blocks.append(
            _section(
                fit_lines(
                    [f":mag: {escape_mrkdwn(h)}" for h in result.hints],
                    head="*" + _("This tenant") + "*",
                )
            )
        )
    if result.causes and not short:
        blocks.append(
            _section(
                fit_lines(
                    [f"• {escape_mrkdwn(c)}" for c in result.causes],
                    head="*" + _("Likely causes") + "*",
                )
            )
        )
    if result.fixes:
        fixes = result.fixes[:2] if short else result.fixes
        blocks.append(
            _section(
                fit_lines(
                    [f"{i}. {escape_mrkdwn(step)}" for i, step in enumerate(fixes, 1)],
                    head="*" + _("Check and fix") + "*",
                )
            )
        )
    context = [escape_mrkdwn(triage_title(result.key))]
    if result.check_ids:
        context.append(_("Caught by:") + " " + ", ".join(_code(c.value) for c in result.check_ids))
    if result.scenarios:
        context.append(_("Scenarios:") + " " + ", ".join(_code(s.value) for s in result.scenarios))
    if result.note:
        context.append(_("Note:") + f" {escape_mrkdwn(result.note)}")
    if result.matched:
        context.append(_("Recognised:") + " " + ", ".join(_code(m) for m in result.matched))
    link = runbook_link(runbook_url, result.key)
    if link:
        context.append(f"<{link}|" + _("Runbook") + ">")
    if context:
        blocks.append(_context(*context))
    return blocks


def triage_message(
    result: Triage | Sequence[Triage], *, runbook_url: str | None = None
) -> Rendered:
    """The answer to `/relaycheck triage TEXT` and the "Explain this bounce" shortcut: every
    status in the text, in order, each headed with its code as pasted and its class.

    Every string is escaped although the entries are ours: `matched` echoes the user's text.
    Several statuses are shortened (two fix steps, no causes) so that a long log still fits in
    one message; the blocks are cut to Slack's 50.
    """
    answers = [result] if isinstance(result, Triage) else list(result)
    short = len(answers) > 2
    blocks: list[Block] = []
    if len(answers) > 1:
        blocks.append(
            _context(
                _("{count} different statuses in the text, in order of appearance:").format(
                    count=len(answers)
                )
            )
        )
    for index, answer in enumerate(answers):
        part = _triage_blocks(answer, runbook_url, short=short)
        if len(blocks) + len(part) + (1 if index else 0) > MAX_MESSAGE_BLOCKS - 1:
            blocks.append(_section(_more(len(answers) - index)))
            break
        if index:
            blocks.append(DividerBlock())
        blocks.extend(part)
    first = answers[0]
    text = f"{first.code}: {first.meaning}"
    if len(answers) > 1:
        text += " (+" + ", ".join(a.code for a in answers[1:]) + ")"
    return Rendered(text=_fallback(text), blocks=blocks[:MAX_MESSAGE_BLOCKS])


# --------------------------------------------------------------------------- App Home


def _connector_line(connector: Connector) -> str:
    kinds = []
    if connector.tls_sender_certificate_name:  # what `certificate_based` tests
        kinds.append(
            _("certificate {name}").format(name=_code(connector.tls_sender_certificate_name))
        )
    if connector.ip_based:
        ips = connector.sender_ip_addresses
        kinds.append(
            "IP "
            + ", ".join(escape_mrkdwn(ip) for ip in ips[:5])
            + (" " + _more(len(ips) - 5) if len(ips) > 5 else "")
        )
    state = "" if connector.enabled else " _(" + _("disabled") + ")_"
    return f"• *{escape_mrkdwn(connector.name)}*{state}: " + (
        "; ".join(kinds) or _("matches nothing")
    )


HomeCertificate = CertificateObservation | CertificateSnapshot


def _home_certificate_line(
    name: str, cert: HomeCertificate, now: datetime, thresholds: Thresholds
) -> str:
    chain = ""
    if isinstance(cert, CertificateObservation):
        leaf = cert.leaf
        if cert.error is not None or leaf is None:
            reason = escape_mrkdwn(cert.error or _("no certificate"))
            return f"{SEVERITY_ICON[Severity.CRITICAL]} *{escape_mrkdwn(name)}*: " + _(
                "not observed ({reason})"
            ).format(reason=reason)
        not_after, label = leaf.not_after, leaf.common_name or leaf.subject
        untrusted = cert.verdict is not None and not cert.verdict.trusted
        if cert.verdict is not None:
            chain = " · " + _("chain {status}").format(
                status=escape_mrkdwn(cert.verdict.status.value)
            )
    else:
        not_after, untrusted = cert.not_after, False
        label = cert.names[0] if cert.names else cert.subject
    left = days_until(not_after, now)
    severity = Severity.CRITICAL if untrusted else expiry_severity(not_after, now, thresholds)
    days = ngettext("{days} day left ({day})", "{days} days left ({day})", left).format(
        days=left, day=format_day(not_after)
    )
    return (
        f"{SEVERITY_ICON[severity]} *{escape_mrkdwn(name)}*: {days}{chain} · {escape_mrkdwn(label)}"
    )


def readiness_lines(config: Config, last_run: RunRecord | None) -> list[str]:
    """One row per relay scenario the tenant relies on: relays, refused, or unknown."""
    summary = last_run.summary if last_run is not None and last_run.summary else {}
    judged: dict[str, list[dict[str, Any]]] = {}
    for entry in summary.get("relay_scenarios") or ():
        judged.setdefault(str(entry.get("scenario")), []).append(entry)
    lines = []
    for scenario in config.tenant.relay_scenarios:
        entries = judged.get(scenario.value)
        if not entries:
            lines.append(f":grey_question: `{scenario.value}`: " + _("unknown (not judged yet)"))
            continue
        for entry in entries:
            cause = f" ({escape_mrkdwn(str(entry['cause']))})" if entry.get("cause") else ""
            if entry.get("accepted") is False:
                reply = escape_mrkdwn(str(entry.get("smtp_response") or ""))
                lines.append(
                    f":no_entry: `{scenario.value}`{cause}: "
                    + _("refused: {reply}").format(reply=reply)
                )
            elif entry.get("severity") == Severity.WARNING.value:
                lines.append(f":warning: `{scenario.value}`{cause}: " + _("relays, with a caveat"))
            else:
                lines.append(f":white_check_mark: `{scenario.value}`{cause}: " + _("relays"))
    return lines or [_("no relay scenario configured ([tenant] relay_scenarios)")]


def home_view(
    config: Config,
    *,
    facts: TenantFacts | None,
    certificates: Mapping[str, HomeCertificate],
    findings: Sequence[OpenFinding],
    last_run: RunRecord | None,
    now: datetime,
    readiness: RunRecord | None = None,
    leader: LeaderRecord | None = None,
) -> View:
    """The App Home tab: relay readiness, connectors, certificates with days left, domains,
    last scan, and which replica runs the scheduled checks (every replica renders the same
    tab). `readiness` is the last run that judged the relay scenarios (default: last_run)."""
    connectors = facts.connectors if facts is not None else config.connectors
    domains = (
        facts.accepted_names()
        if facts is not None
        else tuple(d.name for d in config.tenant.accepted_domains)
    )
    ordered = _worst_first(findings)
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_plain(f"relaycheck: {config.tenant.name}"))),
        _context(
            _last_scan(last_run, now),
            _("{count} open findings").format(count=len(ordered)),
            leader_line(leader),
        ),
        DividerBlock(),
        _section(
            fit_lines(
                readiness_lines(config, readiness if readiness is not None else last_run),
                head="*" + _("Relay readiness (KB 3169958)") + "*",
            )
        ),
        _section(
            fit_lines(
                [_connector_line(c) for c in connectors] or [_("none configured")],
                head="*" + _("Connectors ({count})").format(count=len(connectors)) + "*",
            )
        ),
        _section(
            fit_lines(
                [
                    _home_certificate_line(n, o, now, config.thresholds)
                    for n, o in sorted(certificates.items())
                ]
                or [_("no certificate observed yet")],
                head="*" + _("Certificates ({count})").format(count=len(certificates)) + "*",
            )
        ),
        _section(
            fit_lines(
                [f"• {escape_mrkdwn(d)}" for d in domains] or [_("none known")],
                head="*" + _("Accepted domains ({count})").format(count=len(domains)) + "*",
            )
        ),
        _section(
            fit_lines(
                [
                    f"• {escape_mrkdwn(e.name)}: {escape_mrkdwn(e.host)}:{e.port} ({e.role.value})"
                    for e in config.endpoints
                ]
                or [_("none configured")],
                head="*" + _("Endpoints ({count})").format(count=len(config.endpoints)) + "*",
            )
        ),
    ]
    if ordered:
        blocks.append(DividerBlock())
        blocks.append(_section("*" + _("Open findings, worst first") + "*"))
        room = MAX_HOME_BLOCKS - len(blocks) - 1
        blocks.extend(_section(_finding_line(o, now)) for o in ordered[:room])
        if len(ordered) > room:
            blocks.append(
                _section(_("…and {count} more open findings").format(count=len(ordered) - room))
            )
    return View(type="home", blocks=blocks[:MAX_HOME_BLOCKS])


def home_denied_view() -> View:
    """App Home for a user the access policy does not allow: no tenant data at all."""
    return View(
        type="home",
        blocks=[
            HeaderBlock(text=PlainTextObject(text="relaycheck")),
            _section(
                ":lock: relaycheck shows connectors, certificates and findings only to the "
                "people its access policy allows (`[slack] allowed_users` and "
                "`allowed_channels`). Ask the relaycheck admins if you need it."
            ),
        ],
    )
