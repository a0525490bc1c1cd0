"""The official `openai` SDK against the running gateway: chat (plain and streamed with usage), a Claude model through
chat completions, speech, transcription, images and the models list; each billed once, with the billing headers."""

from __future__ import annotations

import base64
import json

import anthropic
import pytest

from core.access import SYSTEM
from tests.core.gateway.conftest import GatewayWorld
from tests.core.providers.fakes import wav_bytes

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]


def test_chat_is_answered_and_billed_once(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=300)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the loopback."
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1200, 300)
    assert completion.usage.prompt_tokens_details.cached_tokens == 1024
    charged = int(raw.headers["x-credits-charged"])
    assert charged == 2 and raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-credits-remaining"]) == world.balance(user) == 10_000 - charged
    sent = json.loads(world.upstream.requests[-1].body)
    assert sent["model"] == "gpt-4o-mini" and sent["messages"] == MESSAGES
    assert world.upstream.requests[-1].headers["authorization"] == "Bearer sk-upstream-openai-0000"


def test_streamed_chat_gives_its_usage_when_asked(world: GatewayWorld) -> None:
    user = world.user()
    key = world.key(user)
    client = world.openai(key)
    chunks = world.streamed_chat(key, MESSAGES)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the loopback."
    assert [c.usage for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert (chunks[-1].choices, chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == ([], 12, 4)
    assert chunks[-1].model_extra["credits"] == {"charged": 2, "remaining": world.balance(user)}
    without = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in without) and without[-1].choices[0].finish_reason == "stop"


def test_a_claude_model_answers_through_chat_completions(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    completion = client.chat.completions.create(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=100)
    assert completion.choices[0].message.content == "Hello from the Anthropic loopback."
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (20, 9)
    sent = world.upstream.requests[-1]
    body = json.loads(sent.body)
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == "sk-ant-upstream-0000"
    assert body["system"] == "Be brief." and body["messages"] == [{"role": "user", "content": "Say hello."}]


def test_speech_transcription_and_images(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    speech = client.audio.speech.with_raw_response.create(model="tts-1", voice="nova", input="Hello there")
    assert speech.headers["content-type"] == "audio/mpeg" and speech.content.startswith(b"\xff\xfb")
    assert int(speech.headers["x-credits-charged"]) == 2  # 11 characters: 1 base credit, marked up
    transcript = client.audio.transcriptions.create(model="whisper-1", file=("talk.wav", wav_bytes(1.0)))
    assert transcript.text == "Hello there."
    assert world.upstream.requests[-1].path == "/v1/audio/transcriptions"
    image = client.images.generate(model="dall-e-3", prompt="a lighthouse", size="1024x1024")
    assert base64.b64decode(image.data[0].b64_json).startswith(b"\x89PNG")
    assert world.balance(user) < 10_000
    assert world.services.ledger.check(SYSTEM) == []


def test_sandbox_models_work_without_provider_keys(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    before = world.upstream_calls()
    reply = client.chat.completions.create(model="sandbox-chat", messages=MESSAGES)
    assert reply.choices[0].message.content.startswith("[simulated by the sandbox")
    audio = client.audio.speech.create(model="sandbox-tts", voice="x", input="Hello")
    assert audio.read().startswith(b"RIFF")
    assert world.upstream_calls() == before and world.balance(user) == 10_000


def test_a_sandbox_answer_cut_at_max_tokens_says_so_in_every_api(world: GatewayWorld) -> None:
    """The sandbox (what answers without provider keys) stops at the limit as a model does, and says so: OpenAI's
    finish_reason length, the Responses API's incomplete status, Anthropic's stop_reason max_tokens."""
    key = world.key(world.user())
    client, claude = world.openai(key), world.anthropic(key)
    cut = client.chat.completions.create(model="sandbox-chat", messages=MESSAGES, max_tokens=8)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens <= 8
    whole = client.chat.completions.create(model="sandbox-chat", messages=MESSAGES, max_tokens=2000)
    assert whole.choices[0].finish_reason == "stop"
    chunks = list(client.chat.completions.create(model="sandbox-chat", messages=MESSAGES, max_tokens=8, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    response = client.responses.create(model="sandbox-chat", input="Say hello.", max_output_tokens=16)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    with client.responses.stream(model="sandbox-chat", input="Say hello.", max_output_tokens=16) as stream:
        assert [event.type for event in stream][-1] == "response.incomplete"
    sandbox_claude = "sandbox:anthropic/claude-haiku-4-5"
    message = claude.messages.create(model=sandbox_claude, max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
    assert message.stop_reason == "max_tokens"
    with claude.messages.stream(model=sandbox_claude, max_tokens=8, messages=[{"role": "user", "content": "Hi"}]) as s:
        assert s.get_final_message().stop_reason == "max_tokens"


def test_models_lists_what_the_key_may_call(world: GatewayWorld) -> None:
    user = world.user()
    everything = {m.id for m in world.openai(world.key(user)).models.list()}
    assert {"gpt-4o-mini", "claude-haiku-4-5", "whisper-1", "sandbox-chat"} <= everything
    narrow = world.openai(world.key(user, models=["gpt-4o-mini", "tts-1"]))
    assert sorted(m.id for m in narrow.models.list()) == ["gpt-4o-mini", "tts-1"]


def test_the_anthropic_sdk_pages_through_the_models(world: GatewayWorld) -> None:
    """Anthropic's models list comes a page at a time (`limit`, 20 by default; `after_id`, `before_id`): the SDK's
    auto-pagination walks every page; a `limit` was ignored (every model on one page, `has_more` false)."""
    key = world.key(world.user())
    everything = [m.id for m in world.openai(key).models.list()]
    claude = world.anthropic(key)
    first = claude.models.list(limit=2)
    assert [m.id for m in first.data] == everything[:2] and first.has_more and first.last_id == everything[1]
    assert [m.id for m in claude.models.list(limit=3, after_id=everything[1]).data] == everything[2:5]
    assert [m.id for m in claude.models.list(limit=2, before_id=everything[3]).data] == everything[1:3]
    assert [m.id for m in claude.models.list(limit=5)] == everything  # every page, followed by the SDK
    assert len(claude.models.list().data) == min(20, len(everything))
    with pytest.raises(anthropic.BadRequestError):
        claude.models.list(limit=0)


def test_music_and_voice_clone_routes(world: GatewayWorld) -> None:
    import httpx

    user = world.user()
    headers = {"Authorization": f"Bearer {world.key(user)}"}
    music = httpx.post(
        f"{world.url}/v1/music/generations",
        json={"model": "sandbox-music", "prompt": "calm piano", "lyrics": "la la"},
        headers=headers,
    )
    assert music.status_code == 200 and music.content.startswith(b"RIFF") and "x-credits-charged" in music.headers
    clone = httpx.post(
        f"{world.url}/v1/voices/clone",
        data={"model": "sandbox-voice-clone", "voice_id": "my-voice"},
        files={"file": ("sample.wav", wav_bytes(2.0), "audio/wav")},
        headers=headers,
    )
    assert clone.status_code == 200 and clone.json()["voice_id"] == "my-voice"


def test_the_same_idempotency_key_answers_the_first_completion_again(world: GatewayWorld) -> None:
    """A replay is the first request's answer, id included (an app that keeps answers by id sees one), charged once;
    another API key's same Idempotency-Key is its own call with its own id."""
    user = world.user()
    client = world.openai(world.key(user))
    headers = {"Idempotency-Key": "chat-7"}
    first = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers
    )
    again = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers
    )
    assert again.headers["idempotent-replayed"] == "true" and again.parse().id == first.parse().id
    assert world.balance(user) == 10_000 - int(first.headers["x-credits-charged"])
    ask = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "extra_headers": {"Idempotency-Key": "s-7"}}
    streamed = {chunk.id for chunk in client.chat.completions.create(**ask)}  # type: ignore[call-overload]
    replayed = client.chat.completions.with_raw_response.create(**ask)  # type: ignore[call-overload]
    # a streamed replay says so too (it did not: only plain answers had the header)
    assert replayed.headers["idempotent-replayed"] == "true" and {c.id for c in replayed.parse()} == streamed
    other = world.openai(world.key(user)).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers
    )
    assert other.id != first.parse().id and len(streamed) == 1
