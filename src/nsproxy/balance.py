"""Server selection reproducing HAProxy 2.6 `balance` algorithms, without any I/O."""

from __future__ import annotations

import heapq
import random
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = [
    "ALGORITHMS",
    "BE_WEIGHT_SCALE",
    "HASH_TYPES",
    "Balancer",
    "ConsistentHashBalancer",
    "FirstBalancer",
    "LeastConnBalancer",
    "MapHashBalancer",
    "RandomBalancer",
    "RoundRobinBalancer",
    "Server",
    "StaticRoundRobinBalancer",
    "full_hash",
    "make_balancer",
    "source_hash",
]

BE_WEIGHT_SCALE = 16
SRV_UWGHT_RANGE = 256
SRV_UWGHT_MAX = SRV_UWGHT_RANGE
SRV_EWGHT_RANGE = SRV_UWGHT_RANGE * BE_WEIGHT_SCALE
SRV_EWGHT_MAX = SRV_UWGHT_MAX * BE_WEIGHT_SCALE

ALGORITHMS = frozenset({"roundrobin", "static-rr", "leastconn", "first", "source", "random"})
HASH_TYPES = frozenset({"map-based", "consistent"})

_U32 = 0xFFFFFFFF


class Server(Protocol):
    """What the balancer needs from a runtime server."""

    @property
    def name(self) -> str: ...
    @property
    def puid(self) -> int: ...
    @property
    def weight(self) -> int: ...
    @property
    def backup(self) -> bool: ...
    @property
    def cur_conns(self) -> int: ...
    def usable(self) -> bool: ...
    def has_free_slot(self) -> bool: ...


def full_hash(a: int) -> int:
    """Bob Jenkins' 32-bit integer avalanche hash, as HAProxy's full_hash()."""
    a &= _U32
    a = ((a + 0x7ED55D16) + (a << 12)) & _U32
    a = (a ^ 0xC761C23C) ^ (a >> 19)
    a = ((a + 0x165667B1) + (a << 5)) & _U32
    a = ((a + 0xD3A2646C) ^ (a << 9)) & _U32
    a = ((a + 0xFD7046C5) + (a << 3)) & _U32
    a = (a ^ 0xB55A4F09) ^ (a >> 16)
    return (a * 3221225473) & _U32


def source_hash(key: bytes) -> int:
    """XOR of the key's whole big-endian 32-bit words (the IPv4 address itself)."""
    h = 0
    for off in range(0, len(key) - 3, 4):
        h ^= int.from_bytes(key[off : off + 4], "big")
    return h


_Entry = tuple[int, int, "_Node"]


class _Node:
    """Per-server balancing state; cur_* is committed, next_* is pending (HAProxy's split)."""

    __slots__ = (
        "backup",
        "cur_eweight",
        "cur_usable",
        "entry",
        "idx",
        "lpos",
        "next_eweight",
        "next_usable",
        "npos",
        "points",
        "puid",
        "rweight",
        "seq",
        "srv",
        "tree",
        "wscore",
    )

    def __init__(self, srv: Server, idx: int) -> None:
        self.srv = srv
        self.idx = idx
        self.puid = srv.puid
        self.backup = bool(srv.backup)
        self.cur_eweight = 0
        self.next_eweight = 0
        self.cur_usable = False
        self.next_usable = False
        self.npos = 0
        self.lpos = 0
        self.rweight = 0
        self.wscore = 0
        self.tree: _Tree | None = None
        self.entry: _Entry | None = None
        self.seq = 0  # the live entry's sequence in its tree (entries compare by it, not by
        # identity: compiled, a tuple is boxed anew each time it is stored)
        self.points: list[int] = []


def _can_take(node: _Node) -> bool:
    srv = node.srv
    return srv.has_free_slot() and srv.usable()


