"""``stylequeue blend``, ``train-blend`` and ``train-blend-data`` through the real entry point."""

import subprocess
import sys

import pytest
from blend_weights import random_image
from PIL import Image

from launcher.cli import main

pytestmark = pytest.mark.usefixtures("blend_single_thread")


@pytest.fixture
def images(tmp_path):
    paths = {}
    for name, (w, h, seed) in {"content": (40, 30, 0), "style": (32, 32, 1), "style2": (24, 32, 2)}.items():
        paths[name] = tmp_path / f"{name}.png"
        random_image(w, h, seed).save(paths[name])
    return paths


def _args(images, *extra):
    return ["blend", "--content", str(images["content"]), "--style", str(images["style"]), *extra]


def test_blend_writes_an_image_with_random_weights(images, tmp_path, capsys):
    out = tmp_path / "out" / "blend.png"
    argv = _args(images, "--style2", str(images["style2"]), "--ratio", "0.3", "--alpha", "0.8",
                 "--preserve-color", "--size", "32", "--random-weights", "--device", "cpu", "--output", str(out))  # fmt: skip
    assert main(argv) == 0
    assert Image.open(out).size == (32, 24)
    assert "RANDOM WEIGHTS" in capsys.readouterr().out


def test_blend_with_the_adain_pair(images, blend_pair, tmp_path, capsys):
    out = tmp_path / "pair.png"
    model = f"{blend_pair[0]},{blend_pair[1]}"
    assert main(_args(images, "--size", "24", "--model", model, "--device", "cpu", "-o", str(out))) == 0
    assert Image.open(out).size == (24, 18)
    printed = capsys.readouterr().out
    assert "adain-pair" in printed and "RANDOM" not in printed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ratio", "1.5"], "ratio: must be at most 1"),
        (["--alpha", "2"], "alpha: must be at most 1"),
        (["--size", "100000"], "image_size: must be at most"),
        (["--size", "abc"], "image_size: must be an integer"),
    ],
)
def test_blend_rejects_bad_parameters(images, tmp_path, capsys, extra, message):
    assert main(_args(images, *extra, "--random-weights", "-o", str(tmp_path / "x.png"))) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_blend_reports_missing_inputs_and_models(images, tmp_path, capsys):
    assert (
        main(
            [
                "blend",
                "--content",
                str(tmp_path / "no.png"),
                "--style",
                str(images["style"]),
                "--random-weights",
            ]
        )
        == 2
    )
    assert "content: no such file" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00" * 64)
    assert main(_args(images, "--model", str(corrupt), "-o", str(tmp_path / "y.png"))) == 2
    err = capsys.readouterr().err
    assert "blend engine unavailable" in err and "corrupt.pt" in err


def test_train_blend_then_blend_with_the_result(images, blend_pair, tmp_path, capsys):
    content, style = tmp_path / "c", tmp_path / "s"
    for folder, seed in ((content, 10), (style, 20)):
        folder.mkdir()
        for i in range(2):
            random_image(40, 40, seed + i).save(folder / f"{i}.png")
    out = tmp_path / "trained.pt"
    argv = ["train-blend", "--content-dir", str(content), "--style-dir", str(style), "--out", str(out),
            "--encoder", str(blend_pair[0]), "--steps", "2", "--batch-size", "1", "--load-size", "32",
            "--crop-size", "32", "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert out.is_file() and out.with_suffix(".ckpt").is_file()
    assert main(argv[:-1] + ["--steps", "3", "--resume", "--no-progress"]) == 0
    assert "after 3 steps" in capsys.readouterr().out
    assert main(_args(images, "--size", "16", "--model", str(out), "-o", str(tmp_path / "t.png"))) == 0


def test_train_blend_rejects_bad_settings(tmp_path, capsys):
    argv = ["train-blend", "--content-dir", str(tmp_path), "--style-dir", str(tmp_path), "--out", str(tmp_path / "o.pt"),
            "--random-weights", "--crop-size", "20"]  # fmt: skip
    assert main(argv) == 2
    assert "crop_size: must be a multiple of 8" in capsys.readouterr().err


def test_blend_commands_register_without_importing_torch():
    code = (
        "import argparse, sys\n"
        "from consumer.commands import blend, train\n"
        "sub = argparse.ArgumentParser().add_subparsers()\n"
        "blend.register(sub); train.register(sub)\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
