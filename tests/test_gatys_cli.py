"""``stylequeue gatys`` (consumer/commands/gatys.py), end to end on tiny images and random weights."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from PIL import Image

from stylequeue import cli
from stylequeue.params.gatys import GatysParams

FAST = ["--random_weights", "--device", "cpu", "--quiet"]


@pytest.fixture
def files(tmp_path):
    content = tmp_path / "content.png"
    Image.new("RGB", (40, 30), (200, 60, 30)).save(content)
    style = tmp_path / "style.jpg"
    Image.effect_noise((32, 32), 60).convert("RGB").save(style)
    return tmp_path, content, style


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["gatys", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_output_and_snapshots_and_announces_random_weights(files, capsys):
    tmp, content, style = files
    code, out, err = run_cli(
        capsys,
        "--content_image_path", str(content),
        "--style_image_path", str(style), str(style),
        "--style_blend_weights", "3,1",
        "--height", "32",
        "--total_iterations", "4",
        "--snapshot_every", "2",
        "--snapshot_dir", str(tmp / "snaps"),
        "--output_file", str(tmp / "out" / "result.png"),
        "--seed", "1",
        "--preserve_colors",
        *FAST,
    )  # fmt: skip
    assert code == 0, err
    assert Image.open(tmp / "out" / "result.png").size == (32, 24)
    assert sorted(p.name for p in (tmp / "snaps").iterdir()) == ["000002.png", "000004.png"]
    assert "RANDOM WEIGHTS" in err and "NOT style transfer" in err
    assert "wrote" in out and "seed 1" in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--content_weight", "-1"], "content_weight: must be at least 0"),
        (["--optimizer", "sgd"], "optimizer: must be one of lbfgs, adam"),
        (["--total_iterations", "0"], "total_iterations: must be at least 1"),
        (["--height", "5000"], "image_size: must be at most 2048"),
        (["--style_blend_weights", "1,2"], "style_blend_weights: has 2 weights for 1 style image(s)"),
        (["--init_method", "image"], "init_method: 'image' needs an init image"),
        (["--precision", "fp8"], "precision: must be one of fp32, fp16, bf16"),
        (["--preserve_colors", "maybe"], "preserve_colors: must be true or false"),
    ],
)
def test_bad_parameters_exit_non_zero_naming_the_field(files, capsys, flags, message):
    _, content, style = files
    code, _, err = run_cli(
        capsys, "--content_image_path", str(content), "--style_image_path", str(style), *flags, *FAST
    )
    assert code == 2
    assert message in err


def test_missing_image_names_the_flag(files, capsys):
    tmp, _, style = files
    code, _, err = run_cli(
        capsys, "--content_image_path", str(tmp / "nope.png"), "--style_image_path", str(style), *FAST
    )
    assert code == 2 and f"content_image_path: no such file: {tmp / 'nope.png'}" in err


def test_every_engine_parameter_has_a_flag():
    parser = cli.build_parser()
    gatys = parser._subparsers._group_actions[0].choices["gatys"]
    flags = {s for action in gatys._actions for s in action.option_strings}
    assert {f"--{f.name}" for f in dataclasses.fields(GatysParams)} <= flags
    assert {"--height", "--content_image_path", "--style_image_path", "--output_file"} <= flags


def test_real_process_exits_2_with_the_message(files):
    _, content, style = files
    proc = subprocess.run(
        [sys.executable, "-m", "stylequeue.cli", "gatys", "--content_image_path", str(content),
         "--style_image_path", str(style), "--tv_weight", "-3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "stylequeue gatys: error: tv_weight: must be at least 0, got -3" in proc.stderr
