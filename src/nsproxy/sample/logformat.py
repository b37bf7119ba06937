"""log-format strings (`%ci:%cp [%t] %[src,ipmask(24)] %{+Q}b`) compiled to `Txn -> str` callables.

Parsing follows HAProxy 2.6's parse_logformat_string(): `%%`, `%{+Q,-M}var`, `%o` to set
the default flags, `%[expr]`, and its error messages. Options: `mandatory` (absent values
print '-': log-format), `merge_spaces` (runs of spaces print once: log-format), `http`
(expressions are %-encoded as in HTTP header values: http-request rules, unique-id).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from nsproxy.sample.context import Addr, Txn
from nsproxy.sample.expr import parse_expr
from nsproxy.sample.patref import CompileEnv
from nsproxy.sample.places import Hook, use_names
from nsproxy.sample.tls_fetch import frontend_transport, handshake_ms, sslc_of, sslv_of
from nsproxy.sample.types import Sample, SampleError, text_of

MANDATORY, QUOTE, HEXA, ESC = 1, 2, 4, 8

# HAProxy 2.6's built-in formats (option tcplog / option httplog).
TCPLOG_FORMAT = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq"
HTTPLOG_FORMAT = (
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc "
    "%sq/%bq %hr %hs %{+Q}r"
)
CLF_FORMAT = (
    '%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc '
    "%ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl"
)
_FLAGS = {"M": MANDATORY, "Q": QUOTE, "X": HEXA, "E": ESC}
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# TCP-mode variables HAProxy 2.6 knows; HTTP-only ones are listed apart.
_HTTP_ONLY = {
    "CC",
    "CS",
    "Ta",
    "Ti",
    "Tq",
    "Tr",
    "TR",
    "HM",
    "HP",
    "HPO",
    "HQ",
    "HU",
    "HV",
    "r",
    "tr",
    "trg",
    "trl",
}

Render = Callable[[Txn], str]


_SECOND: list[object] = [-1, ""]  # the last second formatted, and its text


def accept_date(ts: float) -> str:
    """%t: 24/Nov/2026:15:33:26.363 (local time); the part up to the second is reused."""
    sec = int(ts)
    if _SECOND[0] != sec:
        tm = time.localtime(sec)
        _SECOND[0] = sec
        _SECOND[1] = (
            f"{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:"
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}."
        )
    return f"{_SECOND[1]}{int((ts - sec) * 1000):03d}"


def _date(tm: time.struct_time, tz: str) -> str:
    return (
        f"{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:"
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tz}"
    )


def _local_tz(ts: float) -> str:
    off = time.localtime(ts).tm_gmtoff
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f"{sign}{off // 3600:02d}{off % 3600 // 60:02d}"


def _addr_parts(addr: Addr) -> tuple[str, str] | None:
    if isinstance(addr, tuple):
        return str(addr[0]), str(addr[1])
    if addr is None:
        return None
    return "unix", "-"


_RFC5424_ESC = {'"', "\\", "]"}


def _text(value: str | None, opts: int) -> str:
    """HAProxy's lf_text_len(): quoting, escaping, '-' for a missing mandatory value."""
    out = ""
    if value:
        out = "".join("\\" + c if c in _RFC5424_ESC else c for c in value) if opts & ESC else value
    elif opts & (QUOTE | MANDATORY) == MANDATORY:
        out = "-"
    return f'"{out}"' if opts & QUOTE else out


def _http_encode(value: str, opts: int) -> str:
    out = []
    for c in value:
        o = ord(c)
        if (o < 32 and c != "\t") or o == 0x7F:
            out.append(f"%{o:02X}")
        elif opts & ESC and c in _RFC5424_ESC:
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _hex_ip(host: str) -> str:
    packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    return packed.hex().upper()


def _ip(get: Callable[[Txn], Addr], opts: int, missing: str = "-") -> Render:
    def render(txn: Txn) -> str:
        parts = _addr_parts(get(txn))
        if parts is None:
            return missing
        if opts & HEXA and parts[0] != "unix":
            return _hex_ip(parts[0])
        return _text(parts[0], opts)

    return render


