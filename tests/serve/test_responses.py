"""``POST /v1/responses``, driven by the official ``openai`` client (and the OpenAI
Agents SDK) over loopback HTTP, in front of the sandbox: plain, streamed, continued
with ``previous_response_id`` (on another server sharing the store), ``store: false``,
refused parameters, and failures before and after the stream started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

import sandbox
from provider import serve
from tests.conftest import provider_for
from tests.serve.conftest import ANSWER, KEY

Served = Any


def error_body(err: openai.APIStatusError) -> dict[str, Any]:
    assert isinstance(err.body, dict)
    return err.body


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_plain_response_reads_as_output_text(generation: str, served: Served) -> None:
    async with served(generation) as s:
        reply = await s.client.responses.create(
            model="gpt-4o-mini", input="Hello sandbox", temperature=0.2, max_output_tokens=50
        )
        assert list(s.site.prompts) == ["Hello sandbox"]
    assert reply.object == "response" and reply.status == "completed"
    assert reply.id.startswith("resp_")
    assert reply.model == "gpt-4o-mini-2024-07-18"  # the alias, resolved
    assert reply.output_text == ANSWER  # the SDK's own join of output[].content[].text
    (item,) = reply.output
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    assert reply.usage is not None
    assert reply.usage.output_tokens == -(-len(ANSWER) // 4)
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens


async def test_message_items_and_instructions_reach_the_site(served: Served) -> None:
    items: Any = [
        {"role": "developer", "content": "Be brief"},
        {"role": "user", "content": [{"type": "input_text", "text": "first"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        },
        {"role": "user", "content": "two"},
    ]
    async with served() as s:
        await s.client.responses.create(model="", input=items, instructions="Speak French")
        assert list(s.site.prompts) == [
            "System: Speak French\nDeveloper: Be brief\nUser: first\nAssistant: ok\n"
            "User: two\nAssistant:"
        ]


@pytest.mark.parametrize("generation", ["legacy", "aipkit"])
async def test_streamed_response_is_typed_events_in_order(generation: str, served: Served) -> None:
    async with served(generation, answer_bytes=400, delta_chars=16, chunk_delay=0.01) as s:
        stream = await s.client.responses.create(model="", input="Hello sandbox", stream=True)
        events = [event async for event in stream]
    kinds = [e.type for e in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 5  # streamed, not one lump
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[4 : 4 + len(deltas)] == ["response.output_text.delta"] * len(deltas)
    assert kinds[4 + len(deltas) :] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(d.delta for d in deltas)
    assert len(text.encode()) == 400
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == text
    assert done.response.usage is not None
    assert done.response.usage.output_tokens == -(-len(text) // 4)
    assert events[0].type == "response.created" and events[0].response.id == done.response.id
    # Every event names the one message and its one text part; nothing is final early.
    (item,) = done.response.output
    for e in events[2:-1]:
        assert e.output_index == 0 and getattr(e, "content_index", 0) == 0, e
        assert getattr(e, "item_id", item.id) == item.id, e
    for e in events[:2]:
        early = e.response
        assert early.status == "in_progress" and early.output == [] and early.usage is None
        assert early.completed_at is None
    added, part_added = events[2:4]
    text_done, part_done, item_done = events[-4:-1]
    assert added.item.status == "in_progress" and added.item.content == []
    assert part_added.part.text == ""
    assert text_done.text == text and part_done.part.text == text
    assert item_done.item.status == "completed" and item_done.item.id == item.id


@pytest.mark.parametrize("stream", [False, True])
async def test_previous_response_id_continues_on_another_host(
    stream: bool, cache_dir: Path, tmp_path: Path
) -> None:
    """Two servers sharing one store (as a fleet's hosts share Redis or a folder): the
    second continues what the first answered, and the site sees the whole conversation."""
    async with sandbox.running(generation="aipkit") as site:
        hosts = [provider_for(site.url, cache_dir, browser="never") for _ in range(2)]
        async with (
            serve.running(hosts[0], api_key=KEY) as first,
            serve.running(hosts[1], api_key=KEY) as second,
        ):
            one = openai.AsyncOpenAI(base_url=first.base_url, api_key=KEY, max_retries=0)
            two = openai.AsyncOpenAI(base_url=second.base_url, api_key=KEY, max_retries=0)
            a = await one.responses.create(model="", input="Hello sandbox", instructions="Be kind")
            if stream:
                events = await two.responses.create(
                    model="", input="again", previous_response_id=a.id, stream=True
                )
                b_id = [e async for e in events][-1].response.id  # type: ignore[union-attr]
            else:
                b_id = (
                    await two.responses.create(model="", input="again", previous_response_id=a.id)
                ).id
            c = await one.responses.create(model="", input="third", previous_response_id=b_id)
            await one.close()
            await two.close()
    # (The sandbox echoes the prompt's last line: "You said: Assistant:" for a multi-turn one.)
    said = "You said: Assistant:"
    assert c.output_text == said
    # Instructions are not carried over (OpenAI's rule); every earlier turn is.
    assert list(site.prompts) == [
        "System: Be kind\nUser: Hello sandbox\nAssistant:",
        f"User: Hello sandbox\nAssistant: {said}\nUser: again\nAssistant:",
        f"User: Hello sandbox\nAssistant: {said}\nUser: again\nAssistant: {said}\n"
        "User: third\nAssistant:",
    ]


async def test_store_false_keeps_nothing_and_unknown_id_is_404(served: Served) -> None:
    async with served() as s:
        kept = await s.client.responses.create(model="", input="Hello sandbox", store=False)
        assert kept.store is False
        for unknown in (kept.id, "resp_nope"):
            with pytest.raises(openai.NotFoundError) as err:
                await s.client.responses.create(
                    model="", input="again", previous_response_id=unknown
                )
            body = error_body(err.value)
            assert body["code"] == "previous_response_not_found"
            assert body["param"] == "previous_response_id" and unknown in body["message"]
        assert len(s.site.prompts) == 1  # nothing was sent for the refused ones
    values = list((s.server.state.provider.cache_dir / "values").rglob("*.json"))  # type: ignore[operator]
    assert values == []


async def test_the_documented_lifetimes_are_an_hour_and_300_s(served: Served) -> None:
    """docs/openai.md: a stored conversation is kept for an hour (the 404 says so), and
    a warm browser nobody chatted through is closed after 300 s."""
    async with served() as s:
        assert s.server.state.browsers.idle_timeout == 300
        with pytest.raises(openai.NotFoundError) as err:
            await s.client.responses.create(model="", input="x", previous_response_id="resp_no")
    assert "older than 3600 s" in error_body(err.value)["message"]


async def test_an_expired_conversation_is_404(served: Served) -> None:
    async with served() as s:
        s.server.state.conversation_seconds = 0.0  # kept for no time at all
        first = await s.client.responses.create(model="", input="Hello sandbox")
        with pytest.raises(openai.NotFoundError):
            await s.client.responses.create(model="", input="x", previous_response_id=first.id)


@pytest.mark.parametrize(
    ("extra", "param", "says"),
    [
        ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools", "tools"),
        ({"tool_choice": "required"}, "tool_choice", "tools"),
        ({"reasoning": {"effort": "high"}}, "reasoning", "reasoning"),
        ({"include": ["reasoning.encrypted_content"]}, "include", "include"),
        ({"background": True}, "background", "background"),
        (
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}},
            "text",
            "plain text",
        ),
        ({"conversation": "conv_1"}, "conversation", "takes"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "http://x/y.png"}],
                    }
                ]
            },
            "input[0].content",
            "'input_image' part: this site takes text only",
        ),
        (
            {"input": [{"type": "function_call_output", "call_id": "c", "output": "1"}]},
            "input[0]",
            "message items only",
        ),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "use user"),
        ({"input": []}, "input", "non-empty"),
    ],
)
async def test_what_the_site_cannot_honour_is_a_400(
    extra: dict[str, Any], param: str, says: str, served: Served
) -> None:
    async with served() as s:
        body = {"model": "", "input": "Hello sandbox", **extra}
        with pytest.raises(openai.BadRequestError) as err:
            await s.client.post("/responses", body=body, cast_to=object)
        assert not s.site.prompts  # refused before the site was asked
    error = error_body(err.value)
    assert error["param"] == param and says in error["message"], error


async def post(s: Served, body: object) -> tuple[int, dict[str, Any]]:
    """The raw status and JSON body of one ``POST /v1/responses``."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            s.server.base_url + "/responses",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response,
    ):
        return response.status, await response.json()


