"""The OpenAPI 3.1 document of the API (``GET /api/v1/openapi.json``).

Written by hand where it is prose, generated where the code already knows: the job-submission
form's parameter fields come from :func:`stylequeue.params.describe` of every mode, mode and status
enums from :data:`stylequeue.modes.MODES` and :class:`stylequeue.job.Status`, and the examples are
built by the same functions the service answers with. The seed projects' routes (:mod:`api.compat`)
are derived from their declarations in :mod:`api.seeds`; their schemas stay inline, out of
``components``, so the web UI's generated types do not grow with them. ``tests/test_openapi.py``
checks that every Flask route is documented (and nothing else) and that each example validates
against its schema.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from api import seeds
from api.access import CURSOR, MAX_ID_LENGTH, PAGE_DEFAULT, PAGE_MAX
from api.errors import error_body
from api.service import MODE_INFO, engine_entry, links
from api.uploads import FORMATS, Limits
from stylequeue.config import ApiConfig
from stylequeue.job import Inputs, Job, Progress, Status, object_keys
from stylequeue.modes import MODES
from stylequeue.params import FALSE_WORDS, TRUE_WORDS, describe

JSON = "application/json"
SCALARS = {"float": "number", "int": "integer", "bool": "boolean", "str": "string"}
EXAMPLE_ID = "3f2b8c1e-7a4d-4e55-9b1a-0c6d2e9f8a71"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


# -- parameters, generated from the params declarations ------------------------------------


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


# A form field is text: a boolean is any spelling stylequeue.params accepts, in any case.
BOOLEAN_WORDS = sorted(TRUE_WORDS | FALSE_WORDS)
FORM_BOOLEAN = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "integer", "enum": [0, 1]},
        {"type": "string", "pattern": rf"^\s*({'|'.join(_any_case(w) for w in BOOLEAN_WORDS)})\s*$"},
    ]
}


def param_schema(entry: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of one parameter as :func:`stylequeue.params.describe` reports it."""
    kind = entry["type"].removesuffix(" | null")
    if kind.startswith("list["):
        item = _bounds({"type": SCALARS[kind[5:-1]]}, entry, entry.get("item_choices"))
        schema: dict[str, Any] = {"type": "array", "items": item}
        if "max_items" in entry:
            schema["maxItems"] = entry["max_items"]
    elif kind == "bool":
        schema = dict(FORM_BOOLEAN)
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
    binary = {
        "type": "string",
        "format": "binary",
        "contentMediaType": "application/octet-stream",
        "minLength": 1,
    }
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
        "additionalProperties": False,  # an unknown field is refused (422 naming it)
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
    resumed = {"type": "object", "required": ["attempt", "iteration", "stage"],
               "properties": {"attempt": {"type": "integer"}, "iteration": {"type": "integer"},
                              "stage": {"type": "string"}},
               "description": "the checkpoint this attempt resumed from (Gatys): the attempt that wrote it, "
                              "its iteration and stage; null: the attempt started from the beginning"}  # fmt: skip
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
        "resumed_from": _nullable(resumed),
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
                       "min_exclusive": {"type": "boolean"}, "max_items": {"type": "integer"},
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
        "models": {
            "type": "array",
            "items": {"type": "string"},
            "description": "the networks the live consumers run, e.g. Magenta arbitrary stylization",
        },
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
    state = {"type": "string", "enum": ["ok", "unavailable"],
             "description": "how the failure looked stays in the API's log"}  # fmt: skip
    snapshot = {"type": "object", "required": ["iteration", "url"],
                "properties": {"iteration": {"type": "integer"}, "url": {"type": "string"}}}  # fmt: skip
    # A diverged point is null, never NaN: every body is strict JSON (api.jsonbody).
    loss = {"type": "object", "required": ["iteration"],
            "properties": {"iteration": {"type": "integer"},
                           **{k: {"type": ["number", "null"]} for k in ("content", "style", "tv", "total")}}}  # fmt: skip
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
        "JobList": {
            "type": "object",
            "required": ["jobs", "next"],
            "properties": {
                "jobs": {"type": "array", "items": _ref("Job")},
                "next": {
                    "type": ["string", "null"],
                    "description": "the next page's `after` (null: no more)",
                },
            },
        },  # fmt: skip
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
        "Ready": {"redis": "ok", "kafka": "ok", "s3": "unavailable"},
        "JobList": {"jobs": [example_job()], "next": "1795262400.0"},
        "Unavailable": error_body("unavailable", "redis is unavailable; try again later"),
        "Unauthorized": error_body(
            "unauthorized", "this API needs an API key: send 'Authorization: Bearer KEY'"
        ),
        "RateLimited": error_body(
            "rate_limited",
            "too many requests: the limit is 600 per 1 minute; try again after Retry-After seconds",
        ),
        "Timeout": error_body(
            "request_timeout", "the request body did not arrive within 60 s (STYLEQUEUE_BODY_TIMEOUT_S)"
        ),
        "ReadyOk": {"redis": "ok", "kafka": "ok", "s3": "ok"},
    }


