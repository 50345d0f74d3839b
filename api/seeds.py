"""The seed projects' HTTP contracts, mapped onto ordinary stylequeue jobs (no Flask here).

Three clients predate stylequeue; :mod:`api.compat` serves their routes so they keep working:
PixelBlend (``POST /api/generate``, answered with JSON naming the result, ``GET /api/health``,
``GET /api/model-status``), the Gatys service (``POST /stylize``) and the photorealistic tester
(``POST /upload_images/``), both answered with the stylized image.

Each job route is a :class:`SeedRoute` declaring its fields once (:class:`SeedField`); the request
mapping, the OpenAPI entries and the README's compatibility table are derived from them.
:class:`CompatService` submits the mapped request through :class:`api.service.JobService` (so the
job is validated, stored, queued, fenced, metered and visible at ``/api/v1/jobs/{id}`` like any
other), waits for it up to ``STYLEQUEUE_COMPAT_WAIT_S`` and hands the views what each client
expects. Errors name the seed's field, not ours, and keep the native error body.

It is one module of some 350 lines because each seed's declaration, its conversions and the
service that runs it are read together when a seed's behaviour is in question.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image

from api.service import FilePart, JobService, Submission, is_unselected
from api.uploads import FORMATS, BadRequest
from consumer.engines.gatys import GatysParams
from stylequeue.errors import JobCancelled, StylequeueError, ValidationError
from stylequeue.job import Status
from stylequeue.params import coerce, show_number
from stylequeue.params.images import MAX_IMAGE_SIZE, min_longest

# How much larger Caffe-scale activations are than torchvision's: 255 × the mean ImageNet std,
# the engine's ``VGGFeatures.activation_gain`` (torch-free here; a test keeps the two equal). The
# Gatys service's losses are the PyTorch tutorial's (content MSE, Gram / (C·H·W), style MSE summed over
# the layers), defined as ours but measured on torchvision's normalised input: its content weight is
# ours × GAIN² (the loss is quadratic in the activations), its style weight ours × GAIN⁴ (quartic).
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_GAIN = 255.0 * sum(IMAGENET_STD) / len(IMAGENET_STD)
KINDS: dict[str, type] = {"float": float, "int": int, "bool": bool}
# Output caps (longest side) when a seed request does not size its output: PixelBlend worked at 768
# px (1024 with high_quality) and answered at the content's size; the others get our default size.
PIXELBLEND_CAP, PIXELBLEND_HQ_CAP = 768, 1024
_OURS = GatysParams()  # our defaults, for the documentation
DEFAULT_CAP = _OURS.image_size


class JobFailed(StylequeueError):
    """A seed route's job ended failed (HTTP 422): its client waited for an image that will not come."""

    code = "job_failed"


@dataclass(frozen=True)
class SeedField:
    """``param`` is our file field (``content``, ``style``) for a file, our parameter name for a value,
    or None for a field that only shapes the mapping (or is ignored); ``doc`` says how, for the
    OpenAPI document and the README."""

    name: str
    kind: str  # file, float, int or bool
    param: str | None
    doc: str
    default: Any = None  # the seed's default, for the documentation
    convert: Callable[[Any], Any] = lambda value: value
    minimum: float | None = None  # checked on the seed's value, before ``convert``


@dataclass(frozen=True)
class SeedRoute:
    seed: str
    path: str
    mode: str
    fields: tuple[SeedField, ...]
    answer: str
    # The longest output side when no field sets image_size: the content's own, up to this cap.
    cap: Callable[[Mapping[str, Any]], int] = lambda values: DEFAULT_CAP
    method: str = "POST"  # api.compat registers each as a POST route

    @property
    def files(self) -> tuple[SeedField, ...]:
        return tuple(f for f in self.fields if f.kind == "file")

    def seed_name(self, ours: str | None) -> str | None:
        """The seed's name for one of our fields (errors name what the client sent)."""
        return next((f.name for f in self.fields if f.param and f.param == ours), ours)


