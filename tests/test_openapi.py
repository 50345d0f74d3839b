"""The OpenAPI document is true: every route is documented and nothing else, and every example validates."""

from __future__ import annotations

import dataclasses
import re

import jsonschema
import pytest
from clients import configs, producer, s3_storage, status_store, topics  # noqa: F401
from flask import Flask

from api import openapi
from api.views import JobView
from consumer.engines.registry import kinds
from stylequeue.job import Job

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def routed_app() -> Flask:
    """The app's url_map without services: the same blueprints and rules create_app registers."""
    return openapi.documented_app()


def flask_operations(app: Flask) -> set[tuple[str, str]]:
    ops = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        ops |= {(path, method.lower()) for method in rule.methods - IGNORED_METHODS}
    return ops


def documented_operations(doc: dict) -> set[tuple[str, str]]:
    verbs = {"get", "post", "put", "patch", "delete"}
    return {(path, verb) for path, item in doc["paths"].items() for verb in item if verb in verbs}


def test_create_app_registers_exactly_these_rules(service_app_rules):
    assert service_app_rules == flask_operations(routed_app())


@pytest.fixture
def service_app_rules(service_env, s3_storage, status_store, producer):
    from api.app import create_app
    from api.service import Clients

    app = create_app(service_env, clients=Clients(s3_storage, status_store, producer))
    return flask_operations(app)


def test_every_route_is_documented_and_every_documented_route_exists():
    assert documented_operations(openapi.document()) == flask_operations(routed_app())


def test_the_document_is_openapi_3_1_with_unique_operation_ids():
    doc = openapi.document()
    assert doc["openapi"].startswith("3.1")
    ids = [
        op["operationId"] for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)
    ]
    assert len(ids) == len(set(ids))
    for path, item in doc["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for op in item.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == declared, path


def examples(doc: dict):
    for path, item in doc["paths"].items():
        for verb, op in item.items():
            if not isinstance(op, dict):
                continue
            for status, response in op["responses"].items():
                for media in response.get("content", {}).values():
                    if "example" in media:
                        yield f"{verb} {path} {status}", media["schema"], media["example"]


def test_every_example_validates_against_its_schema():
    doc = openapi.document()
    found = list(examples(doc))
    assert len(found) >= 20
    for where, schema, example in found:
        validator = jsonschema.Draft202012Validator({**schema, "components": doc["components"]})
        errors = [e.message for e in validator.iter_errors(example)]
        assert not errors, f"{where}: {errors}"


def test_a_wrong_example_would_be_caught():
    """The validation above is not vacuous: a job without its status fails it."""
    doc = openapi.document()
    job = openapi.example_job()
    del job["status"]
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/JobView", "components": doc["components"]}
    )
    assert not validator.is_valid(job)


def test_the_job_view_is_the_record_less_what_clients_need_not_see():
    properties = set(openapi.document()["components"]["schemas"]["JobView"]["properties"])
    record = {f.name for f in dataclasses.fields(Job)}
    assert properties == (record - {"inputs", "result_key", "releases", "retry_at"}) | {
        "links",
        "queue_position",
    }
    assert set(JobView.model_fields) == properties


def test_submit_form_is_one_form_per_mode_with_every_parameter_and_its_bounds():
    schemas = openapi.document()["components"]["schemas"]
    submit = schemas["SubmitForm"]
    assert submit["discriminator"]["propertyName"] == "mode"
    forms = {mode: schemas[ref.rsplit("/", 1)[1]] for mode, ref in submit["discriminator"]["mapping"].items()}
    assert sorted(forms) == sorted(kinds())
    for mode, cls in ((m, k.params) for m, k in kinds().items()):
        form = forms[mode]
        assert form["additionalProperties"] is False  # gatys with alpha is refused by the schema too
        assert form["properties"]["mode"]["const"] == mode
        assert set(form["properties"]) == {"mode", "content", "style", *cls.model_fields} | (
            {"init_image"} if "init_method" in cls.model_fields else set()
        )
        style = form["properties"]["style"]
        assert (style["minItems"], style["maxItems"]) == (cls.min_styles, cls.max_styles)
    blend, gatys = forms["blend"]["properties"], forms["gatys"]["properties"]
    assert blend["ratio"]["maximum"] == 1.0 and blend["ratio"]["minimum"] == 0.0
    assert "alpha" not in gatys and "init_image" not in blend
    assert gatys["learning_rate"]["exclusiveMinimum"] == 0
    assert gatys["optimizer"]["enum"] == ["lbfgs", "adam"]
    assert set(gatys["style_layers"]["items"]["enum"]) >= {"relu1_1", "relu5_4"}


def test_served_document_matches(service_env, s3_storage, status_store, producer):
    from api.app import create_app
    from api.service import Clients

    client = create_app(service_env, clients=Clients(s3_storage, status_store, producer)).test_client()
    assert client.get("/api/v1/openapi.json").json == openapi.document()
