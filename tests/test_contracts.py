"""One declaration per contract: a parameter changed in its model reaches every generated artefact.

The gatys engine module is copied with one edit to its parameter model (``image_size`` capped at
1000 instead of 2048, ``pooling`` gaining a third choice) and registered in its place, in a fresh
interpreter. The OpenAPI document, the ``stylequeue gatys`` CLI's help, the API's own validation
and the web UI's TypeScript types (openapi-typescript) all follow without another edit. TypeScript
cannot state a numeric range, so for the types the test follows the new choice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "consumer" / "engines" / "gatys.py"
PROBE = """
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
from consumer.engines import registry
registry.MODULES["gatys"] = "edited_gatys"
from api import openapi
sys.path.insert(0, "frontend/scripts")
import gen_types
from launcher import cli
from stylequeue.errors import ValidationError

doc = openapi.document()
form = doc["components"]["schemas"]["GatysForm"]["properties"]
gatys = cli.commands()["gatys"]
help_text = gatys.format_help()
try:
    registry.validate_job_params("gatys", {"image_size": "1500"}, 1)
    refused = ""
except ValidationError as exc:
    refused = str(exc)
print(json.dumps({
    "maximum": form["image_size"]["maximum"],
    "pooling": form["pooling"]["enum"],
    "help": help_text,
    "refused": refused,
    "types": gen_types.types_source(doc),
}))
"""


def test_a_parameter_changed_in_its_model_reaches_openapi_cli_validation_and_types(tmp_path):
    source = ENGINE.read_text()
    edited = source.replace(
        'image_size: int = param(512, "longest side of the output in pixels", ge=16, le=MAX_IMAGE_SIZE)',
        'image_size: int = param(512, "longest side of the output in pixels", ge=16, le=1000)',
    ).replace('pooling: Literal["max", "avg"]', 'pooling: Literal["max", "avg", "l2"]')
    assert edited.count("ge=16, le=1000)") == 1 and '"l2"' in edited, (
        "the model's declaration moved: update the test"
    )
    (tmp_path / "edited_gatys.py").write_text(edited)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout)
    assert seen["maximum"] == 1000
    assert seen["pooling"] == ["max", "avg", "l2"]
    assert "16–1000" in seen["help"] and "max, avg, l2" in seen["help"]
    assert seen["refused"] == "image_size: must be at most 1000, got 1500"
    assert 'pooling: "max" | "avg" | "l2";' in seen["types"]


def test_the_unedited_model_gives_the_committed_artefacts():
    """The baseline the edit is measured against: the committed types say two poolings."""
    types = (ROOT / "frontend" / "src" / "lib" / "api-types.ts").read_text()
    assert 'pooling: "max" | "avg";' in types
