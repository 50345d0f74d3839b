"""The web UI in the system Chromium against the real running stack (Magenta's real blend network,
Gatys on random weights, small images).

Covers issue 5's browser checks: upload the sample images, run a blend job and a short Gatys job,
see snapshots appear while Gatys runs, download the result and the ZIP (and check the ZIP's
entries), cancel a job, get a validation error for a non-image, no console errors, and the form at
phone width. Screenshots are kept under test-artifacts/browser/.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CONTENT = SAMPLES / "content" / "chelsea.png"
STYLE = SAMPLES / "style" / "wave.jpg"
STYLE2 = SAMPLES / "style" / "starry_night.jpg"
JOB_TIMEOUT_MS = 60_000


def open_form(page, ui_url: str) -> None:
    page.goto(f"{ui_url}/")
    page.get_by_role("button", name=re.compile("^Stylize with")).wait_for()


def choose_images(page, *styles: Path) -> None:
    page.locator("#content-input").set_input_files(CONTENT)
    for slot, style in zip(("#style1-input", "#style2-input"), styles, strict=False):
        page.locator(slot).set_input_files(style)
    page.get_by_role("img", name="Preview of content image").wait_for()


def set_params(page, **values: object) -> None:
    """Open the advanced panel and type each value into its field."""
    panel = page.locator("details.advanced")
    if panel.get_attribute("open") is None:
        panel.locator("summary").click()
    for name, value in values.items():
        page.locator(f"#param-{name}").fill(str(value))


def submit(page) -> str:
    """Submit the form; the page moves to the job's URL. Returns the job id."""
    page.get_by_role("button", name=re.compile("^Stylize with")).click()
    page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]+$"))
    return page.url.rsplit("/", 1)[-1]


def status(page):
    return page.get_by_test_id("job-status")


def download(page, test_id: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_test_id(test_id).click()
    return Path(info.value.path()).read_bytes()


def test_blend_job_result_zip_history_and_share_link(page, ui_url, browser, console, shoot):
    open_form(page, ui_url)
    page.get_by_role("radio", name=re.compile("blend", re.I)).check()
    choose_images(page, STYLE, STYLE2)
    set_params(page, image_size=256)
    page.locator("#param-ratio").fill("0.7")  # the blend ratio slider
    shoot("form")
    job_id = submit(page)

    status(page).filter(has_text="Done").wait_for(timeout=JOB_TIMEOUT_MS)
    page.get_by_test_id("before-after").wait_for()
    shoot("done")

    raw = download(page, "download-result")
    result = Image.open(io.BytesIO(raw))
    assert result.format == "PNG" and max(result.size) == 256
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "blend-result.png").write_bytes(raw)
    # A real picture: not a flat square (what random weights gave), and not the photo handed back.
    pixels = np.asarray(result.convert("RGB"), dtype=np.float64)
    photo = np.asarray(Image.open(CONTENT).convert("RGB").resize(result.size), dtype=np.float64)
    assert pixels.std() > 30 and np.abs(pixels - photo).mean() > 20
    with zipfile.ZipFile(io.BytesIO(download(page, "download-zip"))) as archive:
        names = archive.namelist()
        params = json.loads(archive.read("params.json"))
    assert "result.png" in names and "params.json" in names
    assert params["mode"] == "blend"
    assert params["params"]["ratio"] == pytest.approx(0.7) and params["params"]["image_size"] == 256

    page.get_by_role("link", name="History").click()
    entry = page.get_by_test_id("history").locator("li", has_text=job_id[:8])
    entry.get_by_text("Done").wait_for()
    assert entry.locator("img").count() >= 1  # content (and result) thumbnails
    shoot("history")

    # The job's URL works in another browser profile, with no history of its own.
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        shared = other.new_page()
        console.watch(shared)
        shared.goto(f"{ui_url}/#/jobs/{job_id}")
        status(shared).filter(has_text="Done").wait_for()
        # No local history there: the "before" picture is the server's stored content input.
        shared.get_by_test_id("before-after").wait_for()
    finally:
        other.close()


