"""A bounded, in-process LRU cache of style statistics (relu4_1 channel mean/std).

A style image used again (same pixels, same working size) is not encoded again: the encoder
pass over the style is most of a blend job's cost after the first time a style is seen.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

Stats = tuple[torch.Tensor, torch.Tensor]  # (mean, std), each 1×C×1×1


def style_key(image: Image.Image, size: int) -> str:
    """Hash of the image's pixel bytes, its mode and dimensions, and the size it is encoded at."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{image.mode}:{image.width}x{image.height}@{size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    max_entries: int


class StyleCache:
    """Thread-safe LRU map ``key → (mean, std)`` with hit/miss counters for the metrics."""

    def __init__(self, max_entries: int = 256) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, Stats] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Stats | None:
        """The cached statistics, counted as a hit or a miss."""
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: Stats) -> None:
        if self.max_entries == 0:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get_or_compute(self, key: str, compute: Callable[[], Stats]) -> tuple[Stats, bool]:
        """``(stats, hit)``; computes and stores on a miss."""
        value = self.get(key)
        if value is not None:
            return value, True
        value = compute()
        self.put(key, value)
        return value, False

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.hits, self.misses, len(self._entries), self.max_entries)