# -- paths ----------------------------------------------------------------------------------

ERROR_TEXT = {
    400: "missing, nameless or undecodable part (names the field)",
    401: "access control is on (API keys configured) and the request has no known key (WWW-Authenticate)",
    404: "no such job, or a job of another API key",
    408: "the request body did not arrive within STYLEQUEUE_BODY_TIMEOUT_S; the connection is closed",
    409: "not possible in the job's current state",
    413: "a file, the request, the form's part count, a text field or an image's pixel count is over its "
    "limit (the message names the limit, its value and its setting)",
    415: "a file is not a JPEG, PNG or WebP image",
    422: "a parameter value, the mode, the number of styles or the output size for these images is not "
    "acceptable",
    429: "a rate limit (per key, per client address), the key's quota of active jobs, or this client's "
    "concurrent uploads (Retry-After says when to try again)",
    503: "a backing service (redis, kafka, s3) is unavailable, named but not described; a failed "
    "submission kept nothing",
}
ERROR_EXAMPLES = {401: "Unauthorized", 408: "Timeout", 429: "RateLimited", 503: "Unavailable"}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}}
# Every job route: a key when access control is on, and the rate limits.
GUARDED = (401, 429)
# Either a key or none: access control is off unless keys are configured.
SECURITY = [{"apiKey": []}, {"accessToken": []}, {}]


def _json(schema: str, description: str, example: str | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _ref(schema)}
    media["example"] = examples()[example or schema]
    return {"description": description, "content": {JSON: media}}


def _error(status: int) -> dict[str, Any]:
    response = _json("Error", ERROR_TEXT[status], ERROR_EXAMPLES.get(status))
    if status == 429:
        response["headers"] = RETRY_AFTER
    if status == 401:
        response["headers"] = WWW_AUTHENTICATE
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _error(s) for s in statuses}


def _binary(media_type: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media_type: {"schema": {"type": "string", "contentMediaType": media_type}}},
    }


