"""Two readers of a signed request against what they replaced on the request path.

* ``X-Amz-Date``: it must accept exactly what ``time.strptime(value, "%Y%m%dT%H%M%SZ")``
  accepts and give what ``calendar.timegm`` gives. A date the client invents (February 30th,
  hour 24, year 0, a leap second) must neither pass where strptime refused it nor move the
  request's time.
* The ``Authorization`` header: split with str methods, it must give the pieces the regular
  expressions ``[ \t]+`` (once) and ``[ \t,]+`` gave, whatever other whitespace a client puts in.
"""

from __future__ import annotations

import calendar
import itertools
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iamgate.auth.sigv4 import SignatureError, _amz, _parse_amz_date, parse_authorization_header

YEARS = ("0000", "0001", "1969", "1970", "1999", "2000", "2024", "2026", "2100", "9999")


def _reference(value: str) -> int | None:
    """What the strptime-based reader answered: None for a refusal."""
    try:
        return calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None


def _ours(value: str) -> int | str:
    """Epoch seconds, or the refusal's message."""
    try:
        return _parse_amz_date(value)
    except SignatureError as error:
        return error.message


def _same(value: str) -> bool:
    ours, reference = _ours(value), _reference(value)
    if reference is None:  # refused as the date format (what AWS answers for a bad date)
        return isinstance(ours, str) and "ISO-8601 'basic format'" in ours
    return ours == reference


def test_every_date_of_every_month_as_strptime_decides() -> None:
    """Dates: every day 00-32 of every month 00-13 of years around the edges (leap years, year 0)."""
    dates = itertools.product(YEARS, range(14), range(33))
    values = (f"{year}{month:02d}{day:02d}T120000Z" for year, month, day in dates)
    assert [value for value in values if not _same(value)] == []


def test_every_time_of_day_as_strptime_decides() -> None:
    """Times: hours 00-25, minutes 00-60, seconds 00-62 (strptime allows seconds 60 and 61)."""
    times = itertools.product(range(26), range(61), range(63))
    values = (f"20240229T{hour:02d}{minute:02d}{second:02d}Z" for hour, minute, second in times)
    assert [value for value in values if not _same(value)] == []


def test_an_accepted_date_below_a_leap_second_is_signed_as_written() -> None:
    """The string to sign holds the request's date as _amz formats it; the verifier takes the
    header's text instead when its seconds are below 60. That is the same text for every date
    the reader accepts, and only then (a leap second is formatted into the next minute)."""
    days = itertools.product(YEARS, range(1, 13), (1, 28, 29, 31))
    times = itertools.product(range(0, 24, 7), range(0, 60, 13), (0, 9, 10, 59, 60, 61))
    for (year, month, day), (hour, minute, second) in itertools.product(days, times):
        value = f"{year}{month:02d}{day:02d}T{hour:02d}{minute:02d}{second:02d}Z"
        read = _ours(value)
        if isinstance(read, str):  # refused: no string to sign
            continue
        assert (_amz(read) == value) is (value[13] < "6"), value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "20240101T000000",  # no Z
        "20240101 000000Z",
        "2024-01-01T00:00:00Z",  # extended format
        "20240101T000000z",
        "٢٠٢٤0101T000000Z",  # digits that int() reads but the format does not allow
        "20240101T000000Z ",
        "+2024010T000000Z",
    ],
)
def test_what_is_not_the_basic_format_is_refused(value: str) -> None:
    assert isinstance(_ours(value), str)


def test_the_epoch_seconds() -> None:
    assert _parse_amz_date("19700101T000000Z") == 0
    assert _parse_amz_date("20261205T193633Z") == calendar.timegm((2026, 12, 5, 19, 36, 33, 0, 0, 0))
    assert _parse_amz_date("20241231T235960Z") == _parse_amz_date("20250101T000000Z")  # a leap second


# --- the Authorization header's pieces -------------------------------------------------------

_PIECES = re.compile(r"[ \t,]+")
_ALGORITHM = re.compile(r"[ \t]+")


def _algorithm_by_regex(raw: str) -> tuple[str, str]:
    head = _ALGORITHM.split(raw, maxsplit=1)
    return head[0], head[1] if len(head) > 1 else ""


def _pieces_by_regex(raw: str) -> tuple[str, list[str]]:
    """What the reader split with before: the algorithm, then the non-empty pieces."""
    algorithm, rest = _algorithm_by_regex(raw)
    return algorithm, [piece for piece in _PIECES.split(rest) if piece]


def _pieces(raw: str) -> tuple[str, list[str]] | str:
    """The reader's algorithm and parts, or its error's message."""
    try:
        parsed = parse_authorization_header(raw)
    except SignatureError as error:
        return error.message
    return parsed.algorithm, [parsed.credential, parsed.signed_headers, parsed.signature]


# blanks, tabs and commas separate; the other whitespace (newlines, no-break and other Unicode
# spaces that str.split() would take) must stay inside a piece
_TOKENS = [*" \t,=\n\r\x0b\x0c\xa0\x85\u2003ACSaz/;-", "Credential", "Signature", "SignedHeaders"]


def _reads_as_the_expressions(raw: str) -> None:
    """The reader's answer for ``raw`` is what the expressions' pieces call for: a refusal naming
    the first piece without ``=``, a refusal for a missing part, or the algorithm and parts."""
    algorithm, pieces = _pieces_by_regex(raw)
    found = _pieces(raw)
    malformed = [piece for piece in pieces if "=" not in piece]
    if malformed:
        assert isinstance(found, str)
        assert f"'{malformed[0]}' not a valid key=value pair" in found
        return
    params = dict(piece.partition("=")[::2] for piece in pieces)
    if not {"Credential", "SignedHeaders", "Signature"} <= params.keys():
        assert isinstance(found, str)
        assert "Authorization header requires" in found
        return
    assert found == (algorithm, [params["Credential"], params["SignedHeaders"], params["Signature"]])


@given(st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join))
def test_the_header_splits_as_the_regular_expressions_did(tail: str) -> None:
    _reads_as_the_expressions(("AWS4-HMAC-SHA256 " + tail).strip())


@pytest.mark.parametrize(
    ("separators", "reads"),
    [("\t", True), (" \t ", True), ("\t \t", True), (" , ,", True), (",", False), ("\xa0", False)],
)
def test_the_algorithm_and_parts_of_written_headers(separators: str, reads: bool) -> None:
    """Tabs and runs end the algorithm and separate the parts as blanks do; a comma or a no-break
    space does not end the algorithm, and the header is then refused for its missing parts."""
    raw = f"AWS4-HMAC-SHA256{separators}Credential=a/b{separators}SignedHeaders=host{separators}Signature=00"
    _reads_as_the_expressions(raw)
    assert isinstance(_pieces(raw), tuple) is reads
