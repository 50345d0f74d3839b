"""Access control: API keys, jobs that belong to their key, the caller's job list, quotas, rate limits, CORS."""

from __future__ import annotations

import io
import time

import imagefiles as files
import pytest
from clients import configs, producer, published, s3_storage, status_store, topics  # noqa: F401

from api.access import ApiKeys, key_name, parse_keys
from api.app import create_app
from api.service import Clients
from stylequeue.config import ApiConfig
from stylequeue.errors import ConfigError

pytestmark = pytest.mark.integration

ALICE, BOB = "alice-key-0123456789abcdef", "bob-key-0123456789abcdef0"
KEYS = {"STYLEQUEUE_API_KEYS": f"alice:{ALICE},bob:{BOB}"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def make_client(service_env, s3_storage, status_store, producer):
    def make(**settings: str):
        env = {**service_env, **KEYS, **settings}
        return create_app(env, clients=Clients(s3_storage, status_store, producer)).test_client()

    return make


@pytest.fixture
def client(make_client):
    return make_client()


def submit(client, key: str | None, mode: str = "blend", **fields):
    data = {"mode": mode, "content": (io.BytesIO(files.jpeg()), "c.jpg"),
            "style": [(io.BytesIO(files.png()), "s.png")], **fields}  # fmt: skip
    headers = auth(key) if key else {}
    return client.post("/api/v1/jobs", data=data, content_type="multipart/form-data", headers=headers)


def test_keys_parse_with_names_comments_and_a_digest_for_unnamed_ones():
    keys = parse_keys("alice:aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb\n# a comment\n", "X")
    assert keys == {"aaaaaaaaaaaaaaaa": "alice", "bbbbbbbbbbbbbbbb": key_name("bbbbbbbbbbbbbbbb")}
    with pytest.raises(ConfigError, match="shorter than 16"):
        parse_keys("short", "STYLEQUEUE_API_KEYS")


def test_keys_come_from_a_file_too(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# team keys\ncarol:{'c' * 20}\n")
    keys = ApiKeys.from_config(ApiConfig(api_keys=f"alice:{ALICE}", api_keys_file=str(path)))
    assert keys.identify(f"Bearer {'c' * 20}") == "carol" and keys.identify(f"Bearer {ALICE}") == "alice"
    with pytest.raises(ConfigError) as info:
        ApiKeys.from_config(ApiConfig(api_keys_file=str(tmp_path / "missing")))
    assert info.value.field == "STYLEQUEUE_API_KEYS_FILE"


def test_without_keys_nothing_needs_a_key(make_client):
    client = make_client(STYLEQUEUE_API_KEYS="")
    job = submit(client, None)
    assert job.status_code == 202
    assert client.get(job.json["links"]["self"]).status_code == 200
    # The jobs submitted without a key are listed together.
    assert [j["id"] for j in client.get("/api/v1/jobs").json["jobs"]] == [job.json["id"]]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-key-at-all"}, {"Authorization": ALICE}]
)
def test_job_routes_need_a_known_key_401_and_nothing_is_written(client, headers, s3_storage, configs):
    data = {"mode": "blend", "content": (io.BytesIO(files.jpeg()), "c.jpg")}
    response = client.post("/api/v1/jobs", data=data, content_type="multipart/form-data", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/jobs", headers=headers).status_code == 401
    assert s3_storage.keys() == [] and published(configs.kafka) == 0


def test_public_routes_need_no_key(client):
    for path in ("/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/engines", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_a_job_belongs_to_the_key_that_submitted_it(client):
    job = submit(client, ALICE).json
    base = job["links"]["self"]
    paths = ["", "/result", "/inputs/content", "/snapshots", "/snapshots/1", "/snapshots.zip", "/losses"]
    for path in paths:
        response = client.get(base + path, headers=auth(BOB))
        assert response.status_code == 404, path  # exactly like an id that never existed
        assert response.json["error"]["code"] == "not_found", path
    assert client.delete(base, headers=auth(BOB)).status_code == 404
    unknown = client.get(f"/api/v1/jobs/{'0' * 36}", headers=auth(BOB)).json["error"]
    other = client.get(base, headers=auth(BOB)).json["error"]
    assert (other["code"], other["field"]) == (unknown["code"], unknown["field"]) == ("not_found", "job_id")
    own = client.get(base, headers=auth(ALICE))
    assert own.status_code == 200 and own.json["status"] == "queued"
    assert client.get(base + "/inputs/content", headers=auth(ALICE)).status_code == 200
    # An <img> cannot send headers: the same key as access_token on a GET link.
    assert client.get(f"{base}/inputs/content?access_token={ALICE}").status_code == 200
    assert client.get(f"{base}/inputs/content?access_token={BOB}").status_code == 404
    assert client.delete(base, headers=auth(ALICE)).json["status"] == "cancelled"


def test_the_job_list_is_the_callers_own_newest_first_paged_and_filtered(client):
    mine = [submit(client, ALICE, mode=mode).json["id"] for mode in ("blend", "gatys", "blend")]
    theirs = submit(client, BOB).json["id"]
    client.delete(f"/api/v1/jobs/{mine[0]}", headers=auth(ALICE))
    listed = client.get("/api/v1/jobs", headers=auth(ALICE)).json
    assert [j["id"] for j in listed["jobs"]] == mine[::-1] and listed["next"] is None
    assert theirs not in [j["id"] for j in listed["jobs"]]
    first = client.get("/api/v1/jobs?limit=2", headers=auth(ALICE)).json
    assert [j["id"] for j in first["jobs"]] == mine[:0:-1] and first["next"]
    rest = client.get(f"/api/v1/jobs?limit=2&after={first['next']}", headers=auth(ALICE)).json
    assert [j["id"] for j in rest["jobs"]] == [mine[0]] and rest["next"] is None
    by_mode = client.get("/api/v1/jobs?mode=gatys", headers=auth(ALICE)).json["jobs"]
    assert [j["id"] for j in by_mode] == [mine[1]]
    by_status = client.get("/api/v1/jobs?status=cancelled", headers=auth(ALICE)).json["jobs"]
    assert [j["id"] for j in by_status] == [mine[0]]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=1_0", "status=done", "mode=x", "after=nan"])
def test_bad_list_queries_are_422_naming_the_parameter(client, query):
    response = client.get(f"/api/v1/jobs?{query}", headers=auth(ALICE))
    assert response.status_code == 422
    assert response.json["error"]["field"] == query.split("=")[0]


def test_a_key_over_its_quota_of_active_jobs_gets_429_with_retry_after(make_client, status_store, configs):
    client = make_client(STYLEQUEUE_MAX_ACTIVE_JOBS_PER_KEY="2")
    first, second = (submit(client, ALICE).json for _ in range(2))
    refused = submit(client, ALICE)
    assert refused.status_code == 429 and refused.json["error"]["code"] == "quota_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1 and "the limit is 2" in refused.json["error"]["message"]
    assert published(configs.kafka) == 2
    assert submit(client, BOB).status_code == 202  # another key's quota is its own
    client.delete(first["links"]["self"], headers=auth(ALICE))  # an ended job frees its place
    assert submit(client, ALICE).status_code == 202


def test_rate_limits_per_key_and_per_address_answer_429_with_retry_after(make_client):
    client = make_client(STYLEQUEUE_RATE_LIMIT_PER_KEY="3/minute")
    for _ in range(3):
        assert client.get("/api/v1/jobs", headers=auth(ALICE)).status_code == 200
    limited = client.get("/api/v1/jobs", headers=auth(ALICE))
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1 and "3 per 1 minute" in limited.json["error"]["message"]
    assert client.get("/api/v1/jobs", headers=auth(BOB)).status_code == 200  # per key
    assert client.get("/healthz").status_code == 200  # health is never limited
    by_ip = make_client(STYLEQUEUE_RATE_LIMIT_PER_IP="2/minute", STYLEQUEUE_S3_BUCKET="sq-rate-ip")
    statuses = [by_ip.get("/api/v1/jobs", headers=auth(key)).status_code for key in (ALICE, BOB, ALICE)]
    assert statuses == [200, 200, 429]


def test_cors_lets_the_configured_origin_call_the_api(make_client):
    client = make_client(STYLEQUEUE_CORS_ORIGINS="https://ui.example")
    preflight = client.options(
        "/api/v1/jobs",
        headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "Authorization"},
    )  # fmt: skip
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    other = client.get("/api/v1/engines", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert (
        "Access-Control-Allow-Origin"
        not in make_client().get("/api/v1/engines", headers={"Origin": "https://ui.example"}).headers
    )


def test_limiter_survives_redis_going_away_without_a_500(make_client):
    """The limit store failing must not fail requests (swallow_errors): Redis answers for itself."""
    client = make_client(
        STYLEQUEUE_RATE_LIMIT_PER_KEY="100/minute", STYLEQUEUE_REDIS_URL="redis://127.0.0.1:1/0"
    )
    started = time.monotonic()
    assert client.get("/api/v1/jobs", headers=auth(ALICE)).status_code == 200
    assert time.monotonic() - started < 10
