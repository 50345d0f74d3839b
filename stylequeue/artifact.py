"""Resolve a weight file or model artifact to a local path: a path, an ``s3://`` URI or an https URL.

Remote files are downloaded once into a cache directory and checked against a SHA-256: the
full digest given as ``#sha256=<hex>`` on the URI, or else the hex prefix in the file name
(``vgg19-dcbb9e9d.pth``), the convention torch.hub uses for torchvision's files. Nothing is
downloaded at import time; callers resolve when they build an engine.

:func:`download` is the one downloader (``resolve`` and ``stylequeue models pull`` both use it):
bytes go to ``<name>.part`` next to the target, an interrupted HTTP transfer resumes from there
with a ``Range`` request, and only a file that passed its checks is renamed to the real name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from stylequeue.errors import ArtifactError

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.[A-Za-z0-9]+$")
_CHUNK = 1 << 20
TIMEOUT_S = 30  # per socket operation, not per file: a 550 MB download may take minutes
RETRY_PAUSE_S = 0.5
MAX_ATTEMPTS = 50  # resumed attempts of one download, each of which must have made progress


class ChecksumMismatch(ArtifactError):
    """A file's size or SHA-256 is not the one expected: its bytes are wrong, not merely missing."""


Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def expected_digest(uri: str) -> str | None:
    """The SHA-256 (or prefix of it) that ``uri`` promises, if any."""
    parsed = urlparse(uri)
    in_fragment = re.search(r"sha256=([a-f0-9]{8,64})", parsed.fragment)
    match = in_fragment or _HASH_IN_NAME.search(Path(parsed.path).name)
    return match.group(1) if match else None


def check(path: Path, *, sha256: str | None, size: int | None = None, source: str) -> None:
    """Size (cheap, first) and SHA-256 (full digest or prefix) of ``path``; ArtifactError if either is off."""
    if size is not None and path.stat().st_size != size:
        raise ChecksumMismatch(
            f"size mismatch for {path.name} from {source}: expected {size} bytes, got {path.stat().st_size}"
        )
    if sha256 and not (actual := sha256_of(path)).startswith(sha256):
        raise ChecksumMismatch(
            f"checksum mismatch for {path.name} from {source}: expected sha256 {sha256}…, got {actual}"
        )


# --- digests recorded next to a file -------------------------------------------------------
# Where no full digest is published (only the prefix in the name), the first verified download
# records the digest it got, in ``sha256sum`` format, so later checks compare every byte.


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def record_digest(path: Path, digest: str) -> None:
    """Write ``<digest>  <name>`` beside ``path`` (atomically: a reader never sees half a line)."""
    tmp = sidecar(path).with_name(sidecar(path).name + ".tmp")
    tmp.write_text(f"{digest}  {path.name}\n")
    tmp.replace(sidecar(path))


def recorded_digest(path: Path) -> str | None:
    try:
        text = sidecar(path).read_text().split()
    except OSError:
        return None
    return text[0] if text and re.fullmatch(r"[a-f0-9]{64}", text[0]) else None


def _missing_message(name: str, where: str, how: str) -> str:
    return f"weights file {name!r} not found (looked in {where}). {how}".strip()


REMOTE_SCHEMES = ("http", "https", "s3")


def local_path(uri: str, cache_dir: Path) -> Path:
    """Where ``uri``'s file lies on this machine: the path itself, or a remote file's cache entry."""
    parsed = urlparse(uri)
    if parsed.scheme in REMOTE_SCHEMES:
        return Path(cache_dir).expanduser() / (Path(parsed.path).name or "artifact")
    return Path(parsed.path if parsed.scheme == "file" else uri).expanduser()


def part_path(target: Path) -> Path:
    """Where an unfinished download of ``target`` lies (resumed from there)."""
    return target.with_name(target.name + ".part")


def resolve(uri: str, *, cache_dir: Path, s3: Any | None = None, how_to_get: str = "") -> Path:
    """Return a local path holding the file ``uri`` names, downloading it into ``cache_dir`` once.

    ``s3`` is a boto3 S3 client (built by :func:`stylequeue.storage.make_s3_client`), needed only
    for ``s3://`` URIs. ``how_to_get`` is appended to the "missing" error to tell the user what to do.
    """
    if not uri:
        raise ArtifactError(f"no weights configured. {how_to_get}".strip())
    path = local_path(uri, cache_dir)
    if urlparse(uri).scheme in REMOTE_SCHEMES:
        return download(uri.split("#")[0], path, sha256=expected_digest(uri), s3=s3, how=how_to_get)
    if not path.is_file():
        raise ArtifactError(_missing_message(path.name, str(path.resolve().parent), how_to_get))
    check(path, sha256=expected_digest(uri) if "#" in uri else None, source=str(path))
    return path


