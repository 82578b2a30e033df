"""``python -m provider.serve`` as a subprocess: start-up, the loopback rule, --help,
and that ``import provider`` pulls in neither g4f nor openai."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from provider import serve
from provider.commands.serve._command import build_parser
from provider.errors import InvalidInputError
from tests import procs
from tests.commands.test_commands import assert_clean_error, run
from tests.serve.conftest import KEY


@contextlib.asynccontextmanager
async def announced(
    *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``python -m provider.serve *args`` and the first line it prints on stdout; on
    leaving, however the test ends, the server and its group are killed if still up.
    Its stdout is a pipe, block-buffered as a service manager's would be (this
    machine's ``PYTHONUNBUFFERED`` unset): the announcement must be flushed."""
    async with procs.started(
        sys.executable,
        "-m",
        "provider.serve",
        *args,
        env={"PYTHONUNBUFFERED": "", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            raise AssertionError((await proc.stderr.read()).decode())
        yield proc, line.decode()


@contextlib.asynccontextmanager
async def serving(
    *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, object]]]:
    """``python -m provider.serve --port 0 --json *args`` and its announcement."""
    async with announced("--port", "0", "--json", *args, env=env) as (proc, line):
        yield proc, json.loads(line)


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    """SIGTERM, as a service manager stops it; the exit code and stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


@pytest.mark.parametrize("mode", ["aipkit", "legacy"])
async def test_serve_the_sandbox_then_stop_cleanly(mode: str, tmp_path: Path) -> None:
    async with serving("--sandbox", mode, env={"PROVIDER_CACHE_DIR": str(tmp_path)}) as (
        proc,
        info,
    ):
        assert info["auth"] is False and str(info["base_url"]).endswith("/v1")
        client = openai.AsyncOpenAI(base_url=str(info["base_url"]), api_key="x", max_retries=0)
        reply = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
        await client.close()
        assert reply.choices[0].message.content == "You said: Hi"
        code, err = await stop(proc)
    assert code == 0, err
    assert "Traceback" not in err
    assert not (tmp_path / "credentials").exists()  # the sandbox's creds stay out of the store


async def test_key_from_the_environment(tmp_path: Path) -> None:
    env = {serve.ENV_API_KEY: KEY, "PROVIDER_CACHE_DIR": str(tmp_path)}
    async with serving("--sandbox", env=env) as (proc, info):
        assert info["auth"] is True
        good = openai.AsyncOpenAI(base_url=str(info["base_url"]), api_key=KEY, max_retries=0)
        bad = openai.AsyncOpenAI(base_url=str(info["base_url"]), api_key="nope", max_retries=0)
        assert [m.id for m in (await good.models.list()).data]
        with pytest.raises(openai.AuthenticationError):
            await bad.models.list()
        await good.close()
        await bad.close()
        await stop(proc)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.org", ""])
async def test_refuses_to_bind_beyond_loopback_without_a_key(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(serve.ENV_API_KEY, raising=False)
    result = await run("provider.serve", "--host", host, "--port", "0", "--sandbox")
    assert_clean_error(result, 2)
    assert "without an API key" in result.err and serve.ENV_API_KEY in result.err


async def test_binds_beyond_loopback_with_a_key(tmp_path: Path) -> None:
    async with serving(
        "--host",
        "0.0.0.0",
        "--sandbox",
        env={serve.ENV_API_KEY: KEY, "PROVIDER_CACHE_DIR": str(tmp_path)},
    ) as (proc, info):
        assert info["auth"] is True
        code, _ = await stop(proc)
    assert code == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.org", ""])
async def test_the_library_refuses_to_build_or_bind_beyond_loopback_without_a_key(
    host: str,
) -> None:
    # The rule lives where the server is built: the command is only one way in.
    with pytest.raises(InvalidInputError, match="without an API key") as refused:
        serve.make_app(host=host)
    # It names the address it refused, and both ways out.
    assert f"refusing to serve on {host or 'every interface'}, beyond" in str(refused.value)
    assert f"set {serve.ENV_API_KEY} (or --api-key), or bind 127.0.0.1" in str(refused.value)
    with pytest.raises(InvalidInputError, match="without an API key"):
        async with serve.running(host=host, port=0):
            pytest.fail("served beyond loopback without a key")
    for empty in (None, ""):
        with pytest.raises(InvalidInputError):
            serve.make_app(host=host, api_key=empty)
    assert serve.make_app(host=host, api_key=KEY) is not None  # a key makes it fine
    async with serve.running(host="127.0.0.1", port=0) as server:  # loopback needs none
        assert server.url.startswith("http://127.0.0.1:")


def test_loopback_addresses() -> None:
    assert all(map(serve.is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(serve.is_loopback, ["0.0.0.0", "::", "", "10.0.0.1", "example.org"]))
    # Names sorting after "localhost", one starting with it among them: only the name
    # itself is this machine (issue 27: cosmic-ray put '== "localhost"' as '>=').
    assert not any(map(serve.is_loopback, ["localhost.example.org", "nas", "server.lan"]))


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
async def test_the_server_names_the_address_it_bound(host: str, tmp_path: Path) -> None:
    """``Server.url`` is where the server listens: the bound address and, with no port
    given, one the OS picked (an ephemeral one), for every interface (with its key) as
    for one (issue 27: cosmic-ray put the bound address as its port, a crash, and the
    default port as 1; no test bound every interface). The test reaches it on loopback
    only."""
    import aiohttp

    from tests.conftest import provider_for

    site = provider_for("http://127.0.0.1:9/chat/", tmp_path)
    async with serve.running(site, host=host, api_key=KEY) as server:
        scheme, _, rest = server.url.partition("://")
        shown, _, port = rest.rpartition(":")
        assert (scheme, shown) == ("http", host) and int(port) >= 1024
        async with aiohttp.ClientSession() as http:
            response = await http.get(f"http://127.0.0.1:{port}/health")
            assert response.status == 200


async def test_a_taken_port_is_one_error_line(tmp_path: Path) -> None:
    async with serving("--sandbox", env={"PROVIDER_CACHE_DIR": str(tmp_path)}) as (proc, info):
        port = str(info["url"]).rsplit(":", 1)[1]
        result = await run("provider.serve", "--port", port, "--sandbox")
        await stop(proc)
    assert_clean_error(result, 1)
    assert "cannot listen" in result.err


@pytest.mark.parametrize("key", [None, KEY])
async def test_without_json_the_base_url_is_on_stdout_and_the_key_rule_on_stderr(
    key: str | None, tmp_path: Path
) -> None:
    env = {"PROVIDER_CACHE_DIR": str(tmp_path), **({serve.ENV_API_KEY: key} if key else {})}
    async with announced("--port", "0", "--sandbox", env=env) as (proc, line):
        assert line.startswith("OpenAI-compatible endpoint: http://127.0.0.1:")
        assert line.rstrip().endswith("/v1")
        code, err = await stop(proc)
    assert code == 0, err
    assert "; Ctrl-C stops" in err
    assert ("(bearer key required)" in err) is (key is not None)


async def test_the_port_range_is_0_to_65535_inclusive(tmp_path: Path) -> None:
    for bad in ("65536", "-1"):
        result = await run("provider.serve", "--port", bad, "--sandbox")
        assert_clean_error(result, 2)
        assert "not a port number" in result.err
    # 65535 is a port: it serves there, or (taken by someone else) cannot listen, exit 1.
    async with procs.started(
        sys.executable,
        "-m",
        "provider.serve",
        "--port",
        "65535",
        "--json",
        "--sandbox",
        env={"PROVIDER_CACHE_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line:
            assert str(json.loads(line)["url"]).endswith(":65535")
            code, err = await stop(proc)
            assert code == 0, err
        else:
            _, err_bytes = await asyncio.wait_for(proc.communicate(), 15)
            assert proc.returncode == 1 and "cannot listen" in err_bytes.decode()


async def test_a_timeout_under_a_second_is_a_timeout(tmp_path: Path) -> None:
    # Any positive number of seconds: only 0, negatives, nan and inf are usage errors.
    async with serving(
        "--sandbox", "--timeout", "0.5", env={"PROVIDER_CACHE_DIR": str(tmp_path)}
    ) as (proc, info):
        assert str(info["base_url"]).endswith("/v1")
        code, err = await stop(proc)
    assert code == 0, err
    for bad in ("-1", "nan", "inf"):
        assert_clean_error(await run("provider.serve", "--timeout", bad, "--sandbox"), 2)


async def test_help_has_examples_exit_codes_and_the_key_variable() -> None:
    result = await run("provider.serve", "--help")
    assert result.code == 0
    for text in ("examples:", "exit codes:", "PROVIDER_API_KEY", "PROVIDER_CACHE_DIR", "--sandbox"):
        assert text in result.out


def test_the_default_address_is_the_documented_one() -> None:
    # docs/openai.md's clients point at http://127.0.0.1:1337/v1.
    args = build_parser().parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 1337)


async def test_usage_errors_exit_2() -> None:
    assert_clean_error(await run("provider.serve", "--port", "99999"), 2)
    assert_clean_error(await run("provider.serve", "--sandbox", "bogus"), 2)
    assert_clean_error(await run("provider.serve", "--proxy", "ftp://h:1"), 2)
    assert_clean_error(await run("provider.serve", "--timeout", "0", "--sandbox"), 2)


async def test_import_provider_pulls_in_neither_g4f_nor_openai() -> None:
    code = (
        "import sys, provider, provider.serve; "
        "print(sorted(m for m in ('g4f', 'openai', 'playwright') if m in sys.modules))"
    )
    result = await run_python(code)
    assert result == (0, "[]")


async def test_without_g4f_the_library_imports_and_the_drop_in_says_how_to_install() -> None:
    code = (
        "import sys; sys.modules['g4f'] = None\n"  # as if g4f were not installed
        "import provider, provider.serve\n"
        "try:\n"
        "    import provider.g4f_provider\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    status, out = await run_python(code)
    assert status == 0
    assert 'pip install ".[g4f]"' in out


async def run_python(code: str) -> tuple[int, str]:
    result = await procs.run(sys.executable, "-c", code, timeout=60)
    return result.code, result.out.strip()
