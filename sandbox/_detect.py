"""Bot detection: what a challenge page looks at in the browser, and the verdict on it.

Written from the public lists (PROTOCOL.md, "What a challenge page looks at in the
browser": bot.sannysoft.com, fingerprintjs BotD, CreepJS's headless and "lies"
checks, the write-ups on detecting the DevTools protocol). With ``protection`` on,
the challenge page runs :data:`DETECT_JS` and sends what it found with its answer;
:func:`verdict` adds what only the server sees (the HTTP headers against the page's
own values) and the edge refuses the clearance when any signal fired. Every page of
the site also carries :data:`PAGE_JS`, which watches for evaluation in its main world
and for automation globals for as long as the page is open and reports them; a
report revokes the clearance it was made under (a real vendor's page script does
the same with its periodic beacons).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DETECT_JS", "PAGE_JS", "REPORT_PATH", "SIGNALS", "verdict"]

REPORT_PATH = "/cdn-cgi/challenge-platform/h/b/report"

#: Every signal, by the name recorded in ``site.detections``.
SIGNALS = (
    "webdriver",
    "webdriver_patched",
    "headless_ua",
    "headless_worker_ua",
    "headless_client_hints",
    "ua_http_mismatch",
    "ua_worker_mismatch",
    "client_hints_mismatch",
    "languages_empty",
    "languages_mismatch",
    "languages_http_mismatch",
    "languages_worker_mismatch",
    "no_chrome",
    "chrome_runtime_forged",
    "no_plugins",
    "notification_permission",
    "webgl_none",
    "webgl_swiftshader",
    "webgl_worker_mismatch",
    "cdp_runtime",
    "eval_trace",
    "automation_globals",
    "no_browser_ui",
    "screen_is_viewport",
    "screen_800x600",
    "native_lies",
    "no_report",
)

# The watch shared by both scripts: wrapped DOM reads whose caller frames show an
# evaluated script, automation globals, and the console getter that a DevTools
# client with Runtime enabled makes run more often.
_WATCH_JS = r"""
  var fired = {};
  // Told at once when a watched call shows evaluation (the page's own report, below).
  var onFire = function () {};
  var EVAL = /UtilityScript|__puppeteer_evaluation_script__|pptr:|__playwright_evaluation_script__/;
  function evaluated() {
    var lines = String(new Error().stack || "").split("\n").slice(2);
    for (var i = 0; i < lines.length; i++) {
      var l = lines[i].trim();
      if (EVAL.test(l) || /<anonymous>:\d+:\d+\)?$/.test(l)) return true;
    }
    return false;
  }
  function watch(owner, name, getter) {
    var d = Object.getOwnPropertyDescriptor(owner, name);
    if (!d) return;
    if (getter && d.get) {
      var g = d.get;
      Object.defineProperty(owner, name, {configurable: true, enumerable: d.enumerable,
        get: function () {
          if (evaluated()) { fired.eval_trace = 1; onFire(); }
          return g.call(this);
        },
        set: d.set});
    } else if (typeof d.value === "function") {
      var f = d.value;
      owner[name] = function () {
        if (evaluated()) fired.eval_trace = 1;
        globalsCheck();
        if (fired.eval_trace || fired.automation_globals) onFire();
        return f.apply(this, arguments);
      };
    }
  }
  var GLOBALS = new RegExp("^(__playwright|__pw|__provider|__puppeteer|__selenium|" +
    "__webdriver|__nightmare|cdc_|\\$cdc_|_phantom|callPhantom|domAutomation)");
  function globalsCheck() {
    var names = Object.getOwnPropertyNames(window);
    for (var i = 0; i < names.length; i++) if (GLOBALS.test(names[i])) fired.automation_globals = 1;
  }
  // A DevTools client with Runtime enabled gets every console argument as a described
  // mirror, built synchronously inside the console call. V8 itself reads a logged
  // error's name once (for the message's text); describing it for the client reads
  // it again (twice for an error whose name comes from its prototype), so more than
  // one read shows the client. Older V8 also read an own "stack" getter to describe
  // an error; current V8 (Chromium 156) takes the stack internally, so that getter
  // alone no longer runs and is kept only for older browsers.
  function cdpCheck() {
    var named = Object.create(Error.prototype), reads = 0, stack = false;
    Object.defineProperty(named, "name", {get: function () { reads++; return "Error"; }});
    var e = new Error("");
    Object.setPrototypeOf(e, named);
    console.debug(e);
    var old = new Error("");
    Object.defineProperty(old, "stack", {configurable: false, enumerable: false,
      get: function () { stack = true; return ""; }});
    console.debug(old);
    if (reads > 1 || stack) fired.cdp_runtime = 1;
  }
  watch(Document.prototype, "querySelector");
  watch(Document.prototype, "querySelectorAll");
  watch(Document.prototype, "getElementsByClassName");
  watch(Element.prototype, "querySelector");
  watch(Document.prototype, "title", true);
  watch(window, "fetch");
  watch(XMLHttpRequest.prototype, "open");
  globalsCheck();
  cdpCheck();