def download(
    url: str,
    target: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    s3: Any | None = None,
    progress: Progress | None = None,
    how: str = "",
) -> Path:
    """``target``, downloaded from ``url`` (https or ``s3://``) unless it is there; checked either way.

    Nothing unchecked is ever left under the real name: bytes go to :func:`part_path`, which a
    failed transfer keeps (the next call resumes it) and a failed check deletes.
    """
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.parent):
            if not target.is_file():  # else another process finished it while this one waited
                part = part_path(target)
                try:
                    _fill(url, part, target.name, size, s3, progress, how)
                    check(part, sha256=sha256, size=size, source=url)
                except ChecksumMismatch:
                    part.unlink(missing_ok=True)
                    raise
                part.replace(target)
                return target
    check(target, sha256=sha256, size=size, source=str(target))
    return target


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory``: processes sharing a cache never write one .part twice."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system without flock: go on unlocked
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _fill(
    url: str, part: Path, name: str, size: int | None, s3: Any, progress: Progress | None, how: str
) -> None:
    """Download into ``part``; an s3:// object comes whole (no resume): boto3 renames its temporary
    file to ``part`` once complete, so a failure leaves nothing."""
    parsed = urlparse(url)
    if parsed.scheme != "s3":
        _HttpDownload(url, part, name, size, how, progress).run()
        return
    if s3 is None:
        raise ArtifactError(f"{name}: an s3:// URI needs S3 settings (STYLEQUEUE_S3_ENDPOINT …)")
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    try:
        s3.download_file(bucket, key, str(part))
    except Exception as exc:  # botocore raises several unrelated types; all mean "not there"
        raise ArtifactError(_missing_message(name, f"s3://{bucket}/{key} ({exc})", how)) from exc


# --- HTTP, resumable -------------------------------------------------------------------------


@dataclass
class _HttpDownload:
    """One file fetched into ``part`` over HTTP, resuming from what ``part`` already holds."""

    url: str
    part: Path
    name: str
    size: int | None  # expected, when the catalogue knows it
    how: str
    progress: Progress | None

    def run(self) -> None:
        """A transfer cut off part-way is resumed at once, for as long as each attempt gets further;
        an attempt that gets nothing (no network, 404) fails at once, keeping what ``part`` holds."""
        reason = ""
        for attempt in range(MAX_ATTEMPTS):
            before = _size(self.part)
            try:
                if self.transfer():
                    return
                reason = "the connection closed before the end of the file"
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = str(getattr(exc, "reason", None) or exc)
                if _size(self.part) <= before:
                    raise self.failed(reason) from exc
            if _size(self.part) <= before:
                break
            time.sleep(RETRY_PAUSE_S * min(attempt + 1, 4))
        raise self.failed(reason)

    def failed(self, reason: str) -> ArtifactError:
        """The error for a download that got nowhere (an empty ``part`` is not kept)."""
        have = _size(self.part)
        if have:
            return ArtifactError(
                f"{self.name}: download from {self.url} stopped at {have} bytes ({reason}); "
                f"{self.part.name} keeps them and the next try resumes from there. {self.how}".strip()
            )
        self.part.unlink(missing_ok=True)
        return ArtifactError(
            f"{self.name}: not in {self.part.parent} and could not be fetched from {self.url} ({reason}). "
            f"{self.how}".strip()
        )

    def transfer(self) -> bool:
        """One request appending to ``part`` (``Range`` from its size); True when the file is complete."""
        have = _size(self.part)
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not have:
                raise
            return self.range_not_satisfiable(exc)
        with response:
            offset, total = _resume_point(response, have)
            # Another size than the expected one is another file: refused before its body, not after 500 MB.
            if self.size is not None and total is not None and total != self.size:
                raise ChecksumMismatch(
                    f"size mismatch for {self.name} from {self.url}: expected {self.size} bytes, "
                    f"the server has {total}"
                )
            with open(self.part, "ab" if offset else "wb") as out:
                done = offset
                for block in iter(lambda: response.read(_CHUNK), b""):
                    out.write(block)
                    done += len(block)
                    if self.progress:
                        self.progress(done, total)
        return total is None or done >= total

    def range_not_satisfiable(self, exc: urllib.error.HTTPError) -> bool:
        """``part`` holds the whole file already (a crash came before the rename), or more: start over."""
        match = re.match(r"bytes \*/(\d+)", exc.headers.get("Content-Range", ""))
        if match and int(match.group(1)) == _size(self.part):
            return True
        self.part.unlink()
        return self.transfer()


def _resume_point(response: Any, have: int) -> tuple[int, int | None]:
    """Where the body starts in the file (0 when the server ignored ``Range``) and the file's size."""
    length = response.headers.get("Content-Length")
    if response.status != 206:
        return 0, int(length) if length else None
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != have:
        raise ArtifactError(f"{response.url}: answered a resume request with a different range")
    total = match.group(2)
    return have, int(total) if total != "*" else (have + int(length) if length else None)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