def _port(get: Callable[[Txn], Addr], opts: int, missing: str = "-") -> Render:
    def render(txn: Txn) -> str:
        parts = _addr_parts(get(txn))
        if parts is None:
            return missing
        if opts & HEXA and parts[1] != "-":
            return f"{int(parts[1]):04X}"
        return parts[1]

    return render


def _var(name: str, opts: int) -> Render:
    """The renderer of one `%name` variable."""
    t = opts
    fixed: dict[str, Render] = {
        "ci": _ip(lambda x: x.src, t, "unknown"),
        "cp": _port(lambda x: x.src, t, "unknown"),
        "fi": _ip(lambda x: x.dst, t, "unknown"),
        "fp": _port(lambda x: x.dst, t, "unknown"),
        "si": _ip(lambda x: x.server_addr, t),
        "sp": _port(lambda x: x.server_addr, t),
        "bi": _ip(lambda x: x.backend_local, t),
        "bp": _port(lambda x: x.backend_local, t),
        "f": lambda x: _text(x.frontend_name, t),
        "ft": lambda x: _text(frontend_transport(x), t),
        "b": lambda x: _text(x.backend_name or x.frontend_name, t),
        "s": lambda x: _text(x.server_name or "<NOSRV>", t),
        "t": lambda x: accept_date(x.accept_ts),
        "T": lambda x: _date(time.gmtime(x.accept_ts), "+0000"),
        "Tl": lambda x: _date(time.localtime(x.accept_ts), _local_tz(x.accept_ts)),
        "Ts": (lambda x: f"{int(x.accept_ts):04X}")
        if t & HEXA
        else (lambda x: str(int(x.accept_ts))),
        "ms": (lambda x: f"{int(x.accept_ts % 1 * 1000):02X}")
        if t & HEXA
        else (lambda x: f"{int(x.accept_ts % 1 * 1000):03d}"),
        "ts": lambda x: x.termination,
        "tsc": lambda x: x.termination + x.cookie_status,
        "B": lambda x: str(x.bytes_out),
        "U": lambda x: str(x.bytes_in),
        "Tw": lambda x: str(x.t_queue),
        "Tc": lambda x: str(x.t_connect),
        "Tt": lambda x: str(x.t_total),
        "Tu": lambda x: str(x.t_total),
        "Th": lambda x: str(handshake_ms(x)),
        "Td": lambda x: (
            str(x.t_total - max(x.t_queue, 0) - max(x.t_connect, 0)) if x.t_total >= 0 else "-1"
        ),
        "ac": lambda x: str(x.conn_process),
        "fc": lambda x: str(x.conn_frontend),
        "bc": lambda x: str(x.conn_backend),
        "sc": lambda x: str(x.conn_server),
        "rc": lambda x: ("+" if x.redispatched else "") + str(x.retries),
        "sq": lambda x: str(x.queue_server),
        "bq": lambda x: str(x.queue_backend),
        "pid": (lambda x: f"{os.getpid():04X}") if t & HEXA else (lambda x: str(os.getpid())),
        "rt": (lambda x: f"{x.request_counter:04X}")
        if t & HEXA
        else (lambda x: str(x.request_counter)),
        "H": lambda x: _text(socket.gethostname(), t),
        "ID": lambda x: _text(x.unique_id, t),
        "ST": lambda x: str(x.http_status),
        "lc": lambda x: "0",
        "hr": _captured(True, True),
        "hrl": _captured(True, False),
        "hs": _captured(False, True),
        "hsl": _captured(False, False),
        "sslc": lambda x: _text(sslc_of(x), t),
        "sslv": lambda x: _text(sslv_of(x), t),
    }
    return fixed[name]


_KNOWN = {
    "o",
    "ci",
    "cp",
    "fi",
    "fp",
    "si",
    "sp",
    "bi",
    "bp",
    "f",
    "ft",
    "b",
    "s",
    "t",
    "T",
    "Tl",
    "Ts",
    "ms",
    "ts",
    "tsc",
    "B",
    "U",
    "Tw",
    "Tc",
    "Tt",
    "Tu",
    "Th",
    "Td",
    "ac",
    "fc",
    "bc",
    "sc",
    "rc",
    "sq",
    "bq",
    "pid",
    "rt",
    "H",
    "ID",
    "ST",
    "lc",
    "hr",
    "hrl",
    "hs",
    "hsl",
    "sslc",
    "sslv",
}


