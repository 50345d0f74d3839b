"""The OpenAPI 3.1 document of the API (``GET /api/v1/openapi.json``).

Written by hand where it is prose, generated where the code already knows: the job-submission
form's parameter fields come from :func:`stylequeue.params.describe` of every mode, mode and status
enums from :data:`stylequeue.modes.MODES` and :class:`stylequeue.job.Status`, and the examples are
built by the same functions the service answers with. ``tests/test_openapi.py`` checks that every
Flask route is documented (and nothing else) and that each example validates against its schema.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from api.errors import error_body
from api.service import MODE_INFO, engine_entry, links
from api.uploads import FORMATS, Limits
from stylequeue.config import ApiConfig
from stylequeue.job import Inputs, Job, Progress, Status, object_keys
from stylequeue.modes import MODES
from stylequeue.params import describe

JSON = "application/json"
SCALARS = {"float": "number", "int": "integer", "bool": "boolean", "str": "string"}
EXAMPLE_ID = "3f2b8c1e-7a4d-4e55-9b1a-0c6d2e9f8a71"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


# -- parameters, generated from the params declarations ------------------------------------


def param_schema(entry: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of one parameter as :func:`stylequeue.params.describe` reports it."""
    kind = entry["type"].removesuffix(" | null")
    if kind.startswith("list["):
        item = _bounds({"type": SCALARS[kind[5:-1]]}, entry, entry.get("item_choices"))
        schema: dict[str, Any] = {"type": "array", "items": item}
    else:
        schema = _bounds({"type": SCALARS[kind]}, entry, entry.get("choices"))
    if entry["type"].endswith(" | null"):
        schema = _nullable(schema)
    schema["default"] = entry["default"]
    schema["description"] = entry["help"]
    return schema


def _bounds(schema: dict[str, Any], entry: dict[str, Any], choices: list[str] | None) -> dict[str, Any]:
    if choices:
        schema["enum"] = list(choices)
    if schema["type"] in ("number", "integer"):
        if "min" in entry:
            schema["exclusiveMinimum" if entry.get("min_exclusive") else "minimum"] = entry["min"]
        if "max" in entry:
            schema["maximum"] = entry["max"]
    return schema


def form_parameters() -> dict[str, dict[str, Any]]:
    """Every mode's parameters as form fields; a name several modes share says which use it."""
    fields: dict[str, dict[str, Any]] = {}
    used_by: dict[str, list[str]] = {}
    for mode, cls in MODES.items():
        for entry in describe(cls):
            schema = param_schema(entry)
            name = entry["name"]
            used_by.setdefault(name, []).append(mode)
            if name in fields and _without_doc(fields[name]) != _without_doc(schema):
                schema = {
                    "anyOf": [_without_doc(fields[name]), _without_doc(schema)],
                    "description": schema["description"],
                }
            fields[name] = schema
    for name, schema in fields.items():
        schema["description"] = f"{schema['description']} (mode: {', '.join(used_by[name])})"
    return fields


def _without_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("description", "default")}


def submit_form() -> dict[str, Any]:
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    formats = ", ".join(sorted(FORMATS.values()))
    properties = {
        "mode": {"type": "string", "enum": list(MODES), "description": "engine to run"},
        "content": {**binary, "description": f"content image ({formats})"},
        "style": {"type": "array", "items": binary, "description": "style image(s): repeat the field"},
        "init_image": {**binary, "description": "starting image (gatys with init_method=image)"},
        **form_parameters(),
    }
    return {
        "type": "object",
        "required": ["mode", "content", "style"],
        "properties": properties,
        "description": "Parameter fields are optional (defaults apply); list values may also be given "
        "comma-separated in one field.",
    }


# -- component schemas ---------------------------------------------------------------------

STRING_OR_NULL = {"type": ["string", "null"]}


