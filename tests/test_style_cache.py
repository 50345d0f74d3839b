"""The style-statistics cache: keys, LRU bound, counters, and its use by the blend engine."""

import numpy as np
import pytest
import torch
from blend_weights import random_image

from consumer.engines.style_cache import StyleCache, style_key
from stylequeue.params.blend import BlendParams

pytestmark = pytest.mark.usefixtures("blend_single_thread")

CONTENT = random_image(32, 24, 0)
STYLE, OTHER = random_image(32, 32, 1), random_image(32, 32, 2)


def _stats(value: float):
    return torch.full((1, 4, 1, 1), value), torch.ones(1, 4, 1, 1)


def test_key_depends_on_pixels_and_size():
    same = STYLE.copy()
    assert style_key(STYLE, 32) == style_key(same, 32)
    assert style_key(STYLE, 32) != style_key(STYLE, 64)
    assert style_key(STYLE, 32) != style_key(OTHER, 32)
    changed = STYLE.copy()
    changed.putpixel((0, 0), (0, 0, 0) if STYLE.getpixel((0, 0)) != (0, 0, 0) else (1, 1, 1))
    assert style_key(changed, 32) != style_key(STYLE, 32)


def test_lru_bound_and_counters():
    cache = StyleCache(max_entries=2)
    cache.put("a", _stats(1))
    cache.put("b", _stats(2))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", _stats(3))  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("c") is not None
    assert len(cache) == 2
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.size, stats.max_entries) == (2, 1, 2, 2)


def test_get_or_compute_calls_once():
    cache, calls = StyleCache(4), []
    compute = lambda: calls.append(1) or _stats(5)  # noqa: E731
    first, hit1 = cache.get_or_compute("k", compute)
    second, hit2 = cache.get_or_compute("k", compute)
    assert (hit1, hit2) == (False, True) and len(calls) == 1 and second[0] is first[0]


def test_engine_hits_on_a_repeated_style_and_misses_on_a_new_one(blend_engine):
    params = BlendParams(image_size=32)
    first = blend_engine.run(CONTENT, [STYLE], params)
    assert (first.meta["style_cache_hits"], first.meta["style_cache_misses"]) == (0, 1)
    again = blend_engine.run(random_image(24, 32, 5), [STYLE.copy()], params)
    assert (again.meta["style_cache_hits"], again.meta["style_cache_misses"]) == (1, 0)
    other = blend_engine.run(CONTENT, [OTHER], params)
    assert (other.meta["style_cache_hits"], other.meta["style_cache_misses"]) == (0, 1)
    bigger = blend_engine.run(CONTENT, [STYLE], BlendParams(image_size=48))  # another working size
    assert bigger.meta["style_cache_misses"] == 1
    stats = blend_engine.cache.stats()
    assert (stats.hits, stats.misses, stats.size) == (1, 3, 3)


def test_cached_statistics_give_the_same_image(blend_engine):
    params = BlendParams(image_size=32, ratio=0.4)
    fresh = blend_engine.run(CONTENT, [STYLE, OTHER], params)
    cached = blend_engine.run(CONTENT, [STYLE, OTHER], params)
    assert cached.meta["style_cache_hits"] == 2
    np.testing.assert_array_equal(np.asarray(cached.image), np.asarray(fresh.image))


def test_zero_size_cache_never_stores(blend_engine):
    blend_engine.cache = StyleCache(max_entries=0)
    blend_engine.run(CONTENT, [STYLE], BlendParams(image_size=16))
    result = blend_engine.run(CONTENT, [STYLE], BlendParams(image_size=16))
    assert result.meta["style_cache_hits"] == 0 and len(blend_engine.cache) == 0
