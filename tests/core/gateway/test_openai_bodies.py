"""Chat completion bodies as real apps send them, through the official `openai` SDK: each field either reaches the
upstream and is billed once (the charge in the headers is the ledger's), or is refused with a 400 in OpenAI's envelope
(the SDK's BadRequestError naming the field) before any upstream call or charge; never silently dropped."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.core.gateway.conftest import GatewayWorld
from tests.core.providers.fakes import wav_bytes

ASK = [{"role": "user", "content": "Say hello."}]
MODELS = ("gpt-4o-mini", "claude-haiku-4-5")


def sent(world: GatewayWorld) -> dict[str, Any]:
    return json.loads(world.upstream.requests[-1].body)


def billed_once(world: GatewayWorld, raw: Any, before: int, user: Any) -> None:
    charged = int(raw.headers["x-credits-charged"])
    assert charged > 0 and world.balance(user) == before - charged == int(raw.headers["x-credits-remaining"])


@pytest.mark.parametrize("model", MODELS)
def test_content_parts_system_and_developer_roles(world: GatewayWorld, model: str) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "developer", "content": "Answer in English."},
        {"role": "user", "content": [{"type": "text", "text": "Say"}, {"type": "text", "text": "hello."}]},
    ]
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages, max_completion_tokens=40)
    assert raw.parse().choices[0].message.content
    billed_once(world, raw, 10_000, user)
    body = sent(world)
    if model == "gpt-4o-mini":
        assert body["max_completion_tokens"] == 40
        assert [m["role"] for m in body["messages"]] == ["system", "system", "user"]
        assert body["messages"][2]["content"] == "Say\nhello."
    else:
        assert body["max_tokens"] == 40 and body["system"] == "Be brief.\n\nAnswer in English."
        assert body["messages"] == [{"role": "user", "content": "Say\nhello."}]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stop", ["\n\n", ["END", "STOP"]])
def test_stop_reaches_the_upstream(world: GatewayWorld, model: str, stop: str | list[str]) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    raw = client.chat.completions.with_raw_response.create(model=model, messages=ASK, max_tokens=50, stop=stop)
    assert raw.parse().choices[0].finish_reason == "stop"
    billed_once(world, raw, 10_000, user)
    expected = [stop] if isinstance(stop, str) else stop
    if model == "gpt-4o-mini":
        assert sent(world)["stop"] == expected
    else:
        assert sent(world)["stop_sequences"] == expected
    streamed = list(client.chat.completions.create(model=model, messages=ASK, max_tokens=50, stop=stop, stream=True))
    assert streamed[-1].choices[0].finish_reason == "stop"
    assert sent(world).get("stop", sent(world).get("stop_sequences")) == expected


def test_fields_that_do_not_change_the_answer_are_accepted(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    balance = 10_000
    for extra in (
        {"user": "end-user-7", "seed": 42, "temperature": 0},
        {"n": 1, "response_format": {"type": "text"}, "logprobs": False},
        {"tool_choice": "none", "parallel_tool_calls": False, "tools": []},
        {"stream_options": None, "store": False, "metadata": {"app": "x"}},
        {"extra_body": {"some_future_field": {"a": 1}, "n": None}},
    ):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, max_tokens=30, **extra
        )
        assert raw.parse().choices[0].message.content == "Hello from the loopback.", extra
        billed_once(world, raw, balance, user)
        balance = world.balance(user)


def test_temperature_zero_is_sent_as_zero(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK, temperature=0)
    assert sent(world)["temperature"] == 0


def test_top_p_reaches_openai_and_anthropic_and_an_impossible_one_is_refused(world: GatewayWorld) -> None:
    """Nucleus sampling changes the answer: it reaches the model (it was once accepted and dropped)."""
    user = world.user()
    client = world.openai(world.key(user))
    for model in ("gpt-4o-mini", "claude-haiku-4-5"):
        client.chat.completions.create(model=model, messages=ASK, max_tokens=30, top_p=0.2)
        assert sent(world)["top_p"] == 0.2, model
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=30)
    assert "top_p" not in sent(world)
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK, max_tokens=30, top_p=0)
    assert sent(world)["top_p"] == 0  # 0 is a value (the likeliest token only), sent as 0
    balance = world.balance(user)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK, top_p=1.5)
    assert err.value.body["param"] == "top_p" and world.balance(user) == balance  # type: ignore[index]


def test_stream_options_without_include_usage_streams_without_a_usage_chunk(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, max_tokens=30, stream=True, stream_options={"include_usage": False}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the loopback."
    assert all(c.choices and c.usage is None for c in chunks) and world.balance(user) < 10_000


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("n", {"n": 3}),
    ("functions", {"functions": [{"name": "weather", "parameters": {}}]}),  # tools are honoured: test_tools_sdk.py
    ("logprobs", {"logprobs": True, "top_logprobs": 2}),
    ("top_logprobs", {"top_logprobs": 2}),
    ("response_format", {"response_format": {"type": "xml"}}),  # JSON output is honoured (test_json_output_sdk)
    ("modalities", {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}),
    ("audio", {"audio": {"voice": "alloy", "format": "wav"}}),
    ("reasoning_effort", {"reasoning_effort": "high"}),
    # they change the answer (or what the upstream bills) and are not passed on: refused, not dropped
    ("logit_bias", {"logit_bias": {"50256": -100}}),
    ("prediction", {"prediction": {"type": "content", "content": "Hello"}}),
    ("web_search_options", {"web_search_options": {}}),  # an empty one turns search on too
    ("verbosity", {"verbosity": "low"}),
    ("frequency_penalty", {"frequency_penalty": 0.5}),
    ("presence_penalty", {"presence_penalty": -1}),
    ("messages", {"messages": [{"role": "user", "content": "Hi", "name": "alice"}]}),
    ("messages", {"messages": [*ASK, {"role": "function", "name": "weather", "content": "sunny"}]}),
    (
        "messages",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [  # images are honoured (test_images_sdk.py); audio input is not
                        {"type": "text", "text": "What is said here?"},
                        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    ],
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(("field", "body"), REFUSED, ids=[f"{f}-{i}" for i, (f, _) in enumerate(REFUSED)])
def test_what_cannot_be_honoured_is_a_clear_400(world: GatewayWorld, field: str, body: dict[str, Any]) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    calls = world.upstream_calls()
    request: dict[str, Any] = {"model": "gpt-4o-mini", "messages": ASK, "max_tokens": 30, **body}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**request)
    assert err.value.code == "invalid_request" and err.value.param == field
    message = err.value.message
    assert message.startswith(f"Error code: 400 - Invalid request: {field}"), message
    assert "not supported" in message and ".." not in message and "Input should" not in message, message
    assert err.value.request_id and err.value.request_id.startswith("req_")
    assert world.upstream_calls() == calls and world.balance(user) == 10_000


def test_transcription_language_and_prompt_reach_the_upstream_and_verbose_json_has_its_duration(
    world: GatewayWorld,
) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("talk.wav", wav_bytes(1.0)),
        response_format="verbose_json",
        language="en",
        prompt="Names: Zoë.",
    )
    assert verbose.text == "Hello there." and verbose.duration == 1.0 and verbose.language == "en"
    form = world.upstream.requests[-1].body
    assert b'name="language"\r\n\r\nen\r\n' in form and 'name="prompt"\r\n\r\nNames: Zoë.\r\n'.encode() in form
    plain = client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", wav_bytes(1.0)))
    assert plain.text == "Hello there." and b'name="language"' not in world.upstream.requests[-1].body


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 0.4}, "temperature"),
        ({"timestamp_granularities": ["word"], "response_format": "verbose_json"}, "timestamp_granularities"),
        ({"extra_body": {"stream": "true"}}, "stream"),
    ],
)
def test_transcription_fields_not_passed_on_are_refused(world: GatewayWorld, extra: dict[str, Any], param: str) -> None:
    user = world.user()
    calls = world.upstream_calls()
    with pytest.raises(openai.BadRequestError) as err:
        world.openai(world.key(user)).audio.transcriptions.create(
            model="whisper-1", file=("talk.wav", wav_bytes(1.0)), **extra
        )
    assert err.value.param == param and "not supported" in err.value.message, err.value.message
    assert world.upstream_calls() == calls and world.balance(user) == 10_000
    plain = world.openai(world.key(user)).audio.transcriptions.create(
        model="whisper-1", file=("talk.wav", wav_bytes(1.0)), temperature=0
    )
    assert plain.text == "Hello there."


def test_several_images_or_a_style_are_a_clear_400(world: GatewayWorld) -> None:
    user = world.user()
    calls = world.upstream_calls()
    with pytest.raises(openai.BadRequestError) as err:
        world.openai(world.key(user)).images.generate(model="dall-e-3", prompt="a lighthouse", n=2)
    assert err.value.param == "n" and "not supported" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        world.openai(world.key(user)).images.generate(model="dall-e-3", prompt="a lighthouse", style="vivid")
    assert err.value.param == "style" and "describe the style in the prompt" in err.value.message
    assert world.upstream_calls() == calls and world.balance(user) == 10_000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, "Invalid request: stop: List should have at most 4 items"),
        ({"stop": ""}, "Invalid request: stop: String should have at least 1 character."),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "Invalid request: messages.0.content.0.text"),
        (  # the union's tag is not repeated as a field (it read image_url.image_url.detail)
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x.io/a.png", "detail": "max"}}],
                    }
                ]
            },
            "Invalid request: messages.0.content.0.image_url.detail: Input should be 'auto', 'low' or 'high'",
        ),
        ({"messages": [{"role": "system", "content": "x"}]}, "Invalid request: messages: at least one user"),
        ({"messages": [{"role": "user"}]}, "Invalid request: messages.0: a `user` message needs its `content`"),
        ({"messages": [{"role": "user", "content": None}]}, "Invalid request: messages.0: a `user` message needs"),
        ({"messages": [{"role": "user", "content": []}]}, "Invalid request: messages.0: `content` must hold at least"),
        (
            {"messages": [*ASK, {"role": "tool", "tool_call_id": "nope", "content": "42"}]},
            "Invalid request: messages: the `tool` message 1 answers the call 'nope', which no earlier",
        ),
        (
            {"stream_options": {"include_usage": True}},
            "Invalid request: stream_options: only allowed with `stream: true`",
        ),
        ({"user": 123}, "Invalid request: user: Input should be a valid string"),
        ({"frequency_penalty": 5}, "Invalid request: frequency_penalty: Input should be less than or equal to 2"),
    ],
)
def test_a_malformed_field_is_one_sentence_naming_it(world: GatewayWorld, body: dict[str, Any], expected: str) -> None:
    client = world.openai(world.key(world.user()))
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**{"model": "gpt-4o-mini", "messages": ASK, **body})
    message = err.value.body["message"]  # type: ignore[index]
    assert message.startswith(expected) and message.count(";") == 0, message
    assert err.value.param == next(iter(body))


def test_speech_instructions_reach_openai_and_sse_audio_is_refused(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    speech = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input="Hello", instructions="Speak slowly.", speed=1.5
    )
    assert speech.content.startswith(b"\xff\xfb") and int(speech.headers["x-credits-charged"]) > 0
    assert sent(world)["instructions"] == "Speak slowly." and sent(world)["speed"] == 1.5
    calls, balance = world.upstream_calls(), world.balance(user)
    with pytest.raises(openai.BadRequestError) as err:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hello", stream_format="sse")
    assert err.value.param == "stream_format" and "not supported" in err.value.message
    assert world.upstream_calls() == calls and world.balance(user) == balance


def test_the_sdks_stream_helper_and_parse(world: GatewayWorld) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    user = world.user()
    client = world.openai(world.key(user))
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=ASK, max_tokens=20, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello from the loopback." and final.choices[0].finish_reason == "stop"
    assert final.usage is not None and (final.usage.prompt_tokens, final.usage.completion_tokens) == (12, 4)
    balance = world.balance(user)
    with pytest.raises(openai.BadRequestError, match="cannot be asked for JSON output"):  # as Anthropic's models
        client.chat.completions.parse(model="claude-haiku-4-5", messages=ASK, response_format=Answer, max_tokens=20)
    assert world.balance(user) == balance
    parsed = client.chat.completions.parse(model="sandbox:openai/gpt-4o", messages=ASK, response_format=Answer)
    assert parsed.choices[0].message.parsed == Answer(text="simulated")


def test_penalties_of_zero_are_accepted_and_a_claude_temperature_above_1_is_refused_before_the_hold(
    world: GatewayWorld,
) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    ok = client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, max_tokens=20, frequency_penalty=0, presence_penalty=0.0, user="u-1"
    )
    assert ok.choices[0].message.content
    calls, balance = world.upstream_calls(), world.balance(user)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="claude-haiku-4-5", messages=ASK, max_tokens=20, temperature=1.5)
    assert "Claude models take a temperature from 0 to 1; this call asked for 1.5." in err.value.message
    assert world.upstream_calls() == calls and world.balance(user) == balance
