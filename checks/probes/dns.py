"""DNS probe: MX, A/AAAA, TXT (SPF, `_mta-sts`), TLSA, and the MTA-STS policy over HTTPS.

Every answer and every failure becomes a `Lookup` value; NXDOMAIN, no answer, SERVFAIL (all
servers failed: dnspython's NoNameservers) and timeouts stay distinct because they mean
different things to the mail team. Nothing here judges; `checks.rules.dns` does.

The resolver is dnspython's async one: the system configuration unless `[dns] nameservers` is
set, in which case it is built with `configure=False` and only those servers, on `[dns] port`.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import httpx

from checks.i18n import _
from checks.model import DnsSettings
from checks.rules.dns import (
    EXCHANGE_ONLINE_SPF,
    SPF_LOOKUP_LIMIT,
    DomainDns,
    Lookup,
    MtaStsObservation,
    MxHostObservation,
    MxRecord,
    Outcome,
    TlsaRecord,
    normalise_host,
    spf_targets,
    sts_txt_records,
)

# (host, port, wait_seconds) -> addresses; raises OSError, like `checks.probes.smtp.resolve`
AddressResolver = Callable[[str, int, float], Awaitable[tuple[str, ...]]]

MTA_STS_MAX_BYTES = 64 * 1024  # RFC 8461 section 3.3: senders may stop reading beyond this


def make_resolver(settings: DnsSettings) -> dns.asyncresolver.Resolver:
    """The resolver the settings ask for; per-query lifetime is `[dns] timeout_seconds`."""
    if settings.nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = list(settings.nameservers)
        resolver.port = settings.port
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.timeout = settings.timeout_seconds
    resolver.lifetime = settings.timeout_seconds
    return resolver


_SERVER = re.compile(r"^(?:[A-Za-z0-9]+:)?(?P<address>[^@]+)@(?P<port>\d+)$")


def _server(text: str) -> str:
    """dnspython's `Do53:127.0.0.1@5399` as `127.0.0.1 port 5399` (port 53 not shown)."""
    match = _SERVER.match(text)
    if match is None:
        return text
    return match["address"] if match["port"] == "53" else f"{match['address']} port {match['port']}"


def dns_problem(err: BaseException) -> str:
    """A resolver failure in words (dnspython's text names its classes and server objects)."""
    if isinstance(err, dns.exception.Timeout):
        timeout = err.kwargs.get("timeout") if hasattr(err, "kwargs") else None
        return (
            _("no answer within {seconds} s").format(seconds=f"{timeout:.1f}")
            if timeout
            else _("no answer in time")
        )
    if isinstance(err, dns.resolver.NoNameservers):
        return nameserver_failures(err)
    if isinstance(err, OSError):
        return (err.strerror or type(err).__name__).lower()
    if isinstance(err, dns.resolver.NoResolverConfiguration):
        return _("no nameservers are configured (set [dns] nameservers)")
    return _("the resolver could not ask ({error})").format(error=type(err).__name__)


def nameserver_failures(err: dns.resolver.NoNameservers) -> str:
    """`Server Do53:127.0.0.1@5399 answered SERVFAIL` as "127.0.0.1 port 5399 answered SERVFAIL"."""
    said: list[str] = []
    for item in err.kwargs.get("errors") or ():
        server = _server(str(item[0]))
        what = item[3] if len(item) > 3 else None
        if isinstance(what, str):
            text = _("{server} answered {what}").format(server=server, what=what)
        elif isinstance(what, dns.exception.Timeout):
            text = _("{server} did not answer in time").format(server=server)
        elif isinstance(what, OSError):
            text = _("{server} could not be reached ({error})").format(
                server=server, error=(what.strerror or "error").lower()
            )
        else:
            text = _("{server} gave no usable answer").format(server=server)
        if text not in said:
            said.append(text)
    if not said:
        return _("no nameserver gave an answer")
    return _("no nameserver gave an answer: {answers}").format(answers="; ".join(said))