def _apply_flags(arg: str, opts: int) -> int:
    for item in arg.split(","):
        if item[:1] == "+" and item[1:] in _FLAGS:
            opts |= _FLAGS[item[1:]]
        elif item[:1] == "-" and item[1:] in _FLAGS:
            opts &= ~_FLAGS[item[1:]]
    return opts


@dataclass(frozen=True, slots=True)
class _Sep:
    """A run of spaces in a merge-spaces format: printed once, and not after another space."""


def compile_logformat(
    fmt: str,
    where: Hook = Hook.FE_LOG_END,
    env: CompileEnv | None = None,
    *,
    mandatory: bool = True,
    merge_spaces: bool = True,
    http: bool = False,
    mode_http: bool = False,
) -> Callable[[Txn], str]:
    """`fmt` compiled to a function of a Txn. Raises SampleError with HAProxy's text
    (the caller prefixes e.g. 'failed to parse log-format : ')."""
    default = MANDATORY if mandatory else 0
    parts: list[Render | str | _Sep] = []
    i, n = 0, len(fmt)
    text: list[str] = []

    def flush() -> None:
        if text:
            parts.append("".join(text))
            text.clear()

    while i < n:
        c = fmt[i]
        if c == " " and merge_spaces:
            flush()
            if not parts or not isinstance(parts[-1], _Sep):
                parts.append(_Sep())
            i += 1
            continue
        if c != "%":
            text.append(c)
            i += 1
            continue
        j = i + 1
        if j >= n:
            raise SampleError("truncated line after '%'")
        arg = ""
        if fmt[j] == "%":
            text.append("%")
            i = j + 1
            continue
        if fmt[j].isdigit() or fmt[j] in " \t":
            raise SampleError(
                f"unexpected variable name near '{fmt[j]}' at position {j} line : '{fmt}'. "
                "Maybe you want to write a single '%', use the syntax '%%'"
            )
        if fmt[j] == "{":
            close = fmt.find("}", j + 1)
            if close < 0:
                raise SampleError(f"truncated line after '{fmt[j + 1 :]}'")
            arg = fmt[j + 1 : close]
            j = close + 1
            if j >= n or not (fmt[j] == "[" or (fmt[j].isascii() and fmt[j].isalnum())):
                raise SampleError(
                    f"parse argument modifier without variable name near '%{{{arg}}}'"
                )
        if fmt[j] == "[":
            start = j + 1
            try:
                expr, used = parse_expr(fmt[start:], env, until_end=False)
            except SampleError as e:
                raise SampleError(
                    f"failed to parse sample expression <{fmt[start:]}> : {e}"
                ) from None
            k = start + used
            if k >= n or fmt[k] != "]":
                if k < n and fmt[k].isprintable():
                    raise SampleError(f"expected ']' after '{fmt[start:k]}', but found '{fmt[k]}'")
                raise SampleError(f"missing ']' after '{fmt[start:k]}'")
            if not expr.fetch.val & where:
                raise SampleError(
                    f"sample fetch <{fmt[start:]}> may not be reliably used here because it needs "
                    f"'{use_names(expr.fetch.use)}' which is not available here"
                )
            flush()
            parts.append(_expr_render(expr.get, _apply_flags(arg, default), http))
            i = k + 1
            continue
        if not (fmt[j].isascii() and fmt[j].isalpha()):
            # HAProxy keeps '%' followed by other characters as text.
            text.append("%")
            i = j
            continue
        k = j
        while k < n and fmt[k].isascii() and fmt[k].isalnum():
            k += 1
        name = fmt[j:k]
        if name in _HTTP_ONLY and not mode_http:
            raise SampleError(f"format variable '{name}' is reserved for HTTP mode")
        if name not in _KNOWN and name not in _HTTP_ONLY:
            raise SampleError(
                f"no such format variable '{name}'. If you wanted to emit the '%' character "
                "verbatim, you need to use '%%'"
            )
        opts = _apply_flags(arg, default)
        if name == "o":
            default = opts
        elif name in _HTTP_ONLY:
            flush()
            parts.append(_http_var(name, opts))
        else:
            flush()
            parts.append(_var(name, opts))
        i = k
    flush()
    return _assemble(parts)


