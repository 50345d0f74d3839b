"""Consumer presence in Redis: which consumers serve each engine, and what they say about it.

Every consumer reports at an interval (availability, reason, device …) with a time to live; a
report not renewed in time is dead and dropped when read. ``GET /api/v1/engines`` and the API's
metrics list the live ones. Apart from the job records (:mod:`stylequeue.status`): presence is
about processes, not jobs, and is never part of a job's transaction.

Keys (``prefix`` as the status store's)::

    engines:{mode}    hash consumer id → its report JSON, with ``expires_at`` (Unix time)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from stylequeue.clock import SYSTEM, Clock
from stylequeue.status import DEFAULT_PREFIX

# The hash's own TTL only collects modes that no consumer has served for a day; entries expire one
# by one (``expires_at``): a shorter hash TTL would let one consumer's short TTL drop another's report.
HASH_TTL_S = 86400


class Presence:
    def __init__(self, redis: Any, *, prefix: str = DEFAULT_PREFIX, clock: Clock = SYSTEM) -> None:
        self.redis = redis
        self.prefix = prefix
        self.clock = clock

    def key(self, mode: str) -> str:
        return f"{self.prefix}engines:{mode}"

    def report(self, mode: str, consumer_id: str, info: dict[str, Any], ttl_s: float) -> None:
        """A consumer says what it serves (availability, reason, device …), valid ``ttl_s``."""
        entry = {**info, "consumer_id": consumer_id, "expires_at": self.clock.now() + ttl_s}
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key(mode), consumer_id, json.dumps(entry))
            pipe.expire(self.key(mode), max(int(ttl_s), HASH_TTL_S))
            pipe.execute()

    def engines(self, modes: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        return {mode: self.live(mode) for mode in modes}

    def live(self, mode: str) -> list[dict[str, Any]]:
        """``mode``'s unexpired reports, sorted by consumer id; expired ones are deleted."""
        now = self.clock.now()
        entries = {cid: json.loads(raw) for cid, raw in self.redis.hgetall(self.key(mode)).items()}
        dead = [cid for cid, entry in entries.items() if entry.get("expires_at", 0) <= now]
        if dead:
            self.redis.hdel(self.key(mode), *dead)
        return [entries[cid] for cid in sorted(entries) if cid not in dead]
