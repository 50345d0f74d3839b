"""The style-statistics cache: keys, LRU bound, counters, and its use by the blend engine."""

import numpy as np
import pytest
import torch
from blend_weights import random_image

from consumer.engines.blend import BlendParams
from consumer.engines.style_cache import StyleCache, style_key

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


# --- the Redis tier, shared by consumers ------------------------------------------------------------


@pytest.fixture
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _magenta_engine(tmp_path, redis):
    from consumer.engines.blend_engine import create_engine
    from stylequeue.config import EngineConfig

    config = EngineConfig(device="cpu", precision="fp32", random_weights=False, cache_dir=tmp_path)
    return create_engine(config, redis=redis)


def test_a_second_consumer_reuses_the_vector_the_first_one_stored(tmp_path, redis_client):
    first, second = _magenta_engine(tmp_path, redis_client), _magenta_engine(tmp_path, redis_client)
    assert first.cache is not second.cache  # two consumers: nothing shared in process
    a = first.run(CONTENT, [STYLE], BlendParams(image_size=32))
    assert (a.meta["style_cache_hits"], a.meta["style_cache_misses"]) == (0, 1)
    keys = redis_client.keys("stylequeue:style:magenta-*")
    assert len(keys) == 1 and 0 < redis_client.ttl(keys[0]) <= first.config.style_cache_ttl_s
    b = second.run(CONTENT, [STYLE], BlendParams(image_size=48))
    assert (b.meta["style_cache_hits"], b.meta["style_cache_shared_hits"], b.meta["style_cache_misses"]) == (
        1,
        1,
        0,
    )
    c = second.run(CONTENT, [STYLE], BlendParams(image_size=32))  # now in its own LRU
    assert (c.meta["style_cache_hits"], c.meta["style_cache_shared_hits"]) == (1, 0)
    np.testing.assert_array_equal(np.asarray(a.image), np.asarray(c.image))  # the shared vector is exact


def test_an_unreachable_redis_only_costs_recomputation(tmp_path, caplog):
    import socket

    import redis

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = redis.Redis(port=port, socket_connect_timeout=0.2, socket_timeout=0.2)
    engine = _magenta_engine(tmp_path, down)
    first = engine.run(CONTENT, [STYLE], BlendParams(image_size=32))
    again = engine.run(CONTENT, [STYLE, OTHER], BlendParams(image_size=32))
    assert first.meta["style_cache_misses"] == 1 and again.meta["style_cache_hits"] == 1
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one warning for the outage, not one per lookup


def test_codes_from_redis_are_never_unpickled(redis_client):
    from consumer.engines.style_cache import SharedCodes, pack

    shared = SharedCodes(redis_client, "test-model", ttl_s=60)
    shared.put("k", _stats(2.0))
    got = shared.get("k")
    torch.testing.assert_close(got[0], _stats(2.0)[0])
    redis_client.set(shared.key("evil"), b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle
    assert shared.get("evil") is None
    assert pack(_stats(1.0))[:2] == b"PK"  # an npz archive, read with allow_pickle=False
