"""nginx's shared-memory zone and its request handler, over the pure arithmetic of `nginx.py`.

A zone keeps at most `size` keys. Like nginx it bumps a key to the front on every lookup, and before
adding a key it drops up to two idle keys from the back (idle a minute and fully drained); when the zone
is full it evicts the least recently used key by force. `handle` is ngx_http_limit_req_handler: several
`limit_req` directives, each on its own zone, applied to one request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from qaio.errors import ConfigError
from qaio.limits.nginx import LimitReq, Node, Step, charge, check_cost, delay_ms, retry_after_ms

#: Keys kept per zone when a zone does not say.
DEFAULT_SIZE = 10_000
#: nginx keeps an idle, drained node at least this long before its opportunistic expiry drops it.
EXPIRE_IDLE_MS = 60_000


class Zone:
    """The keys of one `limit_req_zone`, least recently used first out. Not thread-safe by itself."""

    def __init__(self, rate: int, size: int) -> None:
        if size < 1:
            raise ConfigError(f"a zone must hold at least one key, got size={size}")
        self.rate = rate
        self.size = size
        self._nodes: OrderedDict[Hashable, Node] = OrderedDict()  # oldest first, like nginx's queue tail

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._nodes

    def keys(self) -> list[Hashable]:
        """The keys held, least recently used first (the next to be evicted)."""
        return list(self._nodes)

    def lookup(self, key: Hashable) -> Node | None:
        """The key's node, bumped to most recently used (nginx bumps even when it then rejects)."""
        node = self._nodes.get(key)
        if node is not None:
            self._nodes.move_to_end(key)
        return node

    def get(self, key: Hashable) -> Node | None:
        """The key's node without bumping it (nginx's held `ctx->node` pointer)."""
        return self._nodes.get(key)

    def store(self, key: Hashable, node: Node) -> None:
        """Write a charged node back without touching its place in the LRU order."""
        self._nodes[key] = node

    def create(self, key: Hashable, node: Node, now: int) -> None:
        """Add a key as nginx allocates one: expire idle keys first, evict the oldest if still full."""
        self._expire(now, force=False)
        if len(self._nodes) >= self.size:
            self._expire(now, force=True)
        self._nodes[key] = node

    def _expire(self, now: int, *, force: bool) -> None:
        """ngx_http_limit_req_expire: optionally drop the oldest key, then up to two idle drained ones."""
        for n in range(0 if force else 1, 3):
            if not self._nodes:
                return
            key, node = next(iter(self._nodes.items()))
            if n != 0 and node.last is not None:
                ms = abs(now - node.last)
                if ms < EXPIRE_IDLE_MS or node.excess - self.rate * ms // 1000 > 0:
                    return
            del self._nodes[key]


@dataclass(frozen=True, slots=True)
class Binding:
    """One `limit_req` applied to one request: the directive, its zone and the request's key there."""

    limit: LimitReq
    zone: Zone
    key: Hashable  #: "" or None means "no key": nginx skips that limit


def handle(bindings: Sequence[Binding], now: int, cost: int = 1) -> Step:
    """Decide one request under every binding, as ngx_http_limit_req_handler does.

    nginx looks the limits up in order and stops at the first rejection. Only the last one is charged
    at lookup; the ones before it are charged afterwards, newest first, and only if the request passes.
    The delay is the largest of the limits' delays, and the reported excess is that of the limit that
    set it (or of the last limit when none delays). The returned `node` is unused: zones are updated.
    """
    if len({id(b.zone) for b in bindings}) != len(bindings):
        raise ConfigError("a request cannot pass the same zone twice (nginx: 'limit_req ... is duplicate')")
    for binding in bindings:
        check_cost(cost, binding.limit)
    held: list[Binding] = []  # looked up, to be charged if the request passes (nginx's ctx->node)
    current: Binding | None = None
    excess = 0
    for n, binding in enumerate(bindings):
        current = binding
        if binding.key is None or binding.key == "":
            continue
        zone, final = binding.zone, n == len(bindings) - 1
        node = zone.lookup(binding.key)
        if node is None:
            excess, last = charge(None, zone.rate, now, cost)
            # nginx stores a held new node with last = 0: "never charged", which drains it on charge.
            zone.create(binding.key, Node(excess, last) if final else Node(0, None), now)
        else:
            excess, last = charge(node, zone.rate, now, cost)
            if excess > binding.limit.burst:
                return Step(False, excess, 0, retry_after_ms(excess, binding.limit), None)
            if final:
                zone.store(binding.key, Node(excess, last))
        if not final:
            held.append(binding)
    if current is None or (not held and (current.key is None or current.key == "")):
        return Step(True, 0, 0, None, None)  # NGX_DECLINED: no limit applied
    if current.key is None or current.key == "":
        excess = 0  # the last limit had no key: nginx reports no excess of its own
    limit = current.limit
    max_delay = delay_ms(excess, limit)
    for binding in reversed(held):
        zone = binding.zone
        node = zone.get(binding.key)  # held nodes cannot be evicted within one request
        charged, last = charge(node, zone.rate, now, cost)
        zone.store(binding.key, Node(charged, last))
        delay = delay_ms(charged, binding.limit)
        if delay > max_delay:
            max_delay, excess = delay, charged
    return Step(True, excess, max_delay, None, None)
