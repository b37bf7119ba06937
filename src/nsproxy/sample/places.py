"""Where a fetch's data comes from (HAProxy's SMP_USE_*) and where rules run (SMP_VAL_*)."""

from __future__ import annotations

from enum import IntFlag


class Use(IntFlag):
    """The data a fetch reads, in HAProxy's SMP_SRC_* order (names are HAProxy's)."""

    CONST = 1 << 0
    INTRN = 1 << 1
    LISTN = 1 << 2
    FTEND = 1 << 3
    L4CLI = 1 << 4
    L5CLI = 1 << 5
    TRACK = 1 << 6
    L6REQ = 1 << 7
    HRQHV = 1 << 8
    HRQHP = 1 << 9
    HRQBO = 1 << 10
    BKEND = 1 << 11
    SERVR = 1 << 12
    L4SRV = 1 << 13
    L5SRV = 1 << 14
    L6RES = 1 << 15
    HRSHV = 1 << 16
    HRSHP = 1 << 17
    HRSBO = 1 << 18
    RQFIN = 1 << 19
    RSFIN = 1 << 20
    TXFIN = 1 << 21
    SSFIN = 1 << 22


class Hook(IntFlag):
    """A place where rules or expressions run, in HAProxy's SMP_CKP_* order."""

    FE_CON_ACC = 1 << 0
    FE_SES_ACC = 1 << 1
    FE_REQ_CNT = 1 << 2
    FE_HRQ_HDR = 1 << 3
    FE_HRQ_BDY = 1 << 4
    FE_SET_BCK = 1 << 5
    BE_REQ_CNT = 1 << 6
    BE_HRQ_HDR = 1 << 7
    BE_HRQ_BDY = 1 << 8
    BE_SET_SRV = 1 << 9
    BE_SRV_CON = 1 << 10
    BE_RES_CNT = 1 << 11
    BE_HRS_HDR = 1 << 12
    BE_HRS_BDY = 1 << 13
    BE_STO_RUL = 1 << 14
    FE_RES_CNT = 1 << 15
    FE_HRS_HDR = 1 << 16
    FE_HRS_BDY = 1 << 17
    FE_LOG_END = 1 << 18
    BE_CHK_RUL = 1 << 19
    CFG_PARSER = 1 << 20
    CLI_PARSER = 1 << 21


HOOK_NAMES: dict[Hook, str] = {
    Hook.FE_CON_ACC: "frontend tcp-request connection rule",
    Hook.FE_SES_ACC: "frontend tcp-request session rule",
    Hook.FE_REQ_CNT: "frontend tcp-request content rule",
    Hook.FE_HRQ_HDR: "frontend http-request header rule",
    Hook.FE_HRQ_BDY: "frontend http-request body rule",
    Hook.FE_SET_BCK: "frontend use-backend rule",
    Hook.BE_REQ_CNT: "backend tcp-request content rule",
    Hook.BE_HRQ_HDR: "backend http-request header rule",
    Hook.BE_HRQ_BDY: "backend http-request body rule",
    Hook.BE_SET_SRV: "backend use-server, balance or stick-match rule",
    Hook.BE_SRV_CON: "server source selection",
    Hook.BE_RES_CNT: "backend tcp-response content rule",
    Hook.BE_HRS_HDR: "backend http-response header rule",
    Hook.BE_HRS_BDY: "backend http-response body rule",
    Hook.BE_STO_RUL: "backend stick-store rule",
    Hook.FE_RES_CNT: "frontend tcp-response content rule",
    Hook.FE_HRS_HDR: "frontend http-response header rule",
    Hook.FE_HRS_BDY: "frontend http-response body rule",
    Hook.FE_LOG_END: "logs",
    Hook.BE_CHK_RUL: "backend tcp-check rule",
    Hook.CFG_PARSER: "configuration parser",
    Hook.CLI_PARSER: "CLI parser",
}

USE_NAMES: dict[Use, str] = {
    Use.INTRN: "internal state",
    Use.LISTN: "listener",
    Use.FTEND: "frontend",
    Use.L4CLI: "client address",
    Use.L5CLI: "client-side connection",
    Use.TRACK: "track counters",
    Use.L6REQ: "request buffer",
    Use.HRQHV: "HTTP request headers",
    Use.HRQHP: "HTTP request",
    Use.HRQBO: "HTTP request body",
    Use.BKEND: "backend",
    Use.SERVR: "server",
    Use.L4SRV: "server address",
    Use.L5SRV: "server-side connection",
    Use.L6RES: "response buffer",
    Use.HRSHV: "HTTP response headers",
    Use.HRSHP: "HTTP response",
    Use.HRSBO: "HTTP response body",
    Use.RQFIN: "request buffer statistics",
    Use.RSFIN: "response buffer statistics",
    Use.TXFIN: "transaction statistics",
    Use.SSFIN: "session statistics",
}

# HAProxy 2.6's fetch_cap table: one row per source, one column per Hook in declaration order
# ('x' = the data is available there).
_CAP_ROWS = {
    Use.CONST: "xxxxxxxxxxxxxxxxxxxxxx",
    Use.INTRN: "xxxxxxxxxxxxxxxxxxxx.x",
    Use.LISTN: "xxxxxxxxxxxxxxxxxxx...",
    Use.FTEND: "xxxxxxxxxxxxxxxxxxx...",
    Use.L4CLI: "xxxxxxxxxxxxxxxxxxxx..",
    Use.L5CLI: ".xxxxxxxxxxxxxxxxxx...",
    Use.TRACK: "xxxxxxxxxxxxxxxxxxx...",
    Use.L6REQ: "..xxxxxxxxx...........",
    Use.HRQHV: "..xxxxxxxxx...........",
    Use.HRQHP: "..xxxxxxxxxxxxxxxxx...",
    Use.HRQBO: "....xxxxxxx...........",
    Use.BKEND: "......xxxxxxxxxxxxxx..",
    Use.SERVR: "..........xxxxxxxxxx..",
    Use.L4SRV: "...........xxxxxxxxx..",
    Use.L5SRV: "...........xxxxxxxxx..",
    Use.L6RES: "...........xxxxxxx.x..",
    Use.HRSHV: "...........xxxxxxx.x..",
    Use.HRSHP: "...........xxxxxxxxx..",
    Use.HRSBO: ".............xxxxx.x..",
    Use.RQFIN: "..................x...",
    Use.RSFIN: "..................x...",
    Use.TXFIN: "..................x...",
    Use.SSFIN: "..................x...",
}
_HOOKS = list(Hook)
FETCH_CAP: dict[Use, Hook] = {
    use: Hook(sum(_HOOKS[i] for i, c in enumerate(row) if c == "x"))
    for use, row in _CAP_ROWS.items()
}


def valid_hooks(use: Use) -> Hook:
    """Where a fetch reading `use` can run: the intersection HAProxy computes at registration."""
    val = Hook(0)
    for bit in Use:
        if use & bit:
            val |= FETCH_CAP[bit]
    return val


def use_names(use: Use) -> str:
    """HAProxy's sample_src_names(): the comma-separated names of the sources in `use`."""
    return ",".join(USE_NAMES[bit] for bit in Use if use & bit and bit in USE_NAMES)


def hook_name(where: Hook) -> str:
    """HAProxy's sample_ckp_names(): the name of the lowest place in `where`."""
    for bit in Hook:
        if where & bit:
            return HOOK_NAMES[bit]
    return "unknown sample check place, please report this bug"
