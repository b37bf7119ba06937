"""How nsproxy names itself to HAProxy's tools: `show info`, `show version`, -v and -vv.

Tools made for HAProxy read these fields and refuse anything else (haproxyadmin wants
`Name: HAProxy`, hatop a `Release_date`, scripts grep "HAProxy version" and `-vv`'s feature
list), so nsproxy answers in HAProxy 2.6's shape: `Name` is HAProxy's, `Version` is a 2.6
version whose local part names nsproxy and its own version (as distributions append theirs).
"""

from __future__ import annotations

import os
import platform

from nsproxy import __version__

NAME = "HAProxy"
PRODUCT = f"nsproxy {__version__}"
VERSION = f"2.6.0-nsproxy-{__version__}"
RELEASE_DATE = "2026/11/29"

# HAProxy's -vv feature names: '+' what nsproxy does the way HAProxy's feature does it.
FEATURES = {
    "ACCEPT4": True,
    "EPOLL": True,
    "GETADDRINFO": True,
    "LINUX_SPLICE": True,
    "LINUX_TPROXY": True,
    "LUA": False,
    "NS": True,
    "OPENSSL": False,
    "PCRE2": False,
    "POLL": False,
    "PRCTL": True,
    "PROMEX": True,
    "QUIC": False,
    "SLZ": False,
    "SYSTEMD": True,
    "TFO": False,
    "THREAD": False,
    "TPROXY": True,
    "ZLIB": False,
}


def version_lines() -> str:
    """`nsproxy -v`: HAProxy's three lines, nsproxy named on the first."""
    u = os.uname()
    return (
        f"HAProxy version {VERSION} {RELEASE_DATE} - {PRODUCT}, "
        "HAProxy 2.6 configuration language\n"
        "Status: nsproxy, a network-namespace-aware TCP proxy (not HAProxy itself).\n"
        f"Running on: {u.sysname} {u.release} {u.version} {u.machine}\n"
    )


def build_lines() -> str:
    """`nsproxy -vv`: -v, then HAProxy's build report sections as they apply to nsproxy."""
    features = " ".join(f"{'+' if on else '-'}{name}" for name, on in sorted(FEATURES.items()))
    options = " ".join(f"USE_{name}=1" for name, on in sorted(FEATURES.items()) if on)
    return (
        version_lines()
        + "Build options :\n"
        + f"  TARGET  = python{platform.python_version()}\n"
        + f"  OPTIONS = {options}\n"
        + "\n"
        + f"Feature list : {features}\n"
        + "\n"
        + "Default settings :\n"
        + "  bufsize = 16384, maxrewrite = 1024, maxpollevents = 200\n"
        + "\n"
        + "Built without multi-threading support (worker processes instead: nbthread).\n"
        + "Built with the Prometheus exporter (global 'prometheus-exporter <addr:port>').\n"
        + "Built with network namespace support.\n"
        + "Built with transparent proxy support using: IP_TRANSPARENT IPV6_TRANSPARENT "
        + "IP_FREEBIND\n"
        + f"Running on Python version : {platform.python_version()}\n"
        + "\n"
        + "Available polling systems :\n"
        + "      epoll : pref=300,  test result OK\n"
        + "Total: 1 (1 usable), will use epoll.\n"
        + "\n"
        + "Available multiplexer protocols :\n"
        + "(protocols marked as <default> cannot be specified using 'proto' keyword)\n"
        + "  <default> : mode=TCP   side=FE|BE  mux=PASS  flags=\n"
        + "\n"
        + "Available services : none\n"
        + "Available filters : none\n"
        + "\n"
    )


__all__ = [
    "FEATURES",
    "NAME",
    "PRODUCT",
    "RELEASE_DATE",
    "VERSION",
    "build_lines",
    "version_lines",
]
