"""A real DNS server on 127.0.0.1 (UDP and TCP, one port), answering from zone text.

Built with dnspython's zone and message classes in a background thread, so the code under test
uses its real resolver against it. Names can be switched to answer SERVFAIL or not at all
(timeout); every question received is recorded.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

SERVFAIL = "servfail"
TIMEOUT = "timeout"


@dataclass
class DnsServer:
    zone: dns.zone.Zone
    address: str = "127.0.0.1"
    port: int = 0
    # name (absolute text, e.g. "broken.example.") -> SERVFAIL or TIMEOUT
    modes: dict[str, str] = field(default_factory=dict)
    queries: list[tuple[str, str, str]] = field(default_factory=list)  # (transport, name, type)

    def set_mode(self, name: str, mode: str) -> None:
        self.modes[dns.name.from_text(name).to_text().lower()] = mode

    def answer(self, wire: bytes, transport: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().lower()
        self.queries.append((transport, name, dns.rdatatype.to_text(question.rdtype)))
        mode = self.modes.get(name)
        if mode == TIMEOUT:
            return None
        response = dns.message.make_response(query)
        if mode == SERVFAIL:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        response.flags |= dns.flags.AA
        node = self.zone.get_node(question.name)
        if node is None:
            under = any(n.is_subdomain(question.name) for n in self.zone.nodes)
            if not under:
                response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        rdataset = node.get_rdataset(dns.rdataclass.IN, question.rdtype)
        if rdataset is not None:
            rrset = response.find_rrset(
                response.answer, question.name, dns.rdataclass.IN, question.rdtype, create=True
            )
            rrset.update(rdataset)
        return response.to_wire()


class _Loop(threading.Thread):
    def __init__(self, server: DnsServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.udp, self.tcp = _bind_pair()
        server.port = self.udp.getsockname()[1]
        self.wake_r, self.wake_w = socket.socketpair()
        self.selector.register(self.udp, selectors.EVENT_READ, self._on_udp)
        self.selector.register(self.tcp, selectors.EVENT_READ, self._on_accept)
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.clients: list[socket.socket] = []

    def run(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.data is None:
                    return
                handler: Callable[[socket.socket], None] = key.data
                handler(key.fileobj)  # type: ignore[arg-type]

    def _on_udp(self, sock: socket.socket) -> None:
        wire, peer = sock.recvfrom(65535)
        reply = self.server.answer(wire, "udp")
        if reply is not None:
            sock.sendto(reply, peer)

    def _on_accept(self, sock: socket.socket) -> None:
        conn, _ = sock.accept()
        self.clients.append(conn)
        self.selector.register(conn, selectors.EVENT_READ, self._on_tcp)

    def _on_tcp(self, conn: socket.socket) -> None:
        header = conn.recv(2)
        if len(header) < 2:
            self.selector.unregister(conn)
            conn.close()
            return
        (length,) = struct.unpack("!H", header)
        wire = b""
        while len(wire) < length:
            chunk = conn.recv(length - len(wire))
            if not chunk:
                break
            wire += chunk
        reply = self.server.answer(wire, "tcp")
        if reply is not None:
            conn.sendall(struct.pack("!H", len(reply)) + reply)

    def stop(self) -> None:
        self.wake_w.send(b"x")
        self.join(timeout=5)
        for sock in (self.udp, self.tcp, self.wake_r, self.wake_w, *self.clients):
            sock.close()
        self.selector.close()


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same free loopback port."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp
    raise RuntimeError("no free loopback port for UDP and TCP")


StartDns = Callable[..., DnsServer]


@pytest.fixture
def dns_server() -> Iterator[StartDns]:
    """`dns_server(zone=TEXT)` starts a server answering from TEXT (origin "." by default:
    write absolute names); returns it with `.address`, `.port`, `.queries`, `.set_mode()`."""
    loops: list[_Loop] = []

    def start(*, zone: str, origin: str = ".") -> DnsServer:
        parsed = dns.zone.from_text(zone, origin=origin, relativize=False, check_origin=False)
        server = DnsServer(zone=parsed)
        loop = _Loop(server)
        loop.start()
        loops.append(loop)
        return server

    yield start
    for loop in loops:
        loop.stop()
