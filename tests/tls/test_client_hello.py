"""The ClientHello reader (iamgate.tls.hello) on real ClientHellos from Python's ssl, on hostile
ones made by hand, and on arbitrary bytes (it never raises)."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iamgate.tls.hello import Hello, Incomplete, Malformed, NotTls, read_hello


def client_hello(name: str | None, maximum: ssl.TLSVersion | None = None) -> bytes:
    ctx = ssl.create_default_context()
    if name is None:
        ctx.check_hostname = False
    if maximum is not None:
        ctx.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("maximum", [None, ssl.TLSVersion.TLSv1_2])
def test_real_hellos_give_their_server_name(maximum: ssl.TLSVersion | None) -> None:
    assert read_hello(client_hello("api.example.test", maximum)) == Hello("api.example.test")
    assert read_hello(client_hello("API.Example.TEST.", maximum)) == Hello("api.example.test")
    assert read_hello(client_hello(None, maximum)) == Hello(None)


def test_every_prefix_is_incomplete_and_more_bytes_change_nothing() -> None:
    hello = client_hello("api.example.test")
    for n in range(len(hello)):
        assert isinstance(read_hello(hello[:n]), Incomplete), n
    assert read_hello(hello + b"\x17\x03\x03garbage") == Hello("api.example.test")


@pytest.mark.parametrize("first", [b"GET / HTTP/1.1\r\n", b"PRI * HTTP/2.0\r\n", b"\x00\x01", b"SSH-2.0-x"])
def test_what_is_not_a_tls_handshake(first: bytes) -> None:
    assert isinstance(read_hello(first), NotTls)


def _record(body: bytes, version: bytes = b"\x03\x01") -> bytes:
    return b"\x16" + version + len(body).to_bytes(2, "big") + body


def _hello_body(extensions: bytes) -> bytes:
    hello = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    hello += len(extensions).to_bytes(2, "big") + extensions
    return b"\x01" + len(hello).to_bytes(3, "big") + hello


def _sni(name: bytes) -> bytes:
    entry = b"\x00" + len(name).to_bytes(2, "big") + name
    listed = len(entry).to_bytes(2, "big") + entry
    return b"\x00\x00" + len(listed).to_bytes(2, "big") + listed


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_record(_hello_body(_sni(b"a.test")), b"\x02\x00"), "is not TLS"),
        (b"\x16\x03\x01\x00\x00", "out of range"),
        (b"\x16\x03\x01\x40\x01" + b"\x00" * 16385, "out of range"),
        (_record(b"\x02\x00\x00\x00"), "not a ClientHello"),
        (_record(b"\x01\x00\x10\x00" + b"\x03\x03"), "does not fit in its first record"),
        (_record(_hello_body(b"\x00\x00\x00\x40")), "overruns"),
        (_record(_hello_body(_sni("é.test".encode()))), "not ASCII"),
        (_record(_hello_body(_sni(b"a b.test"))), "not a host name"),
        (_record(_hello_body(b"\x00\x00\x00\x03\x00\x09\x00")), "malformed"),
    ],
)
def test_hostile_hellos_are_malformed_with_a_reason(data: bytes, reason: str) -> None:
    found = read_hello(data)
    assert isinstance(found, Malformed), found
    assert reason in found.reason


def test_a_hello_without_extensions_has_no_name() -> None:
    hello = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body = b"\x01" + len(hello).to_bytes(3, "big") + hello
    assert read_hello(_record(body)) == Hello(None)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    assert isinstance(read_hello(data), Hello | Malformed | Incomplete | NotTls)


REAL = client_hello("api.example.test")


@settings(max_examples=400, deadline=None)
@given(st.integers(5, len(REAL) - 1), st.integers(0, 255))
def test_a_mutated_real_hello_never_raises_nor_names_another_host(at: int, byte: int) -> None:
    mutated = REAL[:at] + bytes([byte]) + REAL[at + 1 :]
    found = read_hello(mutated)
    assert isinstance(found, Hello | Malformed | Incomplete | NotTls)
    if isinstance(found, Hello) and found.server_name is not None and found.server_name != "api.example.test":
        # only a change inside the name's own bytes can change the name
        start = REAL.index(b"api.example.test")
        assert start <= at < start + len("api.example.test")
