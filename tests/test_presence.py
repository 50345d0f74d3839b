"""stylequeue.presence against a real Redis: consumers' engine reports, listed while they live."""

from __future__ import annotations

import pytest
from clients import configs, status_store  # noqa: F401
from fake_clock import FakeClock

from stylequeue.presence import Presence

pytestmark = pytest.mark.integration


@pytest.fixture
def presence(status_store):
    return Presence(status_store.redis, prefix=status_store.prefix)


def test_engine_reports_expire(presence):
    presence.report("blend", "c-2", {"available": True, "device": "cpu"}, ttl_s=30)
    presence.report("blend", "c-1", {"available": False, "reason": "no weights"}, ttl_s=30)
    presence.report("gatys", "c-3", {"available": True}, ttl_s=30)
    reports = presence.engines(["blend", "gatys"])
    assert [r["consumer_id"] for r in reports["blend"]] == ["c-1", "c-2"]
    assert reports["blend"][0]["reason"] == "no weights"
    assert len(reports["gatys"]) == 1
    # An expired report is dropped even while the hash itself still lives.
    presence.report("gatys", "c-3", {"available": True}, ttl_s=0)
    assert presence.engines(["gatys"]) == {"gatys": []}
    assert presence.redis.hlen(presence.key("gatys")) == 0


def test_a_report_expires_by_the_injected_clock(presence):
    clock = FakeClock()
    timed = Presence(presence.redis, prefix=presence.prefix, clock=clock)
    timed.report("blend", "c-1", {"available": True}, ttl_s=10)
    clock.advance(9.9)
    assert [r["consumer_id"] for r in timed.live("blend")] == ["c-1"]
    clock.advance(0.2)
    assert timed.live("blend") == []
