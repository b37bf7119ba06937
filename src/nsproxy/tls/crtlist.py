"""crt-list files: one certificate per line, `[options]` in brackets, then SNI filters."""

from __future__ import annotations

from nsproxy.config.model_tls import CrtListEntry, SslOptions
from nsproxy.tls.options import OptionError, build_options, resolve, take_option

# HAProxy 2.6's crt-list keywords (no-tls-tickets, no-tlsv1x, force-* are bind-line only)
CRT_LIST_KEYWORDS = frozenset(
    (
        "alpn",
        "verify",
        "ca-file",
        "crl-file",
        "ca-verify-file",
        "ssl-min-ver",
        "ssl-max-ver",
        "ciphers",
        "ciphersuites",
        "curves",
        "ecdhe",
        "npn",
        "allow-0rtt",
        "no-ca-names",
    )
)


def parse_entry(
    path: str, lineno: int, line: str, crt_base: str | None = None, ca_base: str | None = None
) -> CrtListEntry | None:
    """One crt-list line (None for blank and comment lines). Raises OptionError with
    HAProxy's `parsing [FILE:N]: ...` text."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    crt, _, rest = text.partition(" ")
    rest = rest.strip()
    options = SslOptions()
    if rest.startswith("["):
        inside, _, rest = rest[1:].partition("]")
        words = inside.split()
        fields: dict[str, object] = {}
        while words:
            if words[0] not in CRT_LIST_KEYWORDS:
                raise OptionError(f"parsing [{path}:{lineno}]: unknown ssl keyword {words[0]}")
            try:
                take_option(words, fields, ca_base)
            except OptionError as exc:
                raise OptionError(f"parsing [{path}:{lineno}]: {exc}") from None
        options = build_options(fields)
    return CrtListEntry(resolve(crt, crt_base), options, tuple(rest.split()), lineno)


def parse_crt_list(
    path: str, text: str, crt_base: str | None = None, ca_base: str | None = None
) -> list[CrtListEntry]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        entry = parse_entry(path, lineno, line, crt_base, ca_base)
        if entry is not None:
            out.append(entry)
    return out


def read_crt_list(
    path: str, crt_base: str | None = None, ca_base: str | None = None
) -> list[CrtListEntry]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        raise OptionError(f"'crt-list' : cannot open file '{path}' : {exc.strerror}") from None
    try:
        return parse_crt_list(path, text, crt_base, ca_base)
    except OptionError as exc:
        raise OptionError(f"'crt-list' : {exc}") from None


def format_entry(entry: CrtListEntry, with_line: bool = False) -> str:
    """A line of `show ssl crt-list FILE`: path[:line] [options] filters, with HAProxy 2.6's
    option order and its quirk of printing the ALPN list with a trailing NUL byte."""
    out = entry.crt + (f":{entry.line}" if with_line else "")
    opts = entry.options
    extras = dict(opts.extras)
    words: list[str] = []
    if "npn" in extras:
        words.append(f"npn {extras['npn']}\0")
    if opts.alpn is not None:
        words.append("alpn " + ",".join(opts.alpn) + "\0")
    if opts.verify is not None:
        words.append("verify " + opts.verify)
    words += [w for w in ("no-ca-names", "allow-0rtt") if w in extras]
    for name, value in (
        ("ca-file", opts.ca_file),
        ("ca-verify-file", extras.get("ca-verify-file")),
        ("crl-file", opts.crl_file),
        ("ciphers", opts.ciphers),
        ("ciphersuites", opts.ciphersuites),
        ("curves", extras.get("curves")),
        ("ecdhe", extras.get("ecdhe")),
        ("ssl-min-ver", opts.min_ver),
        ("ssl-max-ver", opts.max_ver),
    ):
        if value is not None:
            words.append(f"{name} {value}")
    if words:
        out += " [" + " ".join(words) + "]"
    if entry.sni_filters:
        out += " " + " ".join(entry.sni_filters)
    return out
