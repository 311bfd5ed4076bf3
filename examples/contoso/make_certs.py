"""Regenerate the example certificates (a private CA, an issuing CA, mail1's chain).

The example tenant must answer without a network, so its connector certificate is a file. The
root goes to `certs/private-ca.pem` (the config's `[trust] ca_file`); the leaf and the issuing CA
go to `certs/mail1-chain.pem`, leaf first, as an MTA would send them. Private keys are thrown
away: nothing here ever serves anything (`relaycheck demo` makes its own, on the fly).

    .venv/bin/python examples/contoso/make_certs.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.demo import ExamplePki

HERE = Path(__file__).resolve().parent / "certs"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def main() -> None:
    pki = ExamplePki(START)
    issued = pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=3652)
    HERE.mkdir(exist_ok=True)
    (HERE / "private-ca.pem").write_bytes(pki.root_pem())
    (HERE / "mail1-chain.pem").write_bytes(issued.chain_pem)


if __name__ == "__main__":
    main()
