"""The README's pipeline section stays true: its configuration table and its API examples."""

from __future__ import annotations

import re
from pathlib import Path

from api import openapi
from api.docs import config_table, sections
from stylequeue import config

README = Path(__file__).resolve().parent.parent / "README.md"


def pipeline_section() -> str:
    text = README.read_text()
    return text[text.index("<!-- section:pipeline -->") : text.index("<!-- /section:pipeline -->")]


def test_configuration_table_is_generated_from_the_config_declarations():
    section = pipeline_section()
    table = section[section.index("<!-- config-table -->") + 22 : section.index("<!-- /config-table -->")]
    assert table.strip() == config_table(), "run: python -m api.docs --update-readme"


def test_table_covers_every_section_and_variable():
    assert {config.S3Config, config.RedisConfig, config.KafkaConfig, config.ApiConfig} <= set(sections())
    table = config_table()
    for cls in sections():
        for row in config.describe(cls):
            assert f"`{row['env']}`" in table


def test_every_api_path_has_a_curl_example():
    section = pipeline_section()
    for path in openapi.document()["paths"]:
        example = path.replace("{job_id}", "$ID")
        pattern = (
            re.escape(example)
            .replace(re.escape("{iteration}"), r"\d+")
            .replace(re.escape("{name}"), r"[a-z][\w-]*")
            .replace(re.escape("{asset}"), r"[\w/.-]+")
        )
        assert re.search(pattern, section), path


def test_update_readme_rewrites_only_the_table(tmp_path):
    from api.docs import update_readme

    copy = tmp_path / "README.md"
    copy.write_text("intro\n<!-- config-table -->\n| stale |\n<!-- /config-table -->\nrest\n")
    assert update_readme(copy)
    assert (
        copy.read_text() == f"intro\n<!-- config-table -->\n{config_table()}\n<!-- /config-table -->\nrest\n"
    )
    assert not update_readme(copy)
