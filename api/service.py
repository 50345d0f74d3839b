"""The API's service layer: what each endpoint does, with no Flask in sight.

Views parse the HTTP request into plain values, call one method of :class:`JobService` and turn
its answer (dicts, bytes, byte iterators) into a response. Everything here raises the project's
named errors (:mod:`stylequeue.errors`, :mod:`api.uploads`); ``api.errors`` maps them to HTTP.

One class of some 430 lines: every endpoint's behaviour, which shares the clients, the limits and
the owner checks; its parts that stand alone live elsewhere (uploads, access, archive, views).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from typing import IO, Any, get_type_hints

from api import archive
from api.access import ANONYMOUS, MAX_ID_LENGTH, ApiKeys, JobsQuery, Owners
from api.backing import LazyProducer, service_name, unavailable_message
from api.bodies import EngineInfo, Engines, Limits
from api.uploads import BadRequest, TooLarge, Upload, accept
from api.views import JobList, JobView, SnapshotList
from consumer.engines.registry import kind, modes, params_class, validate_job_params
from stylequeue import bus, config, metrics, reconciler
from stylequeue.errors import Conflict, NotFound, ServiceUnavailable, StylequeueError, ValidationError
from stylequeue.job import Inputs, Job, Status, new_job_id, object_keys
from stylequeue.params import Params, describe, quoted
from stylequeue.presence import Presence
from stylequeue.status import StatusStore
from stylequeue.storage import Storage

log = logging.getLogger(__name__)

FILE_FIELDS = ("content", "style", "init_image")
NO_CONSUMER = "no consumer is serving this mode"
UPLOAD_THREADS = 8  # S3 PUTs in flight per API process (a submission has at most 6 objects)


@dataclass(frozen=True)
class Settings:
    s3: config.S3Config
    redis: config.RedisConfig
    kafka: config.KafkaConfig
    api: config.ApiConfig

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls(*(config.load(section, environ) for section in get_type_hints(cls).values()))


@dataclass
class Clients:
    storage: Storage
    status: StatusStore
    producer: Any  # kafka.KafkaProducer


def make_clients(settings: Settings) -> Clients:
    """Clients that connect on first use (boto3 and redis-py do; the producer is made lazy)."""
    status = StatusStore.from_config(settings.redis)
    producer = LazyProducer(lambda: bus.make_producer(settings.kafka))
    return Clients(Storage.from_config(settings.s3), status, producer)


@dataclass(frozen=True)
class FilePart:
    """``label``: the form field a client knows the file by when that is not ``field`` (a seed
    route's ``style_image_2`` submitted as our second ``style``); upload errors name it."""

    field: str
    filename: str
    stream: IO[bytes]
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.field


@dataclass
class Submission:
    fields: dict[str, str]
    files: list[FilePart] = field(default_factory=list)
    owner: str | None = None  # the submitting API key's name (None: access control is off)


def input_keys(inputs: Inputs) -> dict[str, str]:
    """A job's stored inputs by the name its URL uses (content, style-0, style-1 …, init_image) → S3 key."""
    styles = {f"style-{index}": key for index, key in enumerate(inputs.styles)}
    init = {"init_image": inputs.init_image} if inputs.init_image else {}
    return {"content": inputs.content, **styles, **init}


class JobService:
    def __init__(self, clients: Clients, settings: Settings) -> None:
        self.clients = clients
        self.storage = clients.storage
        self.status = clients.status
        self.settings = settings
        self.keys = ApiKeys.from_config(settings.api)
        self.owners = Owners(clients.status, settings.redis.job_ttl_s)
        self.presence = Presence(clients.status.redis, prefix=clients.status.prefix)
        self._uploads = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="s3-put")

    # -- submit ----------------------------------------------------------------------------

    def submit(self, submission: Submission) -> dict[str, Any]:
        """Nothing is written before every check passed; the answer (the job's JSON) comes once the
        broker acknowledged the message, and a failure on the way removes what was written."""
        owner = submission.owner or ANONYMOUS
        if submission.owner:
            self.owners.check_quota(owner, self.settings.api.max_active_jobs_per_key)
        mode, params, uploads = self._validate(submission)
        job = self._new_job(mode, params, uploads)
        self._write(job, uploads, owner)
        metrics.job_submitted(mode, sum(u.source_bytes for u in uploads.values()))
        return self.job_view(job)

    def _validate(self, submission: Submission) -> tuple[str, dict[str, Any], dict[str, Upload]]:
        fields = dict(submission.fields)
        mode = fields.pop("mode", "").strip()
        if not mode:
            raise BadRequest(f"required: one of {', '.join(modes())}", field="mode")
        for name in FILE_FIELDS:
            if name in fields:
                raise BadRequest("must be a file upload (multipart part with a filename)", field=name)
        params_class(mode)  # unknown mode → 422 naming the field, before any file is read
        parts = _group_files(submission.files)
        params = validate_job_params(mode, fields, len(parts["style"]))
        _check_init_image(params, parts["init_image"])
        uploads = self._decode(parts)
        styles = [(u.width, u.height) for name, u in uploads.items() if name.startswith("style-")]
        params.check_images((uploads["content"].width, uploads["content"].height), styles)
        return mode, params.to_dict(), uploads

    def _decode(self, parts: dict[str, list[FilePart]]) -> dict[str, Upload]:
        """Decode every file; the keys are the S3 keys' names (content, style-0, init_image)."""
        named = [("content", parts["content"][0])]
        named += [(f"style-{index}", part) for index, part in enumerate(parts["style"])]
        named += [("init_image", part) for part in parts["init_image"]]
        limit = self.settings.api.max_request_bytes
        uploads: dict[str, Upload] = {}
        for name, part in named:
            uploads[name] = accept(part.stream, part.name, self.settings.api)
            if sum(upload.source_bytes for upload in uploads.values()) > limit:
                raise TooLarge(
                    f"files add up to more than {limit} bytes (STYLEQUEUE_MAX_REQUEST_BYTES)", field=part.name
                )
        return uploads

    def _new_job(self, mode: str, params: dict[str, Any], uploads: dict[str, Upload]) -> Job:
        """Each upload's S3 key has its stored format's suffix: an upright RGB JPEG is kept as a JPEG
        (:mod:`api.uploads`), everything else is a PNG."""
        job_id = new_job_id()
        keys = object_keys(job_id)
        stored = {}
        for name, upload in uploads.items():
            template = keys["style"].format(index=int(name[6:])) if name.startswith("style-") else keys[name]
            stored[name] = template.removesuffix(".png") + upload.suffix
        styles = tuple(key for name, key in stored.items() if name.startswith("style-"))
        inputs = Inputs(stored["content"], styles, stored.get("init_image"))
        return Job(id=job_id, mode=mode, params=params, inputs=inputs)

    def _write(self, job: Job, uploads: dict[str, Upload], owner: str) -> None:
        """Inputs and params.json to S3 at once (threads: each PUT mostly waits), then Redis, then Kafka."""
        keys = input_keys(job.inputs)
        objects = [(keys[name], upload.data, upload.media_type) for name, upload in uploads.items()]
        objects.append((object_keys(job.id)["params"], params_json(job), "application/json"))
        try:
            puts = [self._uploads.submit(self.storage.put, *obj) for obj in objects]
            wait(puts)  # every PUT has ended before any error is raised: none lands after the undo
            for put in puts:
                put.result()
            self.status.create(job)
            self.owners.record(owner, job)
            reconciler.publish(self.status, self.clients.producer, self.settings.kafka, job)
        except Exception as exc:
            self._undo(job, owner)
            raise _unavailable(exc) from exc

    def _undo(self, job: Job, owner: str) -> None:
        """Remove a failed submission's objects and record (best effort: each step on its own)."""
        for step in (
            lambda: self.status.discard(job),
            lambda: self.owners.forget(owner, job),
            lambda: self.storage.delete_prefix(object_keys(job.id)["prefix"] + "/"),
        ):
            try:
                step()
            except Exception:  # noqa: BLE001 - undo must try every step and keep the first error
                log.exception("could not undo part of failed submission %s", job.id)

    # -- read ------------------------------------------------------------------------------

    def job_view(self, job: Job) -> dict[str, Any]:
        """The job's JSON as the API answers it (:class:`api.views.JobView`), never the record."""
        return self._view(job).model_dump(mode="json")

    def _view(self, job: Job) -> JobView:
        return JobView.of(job, self.status.queue_position(job))

    def _job(self, job_id: str, caller: str | None) -> Job:
        """The record, if ``caller`` may see it: another key's job is "no such job", like a made-up id.
        ``caller`` None means no check (access control off, or the API itself: the seed routes). An id
        longer than :data:`~api.access.MAX_ID_LENGTH` names no job: 404 saying so, without a lookup."""
        if len(job_id) > MAX_ID_LENGTH:
            raise NotFound(
                f"no job has an id of {len(job_id)} characters; job ids are at most {MAX_ID_LENGTH}",
                field="job_id",
            )
        if caller is not None and not self.owners.owns(caller, job_id):
            raise NotFound(f"no job {quoted(job_id)}", field="job_id")
        return self.status.get(job_id)

    def get(self, job_id: str, caller: str | None = None) -> dict[str, Any]:
        return self.job_view(self._job(job_id, caller))

    def jobs(self, caller: str | None, query: Mapping[str, str]) -> dict[str, Any]:
        # A parameter left out is None, which filters nothing.
        page = self.owners.page(caller or ANONYMOUS, **JobsQuery(**query).model_dump())
        return JobList(jobs=[self._view(job) for job in page.jobs], next=page.next).model_dump(mode="json")

    def wait(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        """The job's JSON once it has ended, or as it stands after ``timeout_s``, for clients that
        cannot poll (:mod:`api.seeds`). It reads often at first, since blend jobs end within
        milliseconds, then every half second: a long wait costs Redis a few reads a second."""
        deadline = time.monotonic() + timeout_s
        interval = 0.02
        while True:
            job = self.status.get(job_id)
            remaining = deadline - time.monotonic()
            if job.status.terminal or remaining <= 0:
                return self.job_view(job)
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, 0.5)

    def cancel(self, job_id: str, caller: str | None = None) -> dict[str, Any]:
        self._job(job_id, caller)
        return self.job_view(self.status.request_cancel(job_id))

    def result(self, job_id: str, caller: str | None = None) -> Iterator[bytes]:
        return self.storage.stream(self._result_key(job_id, caller))

    def result_url(self, job_id: str, caller: str | None = None) -> str:
        """A presigned URL of the result, signed for the public S3 endpoint."""
        return self.storage.presign(self._result_key(job_id, caller), self.settings.s3.presign_ttl_s)

    def _result_key(self, job_id: str, caller: str | None) -> str:
        job = self._job(job_id, caller)
        if job.status is not Status.SUCCEEDED or not job.result_key:
            why = {Status.QUEUED: "is queued", Status.RUNNING: "is still running"}.get(
                job.status, f"has {job.status.value} without a result"
            )
            raise Conflict(
                f"job {job_id} {why}; the result exists once its status is succeeded", field="job_id"
            )
        return job.result_key

    def input_image(self, job_id: str, name: str, caller: str | None = None) -> tuple[str, Iterator[bytes]]:
        """PNG, or JPEG for an upright RGB JPEG upload kept as sent (:mod:`api.uploads`)."""
        keys = input_keys(self._job(job_id, caller).inputs)
        if name not in keys:
            raise NotFound(
                f"job {job_id} has no input {quoted(name)}; it has {', '.join(keys)}", field="name"
            )
        media_type = "image/jpeg" if keys[name].endswith(".jpg") else "image/png"
        try:
            return media_type, self.storage.stream(keys[name])
        except NotFound:
            # The record names it but S3 has lost it (removed by hand or by a lifecycle rule).
            raise NotFound(f"input {name!r} of job {job_id} is no longer stored", field="name") from None

    def losses(self, job_id: str, caller: str | None = None) -> dict[str, Any]:
        self._job(job_id, caller)  # 404 for an unknown job rather than an empty curve
        return {"job_id": job_id, "losses": self.status.losses(job_id)}

    def snapshots(self, job_id: str, caller: str | None = None) -> dict[str, Any]:
        job = self._job(job_id, caller)
        return SnapshotList.of(job_id, self._iterations(job)).model_dump(mode="json")

    def _iterations(self, job: Job) -> list[int]:
        return sorted({*job.snapshots, *self.status.snapshot_iterations(job.id)})

    def snapshot(self, job_id: str, iteration: int, caller: str | None = None) -> bytes:
        """Looked for in S3 first once the job ended (the worker copied them), in Redis first before.
        The S3 copies are the last attempt's: a fenced-off attempt wrote its own under its own number."""
        job = self._job(job_id, caller)
        key = object_keys(job.id, job.attempt)["snapshot"].format(iteration=iteration)
        sources = [lambda: self.storage.get(key), lambda: self.status.snapshot(job.id, iteration)]
        for source in sources if job.status.terminal else reversed(sources):
            with suppress(NotFound):
                return source()
        raise NotFound(f"job {job_id} has no snapshot at iteration {iteration}", field="iteration")

    def archive(self, job_id: str, caller: str | None = None) -> tuple[str, Iterator[bytes]]:
        """A ZIP of every snapshot in order, the result and params.json: (file name, byte stream)."""
        job = self._job(job_id, caller)
        return f"stylequeue-{job_id}.zip", archive.stream(self._archive_entries(job))

    def _archive_entries(self, job: Job) -> Iterator[tuple[str, Iterable[bytes]]]:
        """Entries produced one at a time, so only one image is in memory while the ZIP streams."""
        for iteration in self._iterations(job):
            try:
                data = self.snapshot(job.id, iteration)
            except NotFound:  # expired between listing and reading: leave it out
                continue
            yield f"snapshots/{iteration:06d}.jpg", (data,)
        if job.status is Status.SUCCEEDED and job.result_key:
            yield "result.png", self.storage.stream(job.result_key)
        yield "params.json", (params_json(job),)

    # -- engines and health ----------------------------------------------------------------

    def engines(self) -> dict[str, Any]:
        reports = self.presence.engines(modes())
        entries = [engine_entry(mode, reports[mode]) for mode in reports]
        return Engines(engines=entries, limits=Limits.of(self.settings.api)).model_dump(by_alias=True)

    def readiness(self) -> tuple[bool, dict[str, str]]:
        checks = {"redis": self.status.ping, "kafka": self._kafka_ready, "s3": self.storage.ping}
        states = {}
        for name, check in checks.items():
            try:
                check()
                states[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                # The client learns which service; the log keeps how it failed (hosts, ports).
                log.warning("readiness: %s failed: %s: %s", name, type(exc).__name__, exc)
                states[name] = "unavailable"
        return all(state == "ok" for state in states.values()), states

    def _kafka_ready(self) -> None:
        # The producer's metadata is cached, so also prove a broker accepts connections now.
        host, _, port = bus._servers(self.settings.kafka)[0].rpartition(":")
        socket.create_connection((host, int(port)), timeout=2).close()
        bus.ping(self.clients.producer, self.settings.kafka, modes()[0])


def engine_entry(mode: str, reports: list[dict[str, Any]]) -> dict[str, Any]:
    declared = kind(mode)
    cls = declared.params
    available = any(r.get("available") for r in reports)
    reasons = (str(r["reason"]) for r in reports if not r.get("available") and r.get("reason"))
    return EngineInfo(
        mode=mode,
        title=declared.title,
        description=declared.summary,
        min_styles=cls.min_styles,
        max_styles=cls.max_styles,
        parameters=describe(cls),
        available=available,
        reason="" if available else next(reasons, NO_CONSUMER),
        random_weights=any(r.get("random_weights") for r in reports),
        models=sorted({str(r["model"]) for r in reports if r.get("model")}),
        consumers=len(reports),
        losses=declared.losses,
        live_snapshots=declared.live_snapshots,
        resumes=declared.resumes,
    ).model_dump(by_alias=True)


def params_json(job: Job) -> bytes:
    """The ``params.json`` of a job's folder and ZIP: enough to run it again."""
    body = {"job_id": job.id, "mode": job.mode, "params": job.params, "submitted_at": job.submitted_at}
    if job.engine:
        body["engine"] = job.engine
    return json.dumps(body, indent=2, sort_keys=True).encode()


def _group_files(files: list[FilePart]) -> dict[str, list[FilePart]]:
    parts: dict[str, list[FilePart]] = {name: [] for name in FILE_FIELDS}
    for part in files:
        if is_unselected(part):
            continue
        if part.field not in parts:
            raise BadRequest(f"unknown file field; expected {', '.join(FILE_FIELDS)}", field=part.field)
        parts[part.field].append(part)
    if not parts["content"]:
        raise BadRequest("required: the content image", field="content")
    for name in ("content", "init_image"):
        if len(parts[name]) > 1:
            raise BadRequest("give one file", field=name)
    return parts


def is_unselected(part: FilePart) -> bool:
    """A browser sends an empty, nameless part for a file input left empty: not an upload."""
    if part.filename:
        return False
    empty = not part.stream.read(1)
    part.stream.seek(0)
    return empty


def _check_init_image(params: Params, init_parts: list[FilePart]) -> None:
    wants = params.wants_init_image()
    when = "=".join(params.init_image_when or ())
    if wants and not init_parts:
        raise ValidationError(f"{when} needs an init_image file", field="init_image")
    if init_parts and not wants:
        why = (
            f"is used only with mode={params.mode} and {when}"
            if when
            else f"is not taken by mode={params.mode}"
        )
        raise ValidationError(f"an init_image {why}", field="init_image")


def _unavailable(exc: Exception) -> StylequeueError:
    """A submission's failed write as the client hears it: the service's name, not its error text.
    A project error that is not about availability (a duplicate id) is passed on as it is."""
    if isinstance(exc, StylequeueError) and not isinstance(exc, ServiceUnavailable):
        return exc
    # bus.publish turns a broker's KafkaError into ServiceUnavailable; the others are raw clients'.
    service = "kafka" if isinstance(exc, ServiceUnavailable) else (service_name(exc) or "storage")
    log.warning("submission failed: %s: %s: %s", service, type(exc).__name__, exc)
    return ServiceUnavailable(unavailable_message(service))
