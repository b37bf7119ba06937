"""The Lua state of a configuration: `lua-prepend-path`, `lua-load`, and the `core` table
scripts register their services, actions, fetches and converters through."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

# The `core` table, built in Lua over the Python callbacks in `reg` (Lua calls Python
# functions with positional arguments only, so every method is a Lua function).
_CORE = """
local reg = ...
core = {}
for i, name in ipairs({"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}) do
    core[name] = i - 1
end
core.thread = 0
function core.register_service(name, mode, fn)
    if mode ~= "http" and mode ~= "tcp" then
        error("'core.register_service' expects 'tcp' or 'http' mode.", 2)
    end
    reg.service(name, mode, fn)
end
function core.register_action(name, actions, fn, nb_args)
    reg.action(name, fn, nb_args or 0)
end
function core.register_fetches(name, fn) reg.fetch(name, fn) end
function core.register_converters(name, fn) reg.converter(name, fn) end
function core.register_init(fn) reg.init(fn) end
function core.register_task(fn) reg.task(fn) end
function core.register_cli(path, usage, fn) end
function core.log(level, msg) reg.log(level, tostring(msg)) end
function core.Debug(msg) core.log(core.debug, msg) end
function core.Info(msg) core.log(core.info, msg) end
function core.Warning(msg) core.log(core.warning, msg) end
function core.Alert(msg) core.log(core.alert, msg) end
function core.now() local s, us = reg.now() return {sec = s, usec = us} end
function core.msleep(ms) end
function core.sleep(s) end
function core.yield() end
"""

# An HTTP applet: the request's facts and the methods that write the answer through `py`.
_APPLET = """
local py, headers = ...
local a = {
    method = py.method, path = py.path, qs = py.qs, version = py.version,
    length = py.length, headers = headers,
}
function a:set_status(code, reason) py.set_status(code, reason) end
function a:add_header(name, value) py.add_header(tostring(name), tostring(value)) end
function a:start_response() py.start_response() end
function a:send(data)
    if not py.started then
        error("Lua: 'send' you must call start_response() before sending data.", 2)
    end
    py.send(tostring(data))
end
function a:getline() return py.getline() end
function a:receive(size) return py.receive(size) end
function a:get_var(name) return py.get_var(name) end
function a:set_var(name, value, ifexist) py.set_var(name, value, ifexist) end
function a:unset_var(name) py.unset_var(name) end
function a:get_priv() return py.priv end
function a:set_priv(value) py.priv = value end
return a
"""


# A message handler giving HAProxy's runtime error text: "<message> from <traceback>", the
# traceback walking from the failing call to the service function `top` as HAProxy's
# hlua_traceback() words it; the applet object's methods show as the C methods they are there.
_HANDLER = """
local applet_src, top = ...
return function(msg)
    local parts = {}
    local level = 2
    while true do
        local ar = debug.getinfo(level, "Slntf")
        if ar == nil then break end
        local where
        if ar.source == applet_src then
            parts = {}
            where = "[C]: in method '" .. tostring(ar.name) .. "'"
        else
            if ar.currentline > 0 then
                where = ar.short_src .. ":" .. ar.currentline .. ": "
            else
                where = ar.short_src .. ": "
            end
            if ar.namewhat ~= "" and ar.name ~= nil then
                where = where .. "in " .. ar.namewhat .. " '" .. ar.name .. "'"
            elseif ar.what == "main" then
                where = where .. "in main chunk"
            elseif ar.what ~= "C" then
                where = where .. "in function line " .. ar.linedefined
            else
                where = where .. "?"
            end
            if ar.istailcall then where = where .. " ..." end
        end
        parts[#parts + 1] = where
        if ar.func == top then break end
        level = level + 1
    end
    return tostring(msg) .. " from " .. table.concat(parts, ", ")
end
"""
APPLET_SOURCE = "=[nsproxy applet]"


class LuaError(Exception):
    """A script that cannot be loaded or failed; the message is HAProxy's."""


@dataclass
class Registry:
    """What the scripts registered, by name."""

    services: dict[str, tuple[str, Any]] = field(default_factory=dict)
    actions: dict[str, tuple[Any, int]] = field(default_factory=dict)
    fetches: dict[str, Any] = field(default_factory=dict)
    converters: dict[str, Any] = field(default_factory=dict)
    inits: list[Any] = field(default_factory=list)
    tasks: list[Any] = field(default_factory=list)
    log: Callable[[int, str], None] = lambda level, msg: None

    def service(self, name: str, mode: str, fn: Any) -> None:
        self.services[name] = (mode, fn)

    def action(self, name: str, fn: Any, nb_args: int) -> None:
        self.actions[name] = (fn, int(nb_args))

    def fetch(self, name: str, fn: Any) -> None:
        self.fetches[name] = fn

    def converter(self, name: str, fn: Any) -> None:
        self.converters[name] = fn

    def init(self, fn: Any) -> None:
        self.inits.append(fn)

    def task(self, fn: Any) -> None:
        self.tasks.append(fn)

    def now(self) -> tuple[int, int]:
        t = time.time()
        return int(t), int((t - int(t)) * 1_000_000)


class LuaEngine:
    """One Lua state for the whole configuration (HAProxy's shared state; a per-thread
    state is the same thing for one thread)."""

    def __init__(self) -> None:
        try:
            from lupa import lua54  # only configurations with Lua need it
        except ImportError as exc:
            raise LuaError(f"Lua is not available: {exc} (the 'lupa' package)") from None
        self.runtime = lua54.LuaRuntime(unpack_returned_tuples=True, register_eval=False)
        self.registry = Registry()
        self.runtime.execute(_CORE, self.registry)
        g = self.runtime.globals()
        self._applet = g.load(_APPLET, APPLET_SOURCE)
        self._handler = self.runtime.compile(_HANDLER)
        self.files: list[str] = []

    def prepend_path(self, path: str, kind: str = "path") -> None:
        package = self.runtime.globals().package
        package[kind] = f"{path};{package[kind]}"

    def load(self, file: str) -> None:
        """Runs `file` as HAProxy's lua-load does; raises LuaError with HAProxy's words."""
        g = self.runtime.globals()
        chunk = g.loadfile(file)
        if isinstance(chunk, tuple):  # nil, message
            raise LuaError(f"error in Lua file '{file}': {chunk[1]}")
        ran = g.pcall(chunk)
        if isinstance(ran, tuple) and not ran[0]:
            raise LuaError(f"Lua runtime error: {ran[1]}")
        self.files.append(file)

    def service(self, name: str) -> Any | None:
        """The function of HTTP service `name`, None if no script registered one."""
        found = self.registry.services.get(name)
        return found[1] if found is not None and found[0] == "http" else None

    def applet(self, facts: Any, headers: dict[str, list[str]]) -> Any:
        """A Lua applet object over `facts` (see applet.AppletRun) and the request headers."""
        table_from = self.runtime.table_from
        hdrs = table_from({k: table_from(dict(enumerate(v))) for k, v in headers.items()})
        return self._applet(facts, hdrs)

    def call(self, fn: Any, *args: Any) -> tuple[bool, str]:
        """`fn(*args)` protected: (ok, HAProxy's "<message> from <traceback>" on failure)."""
        g = self.runtime.globals()
        ran = g.xpcall(fn, self._handler(APPLET_SOURCE, fn), *args)
        if isinstance(ran, tuple):
            return bool(ran[0]), "" if ran[0] else str(ran[1])
        return bool(ran), ""
