"""The types a scan stage works with, in a module of their own so that stages (which
`checks.scan` imports) and the scan itself can both import them without a cycle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from checks.model import CheckId, Config, Endpoint, Finding
from checks.rules.certificates import CertificateFacts
from checks.rules.tenant import TenantFacts


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanContext:
    """Everything a stage may read; stages return results instead of mutating it."""

    config: Config
    now: datetime
    tenant: TenantFacts
    extra_endpoints: tuple[Endpoint, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)
    only: frozenset[CheckId] | None = None
    # accepted domains the previous run saw (from the store): drift "since the last run"
    previous_domains: frozenset[str] | None = None
    # a tenant source failed: results over the accepted domains are partial and settle nothing
    tenant_degraded: bool = False

    @property
    def nothing_to_judge_against(self) -> bool:
        """A failed source left no accepted domain at all: every domain would look foreign."""
        return self.tenant_degraded and not self.tenant.accepted_domains

    def wants(self, *checks: CheckId) -> bool:
        """Whether any of `checks` is requested (`--only` narrows the scan; `[checks] disabled`
        leaves a check out of every scan)."""
        asked = frozenset(checks) - self.config.checks.disabled
        return bool(asked) and (self.only is None or not self.only.isdisjoint(asked))


# Judges what needed the certificates a stage's endpoints served (TLSA): host -> chain.
AfterProbe = Callable[[Mapping[str, tuple[CertificateFacts, ...]]], Sequence[Finding]]


@dataclass(frozen=True, slots=True, kw_only=True)
class StageResult:
    findings: tuple[Finding, ...] = ()
    # endpoints discovered by the stage (MX hosts), probed by the certificate stage
    extra_endpoints: tuple[Endpoint, ...] = ()
    # run once the certificate stage has observed the chains (keyed by endpoint host)
    after_probe: AfterProbe | None = None


Stage = Callable[[ScanContext], Awaitable[StageResult]]