class _Tree:
    """An eb32 tree stand-in: ordered by (key, insertion order); heap with lazy deletion."""

    __slots__ = ("_heap", "_seq", "_stale")

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._seq = 0
        self._stale = 0

    def insert(self, node: _Node, key: int) -> None:
        if node.entry is not None:
            _dequeue(node)
        self._seq += 1
        entry = (key & _U32, self._seq, node)
        node.entry = entry
        node.seq = self._seq
        node.tree = self
        heapq.heappush(self._heap, entry)

    def _live(self, entry: _Entry) -> bool:
        node = entry[2]
        return node.entry is not None and node.seq == entry[1] and node.tree is self

    def _discarded(self) -> None:
        self._stale += 1
        if self._stale > 32 and self._stale * 2 > len(self._heap):
            self._heap = [e for e in self._heap if self._live(e)]
            heapq.heapify(self._heap)
            self._stale = 0

    def first(self) -> _Node | None:
        heap = self._heap
        while heap:
            top = heap[0]
            if self._live(top):
                return top[2]
            heapq.heappop(heap)
            self._stale -= 1
        return None

    def find(self, exclude: Server | None) -> _Node | None:
        """First node in order able to take a connection, preferring one that is not `exclude`."""
        node = self.first()
        if node is None:
            return None
        if node.srv is not exclude and _can_take(node):
            return node
        heap = self._heap
        taken: list[_Entry] = []
        found: _Node | None = None
        avoided: _Node | None = None
        while heap:
            entry = heapq.heappop(heap)
            node = entry[2]
            if not self._live(entry):
                self._stale -= 1
                continue
            taken.append(entry)
            if _can_take(node):
                if node.srv is not exclude:
                    found = node
                    break
                avoided = node
        for entry in taken:
            heapq.heappush(heap, entry)
        return found if found is not None else avoided


def _dequeue(node: _Node) -> None:
    if node.entry is not None:
        node.entry = None
        if node.tree is not None:
            node.tree._discarded()


class Balancer(ABC):
    """Picks a server for each new connection the way HAProxy 2.6 does."""

    def __init__(self, servers: Sequence[Server], *, allbackups: bool = False) -> None:
        self.servers: tuple[Server, ...] = tuple(servers)
        self.allbackups = allbackups
        self._nodes = [_Node(s, i) for i, s in enumerate(self.servers)]
        self._by_id = {id(n.srv): n for n in self._nodes}
        self._wmult = self._weight_multiplier()
        self._wdiv = self._weight_divisor()
        self._srv_act = 0
        self._srv_bck = 0
        self._tot_wact = 0
        self._tot_wbck = 0
        self._tot_weight = 0
        self._tot_used = 0
        self._fbck: _Node | None = None
        for node in self._nodes:
            node.next_eweight = node.cur_eweight = self._eweight(node.srv)
            node.next_usable = node.cur_usable = node.cur_eweight > 0 and node.srv.usable()
        self._recount()
        self._init_lb()

    def _weight_multiplier(self) -> int:
        return 1

    def _weight_divisor(self) -> int:
        return BE_WEIGHT_SCALE

    def _eweight(self, srv: Server) -> int:
        return (max(srv.weight, 0) * self._wdiv + self._wmult - 1) // self._wmult

    def _recount(self) -> None:
        srv_act = srv_bck = tot_wact = tot_wbck = 0
        fbck: _Node | None = None
        for node in self._nodes:
            if not node.cur_usable:
                continue
            if node.backup:
                if not srv_bck and not self.allbackups:
                    fbck = node
                srv_bck += 1
                tot_wbck += node.cur_eweight
            else:
                srv_act += 1
                tot_wact += node.cur_eweight
        self._srv_act, self._srv_bck = srv_act, srv_bck
        self._tot_wact, self._tot_wbck = tot_wact, tot_wbck
        self._fbck = fbck
        if srv_act:
            self._tot_weight, self._tot_used = tot_wact, srv_act
        elif fbck is not None:
            self._tot_weight, self._tot_used = fbck.cur_eweight, 1
        else:
            self._tot_weight, self._tot_used = tot_wbck, srv_bck

    @abstractmethod
    def _init_lb(self) -> None: ...

    def _update_node(self, node: _Node) -> None:  # noqa: B027
        """Apply one server's pending state/weight change (before it is committed)."""

    def _after_change(self) -> None:  # noqa: B027
        """Called once after one or more servers changed and were committed."""

    @abstractmethod
    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        """Server for a new connection; None when none can take it (the caller queues)."""

    def server_state_changed(self) -> None:
        """Re-read every server's usable() and weight, updating the structures like HAProxy."""
        changed = False
        for node in self._nodes:
            eweight = self._eweight(node.srv)
            usable = eweight > 0 and node.srv.usable()
            if usable == node.cur_usable and eweight == node.cur_eweight:
                continue
            node.next_eweight = eweight
            node.next_usable = usable
            self._update_node(node)
            node.cur_eweight = eweight
            node.cur_usable = usable
            changed = True
        if changed:
            self._recount()
            self._after_change()

    def on_connect(self, s: Server) -> None:  # noqa: B027
        """The server's cur_conns went up."""

    def on_release(self, s: Server) -> None:  # noqa: B027
        """The server's cur_conns went down."""

    def _single(self, node: _Node) -> Server | None:
        return node.srv if _can_take(node) else None


