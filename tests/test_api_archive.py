"""api.archive streams a ZIP entry by entry; and the app serves the built UI next to the API."""

from __future__ import annotations

import io
import zipfile

import pytest
from clients import configs, producer, s3_storage, status_store, topics  # noqa: F401

from api import archive
from api.app import create_app
from api.service import Clients


def test_zip_is_produced_lazily_one_entry_at_a_time():
    produced = []

    def entries():
        for name in ("a.jpg", "b.jpg", "c.jpg"):
            produced.append(name)
            yield name, (name.encode() * 1000, b"tail")

    stream = archive.stream(entries())
    first = next(stream)
    assert first.startswith(b"PK\x03\x04")
    assert produced == ["a.jpg"]  # later entries are not read before the first is sent
    data = first + b"".join(stream)
    assert produced == ["a.jpg", "b.jpg", "c.jpg"]
    zipped = zipfile.ZipFile(io.BytesIO(data))
    assert zipped.namelist() == ["a.jpg", "b.jpg", "c.jpg"]
    assert zipped.read("b.jpg") == b"b.jpg" * 1000 + b"tail"
    assert zipped.testzip() is None


def test_empty_archive_is_a_valid_zip():
    assert zipfile.ZipFile(io.BytesIO(b"".join(archive.stream([])))).namelist() == []


@pytest.mark.integration
def test_built_ui_is_served_with_client_side_routes(
    tmp_path, service_env, s3_storage, status_store, producer
):
    ui = tmp_path / "ui"
    (ui / "assets").mkdir(parents=True)
    (ui / "index.html").write_text("<html>stylequeue ui</html>")
    (ui / "assets" / "app.js").write_text("console.log('ui')")
    (tmp_path / "secret.txt").write_text("not for the web")
    env = {**service_env, "STYLEQUEUE_UI_DIR": str(ui)}
    client = create_app(env, clients=Clients(s3_storage, status_store, producer)).test_client()
    assert b"stylequeue ui" in client.get("/").data
    assert b"stylequeue ui" in client.get("/jobs/123").data  # a client-side route
    assert client.get("/assets/app.js").data == b"console.log('ui')"
    for path in ("/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        assert b"not for the web" not in client.get(path).data, path
    missing = client.get("/api/v1/not-a-route")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert client.get("/healthz").json == {"status": "ok"}
