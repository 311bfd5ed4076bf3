"""The one error tree of relaycheck.

A remote failure (closed port, 421 banner, NXDOMAIN, HTTP 403) is *not* an exception: probes
return it as an observation and rules turn it into a finding. Exceptions are for input we cannot
use, and each formats its own one-line message so the CLI can print it and exit 2::

    RelaycheckError                 anything relaycheck reports as a one-line error
    ├── ConfigError                 the configuration file: names file, key and problem
    │   ├── ConfigErrors            every problem of one file (config check lists them all)
    │   └── ExportError             a PowerShell export (Get-AcceptedDomain / Get-InboundConnector)
    ├── CertificateFileError        a PEM or PFX file that cannot be read or decrypted
    ├── AddressError                a sender/recipient pair that cannot be parsed
    ├── SettingsError               an environment variable (tokens, secrets) missing or malformed
    └── TenantSourceError           a live tenant source (Graph) refused or failed
"""

from __future__ import annotations


class RelaycheckError(Exception):
    """Base class: `str(err)` is the whole one-line message shown to the user."""


class ConfigError(RelaycheckError):
    """A configuration value is missing, of the wrong type, or unknown."""

    def __init__(self, problem: str, *, file: str | None = None, key: str | None = None) -> None:
        self.problem = problem
        self.file = file
        self.key = key
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file or "<config>"
        if self.key:
            where = f"{where}: {self.key}"
        return f"{where}: {self.problem}"


class ExportError(ConfigError):
    """A PowerShell ConvertTo-Json export that cannot be used."""


class CertificateFileError(RelaycheckError):
    """A certificate file that is missing, unparseable, or whose password is wrong."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class AddressError(RelaycheckError):
    """A sender/recipient pair that cannot be understood; names the offending part."""

    def __init__(self, problem: str, *, part: str | None = None) -> None:
        self.problem = problem
        self.part = part
        shown = ""
        if part is not None:
            clipped = part if len(part) <= 80 else part[:77] + "..."
            shown = f": {clipped!r}"
        super().__init__(f"{problem}{shown}")


class SettingsError(RelaycheckError):
    """An environment setting (token, secret) is missing or malformed; names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class TenantSourceError(RelaycheckError):
    """A live tenant source failed in a way the user must fix (credentials, permissions)."""

    def __init__(self, source: str, problem: str, *, permanent: bool = True) -> None:
        self.source = source
        self.problem = problem
        self.permanent = permanent
        super().__init__(f"{source}: {problem}")


class ConfigErrors(ConfigError):
    """Every problem found in one configuration file, in the order the parser met them.

    Parsing goes on after a problem so that `relaycheck config check` can list them all in one
    run; everywhere else the first one is shown (one line), with a hint that there are more.
    """

    def __init__(self, errors: list[ConfigError] | tuple[ConfigError, ...]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0]
        more = len(self.errors) - 1
        super().__init__(first.problem, file=first.file, key=first.key)
        if more:
            noun = "problem" if more == 1 else "problems"
            self.args = (
                f"{self.args[0]} (and {more} more {noun}: relaycheck config check lists them all)",
            )

    def __str__(self) -> str:
        return str(self.args[0])