class _FwrrGroup:
    __slots__ = ("curr", "curr_pos", "curr_weight", "init", "next", "next_weight")

    def __init__(self, weight: int) -> None:
        self.curr = _Tree()
        self.init = _Tree()
        self.next = _Tree()
        self.curr_pos = self.curr_weight = self.next_weight = weight


class RoundRobinBalancer(Balancer):
    """`balance roundrobin`: lb_fwrr.c's fast weighted round robin, dynamic weights."""

    def _init_lb(self) -> None:
        self._act = _FwrrGroup(self._tot_wact)
        self._bck = _FwrrGroup(self._tot_wbck)
        self._full: list[_Node] = []
        for node in self._nodes:
            if node.cur_usable:
                self._queue_by_weight(self._grp(node).init, node)

    def _grp(self, node: _Node) -> _FwrrGroup:
        return self._bck if node.backup else self._act

    @staticmethod
    def _queue_by_weight(tree: _Tree, node: _Node) -> None:
        tree.insert(node, SRV_EWGHT_MAX - node.next_eweight)

    def _queue(self, node: _Node) -> None:
        grp = self._grp(node)
        if not node.next_usable:
            node.tree = None
        elif (
            node.next_eweight <= 0
            or node.npos >= (2 * grp.curr_weight) & _U32
            or node.npos >= (grp.curr_weight + grp.next_weight) & _U32
        ):
            node.npos = (node.npos - grp.curr_weight) & _U32
            self._queue_by_weight(grp.next, node)
        else:
            spare = ((SRV_EWGHT_MAX + node.rweight - node.next_eweight) & _U32) // BE_WEIGHT_SCALE
            grp.curr.insert(node, SRV_UWGHT_RANGE * node.npos + spare)

    def _get(self, node: _Node) -> None:
        grp = self._grp(node)
        if node.tree is grp.init:
            node.npos = node.rweight = 0
        elif node.tree is grp.next:
            node.npos = (node.npos + grp.curr_weight) & _U32
        elif node.tree is None:
            node.npos = grp.curr_pos & _U32

    def _place_new(self, node: _Node, grp: _FwrrGroup) -> None:
        room = (grp.next_weight + grp.curr_weight - grp.curr_pos) & _U32
        node.npos = (grp.curr_pos + room // node.next_eweight) & _U32
        self._queue(node)

    def _update_node(self, node: _Node) -> None:
        grp = self._grp(node)
        if not node.next_usable:
            if node.cur_usable:
                grp.next_weight -= node.cur_eweight
                _dequeue(node)
                node.tree = None
            return
        if not node.cur_usable:
            grp.next_weight += node.next_eweight
            self._get(node)
            self._place_new(node, grp)
            return
        grp.next_weight += node.next_eweight - node.cur_eweight
        if node.tree is grp.init:
            _dequeue(node)
            self._queue_by_weight(grp.init, node)
            return
        if node.tree is None:
            _dequeue(node)
            self._get(node)
            self._place_new(node, grp)
            return
        self._get(node)
        prev_next = node.npos
        step = (grp.next_weight & _U32) // node.next_eweight
        node.npos = (node.lpos + step) & _U32
        node.rweight = 0
        if node.npos > prev_next:
            node.npos = prev_next
        if node.npos < (grp.curr_pos + 2) & _U32:
            node.npos = (grp.curr_pos + step) & _U32
        _dequeue(node)
        self._queue(node)

    @staticmethod
    def _from_group(grp: _FwrrGroup) -> _Node | None:
        n1 = grp.curr.first()
        if n1 is not None and n1.cur_eweight and n1.npos <= grp.curr_pos & _U32:
            return n1
        n2 = grp.init.first()
        if n2 is not None and n2.cur_eweight:
            n2.npos = n2.rweight = 0
            return n2
        return n1

    @staticmethod
    def _update_position(grp: _FwrrGroup, node: _Node) -> None:
        eweight = node.cur_eweight
        if not eweight:
            return
        if not node.npos:
            node.npos = grp.curr_pos & _U32
        node.lpos = node.npos
        weight = grp.next_weight & _U32
        node.npos = (node.npos + weight // eweight) & _U32
        node.rweight += weight % eweight
        if node.rweight >= eweight:
            node.rweight -= eweight
            node.npos = (node.npos + 1) & _U32

    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        if self._srv_act:
            grp = self._act
        elif self._fbck is not None:
            return self._single(self._fbck)
        elif self._srv_bck:
            grp = self._bck
        else:
            return None
        switched = False
        avoided: _Node | None = None
        chosen: _Node | None = None
        full = self._full
        while True:
            if not grp.curr_weight:
                grp.curr_pos = grp.curr_weight = grp.next_weight
            node = self._from_group(grp)
            if node is None:
                if not switched:
                    switched = True
                    grp.init, grp.next = grp.next, grp.init
                    grp.curr_weight = grp.next_weight
                    grp.curr_pos = grp.curr_weight
                    continue
                chosen = avoided
                break
            self._update_position(grp, node)
            _dequeue(node)
            grp.curr_pos += 1
            if _can_take(node):
                if node.srv is not exclude or avoided is not None:
                    chosen = node
                    break
                avoided = node
            full.append(node)
        if chosen is not None:
            self._queue(chosen)
        if full:
            for node in reversed(full):
                if node is chosen:
                    continue
                if switched:
                    self._queue_by_weight(grp.init, node)
                else:
                    self._queue(node)
            full.clear()
        return chosen.srv if chosen is not None else None


class _MapBalancer(Balancer):
    """lb_map.c: a table of Σ eweight slots filled by the smooth weighted algorithm."""

    def _weight_divisor(self) -> int:
        return 1

    def _weight_multiplier(self) -> int:
        pgcd = 0
        for srv in self.servers:
            w = max(srv.weight, 0)
            if not pgcd:
                pgcd = w
                continue
            if pgcd == 1:
                break
            while w:
                pgcd, w = w, pgcd % w
        return pgcd or 1

    def _init_lb(self) -> None:
        self._map: list[_Node] = []
        self._rr_idx = 0
        self._recalc_map()

    def _after_change(self) -> None:
        self._recalc_map()

    def _recalc_map(self) -> None:
        if not self._tot_used:
            return
        tot = self._tot_weight
        want_backup = not self._srv_act
        cands = [n for n in self._nodes if n.backup == want_backup and n.cur_usable]
        for node in self._nodes:
            node.wscore = 0
        table: list[_Node] = []
        for _ in range(tot):
            best: _Node | None = None
            top = 0
            for cur in cands:
                if tot == 1:
                    best = cur
                    break
                cur.wscore += cur.cur_eweight
                v = (cur.wscore + tot) // tot
                if best is None or v > top:
                    top = v
                    best = cur
            assert best is not None
            table.append(best)
            best.wscore -= tot
        self._map = table

    def _pick_rr(self, exclude: Server | None) -> Server | None:
        tot = self._tot_weight
        if not tot:
            return None
        if self._rr_idx < 0 or self._rr_idx >= tot:
            self._rr_idx = 0
        start = idx = self._rr_idx
        table = self._map
        avoided: _Node | None = None
        avoided_idx = 0
        while True:
            node = table[idx]
            idx += 1
            if _can_take(node):
                avoided = node
                avoided_idx = idx
                if node.srv is not exclude:
                    self._rr_idx = idx
                    return node.srv
            if idx == tot:
                idx = 0
            if idx == start:
                break
        if avoided is None:
            return None
        self._rr_idx = avoided_idx
        return avoided.srv


class StaticRoundRobinBalancer(_MapBalancer):
    """`balance static-rr`: walks the weighted map in order."""

    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        return self._pick_rr(exclude)


class MapHashBalancer(_MapBalancer):
    """`balance source` with `hash-type map-based`: server = map[hash % Σ eweight]."""

    def __init__(
        self, servers: Sequence[Server], *, allbackups: bool = False, avalanche: bool = False
    ) -> None:
        self.avalanche = avalanche
        super().__init__(servers, allbackups=allbackups)

    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        # HAProxy falls back to round robin on the map when there is nothing to hash.
        if key is None:
            return self._pick_rr(exclude)
        tot = self._tot_weight
        if not tot:
            return None
        h = 0
        if self._tot_used != 1:
            h = source_hash(key)
            if self.avalanche:
                h = full_hash(h)
        # The map lookup ignores `exclude` and maxconn: a full target means "wait for it".
        return self._single(self._map[h % tot])


class _TreeBalancer(Balancer):
    """Servers kept in one ordered tree per group: the first usable one in order is picked."""

    _act: _Tree
    _bck: _Tree

    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        if self._srv_act:
            node = self._act.find(exclude)
        elif self._fbck is not None:
            return self._single(self._fbck)
        elif self._srv_bck:
            node = self._bck.find(exclude)
        else:
            return None
        return node.srv if node is not None else None


class LeastConnBalancer(_TreeBalancer):
    """`balance leastconn`: lb_fwlc.c, ordered by (conns+1)/weight, FIFO among equal keys."""

    def _init_lb(self) -> None:
        self._act = _Tree()
        self._bck = _Tree()
        for node in self._nodes:
            if node.cur_usable:
                self._queue(node, node.cur_eweight)

    @staticmethod
    def _key(node: _Node, eweight: int) -> int:
        inflight = node.srv.cur_conns
        if inflight <= 0:
            return 0
        return (((inflight + 1) * SRV_EWGHT_MAX) & _U32) // eweight

    def _queue(self, node: _Node, eweight: int) -> None:
        tree = self._bck if node.backup else self._act
        tree.insert(node, self._key(node, eweight))

    def _update_node(self, node: _Node) -> None:
        _dequeue(node)
        if node.next_usable:
            self._queue(node, node.next_eweight)
        else:
            node.tree = None

    def _reposition(self, s: Server) -> None:
        node = self._by_id.get(id(s))
        if node is None or node.tree is None:
            return
        new_key = self._key(node, node.cur_eweight or 1)
        if node.entry is not None and node.entry[0] == new_key:
            return
        node.tree.insert(node, new_key)

    def on_connect(self, s: Server) -> None:
        self._reposition(s)

    def on_release(self, s: Server) -> None:
        self._reposition(s)


class FirstBalancer(_TreeBalancer):
    """`balance first`: lb_fas.c, the lowest-id server that has a free slot."""

    def _init_lb(self) -> None:
        self._act = _Tree()
        self._bck = _Tree()
        for node in self._nodes:
            if node.cur_usable:
                self._queue(node)

    def _queue(self, node: _Node) -> None:
        (self._bck if node.backup else self._act).insert(node, node.puid)

    def _update_node(self, node: _Node) -> None:
        _dequeue(node)
        if node.next_usable:
            self._queue(node)
        else:
            node.tree = None


class _Ring:
    __slots__ = ("keys", "nodes")

    def __init__(self, points: list[tuple[int, int, int, _Node]]) -> None:
        points.sort(key=lambda p: p[:3])
        self.keys = [p[0] for p in points]
        self.nodes = [p[3] for p in points]


class ConsistentHashBalancer(Balancer):
    """`balance source` with `hash-type consistent`: lb_chash.c's ring of weighted points."""

    def __init__(
        self, servers: Sequence[Server], *, allbackups: bool = False, avalanche: bool = True
    ) -> None:
        self.avalanche = avalanche
        super().__init__(servers, allbackups=allbackups)

    def _init_lb(self) -> None:
        self._act = _Ring([])
        self._bck = _Ring([])
        self._last_ring: _Ring | None = None
        self._last = -1
        self._build()

    def _after_change(self) -> None:
        self._build()

    @staticmethod
    def _points(node: _Node) -> list[int]:
        pts = node.points
        for j in range(len(pts), node.cur_eweight):
            pts.append(full_hash(node.puid * SRV_EWGHT_RANGE + j))
        return pts

    def _build(self) -> None:
        act: list[tuple[int, int, int, _Node]] = []
        bck: list[tuple[int, int, int, _Node]] = []
        for node in self._nodes:
            if not node.cur_usable:
                continue
            dest = bck if node.backup else act
            pts = self._points(node)
            dest.extend((pts[j], node.idx, j, node) for j in range(node.cur_eweight))
        old, old_last = self._last_ring, self._last
        was_bck = old is self._bck
        self._act, self._bck = _Ring(act), _Ring(bck)
        self._last_ring, self._last = None, -1
        if old is not None and old_last >= 0:
            ring = self._bck if was_bck else self._act
            if ring.keys:
                i = bisect_left(ring.keys, old.keys[old_last])
                self._last_ring, self._last = ring, i % len(ring.keys)

    def _ring(self) -> _Ring | _Node | None:
        if self._srv_act:
            return self._act
        if self._fbck is not None:
            return self._fbck
        if self._srv_bck:
            return self._bck
        return None

    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        ring = self._ring()
        if ring is None:
            return None
        if isinstance(ring, _Node):
            return self._single(ring)
        if key is None:
            return self._next_rr(ring, exclude)
        h = 0
        if self._tot_used != 1:
            h = source_hash(key)
            if self.avalanche:
                h = full_hash(h)
        node = self._node_at(ring, h, exclude)
        # Like HAProxy, a full target is not traded for another server.
        return None if node is None else self._single(node)

    def server_at(self, h: int, exclude: Server | None = None) -> Server | None:
        """The server owning the ring point nearest to hash `h` (chash_get_server_hash)."""
        ring = self._ring()
        if ring is None:
            return None
        if isinstance(ring, _Node):
            return ring.srv
        node = self._node_at(ring, h, exclude)
        return None if node is None else node.srv

    @staticmethod
    def _node_at(ring: _Ring, h: int, exclude: Server | None) -> _Node | None:
        keys = ring.keys
        n = len(keys)
        if not n:
            return None
        i = bisect_left(keys, h)
        if i == n:
            i = 0
        p = i - 1 if i else n - 1
        if (h - keys[p]) & _U32 <= (keys[i] - h) & _U32:
            i = p
        node = ring.nodes[i]
        loops = 0
        while node.srv is exclude:
            i += 1
            if i == n:
                i = 0
                loops += 1
                if loops > 1:
                    break
            node = ring.nodes[i]
        return node

    def _next_rr(self, ring: _Ring, exclude: Server | None) -> Server | None:
        n = len(ring.nodes)
        if not n:
            self._last_ring, self._last = None, -1
            return None
        last = self._last if self._last_ring is ring else -1
        stop = idx = last
        avoided = -1
        self._last_ring = ring
        while True:
            idx = idx + 1 if idx >= 0 else 0
            if idx == n:
                idx = 0
            self._last = idx
            if stop < 0:
                stop = idx
            node = ring.nodes[idx]
            if _can_take(node):
                if node.srv is not exclude:
                    return node.srv
                avoided = idx
            if idx == stop:
                break
        self._last = avoided
        return ring.nodes[avoided].srv if avoided >= 0 else None


class RandomBalancer(ConsistentHashBalancer):
    """`balance random(<draws>)`: the best of `draws` random points of the consistent ring,
    the server with the fewest connections per unit of weight winning (lb_chash.c)."""

    def __init__(
        self,
        servers: Sequence[Server],
        *,
        allbackups: bool = False,
        draws: int = 2,
        rand: Callable[[], int] | None = None,
    ) -> None:
        self.draws = draws
        self.rand = rand or (lambda: random.getrandbits(32))
        super().__init__(servers, allbackups=allbackups)

    def pick(self, key: bytes | None = None, exclude: Server | None = None) -> Server | None:
        best: Server | None = None
        for _ in range(self.draws):
            prev = best
            best = self.server_at(self.rand(), exclude)
            if best is None:
                break
            if (
                prev is not None
                and prev is not best
                and best.cur_conns * self._eweight(prev) > prev.cur_conns * self._eweight(best)
            ):
                best = prev
        # a full server is not traded for another: the connection queues in the backend (and
        # one that went down before the ring was rebuilt is not returned either)
        if best is not None and not (best.has_free_slot() and best.usable()):
            return None
        return best


def make_balancer(
    algorithm: str,
    servers: Sequence[Server],
    *,
    hash_type: str = "map-based",
    allbackups: bool = False,
    avalanche: bool | None = None,
    draws: int = 2,
) -> Balancer:
    """Balancer for `balance <algorithm>`; `hash-type` only matters for `source`.

    `avalanche` None means HAProxy's default: on for a bare `hash-type consistent`, off for
    `map-based`; pass it explicitly when the config names a hash function (`... sdbm [avalanche]`).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported balance algorithm {algorithm!r}")
    if hash_type not in HASH_TYPES:
        raise ValueError(f"unsupported hash-type {hash_type!r}")
    if algorithm == "roundrobin":
        return RoundRobinBalancer(servers, allbackups=allbackups)
    if algorithm == "static-rr":
        return StaticRoundRobinBalancer(servers, allbackups=allbackups)
    if algorithm == "leastconn":
        return LeastConnBalancer(servers, allbackups=allbackups)
    if algorithm == "first":
        return FirstBalancer(servers, allbackups=allbackups)
    if algorithm == "random":
        return RandomBalancer(servers, allbackups=allbackups, draws=draws)
    if hash_type == "consistent":
        return ConsistentHashBalancer(
            servers, allbackups=allbackups, avalanche=True if avalanche is None else avalanche
        )
    return MapHashBalancer(servers, allbackups=allbackups, avalanche=bool(avalanche))