#: (body, param, code, says): each a 400 naming what is wrong and where.
MALFORMED: list[tuple[dict[str, Any] | list[Any], str | None, str | None, str]] = [
    ([], None, "invalid_request", "JSON object"),
    ({"model": 5}, "model", "invalid_type", "'model' must be a string"),
    ({"instructions": 5}, "instructions", "invalid_type", "'instructions' must be a string"),
    ({"stream": "yes"}, "stream", "invalid_type", "'stream' must be true or false"),
    ({"store": 1}, "store", "invalid_type", "'store' must be true or false"),
    ({"previous_response_id": 5}, "previous_response_id", "invalid_type", "must be a string"),
    ({"metadata": "x"}, "metadata", "invalid_type", "'metadata' must be an object"),
    ({"input": ["x"]}, "input[0]", None, "input[0] must be an object"),
    ({"input": [{"role": "user", "content": 5}]}, "input[0]", None, "a string or an array"),
    (
        {"input": [{"role": "user", "content": ["x"]}]},
        "input[0].content",
        None,
        "input[0].content[0] is a 'str' part",
    ),
    ({"text": "plain"}, "text", None, "plain text only"),
    ({"text": {"verbosity": "low", "stop": ["x"]}}, "text", None, "plain text only"),
    ({"background": 0}, "background", None, "background mode"),  # 0 is not false here
    ({"top_logprobs": 2}, "top_logprobs", None, "log probabilities"),
    ({"tool_choice": "auto", "seed": 1}, "seed", "unsupported_parameter", "ignores"),
    # Only `text` takes an object of plain-text hints; another parameter's object, even
    # one of those hints, is refused; so is an input item sorting after "message"
    # (issue 27: cosmic-ray's every-operator run put `name == "text"` as `>=`, `<=`,
    # `is not` and `kind != "message"` as `<`).
    ({"tool_choice": {}}, "tool_choice", None, "cannot call tools"),
    ({"reasoning": {"verbosity": "low"}}, "reasoning", None, "do not expose reasoning"),
    ({"input": [{"type": "reasoning", "summary": []}]}, "input[0]", None, "'reasoning' item"),
]


