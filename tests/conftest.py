"""Every test gets the loopback fakes (SMTP, DNS, Slack, Graph, PKI) as fixtures, and no test
can reach anything but loopback: a config that forgot `[dns] nameservers` (and so would ask the
system resolver, i.e. the internet) fails here instead of quietly depending on the network."""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import pytest

pytest_plugins = ["tests.fakes.plugin"]


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and socketpairs stay on this machine
    host = str(address[0]).split("%", 1)[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: resolving it is the caller's business, connecting to it is not


def _guard(real: Callable[..., Any], position: int) -> Callable[..., Any]:
    def guarded(self: socket.socket, *args: Any) -> Any:
        if not _loopback(args[position]):
            raise OSError(errno.ENETUNREACH, f"tests reach only loopback, not {args[position]!r}")
        return real(self, *args)

    return guarded


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guard(socket.socket.connect, 0))
    monkeypatch.setattr(socket.socket, "connect_ex", _guard(socket.socket.connect_ex, 0))
    monkeypatch.setattr(socket.socket, "sendto", _guard(socket.socket.sendto, -1))
