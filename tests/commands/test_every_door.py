"""Bad settings through every command, the server included: one clear line, exit 2,
before any work (the server must not start and then fail every request)."""

from __future__ import annotations

from pathlib import Path

import pytest

import sandbox
from tests.commands.test_commands import assert_clean_error, run

COMMANDS = [
    ("provider", ["x"]),
    ("provider.refresh", []),
    ("provider.health", []),
    ("provider.serve", ["--port", "0"]),
]


@pytest.mark.parametrize(("command", "args"), COMMANDS)
async def test_a_cache_dir_that_is_a_file_is_refused_at_start(
    command: str, args: list[str], tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    # Nothing listens at the URL: a command that started working would fail otherwise
    # (exit 1), and the server would start and wait.
    result = await run(
        command, "--url", "http://127.0.0.1:9", *args, env={"PROVIDER_CACHE_DIR": str(not_a_dir)}
    )
    assert_clean_error(result, 2)
    assert len(result.err.strip().splitlines()) == 1
    assert "PROVIDER_CACHE_DIR" in result.err and "not a directory" in result.err
    assert result.out == ""


@pytest.mark.parametrize(("command", "args"), COMMANDS)
async def test_a_malformed_proxy_is_refused_without_its_password(
    command: str, args: list[str], cache_dir: Path
) -> None:
    result = await run(
        command, "--url", "http://127.0.0.1:9", "--proxy", "http://u:t0psecret@:x", *args
    )
    assert_clean_error(result, 2)
    assert len(result.err.strip().splitlines()) == 1
    assert "t0psecret" not in result.err + result.out


@pytest.mark.parametrize("command", ["provider.refresh", "provider.health"])
async def test_a_browser_setting_that_is_no_browser_is_one_line_and_exit_2(
    command: str, cache_dir: Path
) -> None:
    # (The chat command's case is test_commands.py's.) The challenge makes the
    # browser needed: the setting is read then, and refused before any launch.
    async with sandbox.running(generation="aipkit", challenge=True) as site:
        result = await run(
            command, "--url", site.url, env={"PROVIDER_BROWSER": "/nonexistent/chromium"}
        )
        assert site.hits["clearance"] == 0
    assert_clean_error(result, 2)
    assert len(result.err.strip().splitlines()) == 1
    assert "PROVIDER_BROWSER" in result.err


async def test_an_unknown_model_is_named_with_the_site_and_the_way_out(cache_dir: Path) -> None:
    """The library keeps g4f's wording (``Model is not supported: X in: <class>``); the
    classes the commands make are named after the site's host, never an internal name,
    and the endpoint's error lists the models it offers."""
    import openai

    from tests.serve.test_command import serving, stop

    async with sandbox.running() as site:
        host = site.url.split("//", 1)[1]
        chat = await run("provider", "--url", site.url, "--model", "nope", "x")
        async with serving("--url", site.url) as (proc, info):
            client = openai.AsyncOpenAI(
                base_url=f"{info['url']}/v1", api_key="unused", max_retries=0
            )
            said = []
            for call in (
                client.chat.completions.create(
                    model="nope", messages=[{"role": "user", "content": "x"}]
                ),
                client.responses.create(model="nope", input="x"),
                client.models.retrieve("nope"),
            ):
                with pytest.raises(openai.NotFoundError) as err:
                    await call  # type: ignore[misc]
                said.append(err.value.message)
            await client.close()
            await stop(proc)
    assert_clean_error(chat, 2)
    assert f"Model is not supported: nope in: {host}" in chat.err
    for message in [chat.err, *said]:
        assert "Site" not in message and "ChatgptFree" not in message, message
    for message in said:
        assert "this endpoint offers: " in message and "gpt-4o-mini" in message, message
    assert all(f"Model is not supported: nope in: {host}" in m for m in said[:2]), said