async def test_a_malformed_request_is_a_400_naming_what_and_where(served: Served) -> None:
    async with served() as s:
        for extra, param, code, says in MALFORMED:
            body = extra if isinstance(extra, list) else {"model": "", "input": "hi", **extra}
            status, answer = await post(s, body)
            error = answer["error"]
            assert (status, error["param"]) == (400, param), (extra, answer)
            assert error["code"] == code and says in error["message"], (extra, answer)
        assert not s.site.prompts  # refused before the site was asked


#: Each asks for nothing the site lacks: answered, not refused.
HARMLESS: list[dict[str, Any]] = [
    {
        "tools": [],
        "tool_choice": "auto",
        "include": [],
        "reasoning": {},
        "background": False,
        "top_logprobs": 0,
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        # and the hints the site has no knob for
        "temperature": 0.2,
        "top_p": 0.9,
        "max_output_tokens": 50,
        "user": "u",
        "safety_identifier": "s",
        "prompt_cache_key": "k",
        "prompt_cache_retention": "24h",
        "service_tier": "auto",
        "truncation": "disabled",
        "parallel_tool_calls": False,
        "stream_options": {"include_obfuscation": False},
        "metadata": {},
    },
    {"tool_choice": "none", "text": {"format": {"type": "text"}}},
    {"text": {}, "reasoning": None, "tools": None, "tool_choice": None, "include": None},
    {"text": {"verbosity": "high"}, "background": None, "top_logprobs": None},
]


async def test_values_that_ask_for_nothing_are_answered(served: Served) -> None:
    async with served() as s:
        for extra in HARMLESS:
            status, answer = await post(s, {"model": "", "input": "Hello sandbox", **extra})
            assert status == 200 and answer["status"] == "completed", (extra, answer)
        assert len(s.site.prompts) == len(HARMLESS)


