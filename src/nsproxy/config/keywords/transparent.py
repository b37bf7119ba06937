"""Whole-configuration check for transparent sources: `usesrc` needs the process to stay root."""

from __future__ import annotations

from typing import Any

from nsproxy.config.model import Config
from nsproxy.config.registry import post_check


@post_check
def _usesrc_keeps_privileges(state: Any, config: Config) -> None:
    """HAProxy refuses to start when `usesrc` meets a non-root `user`/`uid`; `-c` warns early.

    `group`/`gid` alone keep the capabilities, so they are not reported.
    """
    g = config.global_
    drops = (g.user is not None and g.user != "root") or (g.uid is not None and g.uid != 0)
    if state.errors or not drops:
        return
    who = f"'user {g.user}'" if g.user is not None else f"'uid {g.uid}'"
    for px in config.backends:
        users = [f"backend '{px.name}'"] if px.source and px.source.usesrc else []
        users += [
            f"server '{px.name}/{s.name}'" for s in px.servers if s.source and s.source.usesrc
        ]
        for user in users:
            state.warnings.append(
                f"config : {user} : 'usesrc' needs full privileges (CAP_NET_ADMIN) to bind "
                f"the client's address, so global.uid cannot be changed: {who} would drop "
                "them and HAProxy refuses to start. Keep the process root for 'usesrc'."
            )