class DnsProbe:
    """Asks one resolver; every method returns data, never raises for a remote failure."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self.resolver = resolver

    async def query(self, name: str, rdtype: str) -> tuple[Lookup, tuple[Any, ...]]:
        qname = dns.name.from_text(name)
        try:
            answer = await self.resolver.resolve(qname, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return Lookup(name=name, rdtype=rdtype, outcome=Outcome.NXDOMAIN), ()
        except dns.resolver.NoAnswer:
            return Lookup(name=name, rdtype=rdtype, outcome=Outcome.NO_ANSWER), ()
        except dns.resolver.NoNameservers as err:
            detail = nameserver_failures(err)
            return Lookup(name=name, rdtype=rdtype, outcome=Outcome.SERVFAIL, detail=detail), ()
        except dns.exception.Timeout as err:
            detail = dns_problem(err)
            return Lookup(name=name, rdtype=rdtype, outcome=Outcome.TIMEOUT, detail=detail), ()
        except (dns.exception.DNSException, OSError) as err:
            detail = dns_problem(err)
            return Lookup(name=name, rdtype=rdtype, outcome=Outcome.ERROR, detail=detail), ()
        rdatas = tuple(answer)
        texts: tuple[str, ...] = ()
        if answer.rdtype == dns.rdatatype.TXT:
            texts = tuple(
                b"".join(r.strings).decode("utf-8", "replace")  # one record, several strings
                for r in rdatas
            )
        return Lookup(name=name, rdtype=rdtype, outcome=Outcome.ANSWER, texts=texts), rdatas

    async def mx_host(self, host: str) -> MxHostObservation:
        (a, a_rd), (aaaa, aaaa_rd), (tlsa, tlsa_rd) = await asyncio.gather(
            self.query(host, "A"), self.query(host, "AAAA"), self.query(f"_25._tcp.{host}", "TLSA")
        )
        return MxHostObservation(
            host=host,
            a=a,
            aaaa=aaaa,
            addresses=tuple(r.address for r in (*a_rd, *aaaa_rd)),
            tlsa=tlsa,
            tlsa_records=tuple(
                TlsaRecord(usage=r.usage, selector=r.selector, mtype=r.mtype, data=r.cert)
                for r in tlsa_rd
            ),
        )

    async def spf(self, domain: str) -> dict[str, Lookup]:
        """The domain's TXT and, breadth first, those its SPF includes and redirects name,
        bounded by the RFC 7208 limit of ten DNS lookups."""
        seen: dict[str, Lookup] = {}
        pending = [domain]
        while pending and len(seen) <= SPF_LOOKUP_LIMIT:
            batch = [n for n in dict.fromkeys(pending) if n not in seen][
                : SPF_LOOKUP_LIMIT + 1 - len(seen)
            ]
            results = await asyncio.gather(*(self.query(n, "TXT") for n in batch))
            pending = []
            for name, (lookup, _rdatas) in zip(batch, results, strict=True):
                seen[name] = lookup
                if lookup.outcome is Outcome.ANSWER:
                    # Exchange Online's own record is the goal, not something to read
                    pending.extend(t for t in spf_targets(lookup.texts) if t != EXCHANGE_ONLINE_SPF)
        return seen


async def fetch_mta_sts_policy(
    domain: str, http: httpx.AsyncClient, *, origin: str | None = None
) -> tuple[str, str | None, str | None]:
    """Fetch `https://mta-sts.<domain>/.well-known/mta-sts.txt`: (url, text, error).

    `origin` ("https://127.0.0.1:8443") only exists for tests: the request then goes there,
    still presenting and verifying the name `mta-sts.<domain>` (SNI and Host), so the
    certificate check is the real one. Redirects are not followed (RFC 8461 section 3.3)."""
    host = f"mta-sts.{domain}"
    url = f"https://{host}/.well-known/mta-sts.txt"
    target = f"{origin.rstrip('/')}/.well-known/mta-sts.txt" if origin else url
    try:
        async with http.stream(
            "GET",
            target,
            headers={"Host": host},
            extensions={"sni_hostname": host},
            follow_redirects=False,
        ) as response:
            if response.status_code != 200:
                return url, None, f"HTTP {response.status_code}"
            content_type = response.headers.get("content-type", "")
            if not content_type.lower().startswith("text/plain"):
                return (
                    url,
                    None,
                    _("Content-Type is {type}, not text/plain").format(
                        type=content_type or "missing"
                    ),
                )
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MTA_STS_MAX_BYTES:
                    return url, None, _("policy is larger than 64 KiB")
    except httpx.TimeoutException:
        return url, None, _("timed out")
    except httpx.HTTPError as err:
        return url, None, f"{type(err).__name__}: {err}"
    try:
        return url, body.decode("utf-8"), None
    except UnicodeDecodeError:
        return url, None, _("policy is not UTF-8 text")


async def policy_origin(
    probe: DnsProbe, domain: str, settings: DnsSettings
) -> tuple[str | None, str | None]:
    """Where to fetch the MTA-STS policy from: (origin, error).

    With `[dns] nameservers`, the policy host is resolved through those servers like every
    other name (the HTTP client would otherwise ask the system resolver); the request then goes
    to that address while still naming and verifying `mta-sts.<domain>`."""
    port = "" if settings.mta_sts_port == 443 else f":{settings.mta_sts_port}"
    host = f"mta-sts.{domain}"
    if not settings.nameservers:
        return (f"https://{host}{port}" if port else None), None
    for rdtype in ("A", "AAAA"):
        lookup, rdatas = await probe.query(host, rdtype)
        if rdatas:
            address = rdatas[0].address
            shown = f"[{address}]" if ":" in address else address
            return f"https://{shown}{port}", None
        if lookup.outcome is Outcome.NXDOMAIN:
            break
    return None, _("{host} does not resolve").format(host=host)


async def observe_domain(
    probe: DnsProbe,
    domain: str,
    *,
    http: httpx.AsyncClient,
    sts_origin: str | None = None,
    settings: DnsSettings | None = None,
) -> DomainDns:
    """Everything relaycheck looks at in DNS for one accepted domain."""
    (mx, mx_rd), spf, (sts_txt, _sts_rd) = await asyncio.gather(
        probe.query(domain, "MX"), probe.spf(domain), probe.query(f"_mta-sts.{domain}", "TXT")
    )
    records = tuple(
        MxRecord(preference=r.preference, exchange=normalise_host(r.exchange.to_text()))
        for r in mx_rd
    )
    hosts = sorted({r.exchange for r in records if r.exchange})
    host_obs = await asyncio.gather(*(probe.mx_host(h) for h in hosts))
    sts = MtaStsObservation(txt=sts_txt)
    if sts_txt.outcome is Outcome.ANSWER and sts_txt_records(sts_txt.texts):
        origin, error = sts_origin, None
        if origin is None and settings is not None:
            origin, error = await policy_origin(probe, domain, settings)
        if error is not None:
            url, text = f"https://mta-sts.{domain}/.well-known/mta-sts.txt", None
        else:
            url, text, error = await fetch_mta_sts_policy(domain, http, origin=origin)
        sts = MtaStsObservation(txt=sts_txt, policy_url=url, policy_text=text, policy_error=error)
    return DomainDns(
        domain=domain, mx=mx, mx_records=records, hosts=tuple(host_obs), spf=spf, mta_sts=sts
    )


async def observe_domains(
    settings: DnsSettings,
    domains: Sequence[str],
    *,
    http: httpx.AsyncClient | None = None,
    sts_origin: str | None = None,
    ca_file: Path | None = None,
) -> tuple[DomainDns, ...]:
    """Observe every domain concurrently with one resolver and one HTTP client.

    The MTA-STS policy is fetched over HTTPS verified against the system store plus
    `[trust] ca_file`, the same anchors as the certificate checks."""
    probe = DnsProbe(make_resolver(settings))

    async def observe(client: httpx.AsyncClient) -> tuple[DomainDns, ...]:
        results = await asyncio.gather(
            *(
                observe_domain(probe, d, http=client, sts_origin=sts_origin, settings=settings)
                for d in domains
            )
        )
        return tuple(results)

    if http is not None:
        return await observe(http)
    verify = ssl.create_default_context()
    if ca_file is not None:
        verify.load_verify_locations(cafile=str(ca_file))
    async with httpx.AsyncClient(timeout=settings.timeout_seconds, verify=verify) as client:
        return await observe(client)


def address_resolver(settings: DnsSettings) -> AddressResolver:
    """Host -> A/AAAA addresses through the configured servers, for the SMTP probe.

    When `[dns] nameservers` is set, every name relaycheck looks up (MX hosts found in DNS
    included) goes to those servers, not to the system resolver. Failures are raised as
    `OSError` because that is what the probe's resolve stage reports as data."""
    resolver = make_resolver(settings)

    async def resolve(host: str, port: int, wait_seconds: float) -> tuple[str, ...]:
        del port  # addresses do not depend on the port; the signature matches the probe's
        addresses: list[str] = []
        problems: list[str] = []
        async with asyncio.timeout(wait_seconds):
            for rdtype in ("A", "AAAA"):
                try:
                    answer = await resolver.resolve(host, rdtype, search=False)
                except dns.resolver.NXDOMAIN:
                    raise OSError(f"{host}: no such domain (NXDOMAIN)") from None
                except dns.resolver.NoAnswer:
                    continue
                except dns.exception.Timeout:
                    problems.append(f"{rdtype} lookup timed out")
                    continue
                except dns.exception.DNSException as err:
                    problems.append(f"{rdtype} lookup failed ({type(err).__name__})")
                    continue
                addresses.extend(r.to_text() for r in answer)
        if not addresses:
            raise OSError(
                f"{host}: no A/AAAA address" + (f" ({'; '.join(problems)})" if problems else "")
            )
        return tuple(dict.fromkeys(addresses))

    return resolve
