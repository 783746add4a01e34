"""A real browser (Debian's Chromium through Playwright) against the real portal process.

The catalog is seeded the way production fills it: events for a handful of
corpus photos published to RabbitMQ and recorded by the portal's consumer,
with real thumbnails in a tmp store. The gallery screenshot is kept in
``test-artifacts/portal-gallery.png``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from dp3.broker import Publisher
from tests.browser import ARTIFACTS, chromium
from tests.integration.portal.conftest import PASSWORD
from tests.integration.portal.field import lifecycle_of, preview_events, write_preview
from tests.integration.portal.running import RunningPortal
from tests.rabbit import publish, wait_for

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


def test_the_admin_adds_a_device_sees_its_token_once_and_a_preview_tile_becomes_the_photos_one_tile(
    browser: Browser, portal: RunningPortal, site, amqp_url: str, corpus: Path, dp3_home: Path
) -> None:
    canon = "jpg/gps/DSCN0010.jpg"  # 640x480: its preview is as wide as a preview gets, the thumbnail 120
    detected = lifecycle_of(site, canon)[0]
    assert detected.sha256 and detected.size
    preview = write_preview(corpus, canon, dp3_home / "previews", detected.sha256)  # DP3_PREVIEWS' default
    publish(amqp_url, preview_events(site, canon, preview, at=time.time(), offsets=(detected.size * 2 // 5,)))
    wait_for(
        lambda: len(httpx.get(portal.url + "/api/photos", auth=("admin", PASSWORD)).json()["items"]) == 1,
        30,
        "the preview",
    )

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(portal.url + "/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("header a[href='/devices']")
    page.fill("#add-device input[name=owner]", "JAEGER-NICHOLAS")
    page.fill("#add-device input[name=label]", "Nicholas's laptop")
    page.click("#add-device button[type=submit]")
    token = page.locator("#device-token")
    expect(token).to_have_text(re.compile(r"^dp3d_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$"))
    shown = token.inner_text()
    expect(page.locator("#pairing-command")).to_have_text(f"dp3-field pair {portal.url}/ {shown}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "portal-device-added.png"), full_page=True)
    page.goto(portal.url + "/devices")  # shown once: the list never shows it again
    expect(page.locator("#devices tr[data-device-id]")).to_have_count(1)
    expect(page.locator("#devices")).to_contain_text("Nicholas's laptop")
    assert shown not in page.content()
    expect(page.locator("#device-token")).to_have_count(0)

    page.goto(portal.url + "/")
    tile = page.locator(f'#gallery a.tile[data-sha256="{detected.sha256}"]')
    expect(tile).to_have_count(1)
    expect(tile).to_have_class(re.compile("preview-tile"))
    # 40 % of the bytes, rounded down to whole percent.
    expect(tile.locator(".on-its-way")).to_have_text(re.compile(r"^original on its way · (39|40) % arrived$"))
    image = tile.locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => img.naturalWidth") == 640  # the preview itself, web-size
    page.screenshot(path=str(ARTIFACTS / "portal-preview-tile.png"), full_page=True)

    publish(amqp_url, lifecycle_of(site, canon))

    def became_the_photo() -> bool:
        page.reload()
        joined = page.locator(f'#gallery a.tile[data-photo-id="{detected.id}"]')
        return joined.count() == 1 and "Collected" in joined.inner_text()

    wait_for(became_the_photo, 30, "the preview tile to become the photo's tile", interval=0.5)
    expect(page.locator("#gallery a.tile")).to_have_count(1)  # no tile twice
    expect(tile).to_have_count(1)
    expect(tile.locator(".on-its-way")).to_have_count(0)
    image = tile.locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate("img => img.naturalWidth") <= 120  # the render's thumbnail now
    page.screenshot(path=str(ARTIFACTS / "portal-preview-joined.png"), full_page=True)
    context.close()
