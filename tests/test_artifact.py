"""stylequeue.artifact: local paths, https downloads cached once with checksums, s3:// URIs."""

import hashlib
import http.server
import threading
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from stylequeue import artifact
from stylequeue.errors import ArtifactError

PAYLOAD = b"pretend these are weights" * 100
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.hits.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_files():
    _Files.files = {f"/models/net-{DIGEST[:8]}.pth": PAYLOAD, "/models/plain.pth": PAYLOAD}
    _Files.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Files
    server.shutdown()
    server.server_close()


def test_local_path_is_returned_as_is(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(PAYLOAD)
    assert artifact.resolve(str(path), cache_dir=tmp_path / "c") == path
    assert artifact.resolve(f"file://{path}", cache_dir=tmp_path / "c") == path


def test_missing_local_file_names_file_place_and_remedy(tmp_path):
    with pytest.raises(ArtifactError) as info:
        artifact.resolve(str(tmp_path / "vgg19.pth"), cache_dir=tmp_path, how_to_get="Run get-weights.")
    message = str(info.value)
    assert "vgg19.pth" in message and str(tmp_path) in message and "Run get-weights." in message


def test_empty_setting_says_nothing_is_configured(tmp_path):
    with pytest.raises(ArtifactError, match="no weights configured"):
        artifact.resolve("", cache_dir=tmp_path)


def test_download_is_cached_and_checked_by_name_hash(tmp_path, http_files):
    base, handler = http_files
    url = f"{base}/models/net-{DIGEST[:8]}.pth"
    first = artifact.resolve(url, cache_dir=tmp_path)
    second = artifact.resolve(url, cache_dir=tmp_path)
    assert first == second == tmp_path / f"net-{DIGEST[:8]}.pth"
    assert first.read_bytes() == PAYLOAD
    assert handler.hits == [f"/models/net-{DIGEST[:8]}.pth"]  # downloaded once


def test_full_digest_fragment_is_verified(tmp_path, http_files):
    base, _ = http_files
    path = artifact.resolve(f"{base}/models/plain.pth#sha256={DIGEST}", cache_dir=tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing_in_the_cache(tmp_path, http_files):
    base, _ = http_files
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        artifact.resolve(f"{base}/models/plain.pth#sha256={'0' * 64}", cache_dir=tmp_path)
    assert list(Path(tmp_path).iterdir()) == []


def test_unreachable_url_names_file_and_url(tmp_path, http_files):
    base, _ = http_files
    with pytest.raises(ArtifactError) as info:
        artifact.resolve(f"{base}/models/absent.pth", cache_dir=tmp_path, how_to_get="Fetch it.")
    assert "absent.pth" in str(info.value) and base in str(info.value) and "Fetch it." in str(info.value)


@pytest.fixture
def s3_client():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket="weights")
    yield client
    server.stop()


def test_s3_uri_downloads_through_the_given_client(tmp_path, s3_client):
    s3_client.put_object(Bucket="weights", Key="vgg/net.pth", Body=PAYLOAD)
    path = artifact.resolve("s3://weights/vgg/net.pth", cache_dir=tmp_path, s3=s3_client)
    assert path.read_bytes() == PAYLOAD


def test_s3_missing_object_and_missing_client(tmp_path, s3_client):
    with pytest.raises(ArtifactError, match="s3://weights/absent.pth"):
        artifact.resolve("s3://weights/absent.pth", cache_dir=tmp_path, s3=s3_client)
    with pytest.raises(ArtifactError, match="S3 settings"):
        artifact.resolve("s3://weights/x.pth", cache_dir=tmp_path / "other")
