"""The second-sight memo: a key is kept only when it comes back, and nothing grows past the bound."""

from __future__ import annotations

from iamgate.policy.memo import SecondSight


def test_a_key_is_kept_the_second_time_it_is_offered() -> None:
    memo: SecondSight[str, int] = SecondSight(limit=8)
    memo.offer("/pets/1", 1)
    assert memo.found == {}
    memo.offer("/pets/1", 1)
    assert memo.found == {"/pets/1": 1}


def test_distinct_keys_never_fill_the_memo_and_both_sides_stay_bounded() -> None:
    memo: SecondSight[int, int] = SecondSight(limit=8)
    for n in range(100):
        memo.offer(n, n)
    assert memo.found == {}
    assert len(memo.seen) <= 8
    for n in range(100):
        memo.offer(n % 20, n)
        memo.offer(n % 20, n)
    assert 0 < len(memo.found) <= 8
    memo.clear()
    assert not memo.found
    assert not memo.seen
    assert not memo.again("x")
