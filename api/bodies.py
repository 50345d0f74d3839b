"""The API's response bodies other than a job's (:mod:`api.views`), declared once as pydantic models.

The OpenAPI document is generated from these models, and the service answers with them, so a
field cannot be added to one without the other.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field

from api.uploads import FORMATS
from api.views import View
from stylequeue.config import ApiConfig

State = Literal["ok", "unavailable"]
ModelMode = Literal["pretrained", "random_weights", "unavailable"]


class Parameter(View):
    """One engine parameter, from its mode's parameter model (:func:`stylequeue.params.describe`)."""

    name: str = Field(description="the form field's name")
    help: str = Field(description="what it does")
    default: Any = Field(description="its value when the field is left out")
    schema_: dict[str, Any] = Field(
        alias="schema",
        description="its JSON Schema: type, bounds, choices and list limits, as the API checks them",
    )


class EngineInfo(View):
    """One mode of ``GET /api/v1/engines``: what it takes, and whether a consumer can run it now."""

    mode: str = Field(description="the mode's name, the `mode` form field")
    title: str = Field(description="its name for people")
    description: str = Field(description="what it does and how long it takes")
    min_styles: int = Field(description="fewest style images a job takes")
    max_styles: int = Field(description="most style images a job takes")
    parameters: list[Parameter] = Field(description="its parameters, in form order")
    available: bool = Field(description="a live consumer of this mode can run it")
    reason: str = Field(description="why not, when not available")
    random_weights: bool = Field(description="a consumer runs random (dev) networks")
    models: list[str] = Field(description="the networks live consumers run, as they name them")
    consumers: int = Field(ge=0, description="consumers reporting in")
    losses: bool = Field(description="its jobs report losses as they run: `GET …/losses` draws a curve")
    live_snapshots: bool = Field(description="snapshots arrive as a job runs, not only at its end")
    resumes: bool = Field(description="a retried attempt continues from the last snapshot's checkpoint")


class Limits(View):
    max_file_bytes: int = Field(description="largest accepted file")
    max_request_bytes: int = Field(description="largest accepted request")
    max_pixels: int = Field(description="largest accepted image, in pixels")
    formats: list[Literal["jpeg", "png", "webp"]] = Field(description="image formats accepted")

    @classmethod
    def of(cls, cfg: ApiConfig) -> Self:
        """What :mod:`api.uploads` accepts under ``cfg``."""
        limits = cfg.model_dump(include={"max_file_bytes", "max_request_bytes", "max_pixels"})
        return cls(**limits, formats=sorted(FORMATS.values()))


class Engines(View):
    """``GET /api/v1/engines``: every mode and the upload limits."""

    engines: list[EngineInfo] = Field(description="one entry per mode")
    limits: Limits = Field(description="what an upload may be")


class LossPoint(View):
    # A diverged point is null, never NaN: every body is strict JSON (api.jsonbody).
    iteration: int = Field(ge=0, description="the iteration the losses were measured at")
    content: float | None = Field(None, description="weighted content loss")
    style: float | None = Field(None, description="weighted style loss")
    tv: float | None = Field(None, description="weighted total-variation loss")
    total: float | None = Field(None, description="their sum, the value optimised")


class LossList(View):
    """``GET /api/v1/jobs/{id}/losses``: the loss curve so far (Gatys; empty for blend)."""

    job_id: str = Field(description="the job's id")
    losses: list[LossPoint] = Field(description="one point per reported iteration, in order")


class ErrorDetail(View):
    code: str = Field(description="a stable machine-readable code: invalid, not_found, unavailable …")
    message: str = Field(description="what is wrong, in words; names the limit or the service")
    field: str | None = Field(description="the form field, parameter or path part at fault (null: none)")


class ErrorBody(View):
    """Every error the API answers (4xx and 5xx alike)."""

    error: ErrorDetail


class Health(View):
    status: Literal["ok"] = Field(description="the process answers")


class Ready(View):
    """Each backing service's state, as ``/readyz`` checks it (200 when all are ok, else 503)."""

    redis: State = Field(description="job records, snapshots and presence")
    kafka: State = Field(description="the job queue")
    s3: State = Field(description="uploads, results and snapshots")


# -- the seed projects' bodies (api.compat, api.seeds) ------------------------------------


class ModelStatus(View):
    """PixelBlend's model fields, from the blend entry of ``GET /api/v1/engines``."""

    model_loaded: bool = Field(description="a blend consumer can run jobs")
    mode: ModelMode = Field(description="what it runs")
    model_path: str = Field(description="empty: the consumers load the model, not the API")
    message: str = Field(description="consumers running, or why none can")


class SeedHealth(ModelStatus):
    """PixelBlend's ``GET /api/health``: ``/readyz``'s verdict with the model fields."""

    status: State = Field(description="ok when every backing service answers")
    services: Ready = Field(description="each backing service's state")


class PixelBlendResult(View):
    """PixelBlend's ``POST /api/generate`` answer: its keys, plus the job's status and URL."""

    job_id: str = Field(description="the job's id")
    output_path: str = Field(description="the job's result URL (PNG)")
    download_path: str = Field(description="the same URL")
    model_mode: ModelMode = Field(description="the model's state")
    model_loaded: bool = Field(description="a blend consumer can run jobs")
    status: str = Field(description="the job's status")
    job_url: str = Field(description="the job (GET /api/v1/jobs/{id})")
