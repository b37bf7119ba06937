"""The two OpenSSL calls Python's ssl module lacks: TLS 1.3 cipher suites and per-connection
verify mode, reached through the SSL_CTX / SSL pointers of CPython's ssl objects (checked)."""

from __future__ import annotations

import ctypes
import ctypes.util
import ssl
import weakref
from typing import Any

# CPython 3.11 layout: PySSLContext { PyObject_HEAD; SSL_CTX *ctx; ... },
# PySSLSocket { PyObject_HEAD; PyObject *Socket; SSL *ssl; ... }
_HEAD = 16
_LIB: Any = None


def _lib() -> Any:
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(ctypes.util.find_library("ssl") or "libssl.so.3")
        lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
        lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
        lib.SSL_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib.SSL_set_verify.restype = None
        lib.SSL_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_long]
        lib.SSL_CTX_set_timeout.restype = ctypes.c_long
        _LIB = lib
    return _LIB


def ctx_pointer(ctx: ssl.SSLContext) -> int:
    """The SSL_CTX* of `ctx`; raises RuntimeError when the layout is not the expected one."""
    ptr = ctypes.c_void_p.from_address(id(ctx) + _HEAD).value
    if not ptr or _lib().SSL_CTX_get_options(ptr) != int(ctx.options):
        raise RuntimeError("cannot reach OpenSSL's SSL_CTX from this Python")
    return ptr


def ssl_pointer(obj: ssl.SSLObject) -> int:
    """The SSL* under an SSLObject, checked against its context's SSL_CTX*."""
    inner = obj._sslobj  # type: ignore[attr-defined]
    ptr = ctypes.c_void_p.from_address(id(inner) + _HEAD + 8).value
    if not ptr or _lib().SSL_get_SSL_CTX(ptr) != ctx_pointer(obj.context):
        raise RuntimeError("cannot reach OpenSSL's SSL from this Python")
    return ptr


def set_ciphersuites(ctx: ssl.SSLContext, suites: str) -> bool:
    """SSL_CTX_set_ciphersuites; False when OpenSSL refuses the list."""
    return bool(_lib().SSL_CTX_set_ciphersuites(ctx_pointer(ctx), suites.encode()))


VERIFY_MODES = {"none": 0, "optional": 1, "required": 3}  # SSL_VERIFY_PEER | FAIL_IF_NO_PEER_CERT


def set_verify(obj: ssl.SSLObject, verify: str) -> None:
    """SSL_set_verify on one connection (a crt-list entry's `verify` after an SNI switch)."""
    _lib().SSL_set_verify(ssl_pointer(obj), VERIFY_MODES[verify], None)


def get_verify(obj: ssl.SSLObject) -> int:
    return int(_lib().SSL_get_verify_mode(ssl_pointer(obj)))


# ---- the verify callback of `ca-ignore-err` / `crt-ignore-err`

_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_CRYPTO: Any = None
_KEEP: weakref.WeakKeyDictionary[ssl.SSLContext, Any] = weakref.WeakKeyDictionary()


def _crypto() -> Any:
    global _CRYPTO
    if _CRYPTO is None:
        lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
        for name in ("X509_STORE_CTX_get_error", "X509_STORE_CTX_get_error_depth"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        lib.X509_STORE_CTX_set_error.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.X509_STORE_CTX_set_error.restype = None
        lib.X509_STORE_CTX_get_ex_data.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.X509_STORE_CTX_get_ex_data.restype = ctypes.c_void_p
        lib_ssl = _lib()
        lib_ssl.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lib_ssl.SSL_CTX_set_verify.restype = None
        lib_ssl.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib_ssl.SSL_get_verify_result.argtypes = [ctypes.c_void_p]
        lib_ssl.SSL_get_verify_result.restype = ctypes.c_long
        lib_ssl.SSL_get_ex_data_X509_STORE_CTX_idx.argtypes = []
        _CRYPTO = lib
    return _CRYPTO


# the first verification failure of each connection (by SSL*): error and depth, for the log
FAILURES: dict[int, tuple[int, int]] = {}
_MAX_FAILURES = 4096


def verify_callback(
    ctx: ssl.SSLContext, ca: frozenset[int] = frozenset(), crt: frozenset[int] = frozenset()
) -> None:
    """Client certificate verification on `ctx` goes through nsproxy's callback: it accepts
    the X509 errors in `ca` (found above the leaf) and `crt` (on the leaf), as HAProxy's
    `ca-ignore-err`/`crt-ignore-err`, and keeps the first refused error with its depth."""
    crypto = _crypto()
    lib = _lib()
    idx = lib.SSL_get_ex_data_X509_STORE_CTX_idx()

    def verify(ok: int, store: int) -> int:
        if ok:
            return ok
        err = crypto.X509_STORE_CTX_get_error(store)
        depth = crypto.X509_STORE_CTX_get_error_depth(store)
        if err in (ca if depth else crt):
            crypto.X509_STORE_CTX_set_error(store, 0)
            return 1
        conn = crypto.X509_STORE_CTX_get_ex_data(store, idx)
        if conn and conn not in FAILURES:
            if len(FAILURES) >= _MAX_FAILURES:
                FAILURES.clear()
            FAILURES[conn] = (err, depth)
        return 0

    cb = _VERIFY_CB(verify)
    ptr = ctx_pointer(ctx)
    lib.SSL_CTX_set_verify(ptr, lib.SSL_CTX_get_verify_mode(ptr), ctypes.cast(cb, ctypes.c_void_p))
    _KEEP[ctx] = cb


def take_failure(obj: ssl.SSLObject) -> tuple[int, int] | None:
    """The (error, depth) that made verification of `obj`'s peer fail, once."""
    if not FAILURES:
        return None
    try:
        return FAILURES.pop(ssl_pointer(obj), None)
    except RuntimeError:
        return None


def verify_result(obj: ssl.SSLObject) -> int:
    """SSL_get_verify_result: the X509 verification result of the peer's certificate."""
    _crypto()
    return int(_lib().SSL_get_verify_result(ssl_pointer(obj)))


_SSL_CTRL_SET_SESS_CACHE_SIZE = 42
_SSL_CTRL_SET_SESS_CACHE_MODE = 44
_SSL_SESS_CACHE_OFF = 0


def session_cache(ctx: ssl.SSLContext, size: int, lifetime: float) -> None:
    """`tune.ssl.cachesize` (0: no server-side session cache) and `tune.ssl.lifetime`."""
    lib = _lib()
    ptr = ctx_pointer(ctx)
    if size == 0:
        lib.SSL_CTX_ctrl(ptr, _SSL_CTRL_SET_SESS_CACHE_MODE, _SSL_SESS_CACHE_OFF, None)
    else:
        lib.SSL_CTX_ctrl(ptr, _SSL_CTRL_SET_SESS_CACHE_SIZE, size, None)
    lib.SSL_CTX_set_timeout(ptr, max(1, int(lifetime)))
