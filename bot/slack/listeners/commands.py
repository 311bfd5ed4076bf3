"""`/relaycheck` and its "Share in channel" button.

Order matters for Slack's 3-second limit: anything pure (parsing, help) is answered in the
acknowledgement itself; anything that reads the tenant, observes certificates or probes a host
is acknowledged first and answered afterwards through the command's response_url (`answerer`).
Input that cannot be understood gets the help text and the reason, never silence.

`/relaycheck cert` must not turn the bot into a port scanner for whoever can type in Slack:
configured endpoints are always allowed (the operator listed them); an ad-hoc host must be a
name within `[slack] probe_allowed_domains`, is resolved here, and every address it resolves to
must be public (`checks.rules.targets`: an explicit rule, NAT64, 6to4 and the other IPv6 forms
judged by the IPv4 address they embed) unless `allow_private_targets = true` (how tests reach
loopback). The probe then connects to exactly the addresses that were checked, so a second DNS
answer cannot swap in a private address.

A probe costs the on-prem servers a connection, so it is bounded three ways: one
`[probe] deadline_seconds` for the whole command (not per address), `[probe] concurrency`
connections at once across all concurrent commands (`Deps.probe_slots`), and at most
`CERT_PROBES_PER_MINUTE` probes per user per minute (`Deps.cert_limiter`; a target the guard
refuses is not counted, since it costs no connection).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.alerting.delivery import slack_error
from bot.mrkdwn import escape_mrkdwn
from bot.slack.blocks import (
    SHARE_ACTION_ID,
    Rendered,
    certificate_probe_message,
    error_message,
    explanation_message,
    help_message,
    status_message,
    triage_message,
)
from bot.slack.listeners.common import CERT_PROBES_PER_MINUTE, Deps, language_for
from checks.errors import AddressError, RelaycheckError
from checks.explain import explain
from checks.i18n import _, using
from checks.model import Endpoint, TlsMode
from checks.observations import FailureKind, ProbeFailure, ProbeStage, TlsObservation
from checks.probes.dns import address_resolver
from checks.probes.exports import load_tenant
from checks.probes.smtp import probe_endpoint, resolve
from checks.rules.addresses import parse_pair
from checks.rules.certcheck import evaluate_endpoint
from checks.rules.names import InvalidName, to_ascii_domain
from checks.rules.replies import Triage, TriageInputError, triage_all
from checks.rules.targets import refusal
from checks.rules.triage_context import with_tenant_hints

COMMAND = "/relaycheck"
_LINK = re.compile(r"^<([^|>]*)(?:\|([^>]*))?>$")
_PORT = re.compile(r"[0-9]{1,5}")
_log = logging.getLogger("relaycheck.slack")


class TargetError(RelaycheckError):
    """A `/relaycheck cert` target that is refused or cannot be understood."""


def _reply(rendered: Rendered, *, response_type: str = "ephemeral") -> dict[str, Any]:
    return {"text": rendered.text, "blocks": rendered.block_dicts(), "response_type": response_type}


async def answer_text(
    text: str, deps: Deps, *, share: bool = True, shared_by: str | None = None
) -> Rendered:
    """Explain `SENDER -> RECIPIENT [via MAILBOX]` (raises AddressError for unparseable input).

    This runs on the event loop on purpose: it is well under a millisecond of CPU per answer
    once the trust store is built (`TrustAnchors.store()`), and moving it to worker threads
    made acknowledgements slower in `bench/bench_ack.py`: the GIL still serialises the work,
    and the loop then waits for the GIL after every socket call it makes.
    """
    envelope = parse_pair(text)
    now = deps.clock()
    context = await deps.explain_context(now)
    explanation = explain(
        envelope,
        context.facts,
        forwards=deps.config.forwards,
        certificates=context.certificates,
        now=now,
    )
    return explanation_message(
        explanation,
        now=now,
        thresholds=deps.config.thresholds,
        share_value=text if share else None,
        shared_by=shared_by,
    )


# --------------------------------------------------------------------------- cert targets


def _unlink(text: str) -> str:
    """Slack turns `mail.contoso.com` into `<http://mail.contoso.com|mail.contoso.com>`."""
    match = _LINK.match(text)
    if not match:
        return text
    label = match.group(2) or match.group(1)
    return re.sub(r"^[a-z]+://", "", label).rstrip("/")


def split_target(text: str) -> tuple[str, int]:
    """`HOST[:PORT]` or `[IPv6]:PORT` -> (host, port); the default port is 25."""
    text = _unlink(text.strip())
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise TargetError(_("unbalanced '[' in {text}").format(text=repr(text)))
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise TargetError(_("expected ':PORT' after ']' in {text}").format(text=repr(text)))
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host:
        raise TargetError(_("no host given; expected NAME, HOST or HOST:PORT"))
    port = 25
    if port_text:
        # ASCII digits only: str.isdigit() also accepts '²⁵', which int() then refuses
        if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise TargetError(_("{port} is not a TCP port (1-65535)").format(port=repr(port_text)))
        port = int(port_text)
    return host.lower().rstrip("."), port


def _within(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


async def resolve_target(text: str, deps: Deps) -> tuple[Endpoint, tuple[str, ...]]:
    """The endpoint to probe and the exact addresses allowed, or TargetError saying why not."""
    slack = deps.config.slack
    # the scan's resolver: `[dns] nameservers` when configured, else the system's
    lookup = address_resolver(deps.config.dns) if deps.config.dns.nameservers else resolve
    timeout = deps.config.probe.timeout_seconds
    configured = deps.config.endpoint(text.strip())
    if configured is not None:
        if configured.address is not None:
            return configured, (configured.address,)
        try:
            return configured, await lookup(configured.host, configured.port, timeout)
        except (OSError, TimeoutError) as err:
            raise TargetError(
                _("{host} does not resolve ({error})").format(host=configured.host, error=err)
            ) from None
    host, port = split_target(text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise TargetError(
            _(
                "{host} is an IP address; ad-hoc probes take a host name within "
                "[slack] probe_allowed_domains (or the name of a configured endpoint)"
            ).format(host=host)
        )
    try:
        ascii_host = to_ascii_domain(host)
    except InvalidName as err:
        raise TargetError(
            _("{host} is not a host name ({error})").format(host=repr(host), error=err)
        ) from None
    if not _within(ascii_host, slack.probe_allowed_domains):
        allowed = ", ".join(slack.probe_allowed_domains) or _("none are configured")
        names = ", ".join(e.name for e in deps.config.endpoints) or _("none")
        raise TargetError(
            _(
                "{host} is not a configured endpoint ({names}) and not within "
                "[slack] probe_allowed_domains ({allowed})"
            ).format(host=host, names=names, allowed=allowed)
        )
    try:
        addresses = await lookup(ascii_host, port, timeout)
    except (OSError, TimeoutError):
        raise TargetError(_("{host} does not resolve").format(host=host)) from None
    if not addresses:
        raise TargetError(_("{host} does not resolve").format(host=host))
    if not slack.allow_private_targets:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise TargetError(
                    _(
                        "{host} resolves to {address}, which is not a public address ({reason}); "
                        "refused: private, loopback or link-local targets need "
                        "[slack] allow_private_targets = true"
                    ).format(host=host, address=address, reason=reason)
                )
    tls = TlsMode.IMPLICIT if port == 465 else TlsMode.STARTTLS
    return Endpoint(name=host, host=ascii_host, port=port, tls=tls), addresses


async def probe_target(text: str, deps: Deps, *, user: str = "") -> Rendered:
    """Probe a configured endpoint or an allowed host now and judge it as the scan would.

    Its addresses are probed side by side, each connection waiting for one of the
    `[probe] concurrency` slots shared by every command, and all of them share ONE
    `[probe] deadline_seconds`, counted from the command's first connection (time queued
    behind other commands does not count); an address still unanswered then is reported as
    out of time."""
    endpoint, addresses = await resolve_target(text, deps)
    if not addresses:
        raise TargetError(f"{endpoint.host} does not resolve")
    # counted only once the target passed the guard: a refused one costs no connection
    wait = deps.cert_limiter.take(user, time.monotonic())
    if wait is not None:
        raise TargetError(
            f"too many /relaycheck cert probes: at most {CERT_PROBES_PER_MINUTE} per minute "
            f"per user; try again in {math.ceil(wait)} s"
        )
    settings = deps.config.probe
    slots = deps.probe_slots()
    first_connection = asyncio.Event()

    async def one(address: str) -> tuple[TlsObservation, ...]:
        async with slots:
            first_connection.set()
            return await probe_endpoint(replace(endpoint, address=address), settings)

    tasks = [asyncio.create_task(one(address)) for address in addresses]
    started = asyncio.create_task(first_connection.wait())
    try:
        await asyncio.wait([started, *tasks], return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait(tasks, timeout=settings.deadline_seconds)
    finally:
        started.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(started, *tasks, return_exceptions=True)
    observations: list[TlsObservation] = []
    for address, task in zip(addresses, tasks, strict=True):
        if task.cancelled():
            observations.append(_out_of_time(endpoint, address, settings.deadline_seconds))
        else:
            observations.extend(task.result())  # a bug of ours raises here, as before
    now = deps.clock()
    findings = evaluate_endpoint(
        endpoint,
        observations,
        now=now,
        thresholds=deps.config.thresholds,
        anchors=deps.trust_anchors(),
    )
    return certificate_probe_message(endpoint, observations, findings, now=now)


def _out_of_time(endpoint: Endpoint, address: str, budget: float) -> TlsObservation:
    return TlsObservation(
        endpoint=endpoint.name,
        host=endpoint.host,
        port=endpoint.port,
        address=address,
        failure=ProbeFailure(
            stage=ProbeStage.CONNECT,
            kind=FailureKind.DEADLINE,
            reason=f"the command's deadline of {budget:g} s ran out before this address answered",
        ),
    )


# --------------------------------------------------------------------------- listeners


Answer = Callable[[Rendered], Awaitable[None]]


def answerer(response_url: str, client: AsyncWebClient) -> Answer:
    """Post an answer to the command's response_url over the app client's session.

    bolt's `respond` opens a new HTTP session (a new TCP and TLS connection to Slack) for every
    answer; reusing the client's session keeps one connection alive instead. Without a session
    (a client built elsewhere) AsyncWebhookClient falls back to one session per answer.
    """
    hook = AsyncWebhookClient(response_url, session=client.session)

    async def answer(rendered: Rendered) -> None:
        response = await hook.send_dict(_reply(rendered))
        if response.status_code != 200:
            _log.warning("response_url refused the answer: HTTP %s", response.status_code)

    return answer


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command(COMMAND)
    async def relaycheck(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        # counted until acknowledged: follow-ups wait for the acks (`FollowUps`)
        deps.follow_ups.arrived()
        try:
            # the answer is in the language of the user who asked; nobody else's answer
            # changes (follow-up tasks copy this context, language included)
            language = await language_for(deps, client, command.get("user_id"))
            with using(language):
                await _command(ack, command, client)
        finally:
            deps.follow_ups.acked()

    async def _command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        """Acknowledge at once; whatever reads the tenant, explains or probes follows it."""
        respond = answerer(command["response_url"], client)
        user = command.get("user_id")
        if not deps.access.user_allowed(user):
            await ack(**_reply(error_message(_("/relaycheck is not enabled for you"))))
            return
        if not await deps.access.command_allowed(
            client, user=user, channel=command.get("channel_id")
        ):
            await ack(**_reply(error_message(_("/relaycheck is not enabled in this channel"))))
            return
        text = (command.get("text") or "").strip()
        word, _sep, rest = text.partition(" ")
        keyword = word.lower()
        if not text:
            await ack(**_reply(help_message(_("no input given"))))
            return
        if keyword == "help":
            await ack(**_reply(help_message()))
            return
        if keyword == "status":
            await ack()
            deps.follow_ups.start(_status(respond, deps))
            return
        if keyword == "cert":
            if not rest.strip():
                await ack(**_reply(help_message(_("cert needs NAME, HOST or HOST:PORT"))))
                return
            try:
                if deps.config.endpoint(rest.strip()) is None:
                    split_target(rest)  # syntax errors answered in the ack
            except TargetError as err:
                await ack(**_reply(help_message(str(err))))
                return
            await ack(
                text=_("Probing {target}…").format(target=escape_mrkdwn(rest.strip())),
                response_type="ephemeral",
            )
            deps.follow_ups.start(_cert(rest, respond, deps, user=user or ""), slow=True)
            return
        if keyword == "triage":
            await ack(**_reply(_triage(rest, deps)))  # answered in the acknowledgement
            return
        try:
            parse_pair(text)
        except AddressError as err:
            # a pasted NDR or log line is not a pair, but triage may know what it means
            recognised = _recognise(text)
            if recognised:
                await ack(**_reply(_triage_answer(recognised, deps)))
                return
            await ack(
                **_reply(
                    help_message(
                        _("could not read {text}: {error}").format(text=repr(text), error=err)
                    )
                )
            )
            return
        await ack()
        deps.follow_ups.start(_explain(text, respond, deps))

    # A click, not the hot path: bolt's `respond` finds the response_url(s) in the action body.
    @app.action(SHARE_ACTION_ID)
    async def share(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        # posted in the channel for everyone: the channel's language, not the clicker's
        with using(deps.config.locale.effective):
            await _share(body, respond, client)

    async def _share(body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        user = (body.get("user") or {}).get("id")
        value = (body.get("actions") or [{}])[0].get("value") or ""
        if not channel or not await deps.access.command_allowed(client, user=user, channel=channel):
            await respond(**_reply(error_message(_("cannot share in this channel"))))
            return
        try:
            rendered = await answer_text(value, deps, share=False, shared_by=user)
        except RelaycheckError as err:
            await respond(**_reply(error_message(str(err))))
            return
        try:
            await client.chat_postMessage(
                channel=channel, text=rendered.text, blocks=rendered.block_dicts()
            )
        except SlackApiError as err:
            problem = slack_error(err).code  # whatever the body was (JSON, text, HTML)
            await respond(
                **_reply(
                    error_message(_("Slack refused to post it: {problem}").format(problem=problem))
                )
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            await respond(
                **_reply(
                    error_message(
                        _("Slack did not answer ({error})").format(error=type(err).__name__)
                    )
                )
            )

    @app.shortcut(SHORTCUT_CALLBACK_ID)
    async def explain_bounce(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = (body.get("user") or {}).get("id")
        with using(await language_for(deps, client, user)):
            await _explain_bounce(body, client)

    async def _explain_bounce(body: dict[str, Any], client: AsyncWebClient) -> None:
        """Explain the message the shortcut was used on: a thread reply under it, or an
        ephemeral message to the user when the bot may not post there."""
        channel = (body.get("channel") or {}).get("id")
        user = (body.get("user") or {}).get("id")
        message = body.get("message") or {}
        if not channel or not await deps.access.command_allowed(client, user=user, channel=channel):
            rendered = error_message(_("/relaycheck is not enabled in this channel"))
            await _ephemeral(client, channel, user, rendered, body)
            return
        text = message_text(message)
        rendered = _triage(text, deps)
        thread = message.get("thread_ts") or message.get("ts")
        try:
            await client.chat_postMessage(
                channel=channel, thread_ts=thread, text=rendered.text, blocks=rendered.block_dicts()
            )
        except SlackApiError as err:
            _log.info("thread reply refused (%s): answering ephemerally", err.response.get("error"))
            await _ephemeral(client, channel, user, rendered, body)


SHORTCUT_CALLBACK_ID = "relaycheck_triage"


def message_text(message: dict[str, Any]) -> str:
    """A message's text as people see it: the text, plus text in its blocks and attachments
    (a forwarded NDR often arrives as an attachment or a rich-text block)."""
    parts = [str(message.get("text") or "")]
    for attachment in message.get("attachments") or []:
        parts.extend(str(attachment.get(k) or "") for k in ("pretext", "text", "fallback"))
    for file in message.get("files") or []:
        parts.append(str(file.get("preview") or ""))
    return "\n".join(p for p in parts if p)


async def _ephemeral(
    client: AsyncWebClient,
    channel: str | None,
    user: str | None,
    rendered: Rendered,
    body: dict[str, Any],
) -> None:
    if channel and user:
        try:
            await client.chat_postEphemeral(
                channel=channel, user=user, text=rendered.text, blocks=rendered.block_dicts()
            )
            return
        except SlackApiError as err:
            _log.info("ephemeral answer refused: %s", err.response.get("error"))
    url = body.get("response_url")
    if url:
        hook = AsyncWebhookClient(url, session=client.session)
        await hook.send_dict(_reply(rendered))


def _recognise(text: str) -> tuple[Triage, ...]:
    try:
        return triage_all(text)
    except TriageInputError:
        return ()


def _triage_answer(answers: tuple[Triage, ...], deps: Deps) -> Rendered:
    """The triage answer, with what the tenant's config and last scan say about the cause."""
    try:
        answers = tenant_hints_for(answers, deps)
    except RelaycheckError as err:  # a broken export must not cost the user the answer
        _log.warning("triage without tenant hints: %s", err)
    return triage_message(answers, runbook_url=deps.config.alerts.runbook_url)


