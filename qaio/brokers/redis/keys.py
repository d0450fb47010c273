"""The Redis key schema, in one place (docs/redis.md describes each key).

Every key of a queue carries the hash tag `{queue}`, so a queue lives in one Cluster slot and each
script touches one slot. A script receives one key per queue, its `head` (ready:0), and names the
others from it (`lua/_common.lua`); Python reads them by `GROUP_SUFFIXES` position in `group`.
"""

from __future__ import annotations

from functools import lru_cache

#: Levels and priorities both run 0-9.
LEVELS = 10

#: The fixed keys of one queue; the Lua prelude names them the same way from the head (ready:0).
GROUP_SUFFIXES: tuple[str, ...] = (
    *(f"ready:{level}" for level in range(LEVELS)),  # zset: ready jobs of a level, score (9 - priority, seq)
    *(f"marker:{level}" for level in range(LEVELS)),  # zset: member "m", the wake-up idle workers block on
    "delayed",  # zset: jobs waiting for their eta, score eta ms
    "leased",  # zset: claimed jobs, score lease expiry ms
    "seq",  # string: FIFO counter for ready scores
    "done",  # zset: finished jobs (not dead), score finish ms; trimmed after the result TTL
    "dead",  # zset: dead-lettered jobs, score death ms; trimmed after the result TTL
    "intake",  # list: jobs written with plain commands, taken in by the next script (lua/_common.lua absorb)
)


class Keys:
    """Key names under one prefix (`qaio` unless the URL says `?prefix=`)."""

    __slots__ = ("index_prefix", "prefix", "queues", "reply_prefix", "workers_info", "workers_seen")

    def __init__(self, prefix: str = "qaio") -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"key prefix {prefix!r} must not contain braces (they make hash tags)")
        self.prefix = prefix
        self.index_prefix = f"{prefix}:id:"  #: + job id -> string: the job hash's key
        self.queues = f"{prefix}:queues"  #: set of queue names (for stats and reap)
        self.workers_info = f"{prefix}:{{workers}}:info"  #: hash worker id -> WorkerInfo JSON
        self.workers_seen = f"{prefix}:{{workers}}:seen"  #: zset worker id -> alive-until ms
        self.reply_prefix = f"{prefix}:reply:"  #: + process token: pub/sub channel of finished states

    def group(self, queue: str) -> tuple[str, ...]:
        """The fixed keys of `queue`, in `GROUP_SUFFIXES` order (scripts get only the head)."""
        return _group(self.prefix, queue)

    def head(self, queue: str) -> str:
        """The key a script receives for `queue` (its ready:0), from which the script names the others."""
        return _group(self.prefix, queue)[0]

    def marker(self, queue: str, level: int) -> str:
        return _group(self.prefix, queue)[LEVELS + level]

    def intake(self, queue: str) -> str:
        """Where a producer writing with plain commands puts its jobs (docs/redis.md)."""
        return _group(self.prefix, queue)[-1]

    def job(self, queue: str, job_id: str) -> str:
        """A job's hash, in its queue's slot (the claim script builds the same name in Lua)."""
        return f"{self.prefix}:{{{queue}}}:job:{job_id}"

    def inbox(self, queue: str, token: str) -> str:
        """A worker's inbox in `queue`: the deliveries enqueue.lua handed to it (claim.lua's idle workers)."""
        return f"{self.prefix}:{{{queue}}}:inbox:{token}"

    def index(self, job_id: str) -> str:
        return self.index_prefix + job_id

    @staticmethod
    def queue_of(job_key: str) -> str:
        """The queue named by a job hash's key (the index stores job keys)."""
        return job_key[job_key.index("{") + 1 : job_key.index("}:job:")]


@lru_cache(maxsize=1024)
def _group(prefix: str, queue: str) -> tuple[str, ...]:
    if not queue or "{" in queue or "}" in queue:
        raise ValueError(f"queue name {queue!r} must be non-empty and free of braces (Redis hash tags)")
    return tuple(f"{prefix}:{{{queue}}}:{suffix}" for suffix in GROUP_SUFFIXES)