def test_gatys_job_shows_snapshots_and_loss_while_running(page, ui_url, shoot):
    open_form(page, ui_url)
    page.get_by_role("radio", name=re.compile("gatys", re.I)).check()
    choose_images(page, STYLE)
    # Long enough (a few seconds even on a fast machine) that the page sees it running.
    set_params(page, image_size=48, total_iterations=240, snapshot_every=60)
    submit(page)

    # A snapshot in the filmstrip while the badge still says Running: they appear live.
    page.wait_for_function(
        """() => document.querySelector('[data-testid=job-status]')?.textContent.trim() === 'Running'
              && document.querySelectorAll('[data-testid=filmstrip] li').length >= 1""",
        timeout=JOB_TIMEOUT_MS,
    )
    assert "iteration" in page.get_by_test_id("iterations").inner_text()
    shoot("running")

    status(page).filter(has_text="Done").wait_for(timeout=JOB_TIMEOUT_MS)
    page.get_by_test_id("loss-chart").wait_for()
    strip = page.get_by_test_id("filmstrip").locator("li")
    assert strip.count() == 4  # iterations 60, 120, 180, 240
    strip.first.get_by_role("button").click()  # scrub back to the first snapshot
    assert page.get_by_test_id("snapshot-main").get_attribute("alt") == "Snapshot at iteration 60"
    shoot("done")

    with zipfile.ZipFile(io.BytesIO(download(page, "download-zip"))) as archive:
        names = archive.namelist()
    snaps = [n for n in names if n.startswith("snapshots/")]
    assert snaps == [f"snapshots/{i:06d}.jpg" for i in (60, 120, 180, 240)]
    assert {"result.png", "params.json"} <= set(names)


def test_cancel_a_running_job(page, ui_url, shoot):
    open_form(page, ui_url)
    choose_images(page, STYLE)
    set_params(page, image_size=32, total_iterations=5000, snapshot_every=1000)
    submit(page)
    status(page).filter(has_text="Running").wait_for(timeout=JOB_TIMEOUT_MS)
    page.get_by_role("button", name="Cancel job").click()
    status(page).filter(has_text="Cancelled").wait_for(timeout=JOB_TIMEOUT_MS)
    assert page.get_by_role("button", name="Cancel job").count() == 0
    assert "started" in page.locator(".meta").inner_text()  # it was running, not merely queued
    shoot("cancelled")


def test_validation_errors_from_the_browser_and_the_server(page, ui_url, console, tmp_path, shoot):
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    open_form(page, ui_url)

    # A text file: refused by type before anything is sent.
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    page.locator("#content-input").set_input_files(notes)
    page.get_by_text(re.compile("“notes.txt” is not a supported image")).wait_for()
    page.locator("#style1-input").set_input_files(STYLE)
    page.get_by_role("button", name=re.compile("^Stylize with")).click()
    page.get_by_text("Fix the images marked below.").wait_for()
    shoot("not-an-image")

    # Text named .png passes the type check, but the browser cannot decode it.
    fake = tmp_path / "fake.png"
    fake.write_text("still not an image")
    page.locator("#content-input").set_input_files(fake)
    page.get_by_text("“fake.png” could not be read as an image.").wait_for()
    assert posts == []

    # A rule only the server checks (one blend weight per style image): its error comes back in
    # plain words, next to the setting it names.
    page.locator("#content-input").set_input_files(CONTENT)
    set_params(page, image_size=32, style_blend_weights="1, 1")
    console.allow(r"Failed to load resource: the server responded with a status of 4\d\d")
    page.get_by_role("button", name=re.compile("^Stylize with")).click()
    page.locator("#param-style_blend_weights-error").wait_for()
    assert len(posts) == 1
    assert page.locator("#form-error").inner_text().strip().startswith("⚠ Style blend weights:")
    assert re.search(r"\b2\b.*\b1\b", page.locator("#param-style_blend_weights-error").inner_text())
    shoot("server-side")


def test_form_at_phone_width(browser, ui_url, console, shoot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        console.watch(phone)
        open_form(phone, ui_url)
        choose_images(phone, STYLE)
        for name in ("Content image", "Style image"):
            assert phone.get_by_text(name, exact=True).first.is_visible()
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone"
        button = phone.get_by_role("button", name=re.compile("^Stylize with")).bounding_box()
        assert button["x"] >= 0 and button["x"] + button["width"] <= 390
        shoot("form", phone)
    finally:
        context.close()
    assert console.unexpected() == []


def test_keyboard_only(page, ui_url):
    open_form(page, ui_url)
    page.get_by_role("radio", name=re.compile("gatys", re.I)).focus()
    page.keyboard.press("ArrowRight")  # radio group: the arrow key moves to the next engine
    assert page.get_by_role("radio", name=re.compile("blend", re.I)).is_checked()
    page.locator("details.advanced summary").focus()
    page.keyboard.press("Enter")
    assert page.locator("details.advanced").get_attribute("open") is not None
    page.locator("#param-ratio").focus()
    page.keyboard.press("ArrowRight")
    assert float(page.locator("#param-ratio").input_value()) > 0.5
    # Every image slot's file input is reachable with Tab (it is visually hidden, not removed).
    page.locator("#content-input").focus()
    assert page.evaluate("document.activeElement.id") == "content-input"
    assert (
        page.evaluate(
            "getComputedStyle(document.activeElement.closest('.drop').querySelector('.drop-target')).boxShadow"
        )
        != "none"
    )
