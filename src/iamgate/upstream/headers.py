"""Header rules between client, gateway and backend (RFC 9110 §7.6.1; API Gateway's header rules)."""

from __future__ import annotations

from typing import Final

from iamgate.policy.memo import SecondSight

__all__ = ["HOP_BY_HOP", "NAME_MEMO_MAX", "REMAPPED_RESPONSE", "REQUEST_DROP", "connection_tokens"]

# never forwarded in either direction (hop-by-hop), lower-case bytes
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)

# request headers the gateway replaces or never forwards (as API Gateway does for HTTP integrations)
REQUEST_DROP: Final = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"expect",
    b"max-forwards",
    b"content-md5",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-port",
}
# (the headers some backends read instead of the request line, X-Original-URL and the like, are
# dropped too, by a list the configuration can change: config.model.PATH_OVERRIDE_HEADERS)

# the longest header name the request path's name memos keep (client names lower-cased in
# serving/connection.py, backend names classified in upstream/pool.py): a peer cannot park long
# names there
NAME_MEMO_MAX: Final = 64

# backend response headers API Gateway passes on as x-amzn-Remapped-<Name>
REMAPPED_RESPONSE: Final = {b"date": b"x-amzn-Remapped-Date", b"server": b"x-amzn-Remapped-Server"}


_tokens_memo: Final[SecondSight[bytes, frozenset[bytes]]] = SecondSight(256)


def connection_tokens(value: bytes) -> frozenset[bytes]:
    """Header names listed in a Connection header are hop-by-hop too (memoised: the same few
    values, ``keep-alive`` and ``close``, come back on every response)."""
    found = _tokens_memo.found.get(value)
    if found is None:
        found = frozenset(t.strip().lower() for t in value.split(b",") if t.strip())
        _tokens_memo.keep(value, found)
    return found
