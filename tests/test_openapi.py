"""The OpenAPI document is true: every route is documented and nothing else, and every example validates."""

from __future__ import annotations

import dataclasses
import re

import jsonschema
import pytest
from clients import configs, producer, s3_storage, status_store, topics  # noqa: F401
from flask import Flask

from api import compat, openapi, routes
from api.app import metrics_view
from stylequeue.job import Job
from stylequeue.modes import MODES
from stylequeue.params import describe

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def routed_app() -> Flask:
    """The app's url_map without services: the same blueprints and rules create_app registers."""
    app = Flask(__name__, static_folder=None)
    app.register_blueprint(routes.bp)
    app.register_blueprint(routes.health)
    app.register_blueprint(compat.bp)
    app.add_url_rule("/metrics", "metrics", metrics_view)
    return app


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
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
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
        {"$ref": "#/components/schemas/Job", "components": doc["components"]}
    )
    assert not validator.is_valid(job)


def test_job_schema_lists_every_field_of_the_job_model():
    properties = set(openapi.job_schema()["properties"])
    assert properties == {f.name for f in dataclasses.fields(Job)} | {"links", "queue_position"}


def test_submit_form_has_every_parameter_of_every_mode_with_its_bounds():
    form = openapi.document()["components"]["schemas"]["SubmitForm"]["properties"]
    for mode, cls in MODES.items():
        for entry in describe(cls):
            assert entry["name"] in form, (mode, entry["name"])
            assert mode in form[entry["name"]]["description"]
    assert form["ratio"]["maximum"] == 1.0 and form["ratio"]["minimum"] == 0.0
    assert form["learning_rate"]["exclusiveMinimum"] == 0
    assert form["optimizer"]["enum"] == ["lbfgs", "adam"]
    assert set(form["style_layers"]["items"]["enum"]) >= {"relu1_1", "relu5_4"}
    assert form["mode"]["enum"] == list(MODES)


def test_served_document_matches(service_env, s3_storage, status_store, producer):
    from api.app import create_app
    from api.service import Clients

    client = create_app(service_env, clients=Clients(s3_storage, status_store, producer)).test_client()
    assert client.get("/api/v1/openapi.json").json == openapi.document()
