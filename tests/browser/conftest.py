"""Fixtures for the browser tests: the built UI served by the running stack, and the system Chromium.

The UI is built (``npm run build``) when ``frontend/dist`` is missing or older than the sources,
right after collection and so before any test starts the session's ``stack``: the stack serves
``frontend/dist`` only if it exists when the stack starts. Every test's page records console errors (a test fails on any it did not
expect) and leaves a screenshot under ``test-artifacts/browser/``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
DIST = FRONTEND / "dist"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# Files whose change means the UI must be rebuilt.
SOURCES = (
    "src",
    "public",
    "index.html",
    "vite.config.ts",
    "svelte.config.js",
    "package.json",
    "package-lock.json",
)


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        path = FRONTEND / name
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def _needs_build() -> bool:
    index = DIST / "index.html"
    return not index.is_file() or index.stat().st_mtime < _newest_source_mtime()


def _npm(*args: str) -> str | None:
    """Run npm in frontend/; the error text when it fails or is missing, else None."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed: the browser tests need it to build the UI (scripts/bootstrap.sh)"
    result = subprocess.run([npm, *args], cwd=FRONTEND, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        return f"npm {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return None


def build_ui() -> str | None:
    """Build frontend/dist when it is missing or stale; the error text on failure."""
    if not _needs_build():
        return None
    if not (FRONTEND / "node_modules").is_dir():
        error = _npm("ci", "--no-audit", "--no-fund", "--loglevel=error")
        if error:
            return error
    return _npm("run", "build")


_build_error: list[str] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the UI once, before any test runs, when browser tests were selected and can run."""
    if CHROMIUM.exists() and any(item.get_closest_marker("browser") for item in session.items):
        error = build_ui()
        if error:
            _build_error.append(error)


@pytest.fixture(scope="session")
def ui_dist() -> Path:
    """``frontend/dist``, built (see :func:`pytest_collection_finish`) from the current sources."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing (apt-get install chromium); browser tests need the system Chromium"
        )
    if _build_error:
        pytest.fail(_build_error[0])
    error = build_ui()  # e.g. the sources changed since collection
    if error:
        pytest.fail(error)
    return DIST


@pytest.fixture(scope="session")
def ui_url(ui_dist: Path, stack) -> str:
    """Base URL of the running stack, which serves the built UI at ``/``."""
    if stack.ui_dir is None:
        pytest.fail("the stack started before frontend/dist was built, so it does not serve the UI")
    return stack.api_url


@pytest.fixture(scope="session")
def browser(ui_dist: Path) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class ConsoleLog:
    """Console errors and uncaught exceptions of a page; ``allow`` names expected ones."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._allowed: list[re.Pattern[str]] = []

    def record(self, text: str) -> None:
        self.errors.append(text)

    def allow(self, pattern: str) -> None:
        self._allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self._allowed)]

    def watch(self, page) -> None:
        """Record this page's console errors and uncaught exceptions."""
        page.on(
            "console",
            lambda msg: self.record(f"{msg.text} @ {msg.location.get('url', '')}")
            if msg.type == "error"
            else None,
        )
        page.on("pageerror", lambda error: self.record(f"uncaught: {error}"))


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


def _artifact_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)


@pytest.fixture
def context(browser) -> Iterator:
    """A fresh browser profile (empty localStorage) with downloads enabled."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, console: ConsoleLog, request: pytest.FixtureRequest) -> Iterator:
    """A page that records console errors; fails the test on unexpected ones; screenshot at the end."""
    page = context.new_page()
    console.watch(page)
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{_artifact_name(request)}.png"), full_page=True)
    unexpected = console.unexpected()
    assert not unexpected, f"console errors: {unexpected}"


@pytest.fixture
def shoot(page, request: pytest.FixtureRequest):
    """``shoot(step)`` keeps a full-page screenshot of this step under test-artifacts/browser/."""

    def take(step: str, target=None) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{_artifact_name(request)}--{step}.png"
        (target or page).screenshot(path=str(path), full_page=True)
        return path

    return take
