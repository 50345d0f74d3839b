"""The web UI's generated files match the API: TypeScript types from the OpenAPI document, and the
Vitest engines fixture from the parameter declarations (``frontend/scripts/gen_types.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "frontend" / "scripts" / "gen_types.py"


@pytest.fixture(scope="module")
def gen_types():
    spec = importlib.util.spec_from_file_location("gen_types", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_are_up_to_date(gen_types, capsys):
    assert gen_types.main(["--check"]) == 0, capsys.readouterr().err


def test_check_notices_a_stale_file(gen_types, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "api-types.ts"
    stale.write_text(gen_types.TYPES_FILE.read_text().replace("queue_position", "queue_pos"))
    monkeypatch.setattr(gen_types, "TYPES_FILE", stale)
    monkeypatch.setattr(gen_types, "FRONTEND", tmp_path)
    assert gen_types.main(["--check", "--only", "types"]) == 1
    assert "api-types.ts" in capsys.readouterr().err


def test_every_schema_becomes_a_declaration(gen_types):
    from api import openapi

    source = gen_types.TYPES_FILE.read_text()
    block = source[source.index("export interface components {") :]
    for name in openapi.document()["components"]["schemas"]:
        assert f"        {name}: " in block, name
