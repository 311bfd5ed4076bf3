"""The one place that reads the certificate chain a TLS server *sent*.

Exchange Online does not fetch missing intermediates, so relaycheck must judge exactly what
the server presented, before any verification. Python 3.13 made `get_unverified_chain()` public;
3.10-3.12 have the same method only on the private `_sslobj`. Both paths stay here, behind one
function with a loopback test, so an interpreter upgrade touches nothing else.
"""

from __future__ import annotations

import ssl
from typing import Any

_ENCODING_DER: int = getattr(ssl, "_ssl").ENCODING_DER  # noqa: B009 - private module, on purpose


def _der(item: Any) -> bytes:
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    # 3.10-3.12: an `_ssl.Certificate`
    return bytes(item.public_bytes(_ENCODING_DER))


def presented_chain_der(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> tuple[bytes, ...]:
    """The chain the peer sent, leaf first, as DER; unverified on purpose."""
    public = getattr(ssl_object, "get_unverified_chain", None)  # 3.13+
    chain: Any = None
    if public is not None:
        chain = public()
    else:
        inner = getattr(ssl_object, "_sslobj", None)
        method = getattr(inner, "get_unverified_chain", None)
        if method is not None:
            chain = method()
    if chain:
        return tuple(_der(item) for item in chain)
    leaf = ssl_object.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()