async def test_the_response_object_says_what_was_asked(served: Served) -> None:
    """The whole body, read raw: what was asked echoed, the rest OpenAI's plain-text shape."""
    async with served() as s:
        asked = {"model": "", "instructions": "Be kind!", "metadata": {"k": "v"}}
        status, first = await post(s, {**asked, "input": "Hello sandbox"})
        assert status == 200, first
        status, then = await post(
            s, {"model": "", "input": "thanks!", "previous_response_id": first["id"]}
        )
        assert status == 200, then
    said = "You said: Assistant:"
    message = first["output"][0]
    assert message == {
        "type": "message",
        "id": message["id"],
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": said, "annotations": [], "logprobs": []}],
    }
    assert first["created_at"] <= first["completed_at"]
    # Characters / 4, rounded up: "Be kind!" and "Hello sandbox" are 21 characters.
    assert first["usage"] == {
        "input_tokens": 6,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 11,
        "estimated": True,
    }
    fixed = {k: v for k, v in first.items() if k not in ("id", "created_at", "completed_at")}
    assert fixed == {
        "object": "response",
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": "Be kind!",
        "max_output_tokens": None,
        "metadata": {"k": "v"},
        "model": first["model"],
        "output": [message],
        "parallel_tool_calls": False,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "none",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": first["usage"],
        "user": None,
    }
    assert then["previous_response_id"] == first["id"] and then["instructions"] is None
    assert then["metadata"] == {} and then["id"] != first["id"]
    # 13 + 20 + 7 = 40 characters of earlier and new turns: exactly 10 tokens, not 11.
    assert then["usage"]["input_tokens"] == 10
    assert then["output"][0]["id"] != message["id"]


@pytest.mark.parametrize("stream", [False, True])
async def test_unknown_model_lists_the_models_offered(stream: bool, served: Served) -> None:
    async with served() as s:
        with pytest.raises(openai.NotFoundError) as err:
            await s.client.responses.create(model="gpt-9", input="hi", stream=stream)
        offered = [m.id async for m in s.client.models.list()]
    message = error_body(err.value)["message"]
    assert "gpt-9" in message and all(m in message for m in offered), message


async def test_bad_key_and_early_site_errors_keep_their_status(served: Served) -> None:
    async with served(rate_limit=True, retry_after=17) as s:
        with pytest.raises(openai.RateLimitError) as err:
            await s.client.responses.create(model="", input="hi", stream=True)
        assert err.value.response.headers["Retry-After"] == "17"
        bad = openai.AsyncOpenAI(base_url=s.server.base_url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            await bad.responses.create(model="", input="hi")
        await bad.close()


async def test_a_failure_mid_stream_is_error_then_response_failed(served: Served) -> None:
    async with served(timeout=1, answer_bytes=200, stall_after_deltas=2) as s:
        stream = await s.client.responses.create(model="", input="Hello sandbox", stream=True)
        events = [event async for event in stream]
        async with aiohttp.ClientSession() as http:  # and how it ends on the wire
            response = await http.post(
                s.server.base_url + "/responses",
                json={"model": "", "input": "Hello sandbox", "stream": True},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            wire = await response.text()  # raises if the stream was cut
            metrics = await (
                await http.get(
                    s.server.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}
                )
            ).text()
    kinds = [e.type for e in events]
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert len(streamed) == 32  # two deltas arrived before the stall
    assert kinds[-2:] == ["error", "response.failed"]
    assert events[-2].code == "timeout"  # type: ignore[union-attr]
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None
    # A timeout is the server's error (only a rate limit is "rate_limit_exceeded", and
    # that arrives before the first chunk, as an HTTP 429), with the error event's text.
    assert failed.error.code == "server_error"
    assert failed.error.message == events[-2].message
    assert "completed" not in kinds and "response.completed" not in wire
    assert wire.rstrip().endswith("}") and "event: response.failed" in wire
    assert 'route="/v1/responses"' in metrics


async def test_the_agents_sdk_runs_a_plain_agent(served: Served) -> None:
    """A second real Responses-API client: the OpenAI Agents SDK's default model."""
    from agents import Agent, OpenAIResponsesModel, RunConfig, Runner

    async with served() as s:
        agent = Agent(
            name="echo",
            instructions="Answer briefly",
            model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=s.client),
        )
        result = await Runner.run(
            agent, "Hello sandbox", run_config=RunConfig(tracing_disabled=True)
        )
        streamed = Runner.run_streamed(
            agent, "Hello sandbox", run_config=RunConfig(tracing_disabled=True)
        )
        async for _ in streamed.stream_events():
            pass
        prompts = list(s.site.prompts)
    said = "You said: Assistant:"  # the sandbox echoes the prompt's last line
    assert result.final_output == said and streamed.final_output == said
    assert prompts == ["System: Answer briefly\nUser: Hello sandbox\nAssistant:"] * 2
