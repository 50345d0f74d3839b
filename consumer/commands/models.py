"""``stylequeue models list | pull NAME… | verify [NAME…]``: the weight files of the catalogue.

The catalogue (:mod:`consumer.engines.catalogue`) says what each file is, where it comes from and
what checks it; this module only shows, fetches and checks. Fetching goes through
:func:`stylequeue.artifact.download`, the resolver's own downloader (resumable ``.part``, checks,
atomic rename), into ``STYLEQUEUE_CACHE_DIR``: the place an engine configured with the file's URL
looks first, so a pulled file is used without network. ``--to s3://bucket/prefix`` copies the
checked file to S3 so the other machines of a cluster pull it from there (``--from`` the same URI).

No torch here: listing and pulling must not load an engine.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from consumer.engines.catalogue import ENTRIES, FULL_DIGEST, WeightFile, cached_path, entry, packaged_path
from stylequeue import artifact
from stylequeue.config import EngineConfig, load
from stylequeue.errors import ArtifactError

BASE_URL_SETTING = "STYLEQUEUE_MODELS_BASE_URL"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, pull and verify the weight files the engines use",
        description="The catalogue of weight files: where each one is, fetching it, checking it.",
    )
    actions = parser.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every file: size, where it is now, licence, who uses it")
    listing.add_argument("--markdown", action="store_true", help="the README's table instead")
    pull = actions.add_parser("pull", help="download (resuming), check and optionally mirror files")
    pull.add_argument("names", nargs="+", metavar="NAME", help="catalogue names ('models list')")
    pull.add_argument("--to", metavar="s3://BUCKET/PREFIX", help="also copy each checked file there")
    pull.add_argument(
        "--from",
        dest="source",
        metavar="URL_PREFIX",
        help=f"fetch <URL_PREFIX>/<file> (https:// or s3://) instead of the public URL (default: {BASE_URL_SETTING})",
    )
    verify = actions.add_parser("verify", help="check size and SHA-256 of the files present")
    verify.add_argument("names", nargs="*", metavar="NAME", help="only these (default: every file present)")
    for sub, func in ((listing, run_list), (pull, run_pull), (verify, run_verify)):
        sub.add_argument("--cache-dir", type=Path, help="download cache (default: STYLEQUEUE_CACHE_DIR)")
        sub.set_defaults(func=func)


# --- where a file is ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where a catalogue file is on this machine now."""

    state: str  # "packaged", "cached", "partial" or "missing"
    path: Path | None

    def describe(self, item: WeightFile) -> str:
        if self.state == "partial" and self.path is not None:
            size = self.path.stat().st_size
            share = f" of {human_size(item.size)}" if item.size else ""
            return f"partial: {human_size(size)}{share} in {self.path} ('{item.pull_command}' resumes)"
        return f"{self.state}: {self.path}" if self.path else self.state


def locate(item: WeightFile, cache_dir: Path) -> Place:
    """The packaged file, the file in ``cache_dir``, an unfinished download of it, or nothing."""
    if item.packaged:
        try:
            return Place("packaged", packaged_path(item.name))
        except ArtifactError:
            return Place("missing", None)
    target = cached_path(item, cache_dir)
    if target.is_file():
        return Place("cached", target)
    part = artifact.part_path(target)
    return Place("partial", part) if part.is_file() else Place("missing", None)


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


# --- checks ------------------------------------------------------------------------------------


def expected_digest(item: WeightFile, path: Path) -> str:
    """What ``path`` must hash to: the digest a pull recorded beside it if it agrees with the catalogue's
    (a full digest agrees only with itself), else the catalogue's full digest or prefix."""
    recorded = artifact.recorded_digest(path)
    return recorded if recorded and recorded.startswith(item.sha256) else item.sha256


def check_file(item: WeightFile, path: Path) -> str:
    """Check ``path`` against ``item``; how thoroughly, for the report. ArtifactError names the file."""
    digest = expected_digest(item, path)
    try:
        artifact.check(path, sha256=digest, size=item.size, source=str(path))
    except ArtifactError as exc:
        if item.packaged:
            remedy = f"reinstall it: 'pip install --force-reinstall {item.package}'"
        else:
            remedy = f"delete it and run '{item.pull_command}'"
        raise ArtifactError(f"{exc}; {remedy}") from None
    if len(digest) == FULL_DIGEST:
        return "sha256 ok"
    return f"sha256 prefix {digest} ok (no full digest known)" if digest else "not checked (no digest known)"


# --- pull --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pulled:
    path: Path
    checked: str  # what was checked, for the report
    mirrored: str = ""  # the s3:// URI it was copied to


def pull(
    item: WeightFile,
    cache_dir: Path,
    *,
    base: str = "",
    s3: Any | None = None,
    mirror: str = "",
    progress: artifact.Progress | None = None,
) -> Pulled:
    """Make ``item`` present and checked (downloading it into ``cache_dir``), then mirror it if asked."""
    if item.packaged:
        path = packaged_path(item.name)
        checked = check_file(item, path)
    else:
        path, checked = _download(item, cache_dir, base, s3, progress)
    return Pulled(path, checked, upload(path, mirror, s3) if mirror else "")


