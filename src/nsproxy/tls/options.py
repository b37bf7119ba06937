"""SSL option words shared by bind lines, crt-list entries and `ssl-default-*-options`."""

from __future__ import annotations

import os

from nsproxy.config.model_tls import TLS_VERSIONS, SslOptions


class OptionError(Exception):
    """A bad SSL option; the message is HAProxy's, without location."""


# flags that take no argument, and what they set
NO_VERSION_FLAGS = {
    "no-sslv3": "SSLv3",
    "no-tlsv10": "TLSv1.0",
    "no-tlsv11": "TLSv1.1",
    "no-tlsv12": "TLSv1.2",
    "no-tlsv13": "TLSv1.3",
}
FORCE_FLAGS = {
    "force-sslv3": "SSLv3",
    "force-tlsv10": "TLSv1.0",
    "force-tlsv11": "TLSv1.1",
    "force-tlsv12": "TLSv1.2",
    "force-tlsv13": "TLSv1.3",
}
# accepted and without effect here (OpenSSL defaults, or features nsproxy does not have)
IGNORED_FLAGS = frozenset(("prefer-client-ciphers", "allow-0rtt", "no-ca-names", "ssl-reuse"))
IGNORED_ARGS = frozenset(
    ("curves", "ecdhe", "npn", "ca-sign-file", "ca-sign-pass", "ca-verify-file")
)


def resolve(path: str, base: str | None) -> str:
    """`crt`/`ca-file` paths: relative ones are taken from `crt-base`/`ca-base` when set."""
    if base and not os.path.isabs(path):
        return os.path.join(base, path)
    return path


def verify_method(word: str, value: str, server: bool = False) -> str:
    allowed = ("none", "required") if server else ("none", "optional", "required")
    if value not in allowed:
        if server:
            raise OptionError(
                f"'{word}' : unknown verify method '{value}', only 'none' and 'required' are "
                "supported."
            )
        raise OptionError(
            f"'{word}' : unknown verify method '{value}', only 'none', 'optional', and "
            "'required' are supported"
        )
    return value


def tls_version(word: str, value: str | None, server: bool = False) -> str:
    dot = "." if server else ""
    if value is None:
        raise OptionError(f"'{word}' : missing the ssl/tls version{dot}")
    if value not in TLS_VERSIONS:
        raise OptionError(f"'{value}' : unknown ssl/tls version{dot}")
    return value


def alpn_list(word: str, value: str | None, server: bool = False) -> tuple[str, ...]:
    if not value:
        dot = "." if server else ""
        raise OptionError(f"'{word}' : missing the comma-delimited ALPN protocol suite{dot}")
    return tuple(p for p in value.split(",") if p)


MAX_X509_ERROR = 94  # the highest X509_V_ERR_* of OpenSSL 3.0, HAProxy's bound


def ignore_list(word: str, value: str | None) -> frozenset[int]:
    """`ca-ignore-err`/`crt-ignore-err`: `all` or comma-separated X509 error IDs (read as C's
    atoi does, as HAProxy)."""
    if value is None:
        raise OptionError(f"'{word}' : missing error IDs list")
    if value == "all":
        return frozenset(range(1, MAX_X509_ERROR + 1))
    out = set()
    for part in value.split(","):
        digits = part.strip()
        digits = digits[: len(digits) - len(digits.lstrip("0123456789"))] or "0"
        code = int(digits)
        if not 1 <= code <= MAX_X509_ERROR:
            raise OptionError(
                f"'{word}' : ID '{code}' out of range (1..{MAX_X509_ERROR}) in error IDs list "
                f"'{value}'"
            )
        out.add(code)
    return frozenset(out)


def take_option(words: list[str], fields: dict[str, object], ca_base: str | None = None) -> bool:
    """Consumes one bind-side SSL option from the front of `words` into `fields` (SslOptions
    field names; `no_versions` as a set). False when the first word is not an SSL option."""
    word = words[0]
    if word in NO_VERSION_FLAGS:
        del words[0]
        no = fields.setdefault("no_versions", set())
        assert isinstance(no, set)
        no.add(NO_VERSION_FLAGS[word])
        return True
    if word in FORCE_FLAGS:
        del words[0]
        fields["min_ver"] = fields["max_ver"] = FORCE_FLAGS[word]
        return True
    if word == "no-tls-tickets":
        del words[0]
        fields["no_tickets"] = True
        return True
    if word in IGNORED_FLAGS:
        del words[0]
        _extra(fields, word, "")
        return True
    if word in ("ca-ignore-err", "crt-ignore-err"):
        del words[0]
        fields[word.replace("-", "_")] = ignore_list(word, words.pop(0) if words else None)
        return True
    if word not in (
        "verify",
        "ca-file",
        "crl-file",
        "alpn",
        "ssl-min-ver",
        "ssl-max-ver",
        "ciphers",
        "ciphersuites",
        *IGNORED_ARGS,
    ):
        return False
    del words[0]
    value = words.pop(0) if words else None
    if word == "verify":
        if value is None:
            raise OptionError("'verify' : missing verify method")
        fields["verify"] = verify_method(word, value)
    elif word in ("ca-file", "crl-file"):
        if value is None:
            what = "CAfile" if word == "ca-file" else "CRLfile"
            raise OptionError(f"'{word}' : missing {what} path")
        fields[word.replace("-", "_")] = resolve(value, ca_base)
    elif word == "alpn":
        fields["alpn"] = alpn_list(word, value)
    elif word in ("ssl-min-ver", "ssl-max-ver"):
        fields[word[4:7] + "_ver"] = tls_version(word, value)
    elif word in ("ciphers", "ciphersuites"):
        if value is None:
            raise OptionError(f"'{word}' : missing cipher suite")
        fields[word] = value
    elif value is None:
        raise OptionError(f"'{word}' : missing value")
    else:
        _extra(fields, word, value)
    return True


def _extra(fields: dict[str, object], word: str, value: str) -> None:
    extras = fields.setdefault("extras", [])
    assert isinstance(extras, list)
    extras[:] = [(w, v) for w, v in extras if w != word]  # the last one wins, as for others
    extras.append((word, value))


def build_options(fields: dict[str, object]) -> SslOptions:
    out = dict(fields)
    no = out.pop("no_versions", set())
    assert isinstance(no, set)
    extras = out.pop("extras", [])
    assert isinstance(extras, list)
    return SslOptions(no_versions=frozenset(no), extras=tuple(extras), **out)  # type: ignore[arg-type]
