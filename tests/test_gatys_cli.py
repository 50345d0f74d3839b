"""``stylequeue gatys`` (consumer/commands/gatys.py), end to end on tiny images and random weights."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from consumer.commands import gatys
from consumer.engines.gatys import GatysParams
from launcher import cli

FAST = ["--random_weights", "--device", "cpu", "--quiet"]
README = Path(__file__).resolve().parent.parent / "README.md"


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
    assert Image.open(tmp / "out" / "result.png").size == (43, 32)  # --height is the height
    assert sorted(p.name for p in (tmp / "snaps").iterdir()) == ["000002.png", "000004.png"]
    assert "RANDOM WEIGHTS" in err and "NOT style transfer" in err
    assert "wrote" in out and "seed 1" in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--content_weight", "-1"], "content_weight: must be at least 0"),
        (["--optimizer", "sgd"], "optimizer: must be one of lbfgs, adam"),
        (["--total_iterations", "0"], "total_iterations: must be at least 1"),
        (["--height", "5000"], "height: 5000 px high, the 40x30 content's longest side would be 6667 px"),
        (["--height", "10"], "height: 10 px high, the 40x30 content's longest side would be 13 px"),
        (["--height", "32", "--image_size", "64"], "height: give --height or --image_size, not both"),
        (["--height", "tall"], "height: must be an integer, got 'tall'"),
        (["--image_size", "5000"], "image_size: must be at most 2048"),
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
    flags = options(gatys_parser())
    assert {f"--{name}" for name in GatysParams.model_fields} <= flags
    assert {"--height", "--content_image_path", "--style_image_path", "--output_file"} <= flags


def test_real_process_exits_2_with_the_message(files):
    _, content, style = files
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "gatys", "--content_image_path", str(content),
         "--style_image_path", str(style), "--tv_weight", "-3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "stylequeue gatys: error: tv_weight: must be at least 0, got -3" in proc.stderr


# -- the seed CLI's flags, with the seed's meaning ------------------------------------------


def gatys_parser():
    return cli.commands()["gatys"]


def options(parser) -> set[str]:
    """Every option string the parser takes, read from its help's option lines (not the help texts)."""
    lines = (line.strip() for line in parser.format_help().splitlines() if line.startswith("  -"))
    return {
        flag for line in lines for flag in re.findall(r"--?[a-z][a-z0-9_-]*", re.split(r"\s{2,}", line)[0])
    }


@pytest.mark.parametrize(("size", "flags", "expected"), [
    ((451, 300), ["--height", "48"], (72, 48)),  # the photo: the height, not the longest side
    ((300, 451), ["--height", "48"], (32, 48)),
    ((451, 300), ["--image_size", "48"], (48, 32)),  # --image_size stays the longest side
])  # fmt: skip
def test_height_sets_the_output_height_and_image_size_the_longest_side(
    tmp_path, capsys, size, flags, expected
):
    content = tmp_path / "photo.png"
    Image.effect_noise(size, 50).convert("RGB").save(content)
    style = tmp_path / "style.png"
    Image.effect_noise((32, 32), 60).convert("RGB").save(style)
    out = tmp_path / "out.png"
    code, _, err = run_cli(
        capsys, "--content_image_path", str(content), "--style_image_path", str(style), *flags,
        "--total_iterations", "1", "--output_file", str(out), *FAST,
    )  # fmt: skip
    assert code == 0, err
    assert Image.open(out).size == expected


@pytest.mark.parametrize("height", [16, 17, 31, 47, 48, 299, 300, 301])
def test_the_longest_side_for_a_height_gives_exactly_that_height(height):
    from consumer.engines.image import size_for_longest
    from stylequeue.params.images import longest_for_height

    for width in (17, 451, 1000, 2001):
        for h in (16, 300, 451):
            assert size_for_longest(width, h, longest_for_height(width, h, height))[1] == height


def test_help_says_what_height_and_image_size_mean():
    help_text = " ".join(gatys_parser().format_help().split())
    assert "--height INT height of the output in pixels, aspect ratio kept" in help_text
    assert "the seed CLI's --height (its default was 400)" in help_text
    assert "--image_size INT longest side of the output in pixels (16–2048) (default: 512)" in help_text


SEED_SCRIPT_ARGS = [
    "--content-image-path", "c.png", "--style-image-path", "s.png", "--content-weight", "2",
    "--style-weight", "50", "--tv-weight", "0.01", "--optimizer", "adam", "--model", "vgg16",
    "--init-method", "random", "--total-iterations", "7", "--learning-rate", "0.5", "--height", "40",
    "--output-folder", "snaps", "--saving-interval", "3",
]  # fmt: skip


def test_the_seed_scripts_hyphen_flags_set_the_same_parameters():
    args = gatys_parser().parse_args(SEED_SCRIPT_ARGS)
    assert (args.content_image_path, args.style_image_path) == (Path("c.png"), ["s.png"])
    assert (args.content_weight, args.style_weight, args.tv_weight) == ("2", "50", "0.01")
    assert (args.optimizer, args.model, args.init_method) == ("adam", "vgg16", "random")
    assert (args.total_iterations, args.learning_rate, args.height) == ("7", "0.5", "40")
    assert (args.snapshot_dir, args.snapshot_every) == (Path("snaps"), "3")
    params = gatys.gatys_params(args, (451, 300))
    assert (params.content_weight, params.style_weight, params.tv_weight) == (2.0, 50.0, 0.01)
    assert (params.total_iterations, params.learning_rate, params.image_size) == (7, 0.5, 60)
    assert (params.optimizer, params.model, params.init_method, params.snapshot_every) == (
        "adam",
        "vgg16",
        "random",
        3,
    )


def test_a_seed_script_invocation_runs_unchanged(tmp_path, capsys, monkeypatch):
    """The seed's own command line (hyphen spelling, its output folder and saving interval)."""
    monkeypatch.chdir(tmp_path)
    Image.effect_noise((60, 40), 50).convert("RGB").save("c.png")
    Image.effect_noise((32, 32), 60).convert("RGB").save("s.png")
    code, out, err = run_cli(capsys, *SEED_SCRIPT_ARGS, "--output_file", "result.png", *FAST)
    assert code == 0, err
    assert Image.open("result.png").size == (60, 40)
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [
        "000003.png",
        "000006.png",
        "000007.png",
    ]


def test_every_seed_flag_in_the_readme_table_is_accepted():
    """The README's table of the seed CLI's flags names only flags the command takes."""
    text = README.read_text()
    section = text[text.index("**The Kafka NST seed's CLI.**") :]
    table = next(block for block in section.split("\n\n") if block.startswith("| seed flag |"))
    rows = [line for line in table.splitlines() if line.startswith("| `--")]
    flags = {flag for row in rows for flag in re.findall(r"`(--[a-z_-]+)`", row.split("|")[1])}
    taken = options(gatys_parser())
    assert len(rows) >= 14 and flags <= taken, flags - taken


def test_the_device_and_weights_flags_take_their_help_from_the_settings_model(files):
    from stylequeue.config import EngineConfig

    _, content, style = files
    parser = gatys_parser()
    text = " ".join(parser.format_help().split())  # argparse wraps the help: compare unwrapped
    for name in gatys.CONFIG_FLAGS:
        assert " ".join(EngineConfig.model_fields[name].description.split()) in text, name
    assert "[torchvision, caffe, adain] (default: STYLEQUEUE_VGG_FORMAT)" in text  # the Literal's choices
    args = parser.parse_args(["--content_image_path", str(content), "--style_image_path", str(style)])
    assert args.random_weights is None and args.device is None  # unset: the environment's values stand
