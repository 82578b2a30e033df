"""The route table: the WordPress pages, ``admin-ajax.php`` and the edge's endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import _aipkit, _detect, _legacy, _pages, _protection
from ._php import Superglobals, ajax_zero, on_prepare, php_response
from ._site import SITE_KEY, Site

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AjaxHandler = Callable[[web.Request, Site, Superglobals], Awaitable[web.StreamResponse]]

# What each generation registers with `wp_ajax_nopriv_<action>`; anything else is "0".
AJAX_ACTIONS: dict[str, dict[str, AjaxHandler]] = {
    "legacy": {
        "wpaicg_chat_shortcode_message": _legacy.chat,
        "wpaicg_chatbox_message": _legacy.chat,
    },
    "aipkit": {
        "aipkit_cache_sse_message": _aipkit.cache_message,
        "aipkit_frontend_chat_stream": _aipkit.stream,
        "aipkit_get_frontend_chat_nonce": _aipkit.refresh_nonce,
        "aipkit_frontend_chat_message": _aipkit.chat_message,
    },
}


def _registered(site: Site, action: str) -> AjaxHandler | None:
    """The handler the imitated release registers for ``action``: the nonce refresh from
    A4 (2.3.41), the non-streaming chat through A6 (removed in 2.4.1)."""
    config = site.config
    if action == "aipkit_get_frontend_chat_nonce" and not config.since("A4"):
        return None
    if action == "aipkit_frontend_chat_message" and config.since("A7"):
        return None
    return AJAX_ACTIONS[config.generation].get(action)


def _origin(request: web.Request) -> str:
    # WordPress prints its configured home URL; here that is wherever we were reached.
    return f"{request.scheme}://{request.host}"


async def _count(request: web.Request) -> Site:
    site = request.app[SITE_KEY]
    site.hits[f"{request.method} {request.path}"] += 1
    # A page still loading. The knob is a plain field a test flips: nothing to wait on.
    while site.config.hold_pages and not site.closing.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return site


def _render(
    request: web.Request, site: Site, post_id: int, title: str, body_class: str
) -> web.Response:
    origin = _origin(request)
    head = content = footer = ""
    if not site.config.no_widget:
        generation = _legacy if site.config.generation == "legacy" else _aipkit
        head, content, footer = generation.page_parts(site, origin, post_id)
        if site.config.late_widget:
            content = _pages.added_after_load(content)
    page = _pages.render_page(
        origin=origin,
        title=title,
        post_id=post_id,
        body_class=body_class,
        content=content,
        head_extra=head,
        footer_extra=footer,
    )
    return php_response(page, headers=_pages.page_headers(origin, post_id))


async def home(request: web.Request) -> web.StreamResponse:
    site = await _count(request)
    return _render(request, site, site.config.home_post_id, "Home", "home")


async def chat_page(request: web.Request) -> web.StreamResponse:
    site = await _count(request)
    return _render(request, site, site.config.chat_post_id, "Chat", "chat")


async def chat_redirect(request: web.Request) -> web.StreamResponse:
    """WordPress's canonical redirect adds the trailing slash."""
    await _count(request)
    response = php_response("", status=301, headers=[("X-Powered-By", "PHP/8.2.36")])
    response.headers["X-Redirect-By"] = "WordPress"
    response.headers["Location"] = f"{_origin(request)}/chat/"
    return response


async def not_found(request: web.Request) -> web.StreamResponse:
    await _count(request)
    return _pages.not_found(_origin(request))


async def admin_ajax(request: web.Request) -> web.StreamResponse:
    """``/wp-admin/admin-ajax.php``: dispatch on ``$_REQUEST['action']``."""
    site = request.app[SITE_KEY]
    globals_ = await Superglobals.read(request)
    action = globals_.request.get("action", "")
    site.hits[f"admin-ajax:{action}"] += 1
    handler = _registered(site, action)
    if handler is None:
        return ajax_zero()
    return await handler(request, site, globals_)


@web.middleware
async def _connections(request: web.Request, handler: Handler) -> web.StreamResponse:
    # In front of the edge: a connection counts whatever the edge answers on it.
    request.app[SITE_KEY].saw_connection(request.transport)
    return await handler(request)


def make_app(site: Site) -> web.Application:
    """The aiohttp application for ``site``, the edge middleware in front of everything."""
    app = web.Application(middlewares=[_connections, _protection.edge])
    app[SITE_KEY] = site
    app.on_response_prepare.append(on_prepare)
    app.add_routes(
        [
            web.route("*", "/", home),
            web.route("*", "/chat/", chat_page),
            web.route("*", "/chat", chat_redirect),
            web.route("*", "/wp-admin/admin-ajax.php", admin_ajax),
            web.get(_protection.SCRIPT_PATH, _protection.orchestrate_script),
            web.post("/cdn-cgi/challenge-platform/h/b/flow/ov1/{ray}", _protection.flow),
            web.post(_detect.REPORT_PATH, _protection.report),
            web.route("*", "/{tail:.*}", not_found),
        ]
    )
    return app
