"""Peer messages signed with the cluster secret: who may speak as a server.

Every node of a cluster shares one secret (``CAPSIM_TOKEN``: the control
token, which ``capsim cluster up`` and ``capsim chaos --real`` make and hand
to each node). A node that has it signs each ``POST /msg`` it sends with an
HMAC-SHA256 of the request body, in the ``X-Capsim-Signature`` header
(``sha256=<hex>``), under a key derived from the secret for this one use
(so the signature of a message never reveals anything that would open the
control endpoint).

A node that has the secret refuses, with 401, a request in which any
envelope claims to come from a server of the cluster (one of its peers, or
itself) unless the request carries a valid signature. Messages from any
other name (a client) need none: clients keep working without the secret,
but cannot pass for a server. A node without a secret signs nothing and
checks nothing.

What it does not do: the body travels in clear (plain HTTP), and a signed
request captured on the network can be sent again (there is no nonce);
keep the cluster on a network you trust, as Jepsen and Maelstrom do.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "peer_key", "sign", "verify"]

#: The request header that carries a peer request's signature.
SIGNATURE_HEADER = "X-Capsim-Signature"

_PURPOSE = b"capsim peer messages v1"


def peer_key(secret: str | None) -> bytes | None:
    """The signing key derived from the cluster ``secret`` (None without one)."""
    if not secret:
        return None
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def sign(key: bytes, body: bytes) -> str:
    """The header value that signs ``body``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(key: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` under ``key`` (compared in constant time)."""
    return header is not None and hmac.compare_digest(sign(key, body), header)
