"""rtnetlink address messages: decoded from bytes as the kernel lays them out, and fuzzed."""

from __future__ import annotations

import ipaddress
import socket
import struct

from hypothesis import given
from hypothesis import strategies as st

from nsproxy.runtime import rtnl


def _attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def _addr_msg(
    kind: int, family: int, index: int, attrs: bytes, flags: int = 0, seq: int = 0
) -> bytes:
    body = struct.pack("=BBBBI", family, 32, flags, 0, index) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body


def test_ipv4_address_uses_ifa_local_not_the_peer() -> None:
    attrs = _attr(rtnl.IFA_ADDRESS, socket.inet_aton("10.0.0.2")) + _attr(
        rtnl.IFA_LOCAL, socket.inet_aton("169.254.169.254")
    )
    events = rtnl.parse(_addr_msg(rtnl.RTM_NEWADDR, socket.AF_INET, 7, attrs))
    assert events == [rtnl.AddrEvent(True, socket.AF_INET, 7, "169.254.169.254", 0)]
    assert events[0].usable


def test_ipv6_tentative_is_not_usable_until_dad_ends_and_ifa_flags_wins() -> None:
    addr = socket.inet_pton(socket.AF_INET6, "fe80::a9fe:a9fe")
    tentative = _addr_msg(
        rtnl.RTM_NEWADDR, socket.AF_INET6, 3, _attr(rtnl.IFA_ADDRESS, addr), rtnl.IFA_F_TENTATIVE
    )
    done = _addr_msg(
        rtnl.RTM_NEWADDR,
        socket.AF_INET6,
        3,
        _attr(rtnl.IFA_ADDRESS, addr) + _attr(rtnl.IFA_FLAGS, struct.pack("=I", 0x80)),
        rtnl.IFA_F_TENTATIVE,  # the 8-bit field is superseded by IFA_FLAGS
    )
    gone = _addr_msg(rtnl.RTM_DELADDR, socket.AF_INET6, 3, _attr(rtnl.IFA_ADDRESS, addr))
    first, second, third = rtnl.parse(tentative + done + gone)
    assert first.address == "fe80::a9fe:a9fe" and not first.usable
    assert second.usable and second.flags == 0x80
    assert not third.new and not third.usable


def test_other_messages_and_families_are_skipped() -> None:
    done = struct.pack("=IHHII", 20, rtnl.NLMSG_DONE, 0, 1, 0) + b"\0" * 4
    packet = _addr_msg(rtnl.RTM_NEWADDR, socket.AF_PACKET, 1, b"") + done
    assert rtnl.parse(packet) == []


def test_dump_request_is_one_getaddr_message() -> None:
    raw = rtnl.dump_request(9)
    length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", raw)
    assert (length, kind, seq) == (len(raw), rtnl.RTM_GETADDR, 9)
    assert flags & rtnl.NLM_F_DUMP == rtnl.NLM_F_DUMP and flags & rtnl.NLM_F_REQUEST


def test_a_real_dump_of_this_namespace_lists_its_loopback() -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, rtnl.NETLINK_ROUTE) as s:
        s.settimeout(5)
        s.send(rtnl.dump_request())
        events: list[rtnl.AddrEvent] = []
        while not any(e.address == "127.0.0.1" for e in events):
            data = s.recv(65536)
            assert data, "the dump ended without 127.0.0.1"
            events += rtnl.parse(data)
    lo = socket.if_nametoindex("lo")
    assert any(e.ifindex == lo and e.address == "127.0.0.1" and e.usable for e in events)


@given(st.binary(max_size=512))
def test_parse_never_raises_on_any_bytes(data: bytes) -> None:
    for e in rtnl.parse(data):
        assert e.family in (socket.AF_INET, socket.AF_INET6)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([rtnl.RTM_NEWADDR, rtnl.RTM_DELADDR]),
            st.integers(1, 2**31),
            st.ip_addresses(),
        ),
        max_size=8,
    )
)
def test_every_address_message_round_trips(
    msgs: list[tuple[int, int, object]],
) -> None:
    raw = b""
    for kind, index, ip in msgs:
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6  # type: ignore[attr-defined]
        attr = rtnl.IFA_LOCAL if family == socket.AF_INET else rtnl.IFA_ADDRESS
        raw += _addr_msg(kind, family, index, _attr(attr, ip.packed))  # type: ignore[attr-defined]
    got = [(e.new, e.ifindex, ipaddress.ip_address(e.address)) for e in rtnl.parse(raw)]
    assert got == [(k == rtnl.RTM_NEWADDR, i, ip) for k, i, ip in msgs]
