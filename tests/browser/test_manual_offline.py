"""The built manual reads offline: its design page, opened in Chromium with every
request beyond the local server refused, shows the flow diagram drawn (an ``svg``
where the mermaid source was), and asked for nothing from the internet (no CDN,
no web fonts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from scraper.browser import LAUNCH_ARGS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

# material draws each diagram into a *closed* shadow root, which no query reaches;
# in this test's page only, shadow roots open so the drawing can be looked at.
OPEN_SHADOWS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attach.call(this, { ...init, mode: "open" });
};
"""


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    return site


async def test_the_design_diagram_renders_with_the_network_cut_off(
    built_site: Path, chromium: str | None
) -> None:
    from playwright.async_api import Route, async_playwright

    app = web.Application()
    app.router.add_static("/", built_site, show_index=True)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    refused: list[str] = []

    async def only_local(route: Route) -> None:
        if route.request.url.startswith(base + "/"):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=chromium, headless=True, args=list(LAUNCH_ARGS)
            )
            try:
                context = await browser.new_context(offline=False)
                await context.route("**/*", only_local)
                await context.add_init_script(OPEN_SHADOWS)
                page = await context.new_page()
                await page.goto(base + "/design/index.html", wait_until="load")
                drawn = page.locator("div.mermaid svg")
                await drawn.first.wait_for(state="attached", timeout=30_000)
                labels = await drawn.first.text_content() or ""
                source_left = await page.locator("pre.mermaid").count()
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    assert "credential store" in labels and "verdict" in labels  # the diagram's own nodes
    assert source_left == 0  # no block of raw mermaid source is left on the page
    assert refused == []  # nothing was asked of the internet (no CDN, no fonts)
