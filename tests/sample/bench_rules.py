"""Cost of the engine per connection: five ACL rules and one map lookup (not a test).

Run: PYTHONPATH=src:. python tests/sample/bench_rules.py
"""

from __future__ import annotations

import tempfile
import timeit
from pathlib import Path

from tests.sample.txn import StubTxn

from nsproxy.sample import AclSet, CompileEnv, Hook, compile_condition, compile_logformat


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        m = Path(d) / "tenants.map"
        m.write_text("".join(f"tenant-{i} be_{i}\n" for i in range(1000)))
        env = CompileEnv()
        acls = AclSet()
        acls.add(["net", "src", "10.0.0.0/8", "192.0.2.0/24"], env)
        acls.add(["port", "dst_port", "443"], env)
        acls.add(["tenant", "fc_netns", "-m", "beg", "tenant-"], env)
        conds = [
            compile_condition(w, acls, Hook.FE_REQ_CNT, env).run
            for w in (
                ["if", "net"],
                ["if", "port"],
                ["if", "!net", "port"],
                ["if", "tenant"],
                ["if", "LOCALHOST"],
            )
        ]
        name = compile_logformat(
            f"%[fc_netns,map({m})]", Hook.FE_SET_BCK, env, mandatory=False, merge_spaces=False
        )
        t = StubTxn(fc_netns="tenant-500")

        def run() -> None:
            for c in conds:
                c(t)
            name(t)

        n = 20000
        best = min(timeit.repeat(run, number=n, repeat=7)) / n
        print(f"five conditions + one map lookup: {best * 1e6:.2f} us per connection")


if __name__ == "__main__":
    main()
