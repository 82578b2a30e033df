"""The kept mutation check: plant known bugs one at a time, prove the tests catch each.

Run it as ``bash scripts/mutants`` (``--list``, ``--only NAME``, ``--keep``).

The whole tree (tracked and untracked files, not what .gitignore hides) is copied
to a scratch folder once; there each mutant replaces one exact snippet of one file
(it must occur exactly once, so a mutant that no longer matches the code is an
error, not a silent pass), runs the tests named beside it, and puts the file back.
Nothing in the checkout is touched.

A mutant is *killed* when pytest reports failed tests (exit code 1). It *survives*
when they pass; any other ending (a collection error, an interrupted run) is an
*error*: both fail the check. Each selection of tests is first run on the
unmutated copy, which must pass, so a kill means the bug was seen.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: No single pytest run of a mutant may take longer than this (a hang is a kill
#: only through pytest-timeout's per-test bound, set by ``timeout`` below).
RUN_LIMIT_SECONDS = 600


@dataclass(frozen=True)
class Mutant:
    name: str
    why: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    #: pytest-timeout's bound per test for this run (a mutant that hangs is caught by it).
    timeout: int = 60
    env: dict[str, str] = field(default_factory=dict)
    #: A second (old, new) replacement, when one alone is masked: in ``extra_path``
    #: when the code it needs lives in another module, else in the same file.
    extra: tuple[str, str] | None = None
    extra_path: str | None = None


MUTANTS: list[Mutant] = [
    # -- issue 20: stores, server, prompts -------------------------------------------
    Mutant(
        "i20-caller-cookies-stored",
        "issue 20: a caller's own cookies join the stored credentials, sent to later callers",
        "scraper/obtain.py",
        "            cookies=site_cookies,\n",
        "            cookies=[*site_cookies, *cookies],\n",
        ("tests/provider/test_callers_own.py", "-k", "cookies"),
    ),
    Mutant(
        "i20-hung-redis-timeout-reaches-caller",
        "issue 20: a Redis that never answers raises a timeout to the caller, no fallback",
        "provider/store/redis.py",
        '        raise RedisTimeoutError("Redis did not answer in time") from None\n',
        "        raise\n",
        ("tests/fleet/test_redis_hung_and_lock.py", "-k", "hung or never_answers"),
    ),
    Mutant(
        "i20-store-script-deletes-any-lock",
        "issue 20: an expired holder's write deletes the next holder's lock (Lua, no compare)",
        "provider/store/redis.py",
        "if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end",
        "redis.call('DEL', KEYS[2])",
        ("tests/fleet/test_redis_hung_and_lock.py", "-k", "lock"),
    ),
    Mutant(
        "i20-temp-file-in-tmpdir",
        "issue 20: the atomic write's temp file goes to TMPDIR; on another filesystem the "
        "rename fails and the store stops persisting",
        "provider/store/base.py",
        'fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)',
        'fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json")',
        ("tests/provider/test_store_files.py", "-k", "tmpdir"),
    ),
    Mutant(
        "i20-transport-saved-under-redacted-proxy",
        "issue 20: the browser transport is saved under the redacted proxy and forgotten",
        "provider/_provider.py",
        "            await store.save(live.credentials, target.proxy_key)\n            return live",
        "            await store.save(\n"
        "                live.credentials,\n"
        '                __import__("scraper.errors").errors.redact_url(target.proxy_key),\n'
        "            )\n"
        "            return live",
        ("tests/browser/test_transport_behind_a_proxy.py",),
        timeout=180,
    ),
    Mutant(
        "i20-usage-from-the-last-message",
        "issue 20: usage.prompt_tokens counts the last message only",
        "provider/commands/serve/_routes.py",
        'prompt_chars=sum(len(m["content"]) for m in chat.messages)',
        'prompt_chars=len(chat.messages[-1]["content"])',
        ("tests/serve/test_exact.py", "-k", "usage"),
    ),
    Mutant(
        "i20-api-key-compared-with-eq",
        "issue 20: the server's API key is compared with != (not constant-time)",
        "provider/commands/serve/_app.py",
        "not hmac.compare_digest(\n            given.strip().encode(), key.encode()\n        )",
        "given.strip().encode() != key.encode()",
        ("tests/serve/test_exact.py", "-k", "compare_digest"),
    ),
    Mutant(
        "i20-prompt-strips-message-whitespace",
        "issue 20: each message of a multi-message prompt is stripped (code loses its indent)",
        "provider/prompt.py",
        "f\"{m['role'].capitalize()}: {m['content']}\"",
        "f\"{m['role'].capitalize()}: {m['content'].strip()}\"",
        ("tests/provider/test_callers_own.py", "tests/serve/test_exact.py", "-k", "whitespace"),
    ),
    Mutant(
        "i20-server-strips-message-whitespace",
        "issue 20: the server strips each message's content before the library sees it",
        "provider/commands/serve/_wire.py",
        'out.append({"role": message.get("role"), "content": content})',
        'out.append({"role": message.get("role"), "content": content.strip()})',
        ("tests/serve/test_exact.py", "-k", "whitespace"),
    ),
    Mutant(
        "i20-solve-logs-the-nonce-at-debug",
        "issue 20: the browser's solve logs the widget's nonce at DEBUG",
        "scraper/browser/_solve.py",
        '" (challenge passed)" if progress.challenged else "",',
        '(" (challenge passed)" if progress.challenged else "") + widget.nonce,',
        ("tests/faults/test_secrets.py", "-k", "full_session and legacy"),
        timeout=180,
    ),
    Mutant(
        "i20-deep-page-given-up",
        "issue 20: a deeply nested page is given up on as widget-less",
        "scraper/page.py",
        '    data = text.encode("utf-8", "replace")\n',
        '    data = text.encode("utf-8", "replace")\n'
        '    if data.count(b"<div") > 10_000:\n'
        "        return None\n",
        ("tests/scraper/test_page.py", "-k", "deep_nesting"),
    ),
    Mutant(
        "i20-corrupt-file-warns-every-look",
        "issue 20: a corrupt store file is read and warned about on every look",
        "provider/store/files.py",
        "        if self._unreadable.get(key) == stamp:\n            return None\n",
        "",
        ("tests/provider/test_store_files.py", "-k", "corrupt"),
    ),
    Mutant(
        "i20-serve-starts-with-a-bad-cache-dir",
        "issue 20: a PROVIDER_CACHE_DIR that is a file is found per request, not at start",
        "provider/commands/cli.py",
        "    default_cache_dir()\n    return await main(args)\n",
        "    return await main(args)\n",
        ("tests/commands/test_every_door.py", "-k", "cache_dir and serve"),
        timeout=120,
    ),
    Mutant(
        "i20-store-write-in-place",
        "issue 20: the store writes the entry in place, not via a renamed temp file",
        "provider/store/base.py",
        "        os.replace(tmp, path)\n",
        '        with open(path, "wb") as out:\n'
        "            out.write(payload[: len(payload) // 2])\n"
        "            out.flush()\n"
        "            out.write(payload[len(payload) // 2 :])\n"
        "        os.unlink(tmp)\n",
        ("tests/faults/test_store_faults.py", "-k", "tear"),
    ),
    Mutant(
        "i20-store-file-0644",
        "issue 20: store entries and exports are written readable by everyone",
        "provider/store/base.py",
        "        os.fchmod(fd, 0o600)\n",
        "        os.fchmod(fd, 0o644)\n",
        (
            "tests/provider/test_store.py",
            "tests/provider/test_store_files.py",
            "-k",
            "0600 or tmpdir",
        ),
    ),
    # (promises that had a test already: planted to see it fail)
    Mutant(
        "i20-refresh-lock-outlives-its-holder",
        "issue 20: the refresh lock is a lock file, not an OS lock: a killed holder's stays",
        "provider/store/files.py",
        'lock = filelock.FileLock(self.folder / f"{key}.lock", timeout=0, mode=0o600)',
        'lock = filelock.SoftFileLock(self.folder / f"{key}.lock", timeout=0, mode=0o600)',
        ("tests/provider/test_store.py", "-k", "killed_process"),
    ),
    Mutant(
        "i20-fleet-ignores-dropped-news",
        "issue 20: hosts keep credentials another host found rejected",
        "provider/store/redis.py",
        'if origin != self.origin and kind in ("written", "dropped"):',
        'if origin != self.origin and kind in ("written",):',
        ("tests/fleet/test_redis_store.py", "-k", "rejected"),
    ),
    Mutant(
        "i20-fleet-warns-on-every-failure",
        "issue 20: a Redis outage warns on every failed command, not once per outage",
        "provider/store/redis.py",
        "        if not self._down:\n            self._down = True\n",
        "        if True:\n            self._down = True\n",
        ("tests/fleet/test_redis_store.py", "-k", "outage or unreachable"),
    ),
    Mutant(
        "i20-fleet-never-returns-to-redis",
        "issue 20: once Redis was away, the store never tries it again",
        "provider/store/redis.py",
        "        return not self._down or time.monotonic() >= self._down_until\n",
        "        return not self._down\n",
        ("tests/fleet/test_redis_store.py", "-k", "outage"),
    ),
    Mutant(
        "i20-extend-any-lock",
        "issue 20: a host extends a lock it no longer holds",
        "provider/store/redis.py",
        "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
        "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\nend",
        "if true then\n  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\nend",
        ("tests/fleet/test_redis_store.py", "-k", "only_the_holder"),
    ),
    Mutant(
        "i20-fresh-at-expiry",
        "issue 20: credentials count as fresh at the very moment they expire",
        "scraper/credentials.py",
        "return (time.time() if now is None else now) < self.expires_at",
        "return (time.time() if now is None else now) <= self.expires_at",
        ("tests/provider/test_store_files.py", "-k", "expiry"),
    ),
    # -- the findings ---------------------------------------------------------
    Mutant(
        "library-drops-system-messages",
        "issue 15: the library drops every system message",
        "provider/_provider.py",
        "        prompt = (\n",
        "        messages = (\n"
        "            [m for m in messages if m.get('role') != 'system']\n"
        "            if isinstance(messages, list) else messages\n"
        "        )\n"
        "        prompt = (\n",
        ("tests/provider/test_chat.py", "-k", "multi_message"),
    ),
    Mutant(
        "server-drops-text-parts",
        "issue 15: the server drops every text content part",
        "provider/commands/serve/_wire.py",
        'texts.append(str(part.get("text", "")))',
        'texts.append("")',
        ("tests/serve/test_openai.py", "-k", "content_parts"),
    ),
    Mutant(
        "refresh-loop-without-limit",
        "issue 15: a rejected nonce refreshes forever (it hung the run before timeouts)",
        "provider/_provider.py",
        "                if retried:\n                    raise _final(",
        "                if retried and False:\n                    raise _final(",
        ("tests/provider/test_chat.py", "-k", "rejected_twice"),
        timeout=15,
    ),
    Mutant(
        "serve-binds-beyond-loopback-without-key",
        "issue 15: the server binds 0.0.0.0 without a key, from every entry point",
        "provider/commands/serve/_app.py",
        "    if not api_key and not is_loopback(host):\n",
        "    if False:\n",
        (
            "tests/serve/test_command.py::"
            "test_the_library_refuses_to_build_or_bind_beyond_loopback_without_a_key",
        ),
    ),
    Mutant(
        "make-app-skips-the-loopback-rule",
        "issue 15: only the command refuses; make_app and running() bind beyond loopback",
        "provider/commands/serve/_app.py",
        "    refuse_exposure(host, api_key)\n    app = web.Application(",
        "    app = web.Application(",
        ("tests/serve/test_command.py", "-k", "refuse"),
    ),
    Mutant(
        "commands-fail-before-fetching-a-secret",
        "issue 15: every command fails at the proxy, so there is no secret to leak",
        "scraper/http.py",
        "proxy=None if proxy is None or proxy.is_socks else proxy.raw,",
        'proxy=None if proxy is None or proxy.is_socks else proxy.raw.replace("@", "x@"),',
        ("tests/faults/test_secrets.py", "-k", "commands"),
    ),
    Mutant(
        "import-provider-fails",
        "issue 15: `import provider` fails in a fresh process (the test fell back)",
        "provider/__init__.py",
        "from provider._provider import ChatgptFree\n",
        "from provider._provider import ChatgptFree\n"
        "import sys as _sys\n"
        "if 'pytest' not in _sys.modules:\n"
        "    raise ImportError('planted: provider cannot be imported')\n",
        ("tests/browser/test_lifecycle.py", "-k", "importing_the_provider"),
    ),
    Mutant(
        "two-browser-launches-per-solve",
        "issue 15: Chromium starts twice per solve (the clearance count stays 1)",
        "scraper/browser/_solve.py",
        "        t0 = time.monotonic()\n        browser = await _start(\n"
        "            playwright.chromium.launch(**launch_options,",
        "        t0 = time.monotonic()\n"
        "        await (await playwright.chromium.launch(**launch_options)).close()\n"
        "        browser = await _start(\n"
        "            playwright.chromium.launch(**launch_options,",
        ("tests/browser/test_provider_browser.py", "-k", "50_concurrent"),
        timeout=180,
    ),
    Mutant(
        "chat-command-ignores-system",
        "issue 15 (stdin/--system test): the chat command drops --system",
        "provider/commands/__main__.py",
        "    if args.system:\n",
        "    if False:\n",
        ("tests/commands/test_commands.py", "-k", "stdin"),
    ),
    Mutant(
        "chat-command-reads-one-stdin-line",
        "issue 15 (stdin/--system test): only the first line of stdin is asked",
        "provider/commands/__main__.py",
        '    return text.strip("\\n")\n',
        '    return text.strip("\\n").splitlines()[0]\n',
        ("tests/commands/test_commands.py", "-k", "stdin"),
    ),
    Mutant(
        "g4f-drop-in-sends-last-message-only",
        "issue 15 (prompts through the g4f drop-in): the history is lost",
        "provider/g4f_provider.py",
        '            "" if model == "auto" else model,\n            messages,\n',
        '            "" if model == "auto" else model,\n            messages[-1:],\n',
        ("tests/serve/test_g4f.py", "-k", "whole_conversation"),
    ),
    # -- our own -------------------------------------------------------------------------
    Mutant(
        "no-recheck-under-the-lock",
        "a process that waited for another's refresh fetches again anyway",
        "provider/store/files.py",
        "                current is not None\n                and current.fresh()\n",
        "                False\n                and current.fresh()\n",
        ("tests/provider/test_store.py", "tests/provider/test_proxy_cookies.py", "-k", "process"),
    ),
    Mutant(
        "no-single-flight",
        "every concurrent caller runs its own refresh (no flight, no recheck)",
        "provider/store/base.py",
        "        if flight is None or flight.task.done():\n",
        "        if True:\n",
        ("tests/provider/test_chat.py", "-k", "200_concurrent"),
        # With only the flight gone, the recheck under the lock still saves the
        # fetch: take both, or the mutant is equivalent.
        extra=(
            "                current is not None\n                and current.fresh()\n",
            "                False\n                and current.fresh()\n",
        ),
        extra_path="provider/store/files.py",
    ),
    Mutant(
        "stored-credentials-ignored",
        "every call reads the page again",
        "provider/_provider.py",
        "            stored\n            if stored is not None and stored.fresh()\n",
        "            stored\n            if False\n",
        ("tests/provider/test_chat.py", "-k", "warm_call"),
    ),
    Mutant(
        "do-continue-ignored",
        "the prompt always ends with 'Assistant:'",
        "provider/prompt.py",
        'return formatted if do_continue else f"{formatted}\\nAssistant:"',
        'return f"{formatted}\\nAssistant:"',
        ("tests/provider/test_chat.py", "-k", "multi_message"),
    ),
    Mutant(
        "legacy-cut-stream-is-complete",
        "legacy: a stream closed before its end marker passes as a whole answer",
        "provider/protocols/legacy.py",
        "        self._raise_collected_error()\n        raise cut_short()\n",
        "        self._raise_collected_error()\n",
        ("tests/faults/test_faults.py", "-k", "dropped"),
    ),
    Mutant(
        "legacy-cut-stream-is-complete-soak",
        "the same bug, caught by the fault soak alone (a short seeded run)",
        "provider/protocols/legacy.py",
        "        self._raise_collected_error()\n        raise cut_short()\n",
        "        self._raise_collected_error()\n",
        ("tests/soak",),
        timeout=240,
        env={"SOAK_CHATS": "120", "SOAK_SEED": "15"},
    ),
    Mutant(
        "aipkit-cut-stream-is-complete",
        "aipkit: a stream without `done` passes as a whole answer",
        "provider/protocols/aipkit.py",
        "    def on_end(self) -> None:\n        raise cut_short()\n",
        "    def on_end(self) -> None:\n        return None\n",
        ("tests/faults/test_faults.py", "-k", "dropped"),
    ),
    Mutant(
        "broken-connection-untranslated",
        "a connection broken mid-answer leaks aiohttp's error instead of NetworkError",
        "provider/protocols/_common.py",
        "            except _payload_error() as exc:  # evaluated only when something was raised\n",
        "            except ZeroDivisionError as exc:\n",
        ("tests/faults/test_faults.py", "-k", "dropped"),
    ),
    Mutant(
        "no-read-timeout",
        "a stalled stream waits forever (the gap between chunks is unbounded)",
        "provider/protocols/_common.py",
        "sock_connect=seconds, sock_read=seconds\n",
        "sock_connect=seconds, sock_read=None\n",
        ("tests/provider/test_chat.py", "-k", "stalled"),
        timeout=20,
    ),
    Mutant(
        "no-read-timeout-soak",
        "the same hang, caught by the fault soak's per-chat bound",
        "provider/protocols/_common.py",
        "sock_connect=seconds, sock_read=seconds\n",
        "sock_connect=seconds, sock_read=None\n",
        ("tests/soak",),
        timeout=300,
        env={"SOAK_CHATS": "60", "SOAK_SEED": "15"},
    ),
    Mutant(
        "aipkit-cheap-nonce-refresh-off",
        "aipkit re-reads the page instead of asking for a new nonce",
        "provider/_provider.py",
        '            if nonce_only and stale is not None and stale.generation == "aipkit":\n',
        "            if False:\n",
        ("tests/provider/test_chat.py", "-k", "rotated_nonce"),
    ),
    Mutant(
        "wrong-key-accepted",
        "the server lets any bearer key through",
        "provider/commands/serve/_app.py",
        '        if scheme.lower() != "bearer" or not hmac.compare_digest(',
        '        if scheme.lower() != "bearer" and not hmac.compare_digest(',
        ("tests/serve/test_openai.py", "-k", "401"),
    ),
    Mutant(
        "proxy-password-in-messages",
        "redact_url keeps the proxy password",
        "scraper/errors.py",
        'netloc = f"{user}:***@{hostport}" if ":" in userinfo',
        'netloc = f"{userinfo}@{hostport}" if ":" in userinfo',
        ("tests/faults/test_secrets.py", "tests/provider/test_proxy_cookies.py"),
        timeout=180,
    ),
    Mutant(
        "corrupt-store-file-raises",
        "a corrupt credential file breaks every chat instead of counting as empty",
        "provider/store/files.py",
        "        except (ValueError, KeyError, TypeError, ProtocolError):\n",
        "        except (KeyError, TypeError, ProtocolError):\n",
        ("tests/provider/test_store.py", "-k", "corrupt or truncated"),
    ),
    Mutant(
        "sandbox-forgets-prompts",
        "the sandbox stops recording prompts: the exact-prompt tests must notice",
        "sandbox/_legacy.py",
        "    site.prompts.append(message)\n",
        "",
        ("tests/sandbox/test_sandbox_legacy.py", "-k", "recorded"),
    ),
    # -- issue 21: layers and samples ----------------------------------------------------
    Mutant(
        "scraper-imports-provider",
        "issue 21: the lower layer reaches up (scraper imports provider): lint-imports must fail",
        "scraper/page.py",
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport provider  # planted\n",
        ("tests/test_layers.py::test_the_import_contracts_hold",),
    ),
    Mutant(
        "sandbox-imported-eagerly",
        "issue 21: the commands import the sandbox at load, not for --sandbox only",
        "provider/commands/cli.py",
        "from provider._provider import ChatgptFree\n",
        "import sandbox  # planted\nfrom provider._provider import ChatgptFree\n",
        ("tests/browser/test_lifecycle.py", "-k", "importing_the_provider"),
    ),
    Mutant(
        "readme-sample-rots",
        "issue 21: the README's sample calls an API that is not there (docs rot)",
        "README.md",
        'ChatgptFree.create_async_generator("gpt-4o-mini", messages)',
        'ChatgptFree.create_async("gpt-4o-mini", messages)',
        ("tests/docs/test_samples.py", "-k", "runs_against and README"),
    ),
    Mutant(
        "sample-escapes-under-another-fence",
        "issue 21: a Python sample fenced as `py` is never run",
        "docs/g4f.md",
        "```python\n",
        "```py\n",
        ("tests/docs/test_samples.py", "-k", "collected"),
    ),
    Mutant(
        "docs-link-to-a-missing-heading",
        "issue 21: the README links to a heading the docs do not have",
        "README.md",
        "(docs/install.md#dependencies-and-the-lock)",
        "(docs/install.md#the-lock)",
        ("tests/docs/test_samples.py", "-k", "links"),
    ),
    Mutant(
        "pool-shares-one-cookie-jar",
        "issue 11: calls sharing a pooled connection share one cookie jar",
        "scraper/http.py",
        "            self._jar = aiohttp.CookieJar(unsafe=True)\n",
        '            self._jar = globals().setdefault("_JAR", aiohttp.CookieJar(unsafe=True))\n',
        ("tests/provider/test_pool.py", "-k", "cookies_never_reach"),
    ),
    Mutant(
        "stale-keepalive-not-retried",
        "issue 11: a kept-alive connection the server closed while idle fails the chat",
        "scraper/http.py",
        "                if not _REUSED.get() or isinstance(exc, aiohttp.ClientConnectorError):\n",
        "                if True:\n",
        ("tests/provider/test_pool.py", "-k", "stale or closed_while_idle"),
    ),
    Mutant(
        "no-proxy-ignored",
        "issue 16: NO_PROXY exempts nothing",
        "scraper/proxy_env.py",
        '    host = host.strip("[]").rstrip(".").lower()\n',
        "    return False\n",
        ("tests/provider/test_env_proxy.py", "-k", "no_proxy"),
    ),
    Mutant(
        "page-parsed-on-the-loop",
        "issue 14: a big page's parse stalls every other stream on the loop",
        "scraper/page.py",
        "        info = await asyncio.to_thread(parse_page, html, page_url)\n",
        "        info = parse_page(html, page_url)\n",
        ("tests/scraper/test_parse_off_loop.py",),
    ),
    Mutant(
        "fleet-lock-without-nx",
        "issue 13: every host takes the fleet's lock, so each reads the page itself",
        "provider/store/redis.py",
        "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then",
        "if redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) then",
        ("tests/fleet/test_fleet.py", "-k", "reads_the_page_once"),
        timeout=180,
    ),
    Mutant(
        "wp-nonce-page-not-a-rejected-nonce",
        "issue 22: WordPress's 403 'The link you followed has expired.' (AI Power 1.9.0-2.2) "
        "ends the chat with a ProtocolError instead of one refresh and resend",
        "scraper/verdict.py",
        "    if low.startswith(WP_NONCE_AYS.lower()) "
        "or (error_page and WP_NONCE_AYS.lower() in low):",
        "    if False:",
        (
            "tests/provider/test_wordpress_refusals.py",
            "tests/provider/test_chat.py",
            "-k",
            "genuine or recovers or nonce",
        ),
    ),
    Mutant(
        "wp-minus-one-not-a-rejected-nonce",
        "issue 22: check_ajax_referer's '-1' is not taken for a rejected nonce",
        "scraper/verdict.py",
        '    if text == "-1":  # check_ajax_referer()\n',
        "    if False:\n",
        ("tests/provider/test_wordpress_refusals.py", "-k", "recovers"),
    ),
    Mutant(
        "wp-zero-not-an-unknown-action",
        "issue 22: admin-ajax.php's '0' (no handler: plugin inactive, other generation) "
        "is not read again once and not explained",
        "scraper/verdict.py",
        '    if text == "0" or (not text and status == 400):\n',
        "    if False:\n",
        ("tests/provider/test_wordpress_refusals.py", "-k", "unknown_action"),
    ),
    Mutant(
        "wp-error-page-called-foreign-by-verdict",
        "issue 22: a vendor's header-only signal turns WordPress's own 403 page into a block",
        "scraper/verdict.py",
        '    return not text or text.startswith(("{", "[")) or wordpress_refusal(status, text) '
        "is not None\n",
        '    return not text or text in ("-1", "0") or text.startswith(("{", "["))\n',
        ("tests/scraper/test_verdict.py", "-k", "wordpress_refusals_are_ok"),
    ),
    Mutant(
        "nonce-resent-after-text",
        "issue 22: a nonce refused after text reached the caller is resent (text twice)",
        "provider/_provider.py",
        "                if yielded:\n                    raise\n"
        "                if isinstance(exc, Challenged) and solved_now",
        "                if isinstance(exc, Challenged) and solved_now",
        ("tests/provider/test_wordpress_refusals.py", "-k", "after_text"),
    ),
    Mutant(
        "sandbox-1.9-refuses-with-plugin-json",
        "issue 22: the sandbox's 1.9 release answers a bad nonce like 1.8 (its JSON)",
        "sandbox/_legacy.py",
        "        if wordpress_refuses_nonce(config.plugin_release):\n",
        "        if False:\n",
        ("tests/sandbox/test_sandbox_legacy.py", "-k", "1_9"),
    ),
    Mutant(
        "release-not-read-from-the-page",
        "issue 22: the plugin's ?ver= is not read, health reports every release unknown",
        "scraper/page.py",
        "    return seen.most_common(1)[0][0] if seen else None\n",
        "    return None\n",
        (
            "tests/scraper/test_page.py",
            "tests/commands/test_commands.py",
            "-k",
            "release or health_json",
        ),
    ),
    Mutant(
        "browser-transport-never-chosen",
        "issue 12: a clearance bound to the browser's TLS ends in ChallengeError",
        "provider/_provider.py",
        'if isinstance(exc, Challenged) and solved_now and mode == "auto":',
        "if False:",
        ("tests/browser/test_transport.py", "-k", "bind_tls"),
        timeout=180,
    ),
    # -- issue 20: protocols, browser, pool --------------------------------------------
    Mutant(
        "plugin-nonce-refusal-resent-over-http",
        "issue 20: the plugin's own bad-nonce event after text is resent, legacy and aipkit "
        "(the caller reads 'You said: ' twice)",
        "provider/_provider.py",
        "                if yielded:\n                    raise\n"
        "                if isinstance(exc, Challenged) and solved_now",
        "                if isinstance(exc, Challenged) and solved_now",
        ("tests/provider/test_wordpress_refusals.py", "-k", "plugins_nonce_refusal_after_text"),
    ),
    Mutant(
        "plugin-nonce-refusal-resent-in-the-page",
        "issue 20: the browser transport reloads and resends after text reached the caller",
        "provider/_provider.py",
        "                except (StaleCredentials, Challenged) as exc:\n"
        "                    if yielded:\n                        raise\n"
        "                    if retried:",
        "                except (StaleCredentials, Challenged) as exc:\n"
        "                    if retried:",
        ("tests/browser/test_transport.py", "-k", "refused_after_text"),
        timeout=180,
    ),
    Mutant(
        "page-load-outside-the-cleanup",
        "issue 20: a call cancelled while Chromium loads the page leaves it running",
        "scraper/browser/_live.py",
        "                await live._launch(options, deadline, probe, progress)\n"
        "                await live._load(deadline, progress)\n"
        "        except BaseException:\n"
        "            await _shielded(live.close())\n"
        "            raise\n"
        "        finally:\n"
        "            await _dropped(probe)\n",
        "                await live._launch(options, deadline, probe, progress)\n"
        "        except BaseException:\n"
        "            await _shielded(live.close())\n"
        "            raise\n"
        "        finally:\n"
        "            await _dropped(probe)\n"
        "        async with _translated(deadline, progress, url, proxy, cookies):\n"
        "            await live._load(deadline, progress)\n",
        ("tests/browser/test_transport.py", "-k", "page_loads"),
        timeout=180,
    ),
    Mutant(
        "browser-ignores-the-stored-user-agent",
        "issue 20: the browser transport opens with its own UA, so a clearance earned "
        "under another one is solved again",
        "provider/_provider.py",
        "                user_agent=known.user_agent if known is not None else None,\n",
        "                user_agent=None,\n",
        ("tests/browser/test_transport.py", "-k", "stored_user_agent"),
        timeout=180,
    ),
    Mutant(
        "bot-id-ignored",
        "issue 20: bot_id is ignored on a page with several bots (every bot echoes alike)",
        "provider/_provider.py",
        "                bot_id=cls.bot_id,\n                pool=cls.pool_config(),\n",
        "                bot_id=None,\n                pool=cls.pool_config(),\n",
        ("tests/provider/test_chat.py", "-k", "several_bots"),
    ),
    Mutant(
        "bot-id-ignored-in-the-page",
        "issue 20: the browser transport opens the page's first bot, not bot_id's",
        "provider/_provider.py",
        "                bot_id=cls.bot_id,\n            )\n            await store.save(live.",
        "                bot_id=None,\n            )\n            await store.save(live.",
        ("tests/browser/test_transport.py", "-k", "chosen_bot"),
        timeout=180,
    ),
    Mutant(
        "pool-wait-unbounded",
        "issue 20: a caller waiting for a pooled connection ignores its timeout",
        "provider/protocols/_common.py",
        "total=None, connect=seconds, sock_connect=seconds",
        "total=None, connect=None, sock_connect=seconds",
        ("tests/provider/test_pool.py", "-k", "own_timeout"),
    ),
    Mutant(
        "find-chromium-asks-the-driver",
        "issue 20: finding Chromium starts Playwright's driver process on every lookup",
        "scraper/browser/_chromium.py",
        "    shell, full = _playwright_executables()\n    if shell is not None",
        "    from playwright.sync_api import sync_playwright\n\n"
        "    with sync_playwright() as driver:\n"
        "        shell, full = None, Path(driver.chromium.executable_path)\n"
        "    if shell is not None",
        ("tests/browser/test_lifecycle.py", "-k", "finding_chromium"),
    ),
    Mutant(
        "timeout-bounds-the-whole-answer",
        "issue 20: the timeout bounds the whole answer, not each gap (a trickle is cut)",
        "provider/protocols/_common.py",
        "total=None, connect=seconds, sock_connect=seconds",
        "total=seconds, connect=seconds, sock_connect=seconds",
        ("tests/faults/test_faults.py", "-k", "trickling"),
    ),
    Mutant(
        "aipkit-error-final-only-with-done",
        "issue 20: aipkit's `error` event counts only when `done` came first",
        "provider/protocols/aipkit.py",
        '        elif name == "error":\n',
        '        elif name == "error" and self.done:\n',
        ("tests/provider/test_protocols.py", "-k", "error_is_final"),
    ),
    Mutant(
        "legacy-upstream-words-read-as-answer",
        "issue 20: the plugin's upstream-failure word stream is shown as the answer",
        "provider/protocols/legacy.py",
        'if event.event == "message" and "id" not in obj and "object" not in obj:',
        "if False:",
        ("tests/provider/test_protocols.py", "-k", "upstream_failure"),
    ),
    Mutant(
        "legacy-limited-ignored",
        "issue 20: legacy's [LIMITED] marker is skipped, the upstream failure unreported",
        "provider/protocols/legacy.py",
        '        if data == "[LIMITED]":\n',
        '        if data == "[LIMITED]" and False:\n',
        ("tests/provider/test_protocols.py", "tests/provider/test_chat.py", "-k", "limited"),
    ),
    Mutant(
        "retry-after-dropped",
        "issue 20: a 429's Retry-After is not carried in the RateLimitedError",
        "scraper/verdict.py",
        "                retry_after=self.retry_after,\n",
        "                retry_after=None,\n",
        ("tests/scraper/test_verdict.py", "-k", "retry_after"),
    ),
    Mutant(
        "redirect-to-another-host-followed",
        "issue 20: a redirect to another host is followed; the message goes there",
        "scraper/http.py",
        "                        if not _same_origin(url, client.site):\n",
        "                        if False:\n",
        ("tests/faults/test_faults.py", "-k", "another_host"),
    ),
    Mutant(
        "huge-page-declared-size-ignored",
        "issue 20: a page declaring 6 MB is read (until the timeout) instead of refused",
        "scraper/http.py",
        "    if declared is not None and declared > max_bytes:\n",
        "    if False:\n",
        ("tests/faults/test_faults.py", "-k", "huge_page"),
    ),
    Mutant(
        "huge-page-read-whole",
        "issue 20: a page is read whole before its size is checked (an endless page hangs)",
        "scraper/http.py",
        "        if len(buffer) > limit:\n"
        "            return None\n"
        "        chunk = await readany()\n"
        "    return bytes(buffer)\n",
        "        chunk = await readany()\n"
        "    return bytes(buffer) if len(buffer) <= limit else None\n",
        ("tests/faults/test_faults.py", "-k", "huge_page"),
    ),
    Mutant(
        "aipkit-cache-key-reused",
        "issue 20: aipkit reuses a message's one-time cache key for the same prompt",
        "provider/protocols/aipkit.py",
        "    cache_key = await cache_message(client, creds, prompt, read_timeout=read_timeout)\n",
        "    keys = globals().setdefault('_KEYS', {})\n"
        "    cache_key = keys.get(prompt) or await cache_message(\n"
        "        client, creds, prompt, read_timeout=read_timeout)\n"
        "    keys[prompt] = cache_key\n",
        ("tests/provider/test_chat.py", "-k", "warm_call"),
    ),
    Mutant(
        "leftover-child-passes",
        "issue 20: a test whose child outlives it passes (the guard only kills)",
        "tests/conftest.py",
        '        pytest.fail(f"the test left processes behind (now killed): {left}", '
        "pytrace=False)\n",
        "        pass\n",
        ("tests/faults/test_guards.py", "-k", "leaving"),
    ),
    Mutant(
        "driver-outlives-playwrights-stop",
        "a Playwright driver still running after Playwright's stop is left to itself",
        "scraper/browser/_launch.py",
        "                with contextlib.suppress(ProcessLookupError):\n"
        "                    process.kill()\n",
        "                pass\n",
        ("tests/browser/test_lifecycle.py", "-k", "outlives_playwrights"),
        timeout=120,
    ),
    # -- issue 28: the Responses API, errors that name the way out ---------------------
    Mutant(
        "i28-previous-response-ignored",
        "issue 28: previous_response_id is looked up and its conversation dropped",
        "provider/commands/serve/_responses.py",
        '    messages: list[dict[str, Any]] = json.loads(raw)["messages"]\n',
        "    messages: list[dict[str, Any]] = []\n",
        ("tests/serve/test_responses.py", "-k", "another_host"),
    ),
    Mutant(
        "i28-store-false-stored",
        "issue 28: a response asked with store: false is kept anyway",
        "provider/commands/serve/_routes.py",
        "    if asked.store:\n",
        "    if True:\n",
        ("tests/serve/test_responses.py", "-k", "store_false"),
    ),
    Mutant(
        "i28-tools-dropped-silently",
        "issue 28: tools, reasoning, json output are accepted and silently ignored",
        "provider/commands/serve/_responses.py",
        "    return any(value == ok and type(value) is type(ok) for ok in _HARMLESS[name])\n",
        "    return True\n",
        ("tests/serve/test_responses.py", "-k", "cannot_honour"),
    ),
    Mutant(
        "i28-stream-without-completed",
        "issue 28: the stream ends without response.completed (and its usage)",
        "provider/commands/serve/_responses.py",
        '        await response.write(reply.event("response.completed", '
        'response=reply.body("completed")))\n',
        "        pass\n",
        ("tests/serve/test_responses.py", "-k", "typed_events"),
    ),
    Mutant(
        "i28-unknown-model-no-list",
        "issue 28: the unknown-model error no longer says which models are offered",
        "provider/commands/serve/_wire.py",
        '        f"{said}; this endpoint offers: {offered} (GET /v1/models)",\n',
        "        said,\n",
        ("tests/serve/test_responses.py", "-k", "unknown_model"),
    ),
    Mutant(
        "i28-site-class-named-site",
        "issue 28: the commands' site class is called Site in every message",
        "provider/commands/cli.py",
        "    return type(site_name(url), (ChatgptFree,), attrs)\n",
        '    return type("Site", (ChatgptFree,), attrs)\n',
        ("tests/commands/test_every_door.py", "-k", "unknown_model"),
    ),
    Mutant(
        "i28-redis-value-kept-forever",
        "issue 28: a conversation in Redis never expires",
        "provider/store/redis.py",
        "client.set(name, value.encode(), px=round(ttl * 1000))",
        "client.set(name, value.encode())",
        ("tests/fleet/test_fleet_responses.py", "-k", "expire"),
    ),
    Mutant(
        "i28-file-value-kept-forever",
        "issue 28: a conversation in the file store never expires",
        "provider/store/files.py",
        "        if expires_at <= time.time() or not isinstance(value, str):\n",
        "        if not isinstance(value, str):\n",
        ("tests/provider/test_store_files.py", "-k", "values"),
    ),
    # -- issue 27: the examiner's survivors, SingleFlight -------------------------------
    Mutant(
        "i27-network-error-names-the-proxy-with-its-password",
        "issue 27: a NetworkError through an authenticated proxy carries the proxy password",
        "scraper/http_translate.py",
        'via = f" through proxy {proxy.redacted}" if proxy else ""',
        'via = f" through proxy {proxy.raw}" if proxy else ""',
        ("tests/faults/test_examined.py", "-k", "through_an_authenticated_proxy"),
    ),
    Mutant(
        "i27-health-step-ok-despite-its-error",
        "issue 27: health exits 0, healthy: true, when a step failed without raising",
        "provider/commands/health.py",
        "        step.ok = step.error is None\n",
        "        step.ok = True\n",
        ("tests/faults/test_examined.py", "-k", "health_with_browser_never"),
    ),
    Mutant(
        "i27-health-browser-never-ignored",
        "issue 27: health with --browser never passes a challenge's verdict",
        "provider/commands/health.py",
        'if found.kind == "challenge" and args.browser == "never":',
        "if False:",
        ("tests/faults/test_examined.py", "-k", "health_with_browser_never"),
    ),
    Mutant(
        "i27-store-folder-0755-by-the-refresh-lock",
        "issue 27: the credentials folder is made 0755 (by the refresh's lock), not 0700",
        "provider/store/files.py",
        "            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)\n",
        "            self.folder.mkdir(mode=0o755, parents=True, exist_ok=True)\n",
        ("tests/faults/test_examined.py", "-k", "0700"),
    ),
    Mutant(
        "i27-store-folder-0755-by-the-write",
        "issue 27: the credentials folder is made 0755 (by a write), not 0700",
        "provider/store/files.py",
        "    def _write(self, path: Path, creds: Credentials) -> tuple[int, int]:\n"
        "        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)\n",
        "    def _write(self, path: Path, creds: Credentials) -> tuple[int, int]:\n"
        "        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)\n",
        ("tests/provider/test_store.py", "-k", "roundtrip_file_mode"),
    ),
    Mutant(
        "i27-prompt-limit-off-by-one",
        "issue 27: a prompt of exactly 100,000 characters is refused",
        "provider/prompt.py",
        "    if len(prompt) > MAX_PROMPT_CHARS:\n",
        "    if len(prompt) >= MAX_PROMPT_CHARS:\n",
        ("tests/faults/test_examined.py", "-k", "prompt"),
    ),
    Mutant(
        "i27-prompt-limit-one-over",
        "issue 27: a prompt of 100,001 characters is accepted",
        "provider/prompt.py",
        "    if len(prompt) > MAX_PROMPT_CHARS:\n",
        "    if len(prompt) > MAX_PROMPT_CHARS + 1:\n",
        ("tests/faults/test_examined.py", "-k", "prompt"),
    ),
    Mutant(
        "i27-proxy-password-sent-undecoded",
        "issue 27: a percent-encoded proxy password (p%40ss) is sent as written",
        "scraper/request.py",
        'auth = ProxyAuth(unquote(parts.username), unquote(parts.password or ""))',
        'auth = ProxyAuth(unquote(parts.username), parts.password or "")',
        ("tests/faults/test_examined.py", "-k", "percent_encoded"),
    ),
    Mutant(
        "i27-fresh-connection-failure-sent-again",
        "issue 27: a request that failed on a fresh connection is sent again",
        "scraper/http.py",
        "if not _REUSED.get() or isinstance(exc, aiohttp.ClientConnectorError):",
        "if isinstance(exc, aiohttp.ClientConnectorError):",
        ("tests/faults/test_examined.py", "-k", "fresh_connection"),
    ),
    Mutant(
        "i27-metrics-open-to-a-keyless-client",
        "issue 27: /metrics answers a client without the API key",
        "provider/commands/serve/_app.py",
        '(request.path.startswith("/v1") or request.path == "/metrics")',
        'request.path.startswith("/v1")',
        ("tests/faults/test_examined.py", "-k", "metrics"),
    ),
    Mutant(
        "i27-singleflight-next-caller-joins-a-cancelled-refresh",
        "issue 27: a caller out of time cancels an unstarted refresh the next caller joins",
        "provider/store/base.py",
        "                if flights.get(key) is flight:\n                    del flights[key]\n",
        "",
        ("tests/provider/test_store.py", "-k", "out_of_time or cleans_up"),
    ),
    Mutant(
        "i27-singleflight-cancelled-by-a-leaving-waiter",
        "issue 27: a waiter leaving cancels the refresh another waiter still awaits",
        "provider/store/base.py",
        "            if flight.waiters == 0 and not flight.task.done():\n",
        "            if not flight.task.done():\n",
        ("tests/provider/test_store.py", "-k", "waiter_leaving"),
    ),
    Mutant(
        "i27-guard-leaves-the-child",
        "issue 27: the leftover-process guard reports the child but leaves it running",
        "tests/conftest.py",
        "        procs.kill_all(left)\n        pytest.fail(",
        "        pytest.fail(",
        ("tests/faults/test_guards.py", "-k", "leaving_a_child"),
        extra=("    procs.kill_all(left)\n    reporter =", "    reporter ="),
    ),
    Mutant(
        "i27-socks-hang-up-escapes-untranslated",
        "issue 27 (found by the property test): a SOCKS proxy hanging up mid-handshake "
        "raises a bare asyncio.IncompleteReadError",
        "scraper/http_translate.py",
        "aiohttp.ClientError | OSError | EOFError)",
        "aiohttp.ClientError | OSError)",
        ("tests/faults/test_examined.py", "-k", "socks_proxy_whose"),
    ),
    Mutant(
        "i27-property-error-text-carries-the-proxy-url",
        "issue 27: the property test sees a proxy password in an error's text",
        "scraper/http_translate.py",
        'via = f" through proxy {proxy.redacted}" if proxy else ""',
        'via = f" through proxy {proxy.raw}" if proxy else ""',
        ("tests/faults/test_secrets_property.py",),
        timeout=240,
    ),
    Mutant(
        "i27-property-scrub-leaves-the-password",
        "issue 27: a proxy password a lower library's error carried reaches the caller",
        "scraper/http_translate.py",
        '            text = text.replace(proxy.auth.password, "***")\n',
        "            pass\n",
        ("tests/scraper/test_translate_scrub.py",),
        extra=("        text = text.replace(proxy.raw, proxy.redacted)\n", ""),
    ),
    # the mutation tool's survivors (scripts/mutation), killed by their own tests
    Mutant(
        "i27-mut-two-messages-sent-bare",
        "issue 27 (cosmic-ray): two messages go to the site as the first one's bare content",
        "provider/prompt.py",
        "    if not add_special_tokens and len(messages) <= 1:\n",
        "    if not add_special_tokens and len(messages) <= 2:\n",
        ("tests/provider/test_prompt.py",),
    ),
    Mutant(
        "i27-mut-site-cookies-dropped",
        "issue 27 (cosmic-ray): the cookies a site sets never reach the stored credentials",
        "scraper/http_translate.py",
        '        if not (host == domain or host.endswith("." + domain)):\n',
        '        if (host == domain or host.endswith("." + domain)):\n',
        ("tests/scraper/test_jar_cookies.py",),
    ),
    Mutant(
        "i27-mut-cookie-max-age-ignored",
        "issue 27 (cosmic-ray): a cookie's Max-Age is ignored: it is stored as a session cookie",
        "scraper/http_translate.py",
        "    if max_age:\n",
        "    if not max_age:\n",
        ("tests/scraper/test_jar_cookies.py",),
    ),
    Mutant(
        "i27-mut-site-429-called-a-proxy-refusal",
        "issue 27 (cosmic-ray): a page status above 407 (the site's 429) is a proxy refusal",
        "scraper/http_translate.py",
        "    if status == 407:\n",
        "    if status >= 407:\n",
        ("tests/provider/test_site_status.py",),
    ),
    Mutant(
        "i27-mut-proxy-refusal-names-no-proxy",
        "issue 27 (cosmic-ray): a proxy's refusal does not say which proxy",
        "scraper/http_translate.py",
        'return f"the proxy {proxy.redacted}" if proxy else "the proxy"',
        'return f"the proxy {proxy.redacted}" if not proxy else "the proxy"',
        ("tests/provider/test_proxy_cookies.py", "-k", "wrong_proxy_password"),
    ),
    Mutant(
        "i27-mut-store-older-file-version-read",
        "issue 27 (cosmic-ray): a credential file of an older version is read as valid",
        "provider/store/files.py",
        'data.get("version") != FILE_VERSION',
        'data.get("version") > FILE_VERSION',
        ("tests/provider/test_store_files.py", "-k", "another_file_version"),
    ),
    Mutant(
        "i27-mut-store-memory-loses-to-an-older-file",
        "issue 27 (cosmic-ray): once the disk fails, an older file replaces what memory holds",
        "provider/store/files.py",
        "        self._disk_ok = False\n",
        "        self._disk_ok = True\n",
        ("tests/faults/test_store_faults.py", "-k", "memory_win"),
    ),
    Mutant(
        "i27-mut-store-unsearchable-folder-fails-the-call",
        "issue 27 (cosmic-ray): a credentials folder that cannot be searched fails the call",
        "provider/store/files.py",
        '        except OSError as exc:\n            self._warn_once("stat"',
        '        except FileNotFoundError as exc:\n            self._warn_once("stat"',
        ("tests/faults/test_store_faults.py", "-k", "never_fails_a_call"),
    ),
    Mutant(
        "i27-mut-pool-fractional-connections",
        "issue 27 (cosmic-ray): max_connections=2.5 (or True) is taken as a bound",
        "scraper/http.py",
        "if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:",
        "if isinstance(limit, bool) and not isinstance(limit, int) or limit < 0:",
        ("tests/faults/test_limits.py", "-k", "whole_number"),
    ),
    Mutant(
        "i27-mut-redirect-to-ftp-is-a-usage-error",
        "issue 27 (cosmic-ray): a redirect to a non-http address escapes as the caller's "
        "ConfigurationError",
        "scraper/http.py",
        "    except ConfigurationError:  # not even http(s): certainly not the site\n",
        "    except TypeError:  # not even http(s): certainly not the site\n",
        ("tests/faults/test_faults.py", "-k", "non_http"),
    ),
    Mutant(
        "i27-mut-pool-cache-untyped",
        "issue 27 (found by a test for a cosmic-ray survivor): max_connections=True reuses "
        "the cached result of 1",
        "scraper/http.py",
        "@functools.lru_cache(maxsize=64, typed=True)\n",
        "@functools.lru_cache(maxsize=64)\n",
        ("tests/faults/test_limits.py",),
    ),
    Mutant(
        "i27-mut-sandbox-legacy-is-aipkit",
        "issue 27 (cosmic-ray): --sandbox legacy starts an aipkit site, and aipkit a legacy one",
        "provider/commands/cli.py",
        '"generation": "legacy" if "legacy" in words else "aipkit",',
        '"generation": "aipkit" if "legacy" in words else "legacy",',
        ("tests/commands/test_commands.py", "-k", "sandbox_mode_picks"),
    ),
    Mutant(
        "i27-mut-json-failure-says-ok",
        "issue 27 (cosmic-ray): a failed command's --json output says ok: true",
        "provider/commands/cli.py",
        'print(json.dumps({"ok": False, "error"',
        'print(json.dumps({"ok": True, "error"',
        ("tests/commands/test_commands.py", "-k", "ok_false"),
    ),
    Mutant(
        "i27-mut-bad-store-env-not-checked",
        "issue 27 (cosmic-ray): a bad $PROVIDER_STORE is not refused as a usage error",
        "provider/commands/cli.py",
        "    if not given:\n        given, setting =",
        "    if given:\n        given, setting =",
        ("tests/commands/test_commands.py", "-k", "environment_is_a_usage"),
    ),
    Mutant(
        "i27-mut-proxy-password-in-repr",
        "issue 27 (cosmic-ray): a ProxyAuth's repr (a log line, a traceback) shows the password",
        "scraper/request.py",
        "    password: str = field(repr=False)\n",
        "    password: str = field(repr=True)\n",
        ("tests/scraper/test_request.py", "-k", "repr"),
    ),
    Mutant(
        "i27-mut-origin-keeps-default-port",
        "issue 27 (cosmic-ray): https://site:443 is another origin than https://site (other "
        "credentials, cookies not sent)",
        "scraper/request.py",
        '{"http": 80, "https": 443}[parts.scheme]',
        '{"http": 80, "https": 444}[parts.scheme]',
        ("tests/scraper/test_request.py", "-k", "origin"),
    ),
    Mutant(
        "i27-mut-proxy-without-port-taken",
        "issue 27 (cosmic-ray): a proxy without a port is taken (sent to host:None)",
        "scraper/request.py",
        "if not parts.hostname or port is None:",
        "if not parts.hostname and port is None:",
        ("tests/scraper/test_request.py", "-k", "cannot_be_used"),
    ),
    Mutant(
        "i27-mut-health-fail-line-shows-the-detail",
        "issue 27 (cosmic-ray, a real bug): a failed health step's line prints its detail, "
        "not what failed",
        "provider/commands/health.py",
        "{s.detail if s.ok else s.error}",
        "{s.detail or s.error}",
        ("tests/commands/test_commands.py", "-k", "empty_answer"),
    ),
    Mutant(
        "i27-mut-health-uses-stored-credentials",
        "issue 27 (cosmic-ray): health reports stored credentials as obtainable, without "
        "obtaining any",
        "provider/commands/health.py",
        "timeout=args.timeout, force=True)",
        "timeout=args.timeout, force=False)",
        ("tests/commands/test_commands.py", "-k", "still_obtains_fresh"),
    ),
    Mutant(
        "i27-mut-health-step-seconds-wrong",
        "issue 27 (cosmic-ray): health's step seconds are the clock plus the start, not the "
        "time the step took",
        "provider/commands/health.py",
        "        step.seconds = round(time.monotonic() - start, 3)\n",
        "        step.seconds = round(time.monotonic() + start, 3)\n",
        ("tests/commands/test_commands.py", "-k", "times_its_steps"),
    ),
    Mutant(
        "i27-mut-refresh-stops-at-a-failed-site",
        "issue 27 (cosmic-ray): refresh of several sites stops at the first that fails",
        "provider/commands/refresh.py",
        "                continue\n",
        "                break\n",
        ("tests/commands/test_commands.py", "-k", "several_sites_one_blocked"),
    ),
    Mutant(
        "i27-mut-refresh-import-with-sandbox",
        "issue 27 (cosmic-ray): --import with --sandbox (or --export) is not refused",
        "provider/commands/refresh.py",
        "if args.url or args.sandbox or args.export or args.force:",
        "if args.url or args.sandbox and args.export or args.force:",
        ("tests/commands/test_commands.py", "-k", "import_with_anything_else"),
    ),
    Mutant(
        "i27-mut-refresh-import-says-not-ok",
        "issue 27 (cosmic-ray): an import that worked says ok: false under --json",
        "provider/commands/refresh.py",
        'rows = [describe(c) | {"ok": True} for c in imported]',
        'rows = [describe(c) | {"ok": False} for c in imported]',
        ("tests/commands/test_commands.py", "-k", "export_import"),
    ),
    Mutant(
        "i27-mut-chat-waits-on-the-terminal",
        "issue 27 (cosmic-ray): the chat command without a question waits on a terminal's "
        "keyboard instead of exit 2",
        "provider/commands/__main__.py",
        "if sys.stdin is None or sys.stdin.isatty():",
        "if sys.stdin is None and sys.stdin.isatty():",
        ("tests/commands/test_commands.py", "-k", "terminal_without_a_question"),
    ),
    Mutant(
        "i27-mut-chat-first-chunk-is-the-total",
        "issue 27 (cosmic-ray): the chat command's --json first_chunk_seconds is the whole time",
        "provider/commands/__main__.py",
        '"first_chunk_seconds": round(first or total, 3)',
        '"first_chunk_seconds": round(first and total, 3)',
        ("tests/commands/test_commands.py", "-k", "times_the_first_chunk"),
    ),
    Mutant(
        "i27-mut-serve-health-dies-on-an-unusable-store",
        "issue 27 (cosmic-ray): the server's /health with an unusable store is a 500, not "
        "the store's error in its credentials",
        "provider/commands/serve/_routes.py",
        "    except ProviderError as exc:  # an unusable cache dir",
        "    except KeyError as exc:  # an unusable cache dir",
        ("tests/serve/test_openai.py", "-k", "unusable_store"),
    ),
    Mutant(
        "i27-mut-serve-announcement-unflushed",
        "issue 27 (cosmic-ray): the server's base URL line sits in stdout's buffer, so a "
        "service manager reading the pipe never sees it",
        "provider/commands/serve/_command.py",
        'print(f"OpenAI-compatible endpoint: {server.base_url}", flush=True)',
        'print(f"OpenAI-compatible endpoint: {server.base_url}", flush=False)',
        ("tests/serve/test_command.py", "-k", "without_json"),
    ),
    Mutant(
        "i27-mut-serve-port-65535-refused",
        "issue 27 (cosmic-ray): --port 65535, a port, is refused as a usage error",
        "provider/commands/serve/_command.py",
        "if not 0 <= args.port <= 65535:",
        "if not 0 <= args.port < 65535:",
        ("tests/serve/test_command.py", "-k", "port_range"),
    ),
    Mutant(
        "i27-mut-store-word-before-file-taken",
        "issue 27 (cosmic-ray, every operator): a --store word sorting before 'file' "
        "('disk') is taken as the file store instead of refused",
        "provider/commands/cli.py",
        'if given and given.strip().lower() != "file":',
        'if given and given.strip().lower() > "file":',
        ("tests/commands/test_commands.py", "-k", "bad_store_url_is_a_usage_error"),
    ),
    Mutant(
        "i27-mut-health-never-fails-a-healthy-site",
        "issue 27 (cosmic-ray, every operator): health --browser never calls a healthy "
        "site's page a challenge (the verdict's kind compared as text, >= 'challenge')",
        "provider/commands/health.py",
        'if found.kind == "challenge" and args.browser == "never":',
        'if found.kind >= "challenge" and args.browser == "never":',
        ("tests/commands/test_commands.py", "-k", "forbids_only_what"),
    ),
    Mutant(
        "i27-mut-serve-names-after-localhost-are-loopback",
        "issue 27 (cosmic-ray, every operator): a host name sorting after 'localhost' "
        "('nas', 'localhost.example.org') counts as loopback: served beyond it without a key",
        "provider/commands/serve/_app.py",
        'if host.lower() == "localhost":',
        'if host.lower() >= "localhost":',
        ("tests/serve/test_command.py", "-k", "loopback_addresses"),
    ),
    Mutant(
        "i27-mut-serve-any-scheme-carries-the-key",
        "issue 27 (cosmic-ray, every operator): the key under any scheme ('Token <key>') "
        "passes, not only 'Bearer <key>'",
        "provider/commands/serve/_app.py",
        'if scheme.lower() != "bearer" or',
        'if scheme.lower() is "bearer" or',
        ("tests/serve/test_openai.py", "-k", "401_bad"),
    ),
    Mutant(
        "i27-mut-serve-late-sorting-part-taken",
        "issue 27 (cosmic-ray, every operator): a content part whose type sorts after "
        "'text' (video_url) is taken as text instead of refused",
        "provider/commands/serve/_wire.py",
        'part.get("type") != "text":',
        'part.get("type") < "text":',
        ("tests/serve/test_openai.py", "-k", "400_bad_request"),
    ),
    Mutant(
        "i27-mut-serve-chunk-choice-index-1",
        "issue 27 (cosmic-ray, every operator): a streamed chunk's one choice is index 1",
        "provider/commands/serve/_wire.py",
        '[{"index": 0, "delta": delta,',
        '[{"index": 1, "delta": delta,',
        ("tests/serve/test_openai.py", "-k", "streaming_completion"),
    ),
    Mutant(
        "i27-mut-serve-streamed-usage-starts-at-minus-1",
        "issue 27 (cosmic-ray, every operator): the streamed estimate counts one character short",
        "provider/commands/serve/_wire.py",
        "    completion_chars: int = 0\n",
        "    completion_chars: int = -1\n",
        ("tests/serve/test_openai.py", "-k", "streamed_usage_counts"),
    ),
    Mutant(
        "i27-mut-responses-late-sorting-item-taken",
        "issue 27 (cosmic-ray, every operator): a Responses input item whose type sorts "
        "after 'message' (reasoning) is taken as a message instead of refused",
        "provider/commands/serve/_responses.py",
        '        if kind != "message":',
        '        if kind < "message":',
        ("tests/serve/test_responses.py", "-k", "malformed"),
    ),
    Mutant(
        "i27-mut-chat-first-chunk-as-a-ratio",
        "issue 27 (cosmic-ray, every operator): --json's first_chunk_seconds is the clock "
        "divided by the start (about 1.0 whatever the wait), not the time it took",
        "provider/commands/__main__.py",
        "                first = time.monotonic() - start\n",
        "                first = time.monotonic() / start\n",
        ("tests/commands/test_commands.py", "-k", "times_the_first_chunk"),
    ),
    Mutant(
        "i27-mut-serve-body-limit-off-by-one",
        "issue 27 (cosmic-ray): the endpoint's body limit is a byte short of its 4 MiB",
        "provider/commands/serve/_app.py",
        "MAX_BODY_BYTES = 4 * 1024 * 1024",
        "MAX_BODY_BYTES = 4 * 1024 * 1024 - 1",
        ("tests/serve/test_openai.py", "-k", "body_limit"),
    ),
    Mutant(
        "i27-mut-serve-refusal-hides-the-address",
        "issue 27 (cosmic-ray): the loopback rule's refusal names 'every interface' for an "
        "address it was given (0.0.0.0), not the address",
        "provider/commands/serve/_app.py",
        "{host or 'every interface'}",
        "{host and 'every interface'}",
        ("tests/serve/test_command.py", "-k", "library_refuses"),
    ),
    Mutant(
        "i27-mut-serve-405-loses-allow",
        "issue 27 (cosmic-ray): a 405 comes out without its Allow header (or not as JSON)",
        "provider/commands/serve/_app.py",
        'if k.lower() == "allow"',
        'if k.lower() != "allow"',
        ("tests/serve/test_openai.py", "-k", "routers_refusals"),
    ),
    Mutant(
        "i27-mut-serve-hang-up-not-499",
        "issue 27 (cosmic-ray): a client that hung up is counted as a 500 in /metrics, not 499",
        "provider/commands/serve/_app.py",
        "status = 499  # the client hung up",
        "status = 500  # the client hung up",
        ("tests/serve/test_metrics.py", "-k", "499"),
    ),
    Mutant(
        "i27-mut-serve-configuration-error-is-the-clients",
        "issue 27 (cosmic-ray): the server's own bad setting (ConfigurationError) is "
        "answered as the client's 400 instead of a 500",
        "provider/commands/serve/_wire.py",
        '    (ConfigurationError, 500, "server_error", "configuration_error"),\n',
        "",
        ("tests/serve/test_openai.py", "-k", "every_library_error"),
    ),
    Mutant(
        "i27-mut-serve-browser-error-is-a-timeout",
        "issue 27 (cosmic-ray): an unavailable browser is answered 504 (a timeout), not 503",
        "provider/commands/serve/_wire.py",
        '(BrowserError, 503, "server_error", "browser_unavailable")',
        '(BrowserError, 504, "server_error", "browser_unavailable")',
        ("tests/serve/test_openai.py", "-k", "every_library_error"),
    ),
    Mutant(
        "i27-mut-serve-bad-model-type-not-400",
        "issue 27 (cosmic-ray): a 'model' that is no string is refused with a 401",
        "provider/commands/serve/_wire.py",
        "raise APIError(400, \"'model' must be a string\"",
        "raise APIError(401, \"'model' must be a string\"",
        ("tests/serve/test_openai.py", "-k", "each_bad_request_field"),
    ),
    Mutant(
        "i27-mut-drain-bound-less-the-answer",
        "issue 27 (cosmic-ray): a body's rest is bounded by 1 MiB less what the answer took: "
        "legacy's trailing JSON of a long answer closes its connection",
        "scraper/http.py",
        "        limit = DRAIN_BYTES + resp.content.total_bytes\n",
        "        limit = DRAIN_BYTES - resp.content.total_bytes\n",
        ("tests/provider/test_body_end.py", "-k", "1_mib and long"),
    ),
    Mutant(
        "i27-mut-drain-reads-past-its-bound",
        "issue 27 (cosmic-ray): a body's rest over its 1 MiB bound is read on, its connection kept",
        "scraper/http.py",
        'over its bound: closing its connection")\n                    break\n',
        'over its bound: closing its connection")\n                    continue\n',
        ("tests/provider/test_body_end.py", "-k", "1_mib and over"),
    ),
    Mutant(
        "i27-mut-drain-bound-under-a-second-closes",
        "issue 27 (cosmic-ray): a drain_timeout under a second closes every body not yet ended",
        "scraper/http.py",
        "config.drain_timeout <= 0",
        "config.drain_timeout <= 1",
        ("tests/provider/test_body_end.py", "-k", "under_a_second"),
    ),
    Mutant(
        "i27-mut-pool-close-waits-out-its-drains",
        "issue 27 (cosmic-ray): closing the pool waits for its drains to end instead of "
        "cancelling them (up to drain_timeout)",
        "scraper/http.py",
        "        for task in drains:\n            task.cancel()",
        "        for task in []:\n            task.cancel()",
        ("tests/provider/test_body_end.py", "-k", "closing_the_pool and legacy"),
    ),
    Mutant(
        "i27-mut-one-loops-close-breaks-another",
        "issue 27 (cosmic-ray): closing one event loop's pool makes another loop's close fail",
        "scraper/http.py",
        "if _LAST is not None and _LAST[1] is pools:",
        "if _LAST is not None or _LAST[1] is pools:",
        ("tests/provider/test_pool.py", "-k", "any_order"),
    ),
    Mutant(
        "i27-mut-keepalive-0-still-drains",
        "issue 27 (cosmic-ray): keepalive_timeout=0 (or drain_timeout=0) alone still drains a "
        "body in the background, holding its connection up to drain_timeout",
        "scraper/http.py",
        "config.drain_timeout <= 0 or config.keepalive_timeout <= 0:",
        "config.drain_timeout <= 0 and config.keepalive_timeout <= 0:",
        ("tests/provider/test_body_end.py", "-k", "bound_of_0"),
    ),
    Mutant(
        "i27-mut-finished-loop-kept-alive",
        "issue 27 (cosmic-ray): a finished event loop's pool stays in the weak dictionary, "
        "keeping the loop (its sessions refer to it) alive for good",
        "scraper/http.py",
        "        if _POOLS.get(loop) is pools:\n",
        "        if _POOLS.get(loop) is not pools:\n",
        ("tests/provider/test_pool.py", "-k", "let_go"),
    ),
    Mutant(
        "i27-mut-drain-end-raises-in-the-loop",
        "issue 27 (cosmic-ray): a drain's end forgets the other drains of its session and, "
        "cancelled by the pool's close, raises KeyError into the event loop's log",
        "scraper/http.py",
        "if not drains and self.drains.get(session) is drains:",
        "if not drains or self.drains.get(session) is drains:",
        ("tests/provider/test_body_end.py", "-k", "closing_the_pool and legacy"),
    ),
    Mutant(
        "i27-mut-form-post-drops-the-headers",
        "issue 27 (cosmic-ray): the self-encoded form goes without the request's headers "
        "(the User-Agent a clearance cookie is bound to, the Referer)",
        "scraper/http.py",
        'headers = {**(headers or {}), "Content-Type": FORM_TYPE}',
        'headers = {**(headers and {}), "Content-Type": FORM_TYPE}',
        ("tests/provider/test_pool.py", "-k", "form_post"),
    ),
    Mutant(
        "i27-mut-responses-usage-rounded-down",
        "issue 27 (cosmic-ray): the Responses API's input_tokens rounded down, not up "
        "(characters / 4)",
        "provider/commands/serve/_responses.py",
        'prompt = -(-sum(len(m["content"]) for m in self.messages) // CHARS_PER_TOKEN)',
        'prompt = sum(len(m["content"]) for m in self.messages) // CHARS_PER_TOKEN',
        ("tests/serve/test_responses.py", "-k", "response_object_says"),
    ),
    Mutant(
        "i27-mut-responses-verbosity-refused",
        "issue 27 (cosmic-ray): a plain-text format with a verbosity hint refused as a "
        "structured output",
        "provider/commands/serve/_responses.py",
        'return value.get("format") in (None, {"type": "text"}) and set(value) <= {',
        'return value.get("format") in (None, {"type": "text"}) and set(value) < {',
        ("tests/serve/test_responses.py", "-k", "ask_for_nothing"),
    ),
    Mutant(
        "i27-mut-responses-bad-type-not-a-400",
        "issue 27 (cosmic-ray): a 'metadata' that is no object answered 401, not 400",
        "provider/commands/serve/_responses.py",
        "raise APIError(400, \"'metadata' must be an object\"",
        "raise APIError(401, \"'metadata' must be an object\"",
        ("tests/serve/test_responses.py", "-k", "malformed"),
    ),
    Mutant(
        "i27-mut-responses-failure-called-a-rate-limit",
        "issue 27 (cosmic-ray): a stream's failure (a timeout) called rate_limit_exceeded "
        "in its response.failed",
        "provider/commands/serve/_responses.py",
        '"rate_limit_exceeded" if error.status == 429 else "server_error"',
        '"rate_limit_exceeded" if error.status != 429 else "server_error"',
        ("tests/serve/test_responses.py", "-k", "failure_mid_stream"),
    ),
    Mutant(
        "i27-mut-responses-event-wrong-output-index",
        "issue 27 (cosmic-ray): the stream's text events name output 1, not the one message",
        "provider/commands/serve/_responses.py",
        '"output_index": 0, "content_index": 0}',
        '"output_index": 1, "content_index": 0}',
        ("tests/serve/test_responses.py", "-k", "streamed_response"),
    ),
    # -- issue 25: a body's end belongs to the pool ------------------------------------
    Mutant(
        "i25-no-drain",
        "issue 25: the response is released before the body's end: the connection is lost",
        "scraper/http.py",
        "            self._pools.finish(self._session, resp, self._config)\n",
        "            resp.release()\n",
        ("tests/provider/test_body_end.py", "-k", "warm_chats_keep"),
    ),
    Mutant(
        "i25-drain-unbounded",
        "issue 25: a body that never ends is read forever, its connection held",
        "scraper/http.py",
        "        async with asyncio.timeout(seconds):\n",
        "        async with asyncio.timeout(None):\n",
        ("tests/provider/test_body_end.py", "-k", "within_the_bound"),
        timeout=30,
    ),
    Mutant(
        "i25-caller-waits-for-the-end",
        "issue 25: the caller's generator waits for the body's end (drained in the foreground)",
        "scraper/http.py",
        "            self._client._finish(resp, exc_type is None)\n",
        "            await resp.content.read()\n"
        "            self._client._finish(resp, exc_type is None)\n",
        ("tests/provider/test_body_end.py", "-k", "generator_ends"),
    ),
    Mutant(
        "i25-no-handover",
        "issue 25: a sequential chat opens a new connection while the last body is draining",
        "scraper/http.py",
        "            await self._pools.handover(self._session)\n",
        "            pass\n",
        ("tests/provider/test_body_end.py", "-k", "warm_chats_keep"),
    ),
    Mutant(
        "i25-cookie-header-outlives-a-cookie",
        "issue 25: the cached Cookie header keeps a stored cookie after it expired",
        "scraper/http_translate.py",
        "    if found is not None and now < found[1]:\n",
        "    if found is not None:\n",
        ("tests/provider/test_pool.py", "-k", "stops_travelling"),
    ),
    Mutant(
        "i25-cookie-header-crosses-calls",
        "issue 25: one call's cached Cookie header goes to a call holding other cookies",
        "scraper/http_translate.py",
        "    entry = _HEADERS.get(id(cookies))\n",
        "    entry = next(iter(_HEADERS.values()), None)\n",
        ("tests/provider/test_pool.py", "-k", "same_url"),
        extra=("    if entry is None or entry[0] is not cookies:\n", "    if entry is None:\n"),
    ),
    Mutant(
        "i25-cookie-header-ignores-the-path",
        "issue 25: the Cookie header is worked out for the site's root, not the request's URL",
        "scraper/http_translate.py",
        "jar.filter_cookies(URL(url))",
        "jar.filter_cookies(URL(site))",
        ("tests/provider/test_pool.py", "-k", "only_where"),
    ),
    Mutant(
        "i25-site-cookie-not-kept-in-the-call",
        "issue 25: a cookie the site sets mid-call is not sent on the call's next request",
        "scraper/http.py",
        '        if "Set-Cookie" in resp.headers and resp.cookies:\n',
        '        if "Set-Cookie" in resp.headers and not resp.cookies:\n',
        ("tests/provider/test_pool.py", "-k", "joins_the_calls"),
    ),
    Mutant(
        "i25-sse-fast-path-drops-the-event-name",
        "issue 25: the SSE fast path gives named events no name (aipkit's done is missed)",
        "provider/sse.py",
        'append(_new(Event, (text, name[7:].decode("utf-8", "replace"), ident)))',
        'append(_new(Event, (text, "", ident)))',
        ("tests/provider/test_sse.py", "-k", "captures or whole_events"),
    ),
    Mutant(
        "i25-sse-lone-cr-lost-while-skipping",
        "issue 25: a held-back lone CR is dropped with an over-long line: the next line joins it",
        "provider/sse.py",
        'rest = b"\\r" if held else b""',
        'rest = b""',
        ("tests/provider/test_sse.py", "-k", "lone_cr"),
    ),
    Mutant(
        "i25-plan-not-keyed-on-the-environment",
        "issue 25: the call's plan is cached without the environment: a proxy set later is ignored",
        "provider/_provider.py",
        "            proxy,\n            env,\n        )\n",
        "            proxy,\n        )\n",
        ("tests/provider/test_env_proxy.py", "-k", "bad_environment"),
    ),
    Mutant(
        "i25-store-misses-another-process",
        "issue 25: a warm store answers from memory without looking at the file",
        "provider/store/files.py",
        "        if cached is not None and cached.stamp == stamp:\n",
        "        if cached is not None:\n",
        ("tests/provider/test_store.py", "-k", "another_process"),
    ),
    Mutant(
        "i25-released-before-the-end-behind-nginx",
        "issue 25: the reply is released at the answer's end: nginx + PHP-FPM lose the connection",
        "scraper/http.py",
        "            self._pools.finish(self._session, resp, self._config)\n",
        "            resp.release()\n",
        ("tests/realserver/test_keepalive.py", "-k", "no_new_connection and legacy-0"),
    ),
    Mutant(
        "i25-form-sent-without-its-type",
        "issue 25: the self-encoded form goes without its Content-Type: the site reads no field",
        "scraper/http.py",
        '            headers = {**(headers or {}), "Content-Type": FORM_TYPE}\n',
        "            headers = {**(headers or {})}\n",
        ("tests/provider/test_body_end.py", "-k", "warm_chats_keep"),
    ),
    Mutant(
        "i25-form-plus-left-unquoted",
        "issue 25: the form's no-quoting shortcut takes '+' for safe: the site reads it as a space",
        "scraper/request.py",
        '_FORM_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")\n',
        '_FORM_SAFE = re.compile(r"[A-Za-z0-9_.~+-]*")\n',
        ("tests/scraper/test_encode_form.py",),
    ),
    # -- issue 29: refusals by structure, every release class ---------------------------
    Mutant(
        "i29-l1-no-greeting",
        "L1's trailing JSON loses greeting_message",
        "sandbox/_legacy.py",
        'greeting = config.greeting_message if config.release_class == "L1" else None',
        "greeting = None",
        ("tests/sandbox/test_sandbox_classes.py", "-k", "baseline"),
    ),
    Mutant(
        "i29-l2-no-trailer",
        "L2 ends at [DONE] like L3",
        "sandbox/_legacy.py",
        'if config.since("L3"):\n        return []',
        'if config.since("L2"):\n        return []',
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[L2]",),
    ),
    Mutant(
        "i29-l3-trailer",
        "L3 keeps the JSON after [DONE]",
        "sandbox/_legacy.py",
        'if config.since("L3"):\n        return []',
        'if config.since("L4"):\n        return []',
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[L3]",),
    ),
    Mutant(
        "i29-l4-get-fields",
        "L4 reads its fields from $_REQUEST (GET works)",
        "sandbox/_legacy.py",
        'params = globals_.post if config.since("L4") else globals_.request',
        "params = globals_.request",
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[L4]",),
    ),
    Mutant(
        "i29-l4-nonce-from-1.9",
        "the 403 nonce refusal starts at 1.9.0, not 1.8.91",
        "sandbox/_config.py",
        'return release_class(release) == "L4"',
        'return _version(release) >= (1, 9, 0) and release_class(release) == "L4"',
        ("tests/sandbox/test_sandbox_classes.py", "-k", "first_release and L4"),
    ),
    Mutant(
        "i29-a1-security-text",
        "A1 refuses a bad stream nonce with A2's text",
        "sandbox/_aipkit.py",
        '"security": SECURITY_A1 if not site.config.since("A2") else SECURITY,',
        '"security": SECURITY,',
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[A2]",),
    ),
    Mutant(
        "i29-a2-chat-message-unchecked",
        "A2's non-streaming chat checks no nonce",
        "sandbox/_aipkit.py",
        'if site.config.since("A2") and not site.nonces.verify(',
        'if site.config.since("A3") and not site.nonces.verify(',
        ("tests/sandbox/test_sandbox_classes.py", "-k", "baseline"),
    ),
    Mutant(
        "i29-a3-cross-origin-allowed",
        "A3 accepts another site's Origin",
        "sandbox/_aipkit.py",
        'if config.since("A3") and _cross_origin(request):',
        'if config.since("A4") and _cross_origin(request):',
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[A3]",),
    ),
    Mutant(
        "i29-a4-refresh-everywhere",
        "the nonce-refresh action exists before A4",
        "sandbox/_app.py",
        'if action == "aipkit_get_frontend_chat_nonce" and not config.since("A4"):',
        'if action == "aipkit_get_frontend_chat_nonce" and not config.since("A1"):',
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[A4]",),
    ),
    Mutant(
        "i29-a5-status-everywhere",
        "status events before A5",
        "sandbox/_aipkit.py",
        'if config.responses_api and config.since("A5"):',
        "if config.responses_api:",
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[A5]",),
    ),
    Mutant(
        "i29-a6-padding-everywhere",
        "the 4096-space comment before A6",
        "sandbox/_aipkit.py",
        'if site.config.since("A6"):\n        frames = [Frame(PREAMBLE), *frames]',
        "if True:\n        frames = [Frame(PREAMBLE), *frames]",
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[A6]",),
    ),
    Mutant(
        "i29-a7-chat-message-kept",
        "A7 still answers the non-streaming chat",
        "sandbox/_app.py",
        'if action == "aipkit_frontend_chat_message" and config.since("A7"):',
        'if action == "aipkit_frontend_chat_message" and config.since("A8"):',
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[A7]",),
    ),
    Mutant(
        "i29-a8-no-google",
        "A8's Google bots get no google_interaction_id",
        "sandbox/_aipkit.py",
        'if config.since("A8") and bot_id in config.google_bots:',
        'if config.since("A8") and bot_id < 0:',
        ("tests/sandbox/test_sandbox_classes.py::test_each_class_differs_from_the_one_before[A8]",),
    ),
    Mutant(
        "i29-words-after-message-start",
        "the words decide an error after message_start",
        "provider/protocols/_refusal.py",
        "    if started:\n",
        "    if started and low.startswith(BACKEND_PREFIXES):\n",
        ("tests/provider/test_refusals.py", "-k", "after_message_start"),
    ),
    Mutant(
        "i29-backend-429-not-retryable",
        "an upstream 429 is a plain backend failure",
        "provider/protocols/_refusal.py",
        "if _has(low, RATE_LIMIT_WORDS):\n        wait",
        "if not low:\n        wait",
        (
            "tests/provider/test_refusals.py",
            "tests/provider/test_chat.py",
            "-k",
            "429 or refuses_in",
        ),
    ),
    Mutant(
        "i29-unknown-words-guessed",
        "unrecognised refusal words are guessed as a message rejection",
        "provider/protocols/_refusal.py",
        "final=request_refused(text),",
        "final=message_rejected(text),",
        (
            "tests/provider/test_refusals.py",
            "tests/provider/test_chat.py",
            "-k",
            "name_nothing or german",
        ),
    ),
    Mutant(
        "i29-maybe-nonce-final-lost",
        "a refusal refused again after the refresh reads as a stale nonce",
        "provider/_provider.py",
        "        return exc.final\n",
        "        pass\n",
        ("tests/provider/test_chat.py", "-k", "german"),
    ),
    Mutant(
        "i29-ban-is-message",
        "a banned address is a plain message rejection",
        "provider/protocols/_refusal.py",
        "def address_banned(text: str) -> AddressBannedError:\n    return AddressBannedError(",
        "def address_banned(text: str) -> AddressBannedError:\n"
        "    return MessageRejectedError(  # type: ignore[return-value]",
        ("tests/provider/test_refusals.py", "-k", "banned_address or flags"),
    ),
    Mutant(
        "i29-quota-notice-ignored",
        "the quota_notice object is ignored (words decide)",
        "provider/protocols/_refusal.py",
        '    notice = obj.get("quota_notice")\n',
        "    notice = None\n",
        ("tests/provider/test_refusals.py", "-k", "quota"),
    ),
    Mutant(
        "i29-bot-unnamed",
        "a bot not for guests is a protocol change",
        "provider/protocols/_refusal.py",
        "    if _has(low, BOT_WORDS):\n        return bot_unavailable(text, creds)\n",
        "",
        ("tests/provider/test_refusals.py", "-k", "bot"),
    ),
    # -- issue 26: the browser shows no automation signal --------------------------------
    Mutant(
        "i26-webdriver-flag",
        "without the Blink flag, navigator.webdriver is true (patchright sets the flag"
        " itself, so under stock Playwright)",
        "scraper/browser/_launch.py",
        '    "--disable-blink-features=AutomationControlled",\n',
        "",
        ("tests/browser/test_detection.py", "-k", "fallback and aipkit"),
        timeout=120,
        env={"PROVIDER_DRIVER": "playwright"},
    ),
    Mutant(
        "i26-viewport-emulated",
        "the default viewport emulation: no browser UI, screen equals the viewport",
        "scraper/browser/_launch.py",
        '{"no_viewport": True}',
        "{}",
        ("tests/browser/test_detection.py", "-k", "fallback and aipkit"),
        timeout=120,
    ),
    Mutant(
        "i26-headless-ua",
        "no User-Agent of our own: HeadlessChrome in the page, the worker and the header",
        "scraper/browser/_launch.py",
        '        args.append(f"--user-agent={user_agent}")\n',
        "        pass\n",
        ("tests/browser/test_detection.py", "-k", "fallback and aipkit"),
        timeout=120,
    ),
    Mutant(
        "i26-swiftshader",
        "no real GL: WebGL on SwiftShader",
        "scraper/browser/_launch.py",
        "        args.extend(_GL_ARGS)\n",
        "        pass\n",
        ("tests/browser/test_detection.py", "-k", "fallback and aipkit"),
        timeout=120,
    ),
    Mutant(
        "i26-cdp-check-stack-only",
        "the detector's CDP check back to the stack getter alone, which Chromium 156 no longer"
        " runs: stock Playwright's Runtime leak would go unseen",
        "sandbox/_detect.py",
        "if (reads > 1 || stack) fired.cdp_runtime = 1;",
        "if (stack) fired.cdp_runtime = 1;",
        ("tests/browser/test_detection.py", "-k", "runtime_leak"),
        timeout=120,
    ),
    Mutant(
        "i26-main-world-poll",
        "the general wait (a widget the page adds after its load) polls in the page's main"
        " world (wait_for_function), where the page's wrapped querySelector sees an"
        " evaluated script's frames",
        "scraper/browser/_solve.py",
        'page.locator(_SETTLED_SELECTOR).first.wait_for(state="attached", timeout=_ms(deadline))',
        'page.wait_for_function(f"() => document.querySelector({WIDGET_SELECTOR!r})",'
        " timeout=_ms(deadline))",
        ("tests/browser/test_detection.py", "-k", "after_its_load"),
        timeout=120,
    ),
    Mutant(
        "i26-main-world-read",
        "the general wait reads the page in its main world (page.evaluate; patchright's"
        " evaluates in an isolated world unless told not to) instead of with a locator",
        "scraper/browser/_solve.py",
        "            if await page.locator(WIDGET_SELECTOR).count():\n",
        '            if await page.evaluate(f"document.querySelectorAll({WIDGET_SELECTOR!r})'
        '.length", isolated_context=False):\n',
        ("tests/browser/test_detection.py", "-k", "after_its_load"),
        timeout=120,
    ),
    Mutant(
        "i26-first-look-main-world",
        "the first look reads the loaded page in its main world instead of with content()"
        " (the driver's isolated world): the page's wrapped querySelector sees it",
        "scraper/browser/_solve.py",
        "            html = await page.content()\n        except PlaywrightError:\n",
        "            html = await page.evaluate(\"document.querySelector('html').outerHTML\","
        " isolated_context=False)\n        except PlaywrightError:\n",
        ("tests/browser/test_detection.py", "-k", "fallback and aipkit"),
        timeout=120,
    ),
    Mutant(
        "i26-first-look-keeps-waiting",
        "the first look never hands over to the general wait: a widget the page adds after"
        " its load is never found",
        "scraper/browser/_solve.py",
        '            if kind == "load":\n                return None\n',
        "            pass\n",
        ("tests/browser/test_detection.py", "-k", "after_its_load"),
        timeout=60,
    ),
    Mutant(
        "i26-transport-main-world",
        "the browser transport's fetch runs in the page's main world, not its isolated world:"
        " the page's wrapped fetch sees an evaluated script",
        "scraper/inpage.py",
        '                    "contextId": context_id,\n',
        "",
        ("tests/browser/test_detection.py", "-k", "transport"),
        timeout=120,
    ),
    Mutant(
        "i26-transport-binding",
        "the browser transport exposes a binding again: a global of ours on every page",
        "scraper/browser/_live.py",
        "        self._context = await browser.new_context(**context_options)\n",
        "        self._context = await browser.new_context(**context_options)\n"
        '        await self._context.expose_binding("__providerPush", lambda *_: None)\n',
        ("tests/browser/test_detection.py", "-k", "transport"),
        timeout=120,
    ),
]


def scratch_copy() -> Path:
    """The checkout as it is (tracked and untracked files, not ignored ones)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    target = Path(tempfile.mkdtemp(prefix="mutants-"))
    for raw in filter(None, listed):
        source = ROOT / os.fsdecode(raw)
        if source.is_file():
            dest = target / os.fsdecode(raw)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
    return target


