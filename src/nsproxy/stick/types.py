"""Stick-table key types and stored data types, in HAProxy 2.6's numbering and order."""

from __future__ import annotations

from dataclasses import dataclass

SINT, UINT, ULL, FRQP, DICT = "sint", "uint", "ull", "frqp", "dict"


@dataclass(frozen=True, slots=True)
class DataType:
    """A storable data type: its STKTABLE_DT_* number, name, storage kind, and whether it
    takes a period argument (the freq counters) or is local-only (never learnt from peers)."""

    num: int
    name: str
    std: str
    local: bool = False

    @property
    def has_period(self) -> bool:
        return self.std == FRQP

    @property
    def width(self) -> int:
        """Slots taken in an entry's data list (a freq counter keeps tick, curr, prev)."""
        return 3 if self.std == FRQP else 1


DATA_TYPES: tuple[DataType, ...] = (
    DataType(0, "server_id", SINT),
    DataType(1, "gpt0", UINT),
    DataType(2, "gpc0", UINT),
    DataType(3, "gpc0_rate", FRQP),
    DataType(4, "conn_cnt", UINT),
    DataType(5, "conn_rate", FRQP),
    DataType(6, "conn_cur", UINT, local=True),
    DataType(7, "sess_cnt", UINT),
    DataType(8, "sess_rate", FRQP),
    DataType(9, "http_req_cnt", UINT),
    DataType(10, "http_req_rate", FRQP),
    DataType(11, "http_err_cnt", UINT),
    DataType(12, "http_err_rate", FRQP),
    DataType(13, "bytes_in_cnt", ULL),
    DataType(14, "bytes_in_rate", FRQP),
    DataType(15, "bytes_out_cnt", ULL),
    DataType(16, "bytes_out_rate", FRQP),
    DataType(17, "gpc1", UINT),
    DataType(18, "gpc1_rate", FRQP),
    DataType(19, "server_key", DICT),
    DataType(20, "http_fail_cnt", UINT),
    DataType(21, "http_fail_rate", FRQP),
)
BY_NAME: dict[str, DataType] = {d.name: d for d in DATA_TYPES}
# HAProxy 2.6 also knows the arrays gpt, gpc and gpc_rate (numbers 22-24); not supported here.
ARRAY_NAMES = ("gpt", "gpc", "gpc_rate")


def data_type(name: str) -> DataType | None:
    """stktable_get_data_type(): by name, with `server_name` an alias of server_key."""
    if name == "server_name":
        name = "server_key"
    return BY_NAME.get(name)


# Key types: name -> (default key size, custom length allowed)
KEY_TYPES: dict[str, tuple[int, bool]] = {
    "integer": (4, False),
    "ip": (4, False),
    "ipv6": (16, False),
    "string": (32, True),
    "binary": (32, True),
}