def tenant_hints_for(answers: tuple[Triage, ...], deps: Deps) -> tuple[Triage, ...]:
    facts = load_tenant(deps.config)
    store = deps.store
    findings = [(o.finding, o.opened_at) for o in store.open_findings()] if store else []
    return with_tenant_hints(
        answers,
        connectors=facts.connectors,
        accepted=facts.accepted_domains,
        findings=findings,
        certificates=store.latest_certificates() if store else None,
    )


def _triage(text: str, deps: Deps) -> Rendered:
    if not text.strip():
        return help_message(_("triage needs the text Exchange Online answered"))
    try:
        answers = triage_all(text)
    except TriageInputError as err:
        return help_message(str(err))
    if not answers:
        return help_message(
            _("no Exchange Online reply recognised in {text}").format(text=repr(text[:500]))
        )
    return _triage_answer(answers, deps)


async def _explain(text: str, respond: Answer, deps: Deps) -> None:
    try:
        rendered = await answer_text(text, deps)
    except AddressError as err:
        rendered = help_message(
            _("could not read {text}: {error}").format(text=repr(text), error=err)
        )
    except RelaycheckError as err:
        rendered = error_message(str(err))
    await respond(rendered)


async def _cert(text: str, respond: Answer, deps: Deps, *, user: str = "") -> None:
    try:
        rendered = await probe_target(text, deps, user=user)
    except RelaycheckError as err:
        rendered = error_message(str(err))
    await respond(rendered)


async def _status(respond: Answer, deps: Deps) -> None:
    store, now = deps.store, deps.clock()
    findings = store.open_findings(now=now) if store is not None else []
    last_run = store.last_run() if store is not None else None
    await respond(status_message(findings, last_run=last_run, now=now))