def run_tests(tree: Path, mutant: Mutant) -> tuple[int, float, str]:
    """pytest on ``mutant.tests`` in ``tree``: (exit code, seconds, the output's tail)."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "-o",
        f"timeout={mutant.timeout}",
        *mutant.tests,
    ]
    # No bytecode: a mutated and a restored file of the same size and second must
    # never share a stale .pyc.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **mutant.env}
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=RUN_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        out = b"(killed: over the run limit)"
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = out.decode(errors="replace").strip().splitlines()
    # How it was caught: the first assertion line, the failed test, the summary.
    caught = [line for line in lines if line.startswith("E ")][:1]
    tail = "\n".join(
        caught + [line for line in lines if line.startswith("FAILED")][:1] + lines[-1:]
    )
    return proc.returncode, time.monotonic() - start, tail


def check_imports_from(tree: Path) -> None:
    """The copy's packages, not the checkout's, must be what the tests import."""
    where = subprocess.run(
        [sys.executable, "-c", "import provider, scraper, sandbox; print(provider.__file__)"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not where.startswith(str(tree)):
        raise SystemExit(f"mutants: the copy imports provider from {where}, not {tree}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/mutants", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="run mutants naming this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy")
    parser.add_argument("-v", "--verbose", action="store_true", help="show how each was caught")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or any(o in m.name for o in args.only)]
    if args.list or not chosen:
        for m in MUTANTS:
            print(f"{m.name:45} {m.path:32} {m.why}")
        return 0 if chosen else 2

    tree = scratch_copy()
    started = time.monotonic()
    print(f"mutants: {len(chosen)} in a scratch copy at {tree}", flush=True)
    try:
        check_imports_from(tree)
        baseline: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], int] = {}
        results: list[tuple[Mutant, str, float, str]] = []
        for mutant in chosen:
            selection = (mutant.tests, tuple(sorted(mutant.env.items())))
            if selection not in baseline:
                code, seconds, tail = run_tests(tree, mutant)
                baseline[selection] = code
                if code != 0:
                    print(f"  baseline FAILED for {' '.join(mutant.tests)}:\n{tail}", flush=True)
            if baseline[selection] != 0:
                results.append((mutant, "error", 0.0, "its tests fail without the mutant"))
                continue
            edits: dict[str, list[tuple[str, str]]] = {mutant.path: [(mutant.old, mutant.new)]}
            if mutant.extra:
                edits.setdefault(mutant.extra_path or mutant.path, []).append(mutant.extra)
            gone = [name for name in edits if not (tree / name).is_file()]
            if gone:
                results.append((mutant, "error", 0.0, f"{gone[0]} is gone: update the mutant"))
                continue
            originals = {name: (tree / name).read_text(encoding="utf-8") for name in edits}
            counts = [originals[name].count(old) for name in edits for old, _ in edits[name]]
            if counts != [1] * len(counts):
                results.append((mutant, "error", 0.0, f"snippets found {counts} times, not once"))
                continue
            for name, swaps in edits.items():
                mutated = originals[name]
                for old, new in swaps:
                    mutated = mutated.replace(old, new)
                (tree / name).write_text(mutated, encoding="utf-8")
            try:
                code, seconds, tail = run_tests(tree, mutant)
            finally:
                for name, original in originals.items():
                    (tree / name).write_text(original, encoding="utf-8")
            verdict = {0: "SURVIVED", 1: "killed"}.get(code, "error")
            results.append((mutant, verdict, seconds, tail))
            print(f"  {verdict:8} {seconds:6.1f} s  {mutant.name}", flush=True)
            if args.verbose:
                print("    " + tail.replace("\n", "\n    "), flush=True)
    finally:
        if args.keep:
            print(f"mutants: scratch copy kept at {tree}")
        else:
            shutil.rmtree(tree, ignore_errors=True)

    bad = [r for r in results if r[1] != "killed"]
    total = time.monotonic() - started
    print(f"\nmutants: {len(results) - len(bad)} of {len(results)} killed in {total:.0f} s")
    for mutant, verdict, _, tail in bad:
        print(f"  {verdict}: {mutant.name} ({mutant.path}): {mutant.why}\n    {tail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
