"""HAProxy's Lua API in one Lua 5.4 state: the part configurations' scripts use at load
(core.register_*) and HTTP services (`http-request use-service lua.NAME`)."""
