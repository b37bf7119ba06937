"""crt-list lines, PEM bundles and SSL option words: parsed or refused with HAProxy's message,
never an unexpected exception (hypothesis), and round trips through `show ssl crt-list`."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import Pki
from nsproxy.config.model_tls import CrtListEntry, SslOptions
from nsproxy.tls.crtlist import format_entry, parse_crt_list, parse_entry
from nsproxy.tls.options import OptionError, build_options, take_option
from nsproxy.tls.pem import PemError, parse_bundle, split_pem

WORDS = st.sampled_from(
    [
        "alpn",
        "h2,http/1.1",
        "verify",
        "none",
        "optional",
        "required",
        "maybe",
        "ssl-min-ver",
        "TLSv1.2",
        "TLSv1.3",
        "TLSv9",
        "ciphers",
        "HIGH",
        "npn",
        "curves",
        "P-256",
        "[",
        "]",
        "!x.test",
        "*.y.test",
        "a.test",
        "#",
        "no-tls-tickets",
        "ca-file",
        "/c.pem",
    ]
)


@given(st.lists(WORDS, max_size=12), st.booleans())
def test_crt_list_line_parses_or_is_refused(words: list[str], bracket: bool) -> None:
    line = "/crt.pem " + ("[" if bracket else "") + " ".join(words)
    try:
        entry = parse_entry("l.lst", 3, line)
    except OptionError as exc:
        assert str(exc).startswith("parsing [l.lst:3]: ")
        return
    assert entry is not None and entry.crt == "/crt.pem"
    if any(f.startswith("[") for f in entry.sni_filters):
        return  # `show` writes no empty brackets: such a filter reads back as options
    again = parse_entry("l.lst", 3, format_entry(entry).replace("\0", ""))
    assert again == entry


@given(st.text(max_size=200))
def test_crt_list_text_never_crashes(text: str) -> None:
    with contextlib.suppress(OptionError):
        parse_crt_list("l.lst", text)


@given(st.lists(WORDS, min_size=1, max_size=8))
def test_option_words(words: list[str]) -> None:
    fields: dict[str, object] = {}
    rest = list(words)
    try:
        while rest and take_option(rest, fields):
            pass
    except OptionError as exc:
        assert str(exc).startswith("'")
        return
    opts = build_options(fields)
    assert opts.verify in (None, "none", "optional", "required")


def test_crt_list_comments_blank_lines_and_line_numbers() -> None:
    entries = parse_crt_list("l", "# c\n\n/a.pem [alpn h2] a.test !b.test\n  \n/b.pem\n")
    assert entries == [
        CrtListEntry("/a.pem", SslOptions(alpn=("h2",)), ("a.test", "!b.test"), 3),
        CrtListEntry("/b.pem", SslOptions(), (), 5),
    ]


def test_crt_base_and_ca_base() -> None:
    entry = parse_entry("l", 1, "a.pem [ca-file ca.pem]", crt_base="/crt", ca_base="/ca")
    assert entry is not None
    assert entry.crt == "/crt/a.pem" and entry.options.ca_file == "/ca/ca.pem"


@given(st.binary(max_size=400))
def test_pem_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(PemError):
        parse_bundle("f.pem", data)


def test_bundle_orders(pki: Pki) -> None:
    data = Path(pki.www).read_bytes()
    certs, key = split_pem(data)
    assert len(certs) == 1 and key is not None
    key_first = parse_bundle("f", data)
    cert_first = parse_bundle("f", certs[0] + key)
    assert key_first.cert == cert_first.cert
    with pytest.raises(PemError, match=r"No Private Key found in 'f\.key'"):
        parse_bundle("f", certs[0])
    assert parse_bundle("f", certs[0], key).key_pem == key
    other_key = split_pem(Path(pki.api).read_bytes())[1]
    assert other_key is not None
    with pytest.raises(PemError, match="inconsistencies between private key and certificate"):
        parse_bundle("f", certs[0] + other_key)
