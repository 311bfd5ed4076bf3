"""Which addresses an ad-hoc probe may connect to: public unicast only, by explicit rule.

Why not `ipaddress.is_global`: it answers True for addresses that lead straight back into a
private network, such as NAT64 (`64:ff9b::a00:1` is 10.0.0.1 through the site's translator),
6to4 (`2002:a00:1::1`), IPv4-compatible (`::10.0.0.1`), SIIT-translated (`::ffff:0:a00:1`)
and site-local (`fec0::1`) addresses, and its answers have changed between Python releases.
Here every refused range is listed with its reason, and an IPv6 address that embeds an IPv4
address is judged by the IPv4 address it embeds.

Pure: text in, a reason (or None) out. The Slack listener applies it to every address a name
resolved to, after resolution and before any connection, and then connects to exactly those
addresses (a second DNS answer cannot swap in another one).
"""

from __future__ import annotations

import ipaddress

IPv4 = ipaddress.IPv4Network
IPv6 = ipaddress.IPv6Network

# (network, what it is); checked in order, the first match is the reason
_REFUSED_V4: tuple[tuple[IPv4, str], ...] = (
    (IPv4("0.0.0.0/8"), "unspecified ('this network')"),
    (IPv4("10.0.0.0/8"), "private"),
    (IPv4("100.64.0.0/10"), "carrier-grade NAT (shared address space)"),
    (IPv4("127.0.0.0/8"), "loopback"),
    (IPv4("169.254.0.0/16"), "link-local (cloud metadata lives here)"),
    (IPv4("172.16.0.0/12"), "private"),
    (IPv4("192.0.0.0/24"), "reserved for IETF protocol assignments"),
    (IPv4("192.0.2.0/24"), "documentation (TEST-NET-1)"),
    (IPv4("192.31.196.0/24"), "reserved (AS112)"),
    (IPv4("192.52.193.0/24"), "reserved (AMT)"),
    (IPv4("192.88.99.0/24"), "reserved (6to4 relay anycast)"),
    (IPv4("192.168.0.0/16"), "private"),
    (IPv4("192.175.48.0/24"), "reserved (AS112)"),
    (IPv4("198.18.0.0/15"), "reserved for benchmarking"),
    (IPv4("198.51.100.0/24"), "documentation (TEST-NET-2)"),
    (IPv4("203.0.113.0/24"), "documentation (TEST-NET-3)"),
    (IPv4("224.0.0.0/4"), "multicast"),
    (IPv4("240.0.0.0/4"), "reserved"),  # includes the broadcast address 255.255.255.255
)

_REFUSED_V6: tuple[tuple[IPv6, str], ...] = (
    (IPv6("::/128"), "unspecified"),
    (IPv6("::1/128"), "loopback"),
    (IPv6("64:ff9b:1::/48"), "a local-use NAT64 prefix (translated inside the site)"),
    (IPv6("100::/64"), "discard-only"),
    (IPv6("2001:2::/48"), "reserved for benchmarking"),
    (IPv6("2001:db8::/32"), "documentation"),
    (IPv6("2001:10::/28"), "reserved (ORCHID)"),
    (IPv6("3fff::/20"), "documentation"),
    (IPv6("5f00::/16"), "reserved (SRv6 SIDs)"),
    (IPv6("fc00::/7"), "unique local (private)"),
    (IPv6("fe80::/10"), "link-local"),
    (IPv6("fec0::/10"), "site-local (private)"),
    (IPv6("ff00::/8"), "multicast"),
)

_GLOBAL_UNICAST = IPv6("2000::/3")
_NAT64 = IPv6("64:ff9b::/96")
_MAPPED = IPv6("::ffff:0:0/96")
_TRANSLATED = IPv6("::ffff:0:0:0/96")  # SIIT, RFC 2765
_COMPATIBLE = IPv6("::/96")  # deprecated IPv4-compatible form
_SIXTOFOUR = IPv6("2002::/16")
_TEREDO = IPv6("2001::/32")


def _low32(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def embedded_ipv4(
    address: ipaddress.IPv6Address,
) -> tuple[str, tuple[ipaddress.IPv4Address, ...]] | None:
    """The IPv4 address(es) an IPv6 address carries, with the form's name; None if none."""
    if address in _MAPPED:
        return "IPv4-mapped", (_low32(address),)
    if address in _TRANSLATED:
        return "IPv4-translated", (_low32(address),)
    if address in _COMPATIBLE and int(address) > 1:
        return "IPv4-compatible", (_low32(address),)
    if address in _NAT64:
        return "NAT64", (_low32(address),)
    if address in _SIXTOFOUR:
        return "6to4", (ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF),)
    if address in _TEREDO:
        teredo = address.teredo
        assert teredo is not None
        server, client = teredo
        return "Teredo", (server, client)
    return None


def _refused_v4(address: ipaddress.IPv4Address) -> str | None:
    for network, what in _REFUSED_V4:
        if address in network:
            return f"{what} ({network})"
    return None


def refusal(text: str) -> str | None:
    """Why `text` must not be probed (for example "private (10.0.0.0/8)"); None if it is a
    public unicast address. A zone id (`fe80::1%eth0`) is ignored: the address decides."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0].strip())
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv4Address):
        return _refused_v4(address)
    for network, what in _REFUSED_V6:
        if address in network:
            return f"{what} ({network})"
    embedded = embedded_ipv4(address)
    if embedded is not None:
        form, inner = embedded
        for v4 in inner:
            reason = _refused_v4(v4)
            if reason is not None:
                return f"{form}, embedding {v4}: {reason}"
        return None
    if address in IPv6("::/8"):
        return "reserved (::/8)"
    if address not in _GLOBAL_UNICAST:
        return "outside global unicast (2000::/3)"
    return None


def is_public(text: str) -> bool:
    """True only for an address an ad-hoc probe may connect to (see `refusal`)."""
    return refusal(text) is None
