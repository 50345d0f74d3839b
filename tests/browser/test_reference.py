"""The interactive API reference at /api/v1/docs renders in Chromium with nothing fetched off the host."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_the_api_reference_renders_offline(page, ui_url):
    host = urlsplit(ui_url).netloc
    outside: list[str] = []

    def only_this_host(route):
        if urlsplit(route.request.url).netloc != host:
            outside.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", only_this_host)
    page.goto(f"{ui_url}/api/v1/docs")
    page.locator(".swagger-ui .info .title").get_by_text("stylequeue API").wait_for(timeout=30_000)
    # The operations come from the generated document: submitting a job is listed with its id.
    page.locator("#operations-default-submitJob, [id$='-submitJob']").first.wait_for(timeout=30_000)
    assert outside == [], f"the reference fetched from outside the host: {outside}"
