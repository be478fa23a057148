"""Request ids: the text of each counter value, unique, shaped as AWS's ids."""

from __future__ import annotations

import re
from binascii import a2b_base64

from iamgate.pipeline import exchange
from iamgate.pipeline.exchange import IdSource, new_ids


def plain(n: int) -> tuple[str, str]:
    """The ids of counter value n, formatted the obvious way."""
    digits = str(exchange._FIRST + n)
    return f"{exchange._RID_HEAD}{digits}", f"{exchange._EXT_HEAD}{digits}A="


def test_ids_are_the_counter_after_the_process_heads() -> None:
    for start in (1, 255, 65_530, 2**24 - 3, 2**32 - 7, 9 * 10**11 - 600):
        source = IdSource(start)
        for n in range(start, start + 600):
            assert source.next() == plain(n), n


def test_ids_are_uuid_shaped_and_distinct() -> None:
    ids = [new_ids() for _ in range(70_000)]
    assert len({rid for rid, _ in ids}) == len({ext for _, ext in ids}) == 70_000
    uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(uuid.match(rid) for rid, _ in ids)
    assert all(len(ext) == 16 and ext.endswith("=") for _, ext in ids)
    assert all(len(a2b_base64(ext)) == 11 for _, ext in ids[:1000])  # valid base64, as AWS's
