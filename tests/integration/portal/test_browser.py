"""A real browser (Debian's Chromium through Playwright) against the real portal process.

The catalog is seeded the way production fills it: events for a handful of
corpus photos published to RabbitMQ and recorded by the portal's consumer,
with real thumbnails in a tmp store. The gallery screenshot is kept in
``test-artifacts/portal-gallery.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from dp3.broker import Publisher
from tests.browser import ARTIFACTS, chromium
from tests.integration.portal.conftest import PASSWORD
from tests.integration.portal.running import RunningPortal
from tests.rabbit import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture
def portal(site, amqp_url: str, mongo_url: str, db_name: str, dp3_home: Path) -> Iterator[RunningPortal]:
    env = {
        "DP3_HOME": str(dp3_home),
        "DP3_MONGO_URL": mongo_url,
        "DP3_MONGO_DATABASE": db_name,
        "DP3_AMQP_URL": amqp_url,
        "DP3_STORES": ",".join(str(store) for store in site.stores),
        "DP3_STAGING": str(site.staging),
        "DP3_ADMIN_PASSWORD": PASSWORD,
    }
    running = RunningPortal(env, dp3_home / "portal.log")
    try:
        yield running
    finally:
        running.stop()


def test_a_researcher_logs_in_browses_filters_opens_downloads_and_logs_out(
    browser: Browser, portal: RunningPortal, site, amqp_url: str, corpus: Path
) -> None:
    publisher = Publisher(amqp_url)
    try:
        for entry in site.events:
            publisher.publish(entry)
    finally:
        publisher.close()

    def recorded() -> bool:
        stats = httpx.get(portal.url + "/api/stats", auth=("admin", PASSWORD), timeout=5).json()
        return bool(stats["Collected"] == 5 and stats["Failed"] == 1)

    wait_for(recorded, 30, "the portal to record the published events")

    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(portal.url + "/")
    expect(page).to_have_url(portal.url + "/login?next=%2F")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(portal.url + "/")

    tiles = page.locator("#gallery a.tile")
    expect(tiles).to_have_count(6)
    thumbnails = page.locator("#gallery img")
    expect(thumbnails).to_have_count(5)
    for index in range(5):
        thumbnail = thumbnails.nth(index)
        thumbnail.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
        assert thumbnail.evaluate("img => img.naturalWidth") <= 120
    expect(page.locator("#gallery .failed")).to_contain_text("corrupt_image")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "portal-gallery.png"), full_page=True)

    page.select_option("select[name=owner]", "SMITH-ANNA")
    page.click("form.filters button[type=submit]")
    expect(tiles).to_have_count(2)
    for index in range(2):
        assert (tiles.nth(index).get_attribute("data-photo-id") or "").startswith("SMITH-ANNA_")

    nikon = site.ids["jpg/Nikon_D70.jpg"]
    page.click(f'a[data-photo-id="{nikon}"]')
    expect(page.locator("h1")).to_have_text("Nikon_D70.jpg")
    web = page.locator("img.web")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=web.element_handle())
    expect(page.locator("#history")).to_contain_text("Collected")
    page.screenshot(path=str(ARTIFACTS / "portal-photo.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    assert download.suggested_filename == "Nikon_D70.jpg"
    assert Path(download.path()).read_bytes() == (corpus / "jpg/Nikon_D70.jpg").read_bytes()

    page.click("header button[type=submit]")
    expect(page).to_have_url(portal.url + "/login")
    page.goto(portal.url + "/")
    expect(page).to_have_url(portal.url + "/login?next=%2F")
    context.close()