def _download(
    item: WeightFile, cache_dir: Path, base: str, s3: Any, progress: artifact.Progress | None
) -> tuple[Path, str]:
    """Download (or find) and check the file; record its full digest where only a prefix is published."""
    url = f"{base.rstrip('/')}/{item.filename}" if base else item.url  # the public URL, or a mirror's
    target = cached_path(item, cache_dir)
    how = (
        f"Pull it where the network reaches {urlparse(url).netloc or url}, or from a mirror with "
        f"'{item.pull_command} --from URL_PREFIX' ({BASE_URL_SETTING})."
    )
    expected = expected_digest(item, target)
    try:
        path = artifact.download(
            url, target, sha256=expected, size=item.size, s3=s3, progress=progress, how=how
        )
    except artifact.ChecksumMismatch as exc:
        if target.is_file():  # a file that was already there: not ours to delete
            raise ArtifactError(f"{exc}; delete it and run '{item.pull_command}' again") from None
        raise ArtifactError(f"{exc}; nothing was kept. Is {url} the right source?") from None
    if len(expected) == FULL_DIGEST:
        return path, "sha256 ok"
    artifact.record_digest(path, artifact.sha256_of(path))
    found = f"sha256 prefix {expected} ok" if expected else "no digest known"
    return path, f"{found}; full digest recorded in {artifact.sidecar(path).name}"


def upload(path: Path, dest: str, s3: Any) -> str:
    """Copy ``path`` to ``<dest>/<file name>`` in S3: where ``pull --from <dest>`` fetches it."""
    parsed = urlparse(dest)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ArtifactError(f"expected s3://BUCKET/PREFIX, got {dest!r}")
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    key = f"{prefix}/{path.name}" if prefix else path.name
    try:
        s3.upload_file(str(path), bucket, key)
    except Exception as exc:  # botocore's errors share no useful base class
        raise ArtifactError(f"{path.name}: could not copy it to s3://{bucket}/{key} ({exc})") from exc
    return f"s3://{bucket}/{key}"


class Bar:
    """A tqdm bar per file, started at the first report, so a resumed download starts part-way."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=done, desc=self.label, unit="B", unit_scale=True, file=sys.stderr
            )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- the sub-commands ---------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> tuple[Path, str]:
    """The cache directory (``--cache-dir`` over STYLEQUEUE_CACHE_DIR) and the mirror base URL."""
    config = load(EngineConfig)
    return config.cache_dir if args.cache_dir is None else args.cache_dir, config.models_base_url


def markdown_table() -> str:
    """The README's table of weight files, generated so it cannot drift from the catalogue."""
    lines = ["| name | file | size | SHA-256 | licence | used by |", "| --- | --- | --- | --- | --- | --- |"]
    for item in ENTRIES:
        digest = {"full": f"`{item.sha256[:16]}…`", "prefix": f"`{item.sha256}…` (name prefix only)"}
        origin = f"[{item.filename}]({item.url})" if item.url else f"`{item.filename}` (in `{item.package}`)"
        cells = [f"`{item.name}`", origin, human_size(item.size), digest.get(item.digest_kind, "unknown")]
        lines.append("| " + " | ".join(cells + [item.licence, item.used_by]) + " |")
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown_table())
        return 0
    cache_dir, _ = _settings(args)
    rows = [["NAME", "FILE", "SIZE", "WHERE", "LICENCE", "USED BY"]]
    for item in ENTRIES:
        where = locate(item, cache_dir).describe(item)
        rows.append([item.name, item.filename, human_size(item.size), where, item.licence, item.used_by])
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]  # each as wide as its widest cell
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from stylequeue.storage import s3_client_from_env

    cache_dir, base = _settings(args)
    base = base if args.source is None else args.source
    items = [entry(name) for name in args.names]  # every name checked before anything downloads
    s3 = s3_client_from_env() if args.to or base.startswith("s3://") else None
    for item in items:
        with contextlib.closing(Bar(item.filename)) as bar:
            done = pull(item, cache_dir, base=base, s3=s3, mirror=args.to or "", progress=bar)
        mirrored = f", copied to {done.mirrored}" if done.mirrored else ""
        print(f"{item.name}: {done.path} ({done.checked}{mirrored})")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    cache_dir, _ = _settings(args)
    items = [entry(name) for name in args.names] if args.names else list(ENTRIES)
    problems = []
    for item in items:
        try:
            print(f"{item.name}: {verify_one(item, cache_dir, required=bool(args.names))}")
        except ArtifactError as exc:
            print(f"{item.name}: FAILED")
            problems.append(str(exc))
    if problems:
        raise ArtifactError("; ".join(problems))
    return 0


def verify_one(item: WeightFile, cache_dir: Path, *, required: bool) -> str:
    """The check's outcome for the report; a missing file is an error only when it was asked for."""
    place = locate(item, cache_dir)
    if place.state in ("packaged", "cached") and place.path is not None:
        return f"{place.path} ({check_file(item, place.path)})"
    if required:
        raise ArtifactError(f"{item.filename} is {place.describe(item)}; run '{item.pull_command}'")
    return place.describe(item)


if __name__ == "__main__":
    # ``stylequeue models …`` without the other sub-commands' modules: an image's weights stage runs
    # ``python -m consumer.commands.models pull NAME`` with only the catalogue and stylequeue/ copied.
    from launcher import cli

    sys.exit(cli.main(["models", *sys.argv[1:]], modules=("consumer.commands.models",)))
