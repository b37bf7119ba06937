"""The rules engine: sample fetches, converters, matches, ACLs, maps and log-format, sans I/O.

Everything compiles at configuration load into plain callables over a `Txn` (context.py).
The modules that register fetches and converters are imported here, explicitly, so the
tables are complete whichever module a caller imports first.
"""

from nsproxy.sample import (  # noqa: F401  (fill the tables)
    conv,
    fetch,
    http_fetch,
    maps,
    payload,
    stick_fetch,
    tls_fetch,
)
from nsproxy.sample.acl import AclSet, Condition, compile_condition
from nsproxy.sample.context import Txn
from nsproxy.sample.expr import compile_expr, parse_expr
from nsproxy.sample.logformat import compile_logformat
from nsproxy.sample.maps import map_command
from nsproxy.sample.patref import CompileEnv, PatRefs
from nsproxy.sample.places import Hook, Use
from nsproxy.sample.types import Sample, SampleError, SmpType, Verdict

__all__ = [
    "AclSet",
    "CompileEnv",
    "Condition",
    "Hook",
    "PatRefs",
    "Sample",
    "SampleError",
    "SmpType",
    "Txn",
    "Use",
    "Verdict",
    "compile_condition",
    "compile_expr",
    "compile_logformat",
    "map_command",
    "parse_expr",
]