"""

#: The challenge page's detector, inline at the top of its head (before anything
#: could evaluate in the page): ``window._cf_chl_detect()`` resolves to
#: ``{fired: [...], facts: {...}}`` after a short watch.
DETECT_JS = (
    r"""(function () {
"""
    + _WATCH_JS
    + r"""
  var NATIVE = /^function [\w$ ]*\(\) \{\s*\[native code\]\s*\}$/;
  var toString = Function.prototype.toString;
  function native(fn) {
    try { return typeof fn === "function" && NATIVE.test(toString.call(fn)); }
    catch (e) { return false; }
  }
  function lies() {
    if (!native(Function.prototype.toString)) return true;
    var getters = [[Navigator.prototype, ["webdriver", "languages", "language", "plugins",
      "userAgent", "platform", "hardwareConcurrency", "mimeTypes"]],
      [Screen.prototype, ["width", "height"]]];
    for (var i = 0; i < getters.length; i++) for (var j = 0; j < getters[i][1].length; j++) {
      var d = Object.getOwnPropertyDescriptor(getters[i][0], getters[i][1][j]);
      if (d && !native(d.get)) return true;
    }
    var fns = [window.WebGLRenderingContext && WebGLRenderingContext.prototype.getParameter,
      window.Permissions && Permissions.prototype.query,
      HTMLCanvasElement.prototype.toDataURL, HTMLCanvasElement.prototype.getContext];
    for (var k = 0; k < fns.length; k++) {
      if (fns[k] && (!native(fns[k]) || "prototype" in fns[k])) return true;
    }
    return Object.getOwnPropertyNames(navigator).length > 0;
  }
  function renderer(gl) {
    if (!gl) return null;
    var e = gl.getExtension("WEBGL_debug_renderer_info");
    return String(e ? gl.getParameter(e.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
  }
  function worker() {
    var src = "var r=null;try{var c=new OffscreenCanvas(1,1).getContext('webgl');" +
      "if(c){var e=c.getExtension('WEBGL_debug_renderer_info');" +
      "r=String(e?c.getParameter(e.UNMASKED_RENDERER_WEBGL):c.getParameter(c.RENDERER));}}" +
      "catch(x){}var d=navigator.userAgentData;postMessage({ua:navigator.userAgent," +
      "languages:navigator.languages.join(','),renderer:r," +
      "brands:d?d.brands.map(function(b){return b.brand+'/'+b.version}).join(','):''});";
    return new Promise(function (resolve) {
      try {
        var w = new Worker(URL.createObjectURL(new Blob([src], {type: "text/javascript"})));
        w.onmessage = function (m) { resolve(m.data); w.terminate(); };
        w.onerror = function () { resolve(null); };
        setTimeout(function () { resolve(null); }, 3000);
      } catch (e) { resolve(null); }
    });
  }
  function permission() {
    try {
      return navigator.permissions.query({name: "notifications"})
        .then(function (p) { return p.state; }, function () { return null; });
    } catch (e) { return Promise.resolve(null); }
  }
  window._cf_chl_detect = function () {
    var n = navigator, d = n.userAgentData;
    var brands = d ? d.brands.map(function (b) { return b.brand + "/" + b.version; })
      .join(",") : "";
    if (n.webdriver) fired.webdriver = 1;
    if (Object.getOwnPropertyDescriptor(n, "webdriver")) fired.webdriver_patched = 1;
    if (/HeadlessChrome/.test(n.userAgent)) fired.headless_ua = 1;
    if (/Headless/i.test(brands)) fired.headless_client_hints = 1;
    if (!n.languages || !n.languages.length) fired.languages_empty = 1;
    else if (n.language !== n.languages[0]) fired.languages_mismatch = 1;
    if (!window.chrome) fired.no_chrome = 1;
    else if (window.chrome.runtime &&
             !native(window.chrome.runtime.connect || window.chrome.runtime.sendMessage))
      fired.chrome_runtime_forged = 1;
    if (!n.plugins || !n.plugins.length || !n.mimeTypes || !n.mimeTypes.length)
      fired.no_plugins = 1;
    var gl = null;
    try { gl = document.createElement("canvas").getContext("webgl"); } catch (e) {}
    var page = renderer(gl);
    if (!page) fired.webgl_none = 1;
    else if (/SwiftShader/i.test(page)) fired.webgl_swiftshader = 1;
    if (outerHeight === innerHeight && outerWidth === innerWidth) fired.no_browser_ui = 1;
    if (screen.width === innerWidth && screen.height === innerHeight) fired.screen_is_viewport = 1;
    if (screen.width === 800 && screen.height === 600) fired.screen_800x600 = 1;
    if (lies()) fired.native_lies = 1;
    var watched = new Promise(function (r) { setTimeout(r, 300); });
    return Promise.all([worker(), permission(), watched]).then(function (got) {
      var w = got[0];
      if (window.Notification && Notification.permission === "denied" && got[1] === "prompt")
        fired.notification_permission = 1;
      if (w) {
        if (/HeadlessChrome/.test(w.ua)) fired.headless_worker_ua = 1;
        if (w.ua !== n.userAgent) fired.ua_worker_mismatch = 1;
        if (w.languages !== (n.languages || []).join(",")) fired.languages_worker_mismatch = 1;
        if (w.renderer !== page) fired.webgl_worker_mismatch = 1;
        if (w.brands !== brands) fired.client_hints_mismatch = 1;
      }
      globalsCheck();
      cdpCheck();
      return {fired: Object.keys(fired), facts: {ua: n.userAgent,
        languages: (n.languages || []).join(","), brands: brands,
        platform: d ? d.platform : ""}};
    });
  };
})();"""
)

#: Every page of the site (protection on): the watch, reported whenever it finds more.
PAGE_JS = (
    r"""(function () {
"""
    + _WATCH_JS
    + r"""
  var sent = "";
  // A watched call that shows automation is reported before it goes on (a synchronous
  // request), so the server knows before the request the call makes: as a real
  // detector blocks the request itself, not a later one.
  onFire = function () { report(true); };
  function report(now) {
    globalsCheck();
    var found = Object.keys(fired).sort().join(",");
    if (found === sent) return;
    sent = found;
    var body = JSON.stringify({fired: Object.keys(fired), url: location.href});
    var send = XMLHttpRequest.prototype.send, open = XMLHttpRequest.prototype.open;
    var x = new XMLHttpRequest();
    open.call(x, "POST", "REPORT_PATH", now !== true);
    send.call(x, body);
  }
  setInterval(report, 200);
  addEventListener("load", report);
})();""".replace("REPORT_PATH", REPORT_PATH)
)

_CHROME_MAJOR = re.compile(r"Chrome/(\d+)")
_PLATFORMS = (
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
    ("CrOS", "Chrome OS"),
)


def verdict(report: str | None, headers: Mapping[str, str]) -> list[str]:
    """The signals that fired: the page's own, and the server's comparisons of its headers."""
    try:
        parsed: Any = json.loads(report or "")
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return ["no_report"]
    fired = {str(name) for name in parsed.get("fired", []) if str(name) in SIGNALS}
    facts: dict[str, Any] = parsed["facts"] if isinstance(parsed.get("facts"), dict) else {}
    page_ua = str(facts.get("ua", ""))
    http_ua = headers.get("User-Agent", "")
    if "HeadlessChrome" in http_ua:
        fired.add("headless_ua")
    if http_ua != page_ua:
        fired.add("ua_http_mismatch")
    hints = headers.get("Sec-CH-UA", "")
    if "headless" in hints.lower():
        fired.add("headless_client_hints")
    major = _CHROME_MAJOR.search(page_ua)
    brands = str(facts.get("brands", ""))
    if major and brands and f"Chromium/{major.group(1)}" not in brands.split(","):
        fired.add("client_hints_mismatch")
    if hints and major and f'"Chromium";v="{major.group(1)}"' not in hints:
        fired.add("client_hints_mismatch")
    platform = str(facts.get("platform", ""))
    named = next((name for token, name in _PLATFORMS if token in page_ua), None)
    if platform and named and platform != named:
        fired.add("client_hints_mismatch")
    languages = str(facts.get("languages", "")).split(",")
    accept = headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    if accept and languages[0] and accept != languages[0]:
        fired.add("languages_http_mismatch")
    return sorted(fired)
