"""Tenant facts: accepted domains and inbound connectors, from config and PowerShell exports.

PowerShell's `ConvertTo-Json` writes UTF-8 (with or without a BOM) or UTF-16 depending on the
shell and redirection, writes a single object instead of a list when there is one result, and in
Windows PowerShell 5.1 writes enums as numbers. All of that loads here. Parsing is pure (bytes
in, data out); `checks.probes.exports` reads the files.
"""

from __future__ import annotations

import codecs
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from checks.errors import ExportError
from checks.model import AcceptedDomain, Config, Connector, ConnectorType
from checks.rules.names import InvalidName, parse_connector_name, to_ascii_domain

# Microsoft.Exchange.Data.AcceptedDomainType, as Windows PowerShell 5.1 serialises it
_DOMAIN_TYPES = {0: "Authoritative", 1: "ExternalRelay", 2: "InternalRelay"}


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantFacts:
    """What relaycheck knows of the tenant, merged from every configured source."""

    name: str
    accepted_domains: tuple[AcceptedDomain, ...]
    connectors: tuple[Connector, ...]
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def accepted_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.accepted_domains)


def decode_export(data: bytes, source: str) -> Any:
    """Decode a ConvertTo-Json export whatever encoding PowerShell chose."""
    if not data.strip(b"\x00 \t\r\n\xef\xbb\xbf\xff\xfe"):
        raise ExportError("is empty", file=source)
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif len(data) >= 2 and data[1] == 0 and data[0] != 0:
        encoding = "utf-16-le"
    elif len(data) >= 2 and data[0] == 0 and data[1] != 0:
        encoding = "utf-16-be"
    else:
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise ExportError(
            f"is not UTF-8 or UTF-16 text (decoding as {encoding} failed); "
            "export with ConvertTo-Json | Out-File -Encoding utf8",
            file=source,
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ExportError(
            f"is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
            "was the export cut short?",
            file=source,
        ) from None
    except RecursionError:
        raise ExportError(
            "is nested too deeply to be a Get-AcceptedDomain/Get-InboundConnector export",
            file=source,
        ) from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise ExportError(f"is not a usable JSON export ({str(err)[:120]})", file=source) from None


def _records(document: Any, source: str, what: str) -> list[Mapping[str, Any]]:
    if isinstance(document, Mapping):
        # a single result, or a wrapper such as {"value": [...]} from the admin API
        value = document.get("value")
        items = value if isinstance(value, list) and "DomainName" not in document else [document]
    elif isinstance(document, list):
        items = document
    else:
        raise ExportError(f"expected {what} objects (a JSON object or list)", file=source)
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ExportError(f"entry {index} is not a JSON object", file=source, key=f"[{index}]")
    return items


def _field(item: Mapping[str, Any], name: str, source: str, index: int) -> Any:
    if name not in item:
        raise ExportError(
            f"entry {index} has no {name} field", file=source, key=f"[{index}].{name}"
        )
    return item[name]


def parse_accepted_domains(data: bytes, source: str) -> tuple[AcceptedDomain, ...]:
    """`Get-AcceptedDomain | ConvertTo-Json` output to accepted domains."""
    result = []
    for index, item in enumerate(
        _records(decode_export(data, source), source, "Get-AcceptedDomain")
    ):
        raw_name = _field(item, "DomainName", source, index)
        if isinstance(raw_name, Mapping):  # on-prem serialisation of SmtpDomainWithSubdomains
            raw_name = raw_name.get("Domain") or raw_name.get("Address")
        if not isinstance(raw_name, str):
            raise ExportError(
                f"entry {index}: DomainName is not a string",
                file=source,
                key=f"[{index}].DomainName",
            )
        try:
            name = to_ascii_domain(raw_name.removeprefix("*."))
        except InvalidName as err:
            raise ExportError(
                f"entry {index}: {raw_name!r} is not a domain ({err})",
                file=source,
                key=f"[{index}].DomainName",
            ) from None
        domain_type = item.get("DomainType")
        if isinstance(domain_type, int) and not isinstance(domain_type, bool):
            domain_type = _DOMAIN_TYPES.get(domain_type, str(domain_type))
        elif domain_type is not None and not isinstance(domain_type, str):
            raise ExportError(
                f"entry {index}: DomainType is neither text nor a number",
                file=source,
                key=f"[{index}].DomainType",
            )
        result.append(
            AcceptedDomain(
                name=name,
                domain_type=domain_type,
                default=bool(item.get("Default", False)),
                match_subdomains=bool(item.get("MatchSubDomains", False)),
                source=source,
            )
        )
    return tuple(result)


def _string_list(item: Mapping[str, Any], name: str, source: str, index: int) -> tuple[str, ...]:
    value = item.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ExportError(
        f"entry {index}: {name} is not a list of strings", file=source, key=f"[{index}].{name}"
    )


def _sender_ips(item: Mapping[str, Any], name: str, source: str, index: int) -> tuple[str, ...]:
    """Validated like the config's `sender_ip_addresses`: an IPv4 address or CIDR range each
    (a connector that "matches" `not-an-ip` would make explain say RELAYED)."""
    values = _string_list(item, "SenderIPAddresses", source, index)
    for position, value in enumerate(values):
        try:
            ipaddress.IPv4Network(value.strip(), strict=False)
        except ValueError:
            raise ExportError(
                f"connector {name!r}: SenderIPAddresses entry {value!r} is not an IPv4 address "
                "or CIDR range",
                file=source,
                key=f"[{index}].SenderIPAddresses[{position}]",
            ) from None
    return tuple(v.strip() for v in values)


def parse_inbound_connectors(data: bytes, source: str) -> tuple[Connector, ...]:
    """`Get-InboundConnector | ConvertTo-Json` output to connectors."""
    result = []
    for index, item in enumerate(
        _records(decode_export(data, source), source, "Get-InboundConnector")
    ):
        name = _field(item, "Name", source, index)
        if not isinstance(name, str) or not name:
            raise ExportError(
                f"entry {index}: Name is not text", file=source, key=f"[{index}].Name"
            )
        raw_type = _field(item, "ConnectorType", source, index)
        try:
            ctype = ConnectorType(raw_type)
        except ValueError:
            raise ExportError(
                f"connector {name!r}: ConnectorType {raw_type!r} is not OnPremises or Partner "
                "(export from Exchange Online PowerShell, which writes the names)",
                file=source,
                key=f"[{index}].ConnectorType",
            ) from None
        tls_name = item.get("TlsSenderCertificateName")
        if tls_name is not None and not isinstance(tls_name, str):
            raise ExportError(
                f"connector {name!r}: TlsSenderCertificateName is neither text nor null",
                file=source,
                key=f"[{index}].TlsSenderCertificateName",
            )
        if tls_name:
            try:
                parse_connector_name(tls_name)
            except InvalidName as err:
                raise ExportError(
                    f"connector {name!r}: TlsSenderCertificateName {tls_name!r}: {err}",
                    file=source,
                    key=f"[{index}].TlsSenderCertificateName",
                ) from None
        enabled = item.get("Enabled", True)
        if not isinstance(enabled, bool):
            raise ExportError(
                f"connector {name!r}: Enabled is not true/false",
                file=source,
                key=f"[{index}].Enabled",
            )
        associated = []
        for value in _string_list(item, "AssociatedAcceptedDomains", source, index):
            try:
                associated.append(to_ascii_domain(value))
            except InvalidName:
                associated.append(value.lower())
        result.append(
            Connector(
                name=name,
                type=ctype,
                enabled=enabled,
                tls_sender_certificate_name=tls_name or None,
                sender_ip_addresses=_sender_ips(item, name, source, index),
                associated_accepted_domains=tuple(associated),
                source=source,
            )
        )
    return tuple(result)


def merge_tenant(
    config: Config,
    *,
    exported_domains: Sequence[AcceptedDomain] = (),
    exported_connectors: Sequence[Connector] = (),
    sources: Sequence[str] = (),
) -> TenantFacts:
    """Combine config and exports. An export describes what the tenant really has, so for a
    connector named in both, the export's Exchange facts win and the config adds the
    certificate source; disagreements are kept as notes."""
    domains: dict[str, AcceptedDomain] = {}
    for domain in (*config.tenant.accepted_domains, *exported_domains):
        known = domains.get(domain.name)
        if known is None or (known.source == "config" and domain.source != "config"):
            domains[domain.name] = domain
    notes: list[str] = []
    by_name = {c.name.lower(): c for c in exported_connectors}
    merged: list[Connector] = []
    for connector in config.connectors:
        exported = by_name.pop(connector.name.lower(), None)
        if exported is None:
            merged.append(connector)
            continue
        if (
            connector.tls_sender_certificate_name
            and connector.tls_sender_certificate_name.lower()
            != (exported.tls_sender_certificate_name or "").lower()
        ):
            notes.append(
                f"connector {connector.name!r}: config says TlsSenderCertificateName "
                f"{connector.tls_sender_certificate_name!r}, the tenant export says "
                f"{exported.tls_sender_certificate_name!r}; using the export"
            )
        merged.append(replace(exported, certificate=connector.certificate))
    merged.extend(c for c in exported_connectors if c.name.lower() in by_name)
    return TenantFacts(
        name=config.tenant.name,
        accepted_domains=tuple(domains.values()),
        connectors=tuple(merged),
        sources=("config", *sources),
        notes=tuple(notes),
    )
