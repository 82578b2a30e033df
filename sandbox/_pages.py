"""The WordPress theme around the widget: a plausible page shell and the 404 page.

Every page says plainly, in a visible banner, that it is a local imitation.
"""

from __future__ import annotations

import html
import json

from aiohttp import web

from ._php import POWERED_BY, php_response

SITE_NAME = "ChatGPT Free"
NOTICE = (
    "Local imitation for testing: this page is served by the project's sandbox "
    "on this machine. It is not chatgptfree.ai and no AI model answers here."
)


#: Where WordPress serves the plugin's files from (its slug, gpt3-ai-content-generator).
PLUGIN_DIR = "/wp-content/plugins/gpt3-ai-content-generator/"
#: The jQuery WordPress 6.1 ships: a script whose ``?ver=`` is not the plugin's.
JQUERY = "<script src='{origin}/wp-includes/js/jquery/jquery.min.js?ver=3.6.1' id='jquery-core-js'>"


def plugin_style(origin: str, handle: str, path: str, release: str) -> str:
    """A ``wp_enqueue_style`` of the plugin as WordPress 6.1 prints it: ``?ver=`` its release."""
    href = f"{origin}{PLUGIN_DIR}{path}?ver={release}"
    return f"<link rel='stylesheet' id='{handle}-css' href='{href}' media='all' />\n"


def plugin_script(origin: str, handle: str, path: str, release: str) -> str:
    """A ``wp_enqueue_script`` of the plugin as WordPress 6.1 prints it: ``?ver=`` its release."""
    return f"<script src='{origin}{PLUGIN_DIR}{path}?ver={release}' id='{handle}-js'></script>\n"


def page_headers(origin: str, post_id: int | None) -> list[tuple[str, str]]:
    headers = [POWERED_BY, ("Content-Type", "text/html; charset=UTF-8")]
    headers.append(("Link", f'<{origin}/wp-json/>; rel="https://api.w.org/"'))
    if post_id is not None:
        headers.append(
            (
                "Link",
                f'<{origin}/wp-json/wp/v2/pages/{post_id}>; rel="alternate"; '
                'title="JSON"; type="application/json"',
            )
        )
        headers.append(("Link", f"<{origin}/?p={post_id}>; rel=shortlink"))
    return headers


def render_page(
    *,
    origin: str,
    title: str,
    post_id: int,
    body_class: str,
    content: str,
    head_extra: str = "",
    footer_extra: str = "",
) -> str:
    """A page in the shape of a block theme's output, the widget inside ``content``."""
    esc_title = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="UTF-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<meta name='robots' content='max-image-preview:large' />
<title>{esc_title} &#8211; {SITE_NAME}</title>
<link rel="https://api.w.org/" href="{origin}/wp-json/" />
<link rel="alternate" title="JSON" type="application/json"
 href="{origin}/wp-json/wp/v2/pages/{post_id}" />
<link rel='shortlink' href='{origin}/?p={post_id}' />
<meta name="generator" content="WordPress 6.1" />
{JQUERY.format(origin=origin)}</script>
{head_extra}</head>
<body class="{body_class} page-template-default page page-id-{post_id} wp-embed-responsive">
<div class="wp-site-blocks">
<p id="sandbox-notice" class="sandbox-notice" role="note"
 style="background:#fff3cd;color:#5c4400;border:2px solid #e0b000;padding:12px;margin:0;
 font:16px/1.4 sans-serif">{NOTICE}</p>
<header class="wp-block-template-part">
<p class="wp-block-site-title"><a href="{origin}" rel="home">{SITE_NAME}</a></p>
<nav class="wp-block-navigation">
<a href="{origin}/">Home</a> <a href="{origin}/chat/">Chat</a></nav>
</header>
<main class="wp-block-group">
<article id="post-{post_id}" class="post-{post_id} page type-page status-publish hentry">
<h1 class="wp-block-post-title">{esc_title}</h1>
<div class="entry-content wp-block-post-content">
<p>Ask anything below.</p>
{content}
</div>
</article>
</main>
<footer class="wp-block-template-part site-footer">
<p>{SITE_NAME} &mdash; a local imitation for tests. Proudly powered by WordPress.</p>
{footer_extra}</footer>
</div>
</body>
</html>
"""


def added_after_load(markup: str) -> str:
    """``markup`` as a theme script that inserts it a second after the page's load event."""
    # JSON, with "<" escaped, so the string cannot end the script and no tag of it is
    # in the served HTML; getElementById, not a selector, like a theme's own code.
    literal = json.dumps(markup).replace("<", "\\u003c")
    return (
        '<div id="late-content"></div>\n<script>window.addEventListener("load", function () '
        '{ setTimeout(function () { document.getElementById("late-content").innerHTML = '
        f"{literal}; }}, 1000); }});</script>"
    )


def not_found(origin: str) -> web.Response:
    """WordPress's 404: the theme's page with "Nothing here", status 404."""
    body = f"""<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="UTF-8" />
<meta name='robots' content='noindex, follow' />
<title>Page not found &#8211; {SITE_NAME}</title>
</head>
<body class="error404 wp-embed-responsive">
<p id="sandbox-notice" class="sandbox-notice" role="note">{NOTICE}</p>
<main class="wp-block-group">
<h1 class="wp-block-heading">Page not found</h1>
<p>The page you are looking for does not exist, or it has been moved.
Please try searching using the form below.</p>
</main>
</body>
</html>
"""
    headers = [
        POWERED_BY,
        ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
        ("Cache-Control", "no-cache, must-revalidate, max-age=0"),
        *page_headers(origin, None)[1:],
    ]
    return php_response(body, status=404, headers=headers)