def job_schema() -> dict[str, Any]:
    progress = {"type": "object", "required": ["iteration", "total"],
                "properties": {"iteration": {"type": "integer"}, "total": {"type": "integer"}}}  # fmt: skip
    error = {"type": "object", "required": ["code", "message"],
             "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}  # fmt: skip
    inputs = {
        "type": "object",
        "required": ["content", "styles", "init_image"],
        "properties": {"content": {"type": "string"}, "styles": {"type": "array", "items": {"type": "string"}},
                       "init_image": STRING_OR_NULL},
        "description": "S3 keys of the normalised (RGB PNG) uploads",
    }  # fmt: skip
    properties = {
        "id": {"type": "string"},
        "mode": {"type": "string", "enum": list(MODES)},
        "params": {"type": "object", "description": "every parameter of the mode, defaults filled in"},
        "inputs": inputs,
        "status": {"type": "string", "enum": [s.value for s in Status]},
        "attempt": {"type": "integer", "minimum": 0, "description": "how many times a consumer started it"},
        "releases": {"type": "integer", "minimum": 0,
                     "description": "attempts handed back by a stopping consumer (not counted against the limit)"},
        "retry_at": {"type": ["string", "null"], "format": "date-time",
                     "description": "a failed attempt's retry starts no sooner (backoff); null: no wait"},
        "progress": progress,
        "submitted_at": {"type": "string", "format": "date-time"},
        "started_at": STRING_OR_NULL,
        "finished_at": STRING_OR_NULL,
        "error": _nullable(error),
        "result_key": STRING_OR_NULL,
        "snapshots": {"type": "array", "items": {"type": "integer"}, "description": "iterations with a snapshot"},
        "engine": {"type": "object", "description": "what the engine reported: device, random_weights …"},
        "links": links_schema(),
        "queue_position": {"type": ["integer", "null"],
                           "description": "queued jobs of the same mode submitted earlier (null unless queued)"},
    }  # fmt: skip
    return {"type": "object", "required": list(properties), "properties": properties}


def links_schema() -> dict[str, Any]:
    """The job's ``links``, from the links the service builds (so a new link cannot go undocumented)."""
    about = {
        "content": "the content input (normalised PNG)",
        "styles": "each style input (normalised PNG), in order",
    }
    properties = {}
    for name, value in links(example_model()).items():
        schema: dict[str, Any] = (
            {"type": "array", "items": {"type": "string"}} if isinstance(value, list) else {"type": "string"}
        )
        properties[name] = {**schema, "description": about[name]} if name in about else schema
    return {"type": "object", "required": list(properties), "properties": properties}


def engine_schema() -> dict[str, Any]:
    parameter = {
        "type": "object",
        "required": ["name", "type", "default", "help"],
        "properties": {"name": {"type": "string"}, "type": {"type": "string"}, "help": {"type": "string"},
                       "default": {}, "min": {"type": "number"}, "max": {"type": "number"},
                       "min_exclusive": {"type": "boolean"},
                       "choices": {"type": "array", "items": {"type": "string"}},
                       "item_choices": {"type": "array", "items": {"type": "string"}}},
    }  # fmt: skip
    properties = {
        "mode": {"type": "string", "enum": list(MODES)},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "min_styles": {"type": "integer"},
        "max_styles": {"type": "integer"},
        "parameters": {"type": "array", "items": parameter},
        "available": {"type": "boolean", "description": "a live consumer of this mode can run it"},
        "reason": {"type": "string", "description": "why not, when not available"},
        "random_weights": {"type": "boolean", "description": "a consumer runs random (dev) networks"},
        "consumers": {"type": "integer", "description": "consumers reporting in"},
    }
    limits = {
        "type": "object",
        "required": ["max_file_bytes", "max_request_bytes", "max_pixels", "formats"],
        "properties": {"max_file_bytes": {"type": "integer"}, "max_request_bytes": {"type": "integer"},
                       "max_pixels": {"type": "integer"},
                       "formats": {"type": "array", "items": {"type": "string", "enum": sorted(FORMATS.values())}}},
    }  # fmt: skip
    engine = {"type": "object", "required": list(properties), "properties": properties}
    return {
        "type": "object",
        "required": ["engines", "limits"],
        "properties": {"engines": {"type": "array", "items": engine}, "limits": limits},
    }


def _list_schema(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["job_id", key],
        "properties": {"job_id": {"type": "string"}, key: {"type": "array", "items": item}},
    }


def schemas() -> dict[str, Any]:
    state = {"type": "string", "description": '"ok" or "error: …"'}
    snapshot = {"type": "object", "required": ["iteration", "url"],
                "properties": {"iteration": {"type": "integer"}, "url": {"type": "string"}}}  # fmt: skip
    loss = {"type": "object", "required": ["iteration"],
            "properties": {k: {"type": "number"} for k in ("iteration", "content", "style", "tv", "total")}}  # fmt: skip
    error = {"type": "object", "required": ["code", "message", "field"],
             "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": STRING_OR_NULL}}  # fmt: skip
    return {
        "Job": job_schema(),
        "Engines": engine_schema(),
        "Snapshots": _list_schema("snapshots", snapshot),
        "Losses": _list_schema("losses", loss),
        "Error": {"type": "object", "required": ["error"], "properties": {"error": error}},
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
        "Ready": {
            "type": "object",
            "required": ["redis", "kafka", "s3"],
            "properties": {"redis": state, "kafka": state, "s3": state},
        },  # fmt: skip
        "SubmitForm": submit_form(),
    }