def _job_id() -> dict[str, Any]:
    return {"name": "job_id", "in": "path", "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            "description": f"the job's id (a UUID; longer than {MAX_ID_LENGTH} characters: 404)"}  # fmt: skip


def _op(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "responses": responses, **extra}


def _guarded(op: dict[str, Any]) -> dict[str, Any]:
    """An operation behind the API key and the rate limits: 401 and 429 documented, key optional."""
    return {**op, "responses": {**op["responses"], **_errors(*GUARDED)}, "security": SECURITY}


def security_schemes() -> dict[str, Any]:
    keys = "STYLEQUEUE_API_KEYS / STYLEQUEUE_API_KEYS_FILE; without any, no key is needed"
    return {
        "apiKey": {"type": "http", "scheme": "bearer", "description": keys},
        "accessToken": {"type": "apiKey", "in": "query", "name": "access_token",
                        "description": f"the same key on a GET link (an <img> cannot send headers); {keys}"},
    }  # fmt: skip


FILE_PARTS = ("content", "style", "init_image")


def _image_parts(names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Each file part's accepted media types (the content decides, not the part's header)."""
    media = ", ".join(f"image/{f}" for f in sorted(FORMATS.values()))
    return {name: {"contentType": media} for name in names}


# Where a submitted job's id leads: OpenAPI links, which stateful clients (schemathesis) follow.
JOB_LINKS = {"GetJob": "getJob", "CancelJob": "cancelJob", "GetResult": "getResult",
             "ListSnapshots": "listSnapshots", "GetArchive": "getArchive", "GetLosses": "getLosses"}  # fmt: skip


def _job_links() -> dict[str, Any]:
    by_id = {"job_id": "$response.body#/id"}
    links = {name: {"operationId": op, "parameters": by_id} for name, op in JOB_LINKS.items()}
    links["GetContent"] = {"operationId": "getInput", "parameters": {**by_id, "name": "content"}}
    return links


def _list_parameters() -> list[dict[str, Any]]:
    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    return [
        query("status", {"type": "string", "enum": [s.value for s in Status]}, "only jobs in this status"),
        query("mode", {"type": "string", "enum": list(MODES)}, "only jobs of this mode"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": PAGE_DEFAULT},
              "jobs per page"),
        query("after", {"type": "string", "pattern": f"^{CURSOR.pattern}$"},
              "the `next` of the previous page: jobs submitted before that one"),
    ]  # fmt: skip


def job_paths() -> dict[str, Any]:
    job = "/api/v1/jobs/{job_id}"
    accepted = _json("Job", "accepted: stored, recorded and acknowledged by the broker", "QueuedJob")
    submit_responses = {
        "202": {**accepted, "headers": {"Location": {"schema": {"type": "string"}, "description": "the job's URL"}},
                "links": _job_links()},
        **_errors(400, 408, 413, 415, 422, 503),
    }  # fmt: skip
    submit_body = {"required": True, "content": {"multipart/form-data": {"schema": _ref("SubmitForm"),
                                                                         "encoding": _image_parts(FILE_PARTS)}}}  # fmt: skip
    presigned = {"name": "presigned", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
                 "description": "redirect (307) to a presigned S3 URL instead of streaming (true/false, 1/0, yes/no, "
                                "on/off; anything else: 422)"}  # fmt: skip
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
    input_image = {
        "description": "the input as stored: an RGB PNG, or an upright 8-bit RGB JPEG kept as sent without metadata",
        "content": {
            m: {"schema": {"type": "string", "contentMediaType": m}} for m in ("image/png", "image/jpeg")
        },
    }
    listing = "The caller's jobs, newest first (with access control off: every job submitted without a key)"
    return {
        "/api/v1/jobs": {
            "post": _guarded(_op("submitJob", "Submit a job", submit_responses, requestBody=submit_body)),
            "get": _guarded(_op("listJobs", listing, {"200": _json("JobList", "one page of jobs"), **_errors(422, 503)},
                                parameters=_list_parameters())),
        },
        job: {
            "parameters": [_job_id()],
            "get": _guarded(_op("getJob", "A job's status, progress and links", {"200": _json("Job", "the job"), **_errors(404, 503)})),
            "delete": _guarded(_op("cancelJob", "Cancel: queued jobs at once, running ones at their next check",
                                   {"200": _json("Job", "the job after the request"), **_errors(404, 409, 503)})),
        },
        f"{job}/result": {
            "parameters": [_job_id()],
            "get": _guarded(_op("getResult", "The result image", {"200": _binary("image/png", "the result"),
                                "307": {"description": "redirect to a presigned URL (presigned=true)"},
                                **_errors(404, 409, 422, 503)}, parameters=[presigned])),
        },
        f"{job}/inputs/{{name}}": {
            "parameters": [_job_id(), input_name],
            "get": _guarded(_op("getInput", "A stored input image, as normalised on upload",
                                {"200": input_image, "404": input_missing, **_errors(503)})),
        },
        f"{job}/snapshots": {
            "parameters": [_job_id()],
            "get": _guarded(_op("listSnapshots", "Iterations with a snapshot", {"200": _json("Snapshots", "snapshots"), **_errors(404, 503)})),
        },
        f"{job}/snapshots/{{iteration}}": {
            "parameters": [_job_id(), iteration],
            "get": _guarded(_op("getSnapshot", "One snapshot", {"200": _binary("image/jpeg", "the snapshot"), **_errors(404, 503)})),
        },
        f"{job}/snapshots.zip": {
            "parameters": [_job_id()],
            "get": _guarded(_op("getArchive", "Every snapshot, the result and the parameters", {"200": _binary("application/zip", zip_text), **_errors(404, 503)})),
        },
        f"{job}/losses": {
            "parameters": [_job_id()],
            "get": _guarded(_op("getLosses", "The loss curve (gatys)", {"200": _json("Losses", "loss points"), **_errors(404, 503)})),
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


# -- the seed projects' routes (api.compat), from their declarations in api.seeds ------------

SEED_KINDS = {"float": {"type": "number"}, "int": {"type": "integer"}, "bool": FORM_BOOLEAN}
BLANK = {"type": "string", "pattern": r"^\s*$"}
COMPAT_SWITCH = "Seed compatibility (off with STYLEQUEUE_COMPAT_ROUTES=0)"
COMPAT_NOTE = (
    f"{COMPAT_SWITCH}: runs a normal job, visible at /api/v1/jobs/{{id}}, and waits for it up to "
    "STYLEQUEUE_COMPAT_WAIT_S; still running then, it answers 202 with the job (Location: its URL). "
    "Errors name the seed's field."
)
MODEL_MODES = ["pretrained", "random_weights", "unavailable"]


def seed_form(route: seeds.SeedRoute) -> dict[str, Any]:
    """The seed route's multipart form: its own field names, each saying what it becomes here."""
    properties: dict[str, Any] = {}
    for f in route.fields:
        schema: dict[str, Any] = (
            {
                "type": "string",
                "format": "binary",
                "contentMediaType": "application/octet-stream",
                "minLength": 1,
            }
            if f.kind == "file"
            # An empty value counts as absent, as a browser form sends an empty input.
            else {"anyOf": [SEED_KINDS[f.kind], BLANK]}
        )
        if f.default is not None:
            schema["default"] = f.default
        schema["description"] = f"{f.doc} (→ {f.param})" if f.param else f.doc
        properties[f.name] = schema
    # Fields a seed route does not declare are ignored, as the seeds ignored them.
    return {"type": "object", "required": [f.name for f in route.files], "properties": properties}


def _model_properties() -> dict[str, Any]:
    return {
        "model_loaded": {"type": "boolean", "description": "a blend consumer can run jobs"},
        "mode": {"type": "string", "enum": MODEL_MODES},
        "model_path": {"type": "string", "description": "empty: the consumers load the model, not the API"},
        "message": {"type": "string"},
    }


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


def pixelblend_result_schema() -> dict[str, Any]:
    model = _model_properties()
    return _object({
        "job_id": {"type": "string"},
        "output_path": {"type": "string", "description": "the job's result URL (PNG)"},
        "download_path": {"type": "string", "description": "the same URL"},
        "model_mode": model["mode"],
        "model_loaded": model["model_loaded"],
        "status": {"type": "string", "enum": [s.value for s in Status]},
        "job_url": {"type": "string", "description": "the job (GET /api/v1/jobs/{id})"},
    })  # fmt: skip


def seed_examples() -> dict[str, Any]:
    """Examples built by the functions the compat routes answer with."""
    model = seeds.blend_model({"engines": [engine_entry("blend", [{"available": True}])]})
    down = {"redis": "ok", "kafka": "ok", "s3": "unavailable"}
    return {
        "Generated": seeds.pixelblend_result(example_job(Status.SUCCEEDED), model),
        "GeneratePending": seeds.pixelblend_result(examples()["QueuedJob"], model),
        "Model": model,
        "Health": seeds.health_body(True, examples()["ReadyOk"], model),
        "HealthDown": seeds.health_body(False, down, None),
        "Cancelled": _job_error_body(example_job(Status.CANCELLED)),
        "Failed": _job_error_body(
            {
                **example_job(Status.FAILED),
                "error": {"code": "internal", "message": "RuntimeError: out of memory"},
            }
        ),
    }


def _job_error_body(job: dict[str, Any]) -> dict[str, Any]:
    """The error body a seed route answers for this (failed or cancelled) job."""
    error = seeds.job_error(job)
    return error_body(error.code, error.message, error.field) if error else {}


def _inline(schema: dict[str, Any], description: str, example: Any) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema, "example": example}}}


