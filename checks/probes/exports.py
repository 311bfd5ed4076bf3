"""Reading the PowerShell exports named in the config (the parsing is pure, in `checks.rules.tenant`).

Each export loads, or fails, on its own: the scan reports a broken one as a finding and goes
on (`load_exports`); explain and `config check` refuse to answer from half a tenant
(`load_tenant` raises the first `ExportError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from checks.errors import ExportError
from checks.model import AcceptedDomain, Config, Connector
from checks.rules.tenant import (
    TenantFacts,
    merge_tenant,
    parse_accepted_domains,
    parse_inbound_connectors,
)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ExportError("file not found", file=str(path)) from None
    except OSError as err:
        raise ExportError(f"cannot read ({err.strerror})", file=str(path)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Exports:
    """What the configured PowerShell exports hold; each loads (or fails) on its own."""

    domains: tuple[AcceptedDomain, ...] = ()
    connectors: tuple[Connector, ...] = ()
    sources: tuple[str, ...] = ()
    errors: tuple[ExportError, ...] = ()


def load_exports(config: Config) -> Exports:
    """Read the configured exports; one that fails is reported and the other still loads."""
    domains: tuple[AcceptedDomain, ...] = ()
    connectors: tuple[Connector, ...] = ()
    sources: list[str] = []
    errors: list[ExportError] = []
    if config.tenant.accepted_domains_file is not None:
        path = config.tenant.accepted_domains_file
        try:
            domains = parse_accepted_domains(_read(path), str(path))
            sources.append(str(path))
        except ExportError as err:
            errors.append(err)
    if config.tenant.connectors_file is not None:
        path = config.tenant.connectors_file
        try:
            connectors = parse_inbound_connectors(_read(path), str(path))
            sources.append(str(path))
        except ExportError as err:
            errors.append(err)
    return Exports(
        domains=domains, connectors=connectors, sources=tuple(sources), errors=tuple(errors)
    )


def load_tenant(config: Config) -> TenantFacts:
    """Config and exports merged; the first unusable export raises `ExportError` (explain and
    `config check` must not answer from half the tenant; the scan uses `load_exports`)."""
    exports = load_exports(config)
    if exports.errors:
        raise exports.errors[0]
    return merge_tenant(
        config,
        exported_domains=exports.domains,
        exported_connectors=exports.connectors,
        sources=exports.sources,
    )