PIXELBLEND = SeedRoute(
    seed="PixelBlend",
    path="/api/generate",
    mode="blend",
    fields=(
        SeedField("content_image", "file", "content", "the content image"),
        SeedField("style_image_1", "file", "style", "the first style"),
        SeedField("style_image_2", "file", "style", "the second style"),
        SeedField("style_1_weight", "float", "ratio", "share of the first style, the same formula", 0.5),
        SeedField(
            "style_intensity",
            "float",
            "alpha",
            "style strength, 0 (content) to 1; absent: 1 (full style)",
            0.5,
        ),
        SeedField(
            "high_quality",
            "bool",
            None,
            f"output at the content's size up to {PIXELBLEND_HQ_CAP} px instead of {PIXELBLEND_CAP} "
            "(PixelBlend's working sizes)",
            False,
        ),
        SeedField("detail_strength", "float", None, "accepted and ignored: PixelBlend's post-filter", 0.5),
    ),
    answer="JSON `job_id`, `output_path` = `download_path` (the job's result URL), `model_mode`, "
    "`model_loaded`, `status`, `job_url`",
    cap=lambda values: PIXELBLEND_HQ_CAP if values.get("high_quality") else PIXELBLEND_CAP,
)
GATYS_SERVICE = SeedRoute(
    seed="Gatys service",
    path="/stylize",
    mode="gatys",
    fields=(
        SeedField("content_image", "file", "content", "the content image"),
        SeedField("style_image", "file", "style", "the style image"),
        SeedField("epochs", "int", "total_iterations", "one optimisation step per epoch"),
        SeedField(
            "content_weight",
            "float",
            "content_weight",
            f"torchvision units → ours: ÷ {TORCHVISION_GAIN:.2f}² (absent: ours, {_OURS.content_weight:g})",
            convert=lambda weight: weight / TORCHVISION_GAIN**2,
            minimum=0,
        ),
        SeedField(
            "style_weight",
            "float",
            "style_weight",
            f"torchvision units → ours: ÷ {TORCHVISION_GAIN:.2f}⁴ (absent: ours, {_OURS.style_weight:g})",
            convert=lambda weight: weight / TORCHVISION_GAIN**4,
            minimum=0,
        ),
    ),
    answer=f"the stylized image (`image/png`), at the content's size up to {DEFAULT_CAP} px",
)
PHOTOREAL = SeedRoute(
    seed="photorealistic tester",
    path="/upload_images/",
    mode="blend",
    fields=(
        SeedField("content_image", "file", "content", "the content photo"),
        SeedField("style_image", "file", "style", "the style photo"),
        SeedField("alpha", "float", "alpha", "stylization strength, 0 (content) to 1 (full style)"),
        SeedField(
            "size",
            "int",
            "image_size",
            f"longest side of the output (absent: the content's, up to {DEFAULT_CAP})",
        ),
    ),
    answer="the stylized image (`image/png`)",
)
SEED_ROUTES = (PIXELBLEND, GATYS_SERVICE, PHOTOREAL)
# PixelBlend's read-only routes: (path, what they answer), derived from /readyz and /api/v1/engines.
STATUS_ROUTES = (
    ("/api/health", "`status` (`ok` when `/readyz` is ready, else 503), the model fields, `services`"),
    (
        "/api/model-status",
        "`model_loaded`, `mode`, `model_path`, `message` from the blend entry of `/api/v1/engines`",
    ),
)


# -- request mapping (pure) ----------------------------------------------------------------


def read_values(route: SeedRoute, fields: Mapping[str, str]) -> dict[str, Any]:
    """The route's non-file fields, typed (errors name the seed's field). Empty values count as
    absent (a browser form sends empty inputs); undeclared fields are ignored, as the seeds did."""
    values: dict[str, Any] = {}
    for f in route.fields:
        raw = fields.get(f.name, "")
        if f.kind == "file" or not raw.strip():
            continue
        value = coerce(f.name, KINDS[f.kind], raw)
        if f.minimum is not None and value < f.minimum:
            raise ValidationError(
                f"must be at least {show_number(f.minimum)}, got {show_number(value)}", field=f.name
            )
        values[f.name] = value
    return values


def output_size(content_size: tuple[int, int] | None, cap: int) -> int | None:
    """The content's own longest side, at most ``cap``: the seeds answered at the content's size.
    Never below what keeps the short side at the engines' minimum (a tiny or thin content is
    enlarged, not refused); None when the header is unreadable, which the upload check reports."""
    if content_size is None:
        return None
    width, height = content_size
    return min(max(min(max(width, height), cap), min_longest(width, height)), MAX_IMAGE_SIZE)


def seed_params(
    route: SeedRoute, fields: Mapping[str, str], content_size: tuple[int, int] | None
) -> dict[str, str]:
    """Our parameter fields (strings, as a form sends them) for the seed's fields."""
    values = read_values(route, fields)
    params = {f.param: str(f.convert(values[f.name])) for f in route.fields if f.param and f.name in values}
    if "image_size" not in params:
        size = output_size(content_size, route.cap(values))
        if size is not None:
            params["image_size"] = str(size)
    return params


def file_parts(route: SeedRoute, files: list[FilePart]) -> list[FilePart]:
    """The seed's files as our ``content``/``style`` parts, in the route's order, labelled with the
    seed's names so upload errors name them; every file the seed required must be there."""
    parts: list[FilePart] = []
    for f in route.files:
        given = [p for p in files if p.field == f.name and not is_unselected(p)]
        if not given:
            raise BadRequest("required: a file upload (multipart part with a filename)", field=f.name)
        if len(given) > 1:
            raise BadRequest("give one file", field=f.name)
        parts.append(FilePart(f.param or f.name, given[0].filename, given[0].stream, label=f.name))
    return parts


