"""Request ids: the incremental text equals the plain formatting of the counter."""

from __future__ import annotations

import re
from binascii import b2a_base64

from iamgate.pipeline import exchange
from iamgate.pipeline.exchange import IdSource, new_ids


def plain(n: int) -> tuple[str, str]:
    """The ids of counter value n, formatted the obvious way."""
    rid = f"{exchange._RID_PREFIX}{n:012x}"
    ext = b2a_base64(exchange._EXT_PREFIX + n.to_bytes(8, "big"), newline=False).decode()
    return rid, ext


def test_ids_across_the_boundaries_of_the_kept_high_part() -> None:
    for start in (1, 255, 65_530, 2**24 - 3, 2**32 - 7, 2**47 - 2, 2**48 - 3):
        source = IdSource(start)
        for n in range(start, start + 600):
            assert source.next() == plain(n), n


def test_ids_are_uuid_shaped_and_distinct() -> None:
    ids = [new_ids() for _ in range(70_000)]  # crosses at least one 65,536 boundary
    assert len({rid for rid, _ in ids}) == len({ext for _, ext in ids}) == 70_000
    uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(uuid.match(rid) for rid, _ in ids)
    assert all(len(ext) == 16 and ext.endswith("=") for _, ext in ids)
