"""The local stack's supervisor: the restart policy (pure), the loop on fake children, and real
services brought back on their own port with their data."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from fake_clock import FakeClock

from launcher import localstack
from launcher.supervisor import RestartPolicy, Supervisor


def test_backoff_doubles_up_to_its_cap_and_forgets_after_a_stable_run():
    policy = RestartPolicy(first_s=1, max_s=8, stable_s=60)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 8, 8, 8]
    assert policy.failures_after(3, started_at=100, died_at=110) == 4  # crash loop: back off more
    assert policy.failures_after(3, started_at=100, died_at=200) == 1  # it ran a while: start over


class FakeChild:
    def __init__(self, name: str, fail_starts: int = 0) -> None:
        self.name, self.up, self.starts, self.fail_starts = name, True, 0, fail_starts

    def alive(self) -> bool:
        return self.up

    def exit_code(self) -> int | None:
        return None if self.up else -9

    def restart(self) -> None:
        self.starts += 1
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("port still taken")
        self.up = True


def test_a_dead_child_is_restarted_after_its_backoff_and_the_others_are_left_alone():
    clock = FakeClock(monotonic=0.0)
    said: list[str] = []
    sup = Supervisor(RestartPolicy(first_s=2, max_s=30), clock=clock, say=said.append)
    dead, alive = FakeChild("consumer-blend-0"), FakeChild("api")
    sup.watch(dead)
    sup.watch(alive)
    dead.up = False
    sup.check()
    assert "consumer-blend-0 exited with -9; restarting it in 2 s" in said[-1]
    clock.advance(1.0)
    sup.check()
    assert dead.starts == 0  # still waiting out its backoff
    clock.advance(1.5)
    sup.check()
    assert dead.up and dead.starts == 1 and alive.starts == 0 and sup.restarts == 1


def test_a_restart_that_fails_is_tried_again_later_with_more_backoff():
    clock = FakeClock(monotonic=0.0)
    said: list[str] = []
    sup = Supervisor(RestartPolicy(first_s=1, max_s=30), clock=clock, say=said.append)
    child = FakeChild("redis", fail_starts=1)
    sup.watch(child)
    child.up = False
    sup.check()
    clock.advance(1.0)
    sup.check()  # first try fails
    assert not child.up and "did not start (port still taken); trying again in 2 s" in said[-1]
    clock.advance(2.5)
    sup.check()
    assert child.up and child.starts == 2


@pytest.mark.integration
def test_persistent_redis_comes_back_on_its_port_with_its_records(tmp_path):
    service = localstack.start_redis(state_dir=tmp_path / "redis")
    try:
        client = redis.Redis.from_url(service.url)
        client.set("stylequeue:job:kept", b"{}")
        time.sleep(1.5)  # appendfsync everysec: let the write reach the disk
        os.kill(service.process.pid, signal.SIGKILL)
        service.process.wait(5)
        sup = Supervisor(RestartPolicy(first_s=0), say=lambda _: None)
        sup.watch(service)
        sup.check()  # notices the death
        sup.check()  # restarts it
        assert service.alive() and client.get("stylequeue:job:kept") == b"{}"
        assert (tmp_path / "redis").is_dir()
    finally:
        service.stop()
