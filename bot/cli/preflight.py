"""`relaycheck preflight CERT`: before a renewed certificate is bound, judge the tenant with it.

The shell's half of the preflight: read CERT (PEM chain, PEM leaf plus chain files, or PFX with
`--password-env`), load the tenant, observe today's certificates exactly as `explain` does, and
hand everything to the pure judgement in `checks.preflight`. Exit codes: 0 safe to bind, 1 bind
with care, 2 binding breaks relay, 3 bad input (as `scan`: a monitoring-style command).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.cli.common import (
    add_config_argument,
    add_time_argument,
    monitoring_command,
    now_from,
    resolve_config,
)
from checks.errors import CertificateFileError, RelaycheckError
from checks.i18n import _
from checks.observe import shown_path
from checks.preflight import render_text
from checks.probes.certfile import read_certificate_file
from checks.renewal import judge
from checks.report import EXIT_UNKNOWN, escape_invisible
from checks.rules.certificates import CertificateFacts


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Judge the tenant as if CERT were bound: every relay scenario before and after, "
        "every certificate check, the Exchange send connector's TlsCertificateName, and "
        "what changes against today's certificate. CERT is a PEM chain, a PEM leaf followed "
        "by the chain files the server will send, or a PFX (--password-env). Exit code: 0 "
        "safe to bind, 1 bind with care, 2 binding breaks relay, 3 bad input."
    )
    add_config_argument(parser)
    add_time_argument(parser)
    parser.add_argument(
        "--for",
        dest="target",
        metavar="NAME",
        help="the connector or endpoint whose certificate CERT replaces (default: the only "
        "certificate connector, else the one whose certificate shares the most names)",
    )
    parser.add_argument(
        "--password-env", metavar="VAR", help="environment variable holding the PFX password"
    )
    parser.add_argument(
        "--send-connector",
        metavar="NAME",
        help="the Exchange send connector to Exchange Online, for the Set-SendConnector line",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one object: verdict, before, after, changes, steps",
    )
    parser.add_argument(
        "cert",
        nargs="+",
        metavar="CERT",
        help="the renewed certificate (then, optionally, files with the chain it is sent with)",
    )
    parser.set_defaults(handler=run)
    monitoring_command(parser)


def read_candidate(
    paths: list[str], *, password_env: str | None, environ: Mapping[str, str]
) -> tuple[CertificateFacts, ...]:
    """The candidate chain, leaf first: CERT's own certificates, then any chain files'."""
    chain: list[CertificateFacts] = []
    for text in paths:
        path = Path(text)
        try:
            found = read_certificate_file(path, password_env=password_env, environ=environ)
        except CertificateFileError as err:
            if err.problem.endswith("set password_env"):
                raise CertificateFileError(
                    err.path, _("PFX is encrypted: pass --password-env VAR naming its password")
                ) from None
            raise
        if not found:
            raise CertificateFileError(str(path), _("holds no certificate"))
        known = {c.fingerprint_sha256 for c in chain}
        chain.extend(c for c in found if c.fingerprint_sha256 not in known)
    return tuple(chain)


def run(args: argparse.Namespace) -> int:
    config = resolve_config(args)
    now = now_from(args)
    candidate = read_candidate(args.cert, password_env=args.password_env, environ=os.environ)
    source = shown_path(Path(args.cert[0]))
    try:
        result = asyncio.run(
            judge(
                config,
                candidate,
                requested=args.target,
                source=source,
                send_connector=args.send_connector,
                now=now,
                environ=os.environ,
            )
        )
    except RelaycheckError:
        raise
    except Exception as err:  # the preflight itself could not run: one line, no traceback
        print(
            _("relaycheck: preflight could not run: {error}").format(
                error=f"{type(err).__name__}: {err}"
            ),
            file=sys.stderr,
        )
        return EXIT_UNKNOWN
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        # certificate and connector names: control and bidi characters shown, not obeyed
        sys.stdout.write(escape_invisible(render_text(result), keep="\n"))
    return result.exit_code