def _absent(opts: int) -> Render:
    return lambda txn: _text(None, opts)


def _ms(value: int) -> str:
    return str(value)


def _captures(values: list[str | None], braces: bool) -> str:
    """%hr/%hs: `{a|b}` (nothing without captures); %hrl/%hsl: `a b`."""
    if not values:
        return ""
    items = [v or "" for v in values]
    return "{" + "|".join(items) + "}" if braces else " ".join(items)


def _req_part(txn: Txn, part: str) -> str | None:
    req = txn.http_req
    if req is None:
        return None
    if part == "HM":
        return req.method.decode("latin-1")
    if part == "HV":
        return req.version.decode("latin-1")
    target = req.target.decode("latin-1")
    if part == "HU":
        return target
    path, _, query = target.partition("?")
    if part == "HP":
        return path
    return "?" + query if query else ""


def _http_var(name: str, opts: int) -> Render:
    """The renderer of one HTTP-only `%name` variable (httplog, clf, log-format in HTTP)."""
    t = opts
    if name == "tr":
        return lambda x: accept_date(x.request_ts)
    if name == "trg":
        return lambda x: _date(time.gmtime(x.request_ts), "+0000")
    if name == "trl":
        return lambda x: _date(time.localtime(x.request_ts), _local_tz(x.request_ts))
    if name == "TR":
        return lambda x: _ms(x.t_request)
    if name == "Ti":
        return lambda x: _ms(x.t_idle)
    if name == "Tq":
        return lambda x: _ms(-1 if x.t_request < 0 else x.t_idle + x.t_request)
    if name == "Tr":
        return lambda x: _ms(x.t_response)
    if name == "Ta":
        return lambda x: _ms(x.t_active)
    if name == "CC" or name == "CS":
        return lambda x: _text(None, t)
    if name == "r":
        return lambda x: _text(x.request_line or "<BADREQ>", t)
    if name in ("HM", "HU", "HP", "HQ", "HV"):
        return lambda x: _text(_req_part(x, name), t)
    raise SampleError(f"no such format variable '{name}'")


def _captured(req: bool, braces: bool) -> Render:
    if req:
        return lambda x: _captures(list(x.req_captures), braces)
    return lambda x: _captures(list(x.res_captures), braces)


def _expr_render(get: Callable[[Txn], object], opts: int, http: bool) -> Render:
    def render(txn: Txn) -> str:
        smp = get(txn)
        value = text_of(smp) if isinstance(smp, Sample) else None
        if http:
            return _http_encode(value or "", opts)
        return _text(value, opts)

    return render


def _const(text: str) -> Render:
    return lambda txn: text


def _assemble(parts: list[Render | str | _Sep]) -> Render:
    if all(isinstance(p, str) for p in parts):
        const = "".join(p for p in parts if isinstance(p, str))
        return lambda txn: const
    has_sep = any(isinstance(p, _Sep) for p in parts)
    if not has_sep:
        items: list[Render] = [
            _const(p) if isinstance(p, str) else p for p in parts if not isinstance(p, _Sep)
        ]

        def render(txn: Txn) -> str:
            return "".join([f(txn) for f in items])

        return render

    # (True, None): a separator; (False, text): literal text; (False, render): a variable
    steps: tuple[tuple[bool, str | Render | None], ...] = tuple(
        (True, None) if isinstance(p, _Sep) else (False, p) for p in parts
    )

    def render_sep(txn: Txn) -> str:
        """HAProxy's merge of separators: one space, never after another nor at the start;
        a variable that wrote nothing (%hr without captures) leaves the last space standing."""
        out: list[str] = []
        last_space = True
        for sep, p in steps:
            if sep:
                if not last_space:
                    out.append(" ")
                    last_space = True
                continue
            text = p if isinstance(p, str) else p(txn)  # type: ignore[misc]
            if text:
                out.append(text)
                last_space = False
        return "".join(out)

    return render_sep
