"""Resolve a weight file or model artifact to a local path: a path, an ``s3://`` URI or an https URL.

Remote files are downloaded once into a cache directory and checked against a SHA-256: the
full digest given as ``#sha256=<hex>`` on the URI, or else the hex prefix in the file name
(``vgg19-dcbb9e9d.pth``), the convention torch.hub uses for torchvision's files. Nothing is
downloaded at import time; callers resolve when they build an engine.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from stylequeue.errors import ArtifactError

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_digest(uri: str) -> str | None:
    """The SHA-256 (or prefix of it) that ``uri`` promises, if any."""
    parsed = urlparse(uri)
    match = re.search(r"sha256=([a-f0-9]{8,64})", parsed.fragment)
    if match:
        return match.group(1)
    match = _HASH_IN_NAME.search(Path(parsed.path).name)
    return match.group(1) if match else None


def verify(path: Path, digest: str | None, *, source: str) -> None:
    if digest is None:
        return
    actual = sha256_of(path)
    if not actual.startswith(digest):
        raise ArtifactError(
            f"checksum mismatch for {path.name} from {source}: expected sha256 {digest}…, got {actual}"
        )


def _missing_message(name: str, where: str, how: str) -> str:
    return f"weights file {name!r} not found (looked in {where}). {how}"


REMOTE_SCHEMES = ("http", "https", "s3")


def local_path(uri: str, cache_dir: Path) -> Path:
    """Where ``uri``'s file lies on this machine: the path itself, or a remote file's cache entry."""
    parsed = urlparse(uri)
    if parsed.scheme in REMOTE_SCHEMES:
        return Path(cache_dir).expanduser() / (Path(parsed.path).name or "artifact")
    return Path(parsed.path if parsed.scheme == "file" else uri).expanduser()


def resolve(uri: str, *, cache_dir: Path, s3: Any | None = None, how_to_get: str = "") -> Path:
    """Return a local path holding the file ``uri`` names, downloading it into ``cache_dir`` once.

    ``s3`` is a boto3 S3 client (built by :func:`stylequeue.storage.make_s3_client`), needed only
    for ``s3://`` URIs. ``how_to_get`` is appended to the "missing" error to tell the user what to do.
    """
    if not uri:
        raise ArtifactError(f"no weights configured. {how_to_get}".strip())
    parsed = urlparse(uri)
    path = local_path(uri, cache_dir)
    if parsed.scheme in REMOTE_SCHEMES:
        return _cached_download(uri, parsed, path, s3, how_to_get)
    if not path.is_file():
        raise ArtifactError(_missing_message(path.name, str(path.resolve().parent), how_to_get))
    verify(path, expected_digest(uri) if "#" in uri else None, source=str(path))
    return path


def _cached_download(uri: str, parsed: Any, target: Path, s3: Any, how: str) -> Path:
    cache_dir, name = target.parent, target.name
    digest = expected_digest(uri)
    if target.is_file():
        verify(target, digest, source=str(target))
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Download next to the target and rename, so a crash never leaves a half file under the real name.
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with open(fd, "wb") as out:
            if parsed.scheme == "s3":
                _download_s3(parsed, out, s3, name, how)
            else:
                _download_http(uri.split("#")[0], out, name, cache_dir, how)
        verify(tmp, digest, source=uri)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _download_http(url: str, out: Any, name: str, cache_dir: Path, how: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            shutil.copyfileobj(response, out, _CHUNK)
    except (urllib.error.URLError, OSError) as exc:
        where = f"{cache_dir} and {url} ({exc})"
        raise ArtifactError(_missing_message(name, where, how)) from exc


def _download_s3(parsed: Any, out: Any, s3: Any, name: str, how: str) -> None:
    if s3 is None:
        raise ArtifactError(f"{name}: an s3:// URI needs S3 settings (STYLEQUEUE_S3_ENDPOINT …)")
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    try:
        s3.download_fileobj(bucket, key, out)
    except Exception as exc:  # botocore raises several unrelated types; all mean "not there"
        raise ArtifactError(_missing_message(name, f"s3://{bucket}/{key} ({exc})", how)) from exc
