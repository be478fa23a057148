"""read_hello (iamgate.tls.hello): the server name of a ClientHello, read from the bytes peeked
from a socket before the handshake. Real hellos come from Python's ssl (a client writing into a
memory BIO); hostile ones are built by hand, each one change away from a hello that reads; the
property tests feed it arbitrary bytes, mutated real hellos and generated hellos."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgate.tls.hello import MAX_HELLO, Hello, Incomplete, Malformed, NotTls, read_hello

OUTCOMES = (Hello, Malformed, Incomplete, NotTls)
TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3


def real_hello(server_hostname: str | None, maximum: ssl.TLSVersion = TLS13) -> bytes:
    """The first flight of a real client: what the gateway peeks from the socket."""
    ctx = ssl.create_default_context()
    if server_hostname is None:
        ctx.check_hostname = False
    ctx.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    data = outgoing.read()
    assert data[:1] == b"\x16"  # a handshake record, else the test proves nothing
    return data


# --- hand-made hellos --------------------------------------------------------------------------


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def extension(kind: int, data: bytes) -> bytes:
    return u16(kind) + u16(len(data)) + data


def sni_entries(*names: bytes, kind: int = 0) -> bytes:
    return b"".join(bytes([kind]) + u16(len(n)) + n for n in names)


def sni(*names: bytes, kind: int = 0) -> bytes:
    entries = sni_entries(*names, kind=kind)
    return extension(0, u16(len(entries)) + entries)


def hello_body(
    extensions: bytes | None,
    *,
    session_id: bytes = b"",
    suites: bytes = b"\x13\x01\x13\x02",
    compression: bytes = b"\x00",
) -> bytes:
    """client_version, random, session id, cipher suites, compression, extensions (RFC 8446 4.1.2)."""
    out = b"\x03\x03" + bytes(range(32)) + bytes([len(session_id)]) + session_id
    out += u16(len(suites)) + suites + bytes([len(compression)]) + compression
    if extensions is not None:
        out += u16(len(extensions)) + extensions
    return out


def handshake(body: bytes, kind: int = 1) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def record(fragment: bytes, version: bytes = b"\x03\x01") -> bytes:
    return b"\x16" + version + u16(len(fragment)) + fragment


def made(extensions: bytes | None, **parts: bytes) -> bytes:
    return record(handshake(hello_body(extensions, **parts)))


GREASE = extension(0x0A0A, b"")
SUPPORTED_VERSIONS = extension(43, b"\x04\x03\x04\x03\x03")


def malformed(data: bytes) -> str:
    found = read_hello(data)
    assert isinstance(found, Malformed), found
    return found.reason


# --- real hellos -------------------------------------------------------------------------------


@pytest.mark.parametrize("maximum", [TLS12, TLS13], ids=["tls1.2-client", "tls1.3-client"])
@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("api.example.test", "api.example.test"),
        ("API.Example.TEST", "api.example.test"),
        ("api.example.test.", "api.example.test"),
        ("Api.Example.Test.", "api.example.test"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("bücher.example", "xn--bcher-kva.example"),  # the client sends the A-label
    ],
)
def test_a_real_hello_gives_its_server_name(maximum: ssl.TLSVersion, sent: str, read: str) -> None:
    assert read_hello(real_hello(sent, maximum)) == Hello(read)


def test_the_two_clients_really_differ() -> None:
    # the TLS 1.2-only client must not offer TLS 1.3 (supported_versions, 0x002b), or the
    # parametrisation above would test one kind of hello twice
    old, new = real_hello("a.test", TLS12), real_hello("a.test", TLS13)
    assert old != new
    assert b"\x00\x2b\x00" not in old
    assert b"\x00\x2b\x00" in new


@pytest.mark.parametrize("maximum", [TLS12, TLS13])
def test_a_real_hello_without_a_server_name(maximum: ssl.TLSVersion) -> None:
    assert read_hello(real_hello(None, maximum)) == Hello(None)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "192.0.2.7"])
def test_a_client_connecting_to_an_address_sends_no_name(address: str) -> None:
    # RFC 6066: literal IP addresses are not sent; OpenSSL (through Python) follows it
    assert read_hello(real_hello(address)) == Hello(None)


def test_the_longest_host_names() -> None:
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(longest) == 253
    assert read_hello(real_hello(longest)) == Hello(longest)
    # the same name written as a fully qualified one: 254 bytes on the wire, still 253 long
    assert read_hello(real_hello(longest + ".")) == Hello(longest)


@pytest.mark.parametrize("maximum", [TLS12, TLS13])
@pytest.mark.parametrize("name", ["api.example.test", None])
def test_every_prefix_of_a_real_hello_is_incomplete(maximum: ssl.TLSVersion, name: str | None) -> None:
    data = real_hello(name, maximum)
    for n in range(len(data)):
        assert isinstance(read_hello(data[:n]), Incomplete), n
    assert read_hello(data) == Hello(name)


def test_bytes_after_the_hello_change_nothing() -> None:
    data = real_hello("api.example.test")
    # a client may send more at once (a change_cipher_spec, early data): the peek sees it too
    for more in (b"\x14\x03\x03\x00\x01\x01", b"\x17\x03\x03\x00\x05hello", b"\x00" * 300):
        assert read_hello(data + more) == Hello("api.example.test")


def test_a_real_hello_fits_what_the_gateway_peeks() -> None:
    assert len(real_hello("a" * 60 + ".example.test")) <= MAX_HELLO


# --- what is not TLS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        b"GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
        b"POST /x HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"G",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x80\x2e\x01\x00\x02",  # an SSLv2-compatible ClientHello
        b"\x15\x03\x03\x00\x02\x02\x28",  # an alert record
        b"\x17\x03\x03\x00\x05hello",  # application data without a handshake
        b"\x14\x03\x03\x00\x01\x01",  # change_cipher_spec first
        b"\x00",
        b"\xff" * 10,
    ],
)
def test_other_first_bytes_are_not_tls(first: bytes) -> None:
    assert isinstance(read_hello(first), NotTls)


@pytest.mark.parametrize("data", [b"", b"\x16", b"\x16\x03", b"\x16\x03\x01\x02"])
def test_too_few_bytes_to_tell_is_incomplete(data: bytes) -> None:
    assert isinstance(read_hello(data), Incomplete)


# --- hand-made hellos --------------------------------------------------------------------------


def test_the_hand_made_hello_reads() -> None:
    # the baseline every malformed case below departs from by one change
    assert read_hello(made(sni(b"api.example.test"))) == Hello("api.example.test")
    assert read_hello(made(GREASE + SUPPORTED_VERSIONS + sni(b"Api.Test."))) == Hello("api.test")
    assert read_hello(made(sni(b"a.test"), session_id=bytes(32))) == Hello("a.test")
    assert read_hello(record(handshake(hello_body(sni(b"a.test"))), b"\x03\x03")) == Hello("a.test")


def test_hellos_without_a_name() -> None:
    assert read_hello(made(None)) == Hello(None)  # no extensions at all (TLS 1.0 style)
    assert read_hello(made(b"")) == Hello(None)  # an empty extensions block
    assert read_hello(made(GREASE + SUPPORTED_VERSIONS)) == Hello(None)
    # a server_name list holding only a name type other than host_name
    assert read_hello(made(sni(b"opaque", kind=7))) == Hello(None)


def test_the_host_name_entry_is_found_after_other_entries() -> None:
    entries = sni_entries(b"opaque", kind=7) + sni_entries(b"api.example.test")
    ext = extension(0, u16(len(entries)) + entries)
    assert read_hello(made(GREASE + ext)) == Hello("api.example.test")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (record(handshake(hello_body(sni(b"a.test"))), b"\x02\x00"), "record version 2.0 is not TLS"),
        (record(handshake(hello_body(sni(b"a.test"))), b"\x04\x01"), "record version 4.1 is not TLS"),
        (b"\x16\x03\x01\x00\x00", "record length 0 is out of range"),
        (b"\x16\x03\x01\x00\x03\x01\x00\x00", "record length 3 is out of range"),
        # refused from the header alone: the gateway does not wait for 16 KiB that cannot come
        (b"\x16\x03\x01\x40\x01", "record length 16385 is out of range"),
        (b"\x16\x03\x03\xff\xff", "record length 65535 is out of range"),
        (
            record(handshake(hello_body(sni(b"a.test")), kind=2)),
            "the first handshake message is not a ClientHello",
        ),
        (record(b"\x01\x00\x01\x00" + hello_body(None)), "the ClientHello does not fit in its first record"),
    ],
)
def test_bad_records(data: bytes, reason: str) -> None:
    assert malformed(data) == reason


def test_a_hello_spread_over_two_records_is_refused() -> None:
    # legal TLS, but no real client does it: refused rather than reassembled
    data = real_hello("api.example.test")
    message = data[5:]
    split = record(message[:100]) + record(message[100:])
    assert malformed(split) == "the ClientHello does not fit in its first record"
    # and while only the first record has come, it is already refused, not waited for
    assert malformed(record(message[:100])) == "the ClientHello does not fit in its first record"


def _raw_hello(hello: bytes) -> bytes:
    return record(handshake(hello))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_raw_hello(b"\x03\x03" + bytes(31)), "the ClientHello is truncated"),  # random cut short
        (_raw_hello(b"\x03\x03" + bytes(32) + b"\x20" + bytes(5)), "the ClientHello is truncated"),
        (_raw_hello(b"\x03\x03" + bytes(32) + b"\x00\x00\x40\x13\x01"), "the ClientHello is truncated"),
        (
            _raw_hello(b"\x03\x03" + bytes(32) + b"\x00\x00\x02\x13\x01\x05\x00"),
            "the ClientHello is truncated",
        ),
        # one stray byte where the extensions' length should be
        (_raw_hello(hello_body(None) + b"\x00"), "the ClientHello is truncated"),
        (_raw_hello(hello_body(None) + u16(50) + sni(b"a.test")), "the ClientHello's extensions overrun it"),
        (made(u16(10) + u16(40) + b"\x00\x02\x00\x17"), "an extension overruns the ClientHello"),
        (
            made(GREASE + extension(0, b"\x00\x40" + sni_entries(b"a.test"))),
            "the server_name extension is malformed",
        ),
        (made(extension(0, b"\x00")), "the server_name extension is malformed"),
        (made(extension(0, b"")), "the server_name extension is malformed"),
        (made(extension(0, b"\x00\x05\x00\x00\x40abc")), "the server_name extension is malformed"),
    ],
)
def test_bad_lengths(data: bytes, reason: str) -> None:
    assert malformed(data) == reason


def test_an_extension_overrunning_the_block_but_not_the_hello() -> None:
    # the extensions block says 10 bytes; its one extension claims 20 of the 30 that follow
    ext = u16(0) + u16(20) + bytes(6)
    hello = hello_body(None) + u16(10) + ext + bytes(20)
    assert malformed(_raw_hello(hello)) == "an extension overruns the ClientHello"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bücher.example".encode(), "the server name is not ASCII"),
        (b"api.example.test\xff", "the server name is not ASCII"),
        (b"", "the server name '' is not a host name"),
        (b"a b.test", "the server name 'a b.test' is not a host name"),
        (b"api.example.test\x00.evil", "the server name 'api.example.test\\x00.evil' is not a host name"),
        (b"evil/../api.test", "the server name 'evil/../api.test' is not a host name"),
        (b"user@api.test", "the server name 'user@api.test' is not a host name"),
        (b"api.test:443", "the server name 'api.test:443' is not a host name"),
        (b"a" * 254, f"the server name {'a' * 80!r} is not a host name"),
        (b".", "the server name '.' is not a host name"),
        (b"api.test..", "the server name 'api.test..' is not a host name"),
    ],
)
def test_names_that_are_not_host_names(name: bytes, reason: str) -> None:
    assert malformed(made(GREASE + sni(name))) == reason


# --- properties --------------------------------------------------------------------------------

REAL = {
    (name, maximum): real_hello(name, maximum)
    for name in ("api.example.test", None)
    for maximum in (TLS12, TLS13)
}


def _is_host_name(name: str) -> bool:
    return (
        0 < len(name) <= 253
        and name == name.lower()
        and not name.endswith(".")
        and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-._*" for c in name)
    )


def _check(found: object) -> None:
    """What any answer must be: one of the four, and a name as the docstring promises it."""
    assert isinstance(found, OUTCOMES), found
    if isinstance(found, Hello) and found.server_name is not None:
        assert _is_host_name(found.server_name), found
    if isinstance(found, Malformed):
        assert found.reason


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=700))
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    _check(read_hello(data))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_never_raises_on_arbitrary_hello_bodies(body: bytes) -> None:
    # arbitrary bytes behind well-formed record and handshake headers: the parser's inner parts
    # are reached, not only its first checks
    _check(read_hello(record(handshake(body))))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_never_raises_on_arbitrary_extensions(extensions: bytes) -> None:
    _check(read_hello(made(extensions)))
    _check(read_hello(made(extension(0, extensions))))


mutation = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(REAL, key=str)), mutation)
def test_a_mutated_real_hello_never_raises(
    which: tuple[str | None, ssl.TLSVersion], changes: list[tuple[int, int]]
) -> None:
    data = bytearray(REAL[which])
    for at, byte in changes:
        data[at % len(data)] = byte
    found = read_hello(bytes(data))
    _check(found)
    name = which[0]
    if isinstance(found, Hello) and found.server_name not in (None, name):
        # a different name can come only from a change inside the hello's extensions (the
        # name itself, or a length that makes other bytes read as a name): never from the
        # record header, the random or the cipher suites
        header_and_random = 5 + 4 + 2 + 32
        assert any(at % len(data) >= header_and_random for at, _ in changes)


host_label = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=63
)
host_names = st.lists(host_label, min_size=1, max_size=4).map(".".join).filter(lambda n: len(n) <= 253)
other_extensions = st.lists(
    st.tuples(st.integers(1, 0xFFFF), st.binary(max_size=40)).map(lambda e: extension(*e)), max_size=5
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(
    host_names,
    st.booleans(),
    other_extensions,
    other_extensions,
    st.binary(max_size=32),
    st.sampled_from([b"\x03\x01", b"\x03\x03"]),
)
def test_a_generated_hello_reads_and_its_prefixes_are_incomplete(
    name: str, dot: bool, before: bytes, after: bytes, session_id: bytes, version: bytes
) -> None:
    sent = name + ("." if dot else "")
    data = record(handshake(hello_body(before + sni(sent.encode()) + after, session_id=session_id)), version)
    expected = Hello(name.lower())
    assert read_hello(data) == expected
    # truncated anywhere, it asks for more: it never gives another name, nor a refusal
    for n in range(len(data)):
        assert isinstance(read_hello(data[:n]), Incomplete), n
    assert read_hello(data + b"\x17\x03\x03\x00\x01x") == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(REAL, key=str)), st.integers(0, 10_000))
def test_truncating_a_real_hello_never_gives_a_name(
    which: tuple[str | None, ssl.TLSVersion], cut: int
) -> None:
    data = REAL[which]
    assert isinstance(read_hello(data[: cut % len(data)]), Incomplete)


@settings(max_examples=500, deadline=None)
@given(st.text("aZ09.-_*é ", max_size=300))
def test_any_name_read_is_a_host_name(name: str) -> None:
    # whatever name a client writes, what comes out is None, a refusal or a normalised host name
    found = read_hello(made(GREASE + sni(name.encode())))
    _check(found)
    assert not isinstance(found, Incomplete | NotTls)
    if isinstance(found, Hello):
        assert found.server_name == name.lower().removesuffix(".")