# -- examples, built by the code that answers -----------------------------------------------


def example_model(status: Status = Status.RUNNING) -> Job:
    """The example job: gatys with one style, running."""
    keys = object_keys(EXAMPLE_ID)
    return Job(
        id=EXAMPLE_ID,
        mode="gatys",
        params=MODES["gatys"]().to_dict(),
        inputs=Inputs(keys["content"], (keys["style"].format(index=0),)),
        status=status,
        attempt=1,
        progress=Progress(150, 500),
        submitted_at="2026-11-21T10:00:00.000Z",
        started_at="2026-11-21T10:00:02.250Z",
        snapshots=(50, 100, 150),
        engine={"device": "cpu", "random_weights": False},
    )


def example_job(status: Status = Status.RUNNING) -> dict[str, Any]:
    job = example_model(status)
    data = job.to_dict()
    data["links"] = links(job)
    data["queue_position"] = None
    return data


def examples() -> dict[str, Any]:
    queued = {**example_job(Status.QUEUED), "attempt": 0, "started_at": None, "snapshots": [],
              "progress": {"iteration": 0, "total": 0}, "engine": {}, "queue_position": 2}  # fmt: skip
    snaps = links(example_model())["snapshots"]
    losses = [
        {"iteration": i, "content": 12.5 / i, "style": 40.0 / i, "tv": 0.8, "total": 52.5 / i + 0.8}
        for i in (50, 100)
    ]
    return {
        "Job": example_job(),
        "QueuedJob": queued,
        "Engines": {
            "engines": [engine_entry(mode, []) for mode in MODES],
            "limits": Limits.from_config(ApiConfig()).to_dict(),
        },
        "Snapshots": {
            "job_id": EXAMPLE_ID,
            "snapshots": [{"iteration": i, "url": f"{snaps}/{i}"} for i in (50, 100)],
        },
        "Losses": {"job_id": EXAMPLE_ID, "losses": losses},
        "Error": error_body("invalid", "must be at most 2048, got 4096", "image_size"),
        "InputNotFound": error_body(
            "not_found", f"job {EXAMPLE_ID} has no input 'init_image'; it has content, style-0", "name"
        ),
        "Health": {"status": "ok"},
        "Ready": {"redis": "ok", "kafka": "ok", "s3": "error: EndpointConnectionError: could not connect"},
        "ReadyOk": {"redis": "ok", "kafka": "ok", "s3": "ok"},
    }


# -- paths ----------------------------------------------------------------------------------

ERROR_TEXT = {
    400: "missing or undecodable part (names the field)",
    404: "no such job",
    409: "not possible in the job's current state",
    413: "a file, the request or an image's pixel count is over its limit",
    415: "a file is not a JPEG, PNG or WebP image",
    422: "a parameter value, the mode or the number of styles is not acceptable",
    503: "a backing service (broker, Redis, S3) is unavailable; a failed submission kept nothing",
}


def _json(schema: str, description: str, example: str | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _ref(schema)}
    media["example"] = examples()[example or schema]
    return {"description": description, "content": {JSON: media}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json("Error", ERROR_TEXT[s]) for s in statuses}


def _binary(media_type: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media_type: {"schema": {"type": "string", "contentMediaType": media_type}}},
    }


