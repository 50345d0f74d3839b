"""api.archive streams a ZIP entry by entry; and the app serves the built UI next to the API."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
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


def _three_entries():
    return [(f"snapshots/{i:06d}.jpg", (bytes(range(256)) * 40, b"end")) for i in (10, 20, 30)]


def test_entries_can_be_read_by_a_streaming_unzipper():
    """Sizes come after the data (a data descriptor, flag 8), which a streaming reader can only
    handle for deflated entries: a stored entry with a descriptor has no findable end."""
    data = b"".join(archive.stream(_three_entries()))
    zipped = zipfile.ZipFile(io.BytesIO(data))
    infos = zipped.infolist()
    assert [info.filename for info in infos] == [name for name, _ in _three_entries()]
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)
    assert not [i for i in infos if i.compress_type == zipfile.ZIP_STORED and i.flag_bits & 0x08]
    assert [zipped.read(info) for info in infos] == [b"".join(chunks) for _, chunks in _three_entries()]
    assert zipped.testzip() is None


UNZIP_JAVA = """
import java.util.zip.*;
public class Unzip {
    public static void main(String[] args) throws Exception {
        try (ZipInputStream zip = new ZipInputStream(System.in)) {
            byte[] buffer = new byte[8192];
            for (ZipEntry entry; (entry = zip.getNextEntry()) != null; ) {
                long size = 0;
                for (int n; (n = zip.read(buffer)) > 0; ) size += n;
                System.out.println(entry.getName() + " " + size);
            }
        }
    }
}
"""


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a Java runtime")
def test_java_zip_input_stream_reads_the_stream(tmp_path):
    """The reader that refused the stored entries: java.util.zip.ZipInputStream, fed through a pipe."""
    source = tmp_path / "Unzip.java"
    source.write_text(UNZIP_JAVA)
    data = b"".join(archive.stream(_three_entries()))
    done = subprocess.run(["java", str(source)], input=data, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split("\n")[:-1] == [f"{name} {256 * 40 + 3}" for name, _ in _three_entries()]


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


@pytest.mark.integration
def test_paths_outside_the_ui_dir_answer_like_missing_ones(
    tmp_path, service_env, s3_storage, status_store, producer
):
    """No probing: a file that exists outside the UI dir gets index.html, exactly as a missing one."""
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<html>stylequeue ui</html>")
    (tmp_path / "secret.txt").write_text("not for the web")
    env = {**service_env, "STYLEQUEUE_UI_DIR": str(ui)}
    client = create_app(env, clients=Clients(s3_storage, status_store, producer)).test_client()
    depth = "..%2f" * len(ui.parts)
    pairs = {
        "/..%2fsecret.txt": "/..%2fno-such-file.txt",
        f"/{depth}etc%2fpasswd": f"/{depth}etc%2fno-such-file",
        f"/{depth}{str(tmp_path / 'secret.txt').lstrip('/').replace('/', '%2f')}": "/no/such/route",
    }
    assert os.path.isfile("/etc/passwd")  # the outside files exist: the probe had something to find
    for outside, missing in pairs.items():
        got, expected = client.get(outside), client.get(missing)
        assert (
            (got.status_code, got.data)
            == (expected.status_code, expected.data)
            == (200, b"<html>stylequeue ui</html>")
        ), outside
