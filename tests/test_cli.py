"""launcher.cli: every sub-command is registered, and neither it nor the API imports torch."""

import subprocess
import sys

import pytest

from launcher import cli

COMMANDS = {
    "gatys",
    "blend",
    "train-blend",
    "train-blend-data",
    "consumer",
    "reconcile",
    "models",
    "api",
    "provision",
    "dev",
}


def test_every_command_is_registered():
    assert set(cli.commands()) == COMMANDS


def test_a_project_error_exits_2_with_its_message(capsys, tmp_path):
    missing = tmp_path / "absent.png"
    code = cli.main(["blend", "--random-weights", "--content", str(missing), "--style", str(missing)])
    assert code == 2
    assert "content" in capsys.readouterr().err


@pytest.mark.parametrize(
    "statement",
    ["import launcher.cli as c; c.build_parser()", "import api.app, api.service, api.uploads"],
)
def test_no_torch_on_the_api_side(statement):
    # The API image ships without torch: parsing the CLI and loading the API must not need it.
    code = f"import sys; {statement}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