def _job_id() -> dict[str, Any]:
    return {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _op(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "responses": responses, **extra}


def job_paths() -> dict[str, Any]:
    job = "/api/v1/jobs/{job_id}"
    submit_responses = {
        "202": {**_json("Job", "accepted: stored, recorded and acknowledged by the broker", "QueuedJob"),
                "headers": {"Location": {"schema": {"type": "string"}, "description": "the job's URL"}}},
        **_errors(400, 413, 415, 422, 503),
    }  # fmt: skip
    submit_body = {"required": True, "content": {"multipart/form-data": {"schema": _ref("SubmitForm")}}}
    presigned = {"name": "presigned", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
                 "description": "redirect (307) to a presigned S3 URL instead of streaming"}  # fmt: skip
    iteration = {
        "name": "iteration",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
    input_name = {"name": "name", "in": "path", "required": True,
                  "schema": {"type": "string", "pattern": r"^(content|style-[0-9]+|init_image)$"},
                  "description": "content, style-0, style-1 … (in upload order) or init_image"}  # fmt: skip
    input_missing = _json("Error", "no such job, or the job has no input of that name", "InputNotFound")
    zip_text = (
        "ZIP: snapshots/NNNNNN.jpg in iteration order, result.png (once succeeded), params.json; streamed"
    )
    return {
        "/api/v1/jobs": {"post": _op("submitJob", "Submit a job", submit_responses, requestBody=submit_body)},
        job: {
            "parameters": [_job_id()],
            "get": _op("getJob", "A job's status, progress and links", {"200": _json("Job", "the job"), **_errors(404, 503)}),
            "delete": _op("cancelJob", "Cancel: queued jobs at once, running ones at their next check",
                          {"200": _json("Job", "the job after the request"), **_errors(404, 409, 503)}),
        },
        f"{job}/result": {
            "parameters": [_job_id()],
            "get": _op("getResult", "The result image", {"200": _binary("image/png", "the result"),
                       "307": {"description": "redirect to a presigned URL (presigned=true)"}, **_errors(404, 409, 503)},
                       parameters=[presigned]),
        },
        f"{job}/inputs/{{name}}": {
            "parameters": [_job_id(), input_name],
            "get": _op("getInput", "A stored input image, as normalised on upload",
                       {"200": _binary("image/png", "the input (RGB PNG)"), "404": input_missing, **_errors(503)}),
        },
        f"{job}/snapshots": {
            "parameters": [_job_id()],
            "get": _op("listSnapshots", "Iterations with a snapshot", {"200": _json("Snapshots", "snapshots"), **_errors(404, 503)}),
        },
        f"{job}/snapshots/{{iteration}}": {
            "parameters": [_job_id(), iteration],
            "get": _op("getSnapshot", "One snapshot", {"200": _binary("image/jpeg", "the snapshot"), **_errors(404, 503)}),
        },
        f"{job}/snapshots.zip": {
            "parameters": [_job_id()],
            "get": _op("getArchive", "Every snapshot, the result and the parameters", {"200": _binary("application/zip", zip_text), **_errors(404, 503)}),
        },
        f"{job}/losses": {
            "parameters": [_job_id()],
            "get": _op("getLosses", "The loss curve (gatys)", {"200": _json("Losses", "loss points"), **_errors(404, 503)}),
        },
    }  # fmt: skip


def service_paths() -> dict[str, Any]:
    any_object = {"description": "this document", "content": {JSON: {"schema": {"type": "object"}}}}
    metrics = {
        "description": "Prometheus text format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return {
        "/api/v1/engines": {"get": _op("listEngines", "Modes, their parameters and availability", {"200": _json("Engines", "engines"), **_errors(503)})},
        "/api/v1/openapi.json": {"get": _op("openapi", "This OpenAPI document", {"200": any_object})},
        "/healthz": {"get": _op("healthz", "Liveness", {"200": _json("Health", "alive")})},
        "/readyz": {"get": _op("readyz", "Readiness: Redis, Kafka and S3 answer", {
            "200": _json("Ready", "ready", "ReadyOk"), "503": _json("Ready", "a service is not reachable")})},
        "/metrics": {"get": _op("metrics", "Prometheus metrics of the API", {"200": metrics})},
    }  # fmt: skip


@cache
def _document() -> dict[str, Any]:
    modes = "; ".join(f"`{m}`: {MODE_INFO[m][1]}" for m in MODES if m in MODE_INFO)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "stylequeue API",
            "version": "1",
            "description": "Submit neural style transfer jobs and poll them. Jobs are queued on Kafka "
            f"and run by consumers. Modes: {modes}. Errors are JSON: "
            '{"error": {"code", "message", "field"}}.',
        },
        "paths": {**job_paths(), **service_paths()},
        "components": {"schemas": schemas()},
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())
