"""Style codes cached in two tiers: a bounded in-process LRU, and Redis shared by every consumer.

A style's code is what the blend model reduces it to (AdaIN: relu4_1 channel mean/std; Magenta:
a 100-d vector). A style image used again (same pixels, same working size, same network) is not
encoded again, by this consumer or any other: the style pass is most of a blend job's cost after
the first time a style is seen, and the codes are tiny (100 floats for Magenta).

Redis holds codes as ``numpy.savez`` archives read back with ``allow_pickle=False``, so a value in
a shared store can never run code in a consumer. A Redis outage only costs recomputation.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis as redis_lib
import torch
from PIL import Image

log = logging.getLogger(__name__)
Stats = tuple[torch.Tensor, ...]  # a style's code: AdaIN (mean, std), each 1×C×1×1; Magenta (vector,)


def style_key(image: Image.Image, size: int) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{image.mode}:{image.width}x{image.height}@{size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def pack(code: Stats) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *[t.detach().float().cpu().numpy() for t in code])
    return buffer.getvalue()


def unpack(raw: bytes, device: torch.device | str) -> Stats:
    with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
        return tuple(torch.from_numpy(archive[f"arr_{i}"]).to(device) for i in range(len(archive.files)))


class SharedCodes:
    """The Redis tier: ``<prefix>style:<model identity>:<style key>`` → packed code, with a TTL. The
    identity is a checksum of the network that makes the codes, so consumers running different
    weights never share one. Redis errors are logged once per outage and treated as misses: the
    cache must never fail a job."""

    def __init__(self, redis: Any, identity: str, *, ttl_s: int, device: torch.device | str = "cpu",
                 prefix: str = "stylequeue:") -> None:  # fmt: skip
        self.redis = redis
        self.identity = identity
        self.ttl_s = ttl_s
        self.device = device
        self.prefix = prefix
        self._down = False

    def key(self, key: str) -> str:
        return f"{self.prefix}style:{self.identity}:{key}"

    def get(self, key: str) -> Stats | None:
        raw = self._call(lambda: self.redis.get(self.key(key)))
        if raw is None:
            return None
        try:
            return unpack(raw, self.device)
        except (ValueError, OSError, KeyError) as exc:  # a foreign or truncated value: recompute
            log.warning("style cache: unreadable value under %s (%s); recomputing", self.key(key), exc)
            return None

    def put(self, key: str, code: Stats) -> None:
        self._call(lambda: self.redis.set(self.key(key), pack(code), ex=self.ttl_s))

    def _call(self, op: Callable[[], Any]) -> Any:
        try:
            result = op()
        except redis_lib.RedisError as exc:
            if not self._down:
                log.warning("style cache: Redis unavailable (%s); computing styles locally", exc)
            self._down = True
            return None
        self._down = False
        return result


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    max_entries: int
    shared_hits: int = 0


class StyleCache:
    """Thread-safe LRU map ``key → code`` with hit/miss counters, over an optional shared tier."""

    def __init__(self, max_entries: int = 256, shared: SharedCodes | None = None) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self.shared = shared
        self.hits = 0
        self.misses = 0
        self.shared_hits = 0  # misses of this process's LRU that Redis answered (counted in hits)
        self._entries: OrderedDict[str, Stats] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, *, count_miss: bool = True) -> Stats | None:
        """The cached code, counted as a hit (or as a miss, unless the caller counts it)."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            self.hits += value is not None
            self.misses += value is None and count_miss
            return value

    def put(self, key: str, value: Stats) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get_or_compute(self, key: str, compute: Callable[[], Stats]) -> tuple[Stats, bool]:
        """``(code, hit)``: from this process, else from the shared tier, else computed and stored in both."""
        value = self.get(key, count_miss=False)
        if value is not None:
            return value, True
        value = self.shared.get(key) if self.shared is not None else None
        hit = value is not None
        with self._lock:
            self.hits += hit
            self.shared_hits += hit
            self.misses += not hit
        if value is None:
            value = compute()
        self.put(key, value)
        if not hit and self.shared is not None:
            self.shared.put(key, value)
        return value, hit

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.hits, self.misses, len(self._entries), self.max_entries, self.shared_hits)
