"""The headless-Chromium fallback: pass a bot-protection challenge and read the chat credentials.

Plain HTTP (:mod:`scraper.obtain`) comes here only when the site answered with a
challenge. :func:`solve` drives headless Chromium through Playwright's async API:
it opens the page, lets the challenge's own JavaScript earn the clearance cookie
and reload, waits for the chat widget of either plugin generation, and returns
:class:`~scraper.credentials.Credentials` holding the rendered page's nonce, the
browser's cookies and the browser's exact User-Agent (a clearance is bound to
it, so the plain-HTTP layer must send the very same one afterwards).

>>> creds = await solve("https://chatgptfree.ai", "https://chatgptfree.ai/chat/",
...                     proxy=None, deadline=Deadline(60))        # doctest: +SKIP
>>> creds.source, "cf_clearance" in {c.name for c in creds.cookies}  # doctest: +SKIP
('browser', True)

Which Chromium (see :func:`find_chromium`): ``PROVIDER_BROWSER`` (a path to a
Chromium binary), else the one ``python -m playwright install chromium`` put in
Playwright's cache, else the system's (``chromium``, ``chromium-browser``,
``google-chrome``, ``google-chrome-stable`` on ``PATH``).

Process hygiene: the browser is closed on every way out of :func:`solve` —
success, error, timeout, and cancellation of the calling task. Starting the
driver, launching the browser and closing both run as shielded tasks: a
cancellation that lands mid-launch lets the launch finish and then closes what it
started, and a second cancellation during the close does not cut the close short
(it is re-raised once the close is done, within a few seconds).

Playwright is imported in this package only, and only inside functions, so
importing the scraper or the provider never needs Playwright or a browser.

The modules: ``_chromium`` (finding a Chromium), ``_launch`` (launch and close
under cancellation), ``_solve`` (one solve), ``_live`` (:class:`LivePage`, the
browser transport), ``_trust`` (the NSS trust store), ``_translate`` (cookies
and errors between Playwright and the project).
"""

from scraper.browser._chromium import BROWSER_ENV, SYSTEM_BROWSERS, find_chromium
from scraper.browser._launch import LAUNCH_ARGS
from scraper.browser._live import LivePage
from scraper.browser._solve import WIDGET_SELECTOR, solve

__all__ = [
    "BROWSER_ENV",
    "LAUNCH_ARGS",
    "SYSTEM_BROWSERS",
    "WIDGET_SELECTOR",
    "LivePage",
    "find_chromium",
    "solve",
]
