"""The synthetic load-test engine: its parameters, its registration switch, how it runs, and one
real job through a consumer process (tests/services.py)."""

from __future__ import annotations

import pytest
from fake_clock import FakeClock
from PIL import Image
from services import Clients, ConsumerProcess, wait_for

from consumer.engines import registry
from consumer.engines.base import Hooks
from consumer.engines.synthetic import KIND, SyntheticEngine, SyntheticParams
from stylequeue import bus
from stylequeue.errors import ConfigError, JobCancelled, ValidationError
from stylequeue.job import Status
from stylequeue.params import parse_params


def run(params: SyntheticParams, hooks: Hooks | None = None, fake: FakeClock | None = None):
    fake = fake or FakeClock(monotonic=100.0)
    engine = SyntheticEngine(sleep=fake.sleep, clock=fake.monotonic)
    return engine.run(Image.new("RGB", (8, 6), (10, 20, 30)), [Image.new("RGB", (4, 4))], params, hooks), fake


# --- registration --------------------------------------------------------------------------------


def test_production_modes_are_unchanged_without_the_switch():
    assert registry.modes() == ["gatys", "blend"]  # the test run does not set it
    assert registry.enabled_modules({}) == registry.PRODUCTION
    assert "synthetic" not in registry.kinds()


def test_the_switch_adds_the_mode_for_the_api_and_the_consumers():
    enabled = registry.enabled_modules({"STYLEQUEUE_SYNTHETIC_ENGINE": "1"})
    assert list(enabled) == ["gatys", "blend", "synthetic"]
    assert enabled["synthetic"] == "consumer.engines.synthetic"
    assert KIND.params is SyntheticParams
    assert KIND.create == "consumer.engines.synthetic:create_engine"


def test_a_malformed_switch_names_the_variable():
    with pytest.raises(ConfigError) as err:
        registry.enabled_modules({"STYLEQUEUE_SYNTHETIC_ENGINE": "maybe"})
    assert err.value.field == "STYLEQUEUE_SYNTHETIC_ENGINE"


# --- parameters ----------------------------------------------------------------------------------


def test_parameters_parse_from_form_strings_and_are_bounded():
    params = parse_params(SyntheticParams, {"duration_s": "2.5", "steps": "5", "snapshot_every": "2"})
    assert (params.duration_s, params.steps, params.snapshot_every) == (2.5, 5, 2)
    with pytest.raises(ValidationError) as err:
        parse_params(SyntheticParams, {"duration_s": "-1"})
    assert err.value.field == "duration_s"
    with pytest.raises(ValidationError):
        parse_params(SyntheticParams, {"steps": "0"})


# --- running -------------------------------------------------------------------------------------


def test_it_takes_its_duration_and_reports_every_step():
    seen = []
    result, fake = run(SyntheticParams(duration_s=2.0, steps=4), Hooks(on_progress=seen.append))
    assert [p.iteration for p in seen] == [1, 2, 3, 4]
    assert all(p.total == 4 for p in seen)
    assert fake.monotonic() == pytest.approx(102.0)
    assert seen[-1].elapsed_s == pytest.approx(2.0)
    assert result.image.size == (8, 6) and result.image.mode == "RGB"
    assert result.meta["synthetic_duration_s"] == pytest.approx(2.0)


def test_slices_end_on_deadlines_so_slow_hooks_do_not_lengthen_the_job():
    fake = FakeClock(monotonic=100.0)

    def slow_progress(_):
        fake.advance(0.2)  # a Redis write that took 200 ms

    run(SyntheticParams(duration_s=1.0, steps=4), Hooks(on_progress=slow_progress), fake)
    assert fake.monotonic() == pytest.approx(101.2)  # the last slice's hook only: 1.0 s + 0.2 s
    assert fake.slept[1:] == pytest.approx([0.05, 0.05, 0.05])


def test_snapshots_every_n_steps():
    snaps = []
    run(
        SyntheticParams(duration_s=0.0, steps=6, snapshot_every=2),
        Hooks(on_snapshot=lambda i, im: snaps.append(i)),
    )
    assert snaps == [2, 4, 6]


def test_cancellation_is_checked_between_slices():
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(JobCancelled):
        run(SyntheticParams(duration_s=1.0, steps=10), Hooks(should_cancel=cancel))
    assert len(calls) == 3


def test_other_modes_parameters_are_refused():
    from consumer.engines.blend import BlendParams

    with pytest.raises(TypeError):
        run(BlendParams())


# --- one job through a real consumer -------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_consumer_runs_a_synthetic_job_with_progress_and_snapshots(service_env, tmp_path):
    env = {**service_env, "STYLEQUEUE_SYNTHETIC_ENGINE": "1"}
    clients = Clients(env)
    bus.ensure_topics(clients.kafka, ["synthetic"])
    consumer = ConsumerProcess(env, "synthetic", tmp_path / "synthetic.log")
    try:
        job = clients.submit("synthetic", {"duration_s": 0.4, "steps": 4, "snapshot_every": 2})
        done = wait_for(lambda: (j := clients.store.get(job.id)).status.terminal and j, 120, 0.1, "the job")
        assert done.status is Status.SUCCEEDED, (done.error, consumer.output()[-2000:])
        assert done.progress.iteration == done.progress.total == 4
        assert done.snapshots == (2, 4)
        assert done.engine["synthetic_duration_s"] >= 0.4
    finally:
        consumer.stop()
        clients.close()
