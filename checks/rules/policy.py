"""Per-check policy and "not set up" answers: what a team decided about its checks.

`[checks] disabled` drops a check a team has decided it does not want (a private-CA lab has no
use for `cert-chain` against public roots; a team that accepted Microsoft's silence on clientAuth
may drop `cert-eku`), and `[checks.severity]` reads a check's problems at another severity (keep
`cert-eku` visible as `info` instead of paging). Both apply after the rules judged, so every
rule stays the same for everyone. `not_set_up` turns `--only mx` with DNS off into an answer
that says what to configure, instead of a silent "0 findings". Pure functions over config data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from checks.model import CheckId, CheckPolicy, Config, Finding, Severity


def apply_check_policy(findings: Iterable[Finding], policy: CheckPolicy) -> list[Finding]:
    """Drop disabled checks' findings; re-grade problems of checks with a chosen severity.

    An OK finding stays OK (a severity override grades problems, it does not invent them), and
    relaycheck's own failures are never dropped."""
    out: list[Finding] = []
    for finding in findings:
        if finding.check in policy.disabled and finding.check is not CheckId.RELAYCHECK:
            continue
        chosen = policy.severity.get(finding.check)
        if chosen is not None and finding.severity > Severity.OK and chosen != finding.severity:
            finding = replace(
                finding,
                severity=chosen,
                details={**finding.details, "severity_by_policy": finding.severity.value},
            )
        out.append(finding)
    return out


def not_set_up(check: CheckId, config: Config) -> str | None:
    """Why `check` cannot run with this configuration, in words that say what to configure."""
    if check in config.checks.disabled:
        return f"{check.value} is disabled by [checks] disabled in the configuration"
    if check in (CheckId.MX, CheckId.DNS) and not config.dns.enabled:
        return (
            f"{check.value} needs DNS checks, which are off: add a [dns] section "
            "(nameservers = [...], or none for the system resolver) or [tenant] mx_expected, "
            "and remove [dns] enabled = false"
        )
    if check is CheckId.RELAY_SCENARIO and not config.tenant.relay_scenarios:
        return "relay-scenario has nothing to judge: [tenant] relay_scenarios is empty"
    if check is CheckId.RELAY_SCENARIO and not (config.connectors or config.tenant.connectors_file):
        return (
            "relay-scenario needs the tenant's inbound connectors: add [[connectors]] entries "
            "or [tenant] connectors_file (Get-InboundConnector | ConvertTo-Json)"
        )
    return None


def not_set_up_findings(wanted: Iterable[CheckId], config: Config) -> list[Finding]:
    """One `info` finding per asked-for check that this configuration cannot run."""
    findings = []
    for check in wanted:
        reason = not_set_up(check, config)
        if reason is not None:
            findings.append(
                Finding(
                    check=check,
                    severity=Severity.INFO,
                    subject=config.tenant.name,
                    message=f"not set up: {reason}",
                    details={"not_set_up": True},
                    cause="not-set-up",
                )
            )
    return findings