def _pending(response: dict[str, Any]) -> dict[str, Any]:
    location = {"schema": {"type": "string"}, "description": "the job's URL"}
    return {**response, "headers": {"Location": location}}


def _seed_errors() -> dict[str, Any]:
    ex = seed_examples()
    return {
        **_errors(400, 408, 413, 415, 422),
        "409": _inline(_ref("Error"), "the job was cancelled before it ended", ex["Cancelled"]),
        "422": _inline(
            _ref("Error"), "invalid input, or the job ran and failed (code job_failed)", ex["Failed"]
        ),
        **_errors(503),
    }


def _seed_op(
    route: seeds.SeedRoute, op_id: str, done: dict[str, Any], pending: dict[str, Any]
) -> dict[str, Any]:
    form = {"schema": seed_form(route), "encoding": _image_parts([f.name for f in route.files])}
    body = {"required": True, "content": {"multipart/form-data": form}}
    summary = f"{route.seed}: {route.answer}"
    return {"post": _guarded(_op(op_id, summary, {"200": done, "202": _pending(pending), **_seed_errors()},
                                 description=COMPAT_NOTE, tags=["seed compatibility"], requestBody=body))}  # fmt: skip


def compat_paths() -> dict[str, Any]:
    ex = seed_examples()
    result = pixelblend_result_schema()
    queued_job = _json("Job", "still running after the wait", "QueuedJob")
    location = {
        "schema": {"type": "string"},
        "description": "the job's result URL (its job: without /result)",
    }
    image = {**_binary("image/png", "the stylized image"), "headers": {"Content-Location": location}}
    health = _object({"status": {"type": "string", "enum": ["ok", "unavailable"]}, **_model_properties(),
                      "services": _ref("Ready")})  # fmt: skip
    status_op = {"description": COMPAT_SWITCH, "tags": ["seed compatibility"]}
    return {
        seeds.PIXELBLEND.path: _seed_op(seeds.PIXELBLEND, "pixelblendGenerate",
                                        _inline(result, "the job succeeded", ex["Generated"]),
                                        _inline(result, "still running after the wait", ex["GeneratePending"])),
        "/api/health": {"get": _op("pixelblendHealth", "PixelBlend: readiness and the blend model", {
            "200": _inline(health, "ready", ex["Health"]), "503": _inline(health, "a service is down", ex["HealthDown"])},
            **status_op)},
        "/api/model-status": {"get": _op("pixelblendModelStatus", "PixelBlend: the blend model's state", {
            "200": _inline(_object(_model_properties()), "the blend engine's state", ex["Model"]), **_errors(503)},
            **status_op)},
        seeds.GATYS_SERVICE.path: _seed_op(seeds.GATYS_SERVICE, "gatysStylize", image, queued_job),
        seeds.PHOTOREAL.path: _seed_op(seeds.PHOTOREAL, "photorealUploadImages", image, queued_job),
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
        "paths": {**job_paths(), **service_paths(), **compat_paths()},
        "components": {"schemas": schemas(), "securitySchemes": security_schemes()},
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_document())
