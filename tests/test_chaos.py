"""The fault-injection harness's short version (consumer kill, Redis restart, broker restart): every
accepted job ends, none is lost, stuck or run twice. ``bench/chaos.py`` runs every scenario."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "chaos.py"


@pytest.fixture(scope="module")
def chaos():
    spec = importlib.util.spec_from_file_location("chaos", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("index", [0, 1, 3], ids=["consumer-kill", "redis-restart", "broker-restart"])
def test_no_job_is_lost_stuck_or_run_twice(chaos, index):
    assert index in chaos.SHORT
    row = chaos.run_scenario(chaos.SCENARIOS[index], timeout_s=180)
    assert row["accepted"] >= 5, row  # the load really ran
    assert (row["lost"], row["stuck"], row["ran_twice"]) == (0, 0, 0), row
    assert row["succeeded"] + row["failed"] + row["cancelled"] == row["accepted"], row
