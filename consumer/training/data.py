"""Training-data bootstrap: a few thousand images from COCO 2017 train and WikiArt, not 45 GB.

Both sets are published as single large zip archives (COCO's ``train2017.zip``, 18 GB; the
ArtGAN ``wikiart.zip``, 25 GB). A zip keeps its table of contents at the end, so this reads the
table and then only the chosen members through HTTP range requests — the same ``zipfile`` code
that reads a local archive, over a seekable HTTP file. A local path to an archive works too.
Members are chosen by a seeded random sample, so re-running fetches the same images, and
images already on disk are kept (an interrupted bootstrap resumes).

Layout written under ``--out``: ``content/`` (COCO), ``style/`` (WikiArt) and ``SOURCES.json``
(archive URL and member name of every file, for attribution).
"""

from __future__ import annotations

import io
import json
import logging
import random
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from stylequeue.errors import ArtifactError, ValidationError

log = logging.getLogger(__name__)

COCO_TRAIN_URL = "http://images.cocodataset.org/zips/train2017.zip"
WIKIART_URL = "http://web.fsktm.um.edu.my/~cschan/source/ICIP2017/wikiart.zip"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_BUFFER = 256 * 1024  # one range request fetches at least this much


class HTTPRangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP: each read is one ``Range: bytes=a-b`` request."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        super().__init__()
        self.url, self.timeout, self._pos = url, timeout, 0
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length")
                ranges = response.headers.get("Accept-Ranges", "")
        except OSError as exc:  # urllib's URLError is one
            raise ArtifactError(f"cannot reach {self.url} ({exc})") from exc
        if length is None or "bytes" not in ranges:
            raise ArtifactError(
                f"{self.url} does not serve byte ranges (Accept-Ranges: {ranges or 'absent'}); "
                "download the archive and pass its local path instead"
            )
        self.length = int(length)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:
        first, last = self._pos, min(self._pos + len(buffer), self.length) - 1
        if last < first:
            return 0
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={first}-{last}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if response.status != 206:
                    raise ArtifactError(f"{self.url} answered {response.status} to a range request")
                data = response.read()
        except OSError as exc:
            raise ArtifactError(f"reading {self.url} bytes {first}-{last} failed ({exc})") from exc
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_archive(location: str) -> BinaryIO:
    """A seekable binary file for an http(s) URL or a local path."""
    if location.startswith(("http://", "https://")):
        return io.BufferedReader(HTTPRangeFile(location), buffer_size=_BUFFER)
    path = Path(location).expanduser()
    if not path.is_file():
        raise ArtifactError(f"archive not found: {path}")
    return open(path, "rb")


@dataclass(frozen=True)
class Fetched:
    """One image written by :func:`fetch_subset`."""

    path: str
    archive: str
    member: str


def choose_members(names: list[str], count: int, seed: int) -> list[str]:
    """A seeded random sample of the image members (all of them if there are fewer)."""
    images = sorted(n for n in names if n.lower().endswith(IMAGE_SUFFIXES) and not n.endswith("/"))
    if count >= len(images):
        return images
    return random.Random(seed).sample(images, count)


def fetch_subset(location: str, count: int, out_dir: Path, *, seed: int = 0) -> list[Fetched]:
    """Copy ``count`` images of the zip at ``location`` into ``out_dir`` (flat, names kept unique)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fetched = []
    with open_archive(location) as raw:
        try:
            archive = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as exc:
            raise ArtifactError(f"{location} is not a zip archive ({exc})") from exc
        with archive:
            for member in choose_members(archive.namelist(), count, seed):
                target = out_dir / member.replace("/", "__")
                if not target.is_file():  # already fetched by an interrupted run
                    _extract(archive, member, target)
                fetched.append(Fetched(str(target), location, member))
    log.info("fetched %d images from %s into %s", len(fetched), location, out_dir)
    return fetched


def _extract(archive: zipfile.ZipFile, member: str, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.part")
    with archive.open(member) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, _BUFFER)
    tmp.replace(target)


def bootstrap(
    out: Path,
    *,
    coco: int,
    wikiart: int,
    coco_url: str = COCO_TRAIN_URL,
    wikiart_url: str = WIKIART_URL,
    seed: int = 0,
) -> dict[str, list[Fetched]]:
    """Fetch ``coco`` content and ``wikiart`` style images under ``out``; write ``SOURCES.json``."""
    for name, count in (("coco", coco), ("wikiart", wikiart)):
        if count < 1:
            raise ValidationError(f"must be at least 1, got {count}", field=name)
    result = {
        "content": fetch_subset(coco_url, coco, out / "content", seed=seed),
        "style": fetch_subset(wikiart_url, wikiart, out / "style", seed=seed),
    }
    sources = {kind: [vars(f) for f in files] for kind, files in result.items()}
    (out / "SOURCES.json").write_text(json.dumps(sources, indent=2))
    return result
