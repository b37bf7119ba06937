"""Master-worker mode (-W, `master-worker`, `nbthread N`): one master, N worker processes.

The master opens the listening sockets once (in their namespaces) and forks workers that
inherit them, so every worker accepts from the same kernel queue and a reload never closes
a listening socket that is still wanted. The master serves the configured `stats socket`s
itself and answers from its workers' private runtime API sockets, summing their counters.
"""

from __future__ import annotations

from nsproxy.ops.master.process import is_master_worker, run_master
from nsproxy.ops.master.workers import run_worker

__all__ = ["is_master_worker", "run_master", "run_worker"]