def image_size_of(stream: IO[bytes]) -> tuple[int, int] | None:
    """Width and height from the image's header, without decoding it; None if unreadable
    (the upload validation then says what is wrong, naming the field)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream, formats=list(FORMATS)) as image:
                return image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    finally:
        stream.seek(0)


def to_submission(route: SeedRoute, seed: Submission) -> Submission:
    """A native job submission (mode, our parameters, our file fields) for a seed request."""
    parts = file_parts(route, seed.files)
    params = seed_params(route, seed.fields, image_size_of(parts[0].stream))
    return Submission({"mode": route.mode, **params}, parts, owner=seed.owner)


# -- answers (pure) -------------------------------------------------------------------------


def succeeded(job: Mapping[str, Any]) -> bool:
    """True once the job succeeded, False while it is queued or running; a failed or cancelled
    job raises, since the client would otherwise wait for a result that never comes."""
    status = Status(job["status"])
    if status is Status.FAILED:
        error = job.get("error") or {}
        raise JobFailed(
            f"job {job['id']} failed ({error.get('code')}: {error.get('message')}); see {job['links']['self']}"
        )
    if status is Status.CANCELLED:
        raise JobCancelled(f"job {job['id']} was cancelled; see {job['links']['self']}")
    return status is Status.SUCCEEDED


def blend_model(engines: Mapping[str, Any]) -> dict[str, Any]:
    """PixelBlend's model fields, from the blend entry of ``GET /api/v1/engines``. ``model_path``
    stays empty: the consumers load the model (``STYLEQUEUE_BLEND_MODEL``), not the API."""
    entry = next((e for e in engines["engines"] if e["mode"] == PIXELBLEND.mode), None)
    if entry is None or not entry["available"]:
        return _no_model(entry["reason"] if entry else "this service has no blend engine")
    random = entry["random_weights"]
    message = f"{entry['consumers']} blend consumer(s) running" + (
        " on random weights (development only)" if random else ""
    )
    mode = "random_weights" if random else "pretrained"
    return {"model_loaded": True, "mode": mode, "model_path": "", "message": message}


def _no_model(message: str) -> dict[str, Any]:
    return {"model_loaded": False, "mode": "unavailable", "model_path": "", "message": message}


def pixelblend_result(job: Mapping[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /api/generate``'s JSON: PixelBlend's keys, plus the job's status and URL."""
    result = job["links"]["result"]
    return {
        "job_id": job["id"],
        "output_path": result,
        "download_path": result,
        "model_mode": model["mode"],
        "model_loaded": model["model_loaded"],
        "status": job["status"],
        "job_url": job["links"]["self"],
    }


def health_body(ready: bool, states: Mapping[str, str], model: Mapping[str, Any] | None) -> dict[str, Any]:
    """``GET /api/health``: ``/readyz``'s verdict in PixelBlend's shape (the model fields only when ready)."""
    if model is None:
        failing = ", ".join(name for name, state in states.items() if state != "ok")
        model = _no_model(f"not ready: {failing}")
    return {"status": "ok" if ready else "unavailable", **model, "services": dict(states)}


# -- the service ----------------------------------------------------------------------------


class CompatService:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs
        self.wait_s = jobs.settings.api.compat_wait_s

    def run(self, route: SeedRoute, seed: Submission) -> tuple[dict[str, Any], bool]:
        """Submit the seed request as a normal job and wait: (the job's JSON, whether it succeeded)."""
        try:
            job = self.jobs.submit(to_submission(route, seed))
        except ValidationError as exc:
            exc.field = route.seed_name(exc.field)  # the seed's field (style_1_weight, not ratio)
            raise
        job = self.jobs.wait(job["id"], self.wait_s)
        return job, succeeded(job)

    def image(self, route: SeedRoute, seed: Submission) -> tuple[dict[str, Any], Iterator[bytes] | None]:
        """The job's JSON and its result's bytes, or None for the bytes while it still runs."""
        job, done = self.run(route, seed)
        return job, self.jobs.result(job["id"]) if done else None

    def generate(self, seed: Submission) -> tuple[dict[str, Any], bool]:
        """PixelBlend's ``/api/generate``: its JSON, and whether the result is there yet."""
        job, done = self.run(PIXELBLEND, seed)
        return pixelblend_result(job, blend_model(self.jobs.engines())), done

    def health(self) -> tuple[dict[str, Any], bool]:
        ready, states = self.jobs.readiness()
        model = blend_model(self.jobs.engines()) if ready else None
        return health_body(ready, states, model), ready

    def model_status(self) -> dict[str, Any]:
        return blend_model(self.jobs.engines())
