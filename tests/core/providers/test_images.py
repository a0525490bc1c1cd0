"""Images in chat (vision): image parts checked once, passed as sent to the OpenAI-compatible upstreams, translated to
Anthropic's `image` blocks for Claude (base64 or url source, in place), and counted in the hold's bound at the most
the model can bill for one image; refused, before any hold, where a model takes text only."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from core.errors import InvalidInputError
from core.providers import GenerationRequest
from core.providers.anthropic import AnthropicProvider
from core.providers.estimate import max_input_tokens
from core.providers.fingerprint import request_fingerprint
from core.providers.huggingface import HuggingFaceProvider
from core.providers.images import MAX_IMAGE_TOKENS, MAX_IMAGES, image_token_bound
from core.providers.openai import OpenAIProvider
from core.providers.sandbox import SIMULATED_IMAGE_TOKENS, SandboxProvider
from tests.core.providers.fakes import json_response, make, model
from tests.core.providers.test_anthropic import SONNET
from tests.core.providers.test_huggingface import LLAMA
from tests.core.providers.test_openai import GPT
from tests.support.loopback import CHAT_COMPLETION, MESSAGE, PNG_1PX

PNG = "data:image/png;base64," + base64.b64encode(PNG_1PX).decode()
PHOTO = "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"


def _ask(*images: str, detail: str | None = None, **fields: Any) -> GenerationRequest:
    """OpenAI's vision example: a question and its images in one user message."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": "What is in this image?"}]
    for url in images:
        parts.append({"type": "image_url", "image_url": {"url": url, **({"detail": detail} if detail else {})}})
    return GenerationRequest(category="chat", messages=[{"role": "user", "content": parts}], **fields)


def test_images_reach_an_openai_compatible_upstream_as_sent() -> None:
    p, up, _ = make(OpenAIProvider, [json_response(200, CHAT_COMPLETION)])
    asked = _ask(PNG, PHOTO, detail="high")
    p.generate(GPT, asked)
    assert up.body()["messages"] == [dict(m) for m in asked.messages or ()]


def test_claude_gets_each_image_as_an_image_block_in_place() -> None:
    p, up, _ = make(AnthropicProvider, [json_response(200, MESSAGE)])
    parts = [
        {"type": "text", "text": "Compare", "cache_control": {"type": "ephemeral"}},
        {"type": "image_url", "image_url": {"url": PNG}},
        {"type": "image_url", "image_url": {"url": PHOTO, "detail": "low"}},
    ]
    p.generate(SONNET, GenerationRequest(category="chat", messages=[{"role": "user", "content": parts}]))
    # Anthropic's vision docs: {"type": "image", "source": {"type": "base64", "media_type", "data"}} or a url source
    assert up.body()["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare", "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG.split(",")[1]}},
                {"type": "image", "source": {"type": "url", "url": PHOTO}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("provider", "model_id", "tokens"),
    [
        ("openai", "gpt-4o", 85 + 170 * 8),  # 2 x 4 tiles at most
        ("openai", "gpt-4o-2024-08-06", 85 + 170 * 8),
        ("openai", "gpt-4o-mini", 2_833 + 5_667 * 8),
        ("openai", "gpt-4.1-nano", 3_779),  # 1,536 patches x 2.46
        ("anthropic", "claude-sonnet-4-5", 1_600),
        ("together", "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8", MAX_IMAGE_TOKENS),  # no published rule
    ],
)
def test_the_holds_bound_counts_each_image_at_the_most_its_model_bills(
    provider: str, model_id: str, tokens: int
) -> None:
    assert image_token_bound(provider, model_id) == tokens
    target = model(provider, model_id, "chat", "token")
    text_only = max_input_tokens(_ask(), target)
    assert max_input_tokens(_ask(PNG, PHOTO), target) == text_only + 2 * tokens
    mirror = model("sandbox", f"sandbox:{provider}/{model_id}", "chat", "token", mirrors=f"{provider}/{model_id}")
    assert max_input_tokens(_ask(PNG), mirror) == text_only + tokens  # a simulated call: the model it mirrors


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": PHOTO}}]}], "only user"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x.io/a.png"}}]}], "https"),
        # plain http was let through, though the README and this very message ask for https
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x.io/a.png"}}]}], "https"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}],
            "PNG",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}]}],
            "https",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PHOTO, "detail": "max"}}]}],
            "detail",
        ),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": PHOTO}]}], "image_url"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PHOTO}}] * (MAX_IMAGES + 1)}],
            "at most",
        ),
    ],
)
def test_malformed_images_are_refused_with_what_is_wrong(messages: list[dict[str, Any]], says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        GenerationRequest(category="chat", messages=messages)


def test_a_raw_text_generation_task_refuses_images_before_any_call() -> None:
    p, up, _ = make(HuggingFaceProvider, [])
    with pytest.raises(InvalidInputError, match="cannot be given images"):
        p.generate(LLAMA, _ask(PHOTO, task="text-generation"))
    assert up.requests == []


def test_another_image_is_another_request_and_the_sandbox_counts_them() -> None:
    assert request_fingerprint(GPT, _ask(PNG)) != request_fingerprint(GPT, _ask(PHOTO))  # never the other's cache
    sb = SandboxProvider(client=None)
    gpt = model("sandbox", "sandbox:openai/gpt-4o", "chat", "token", mirrors="openai/gpt-4o")
    seen, blind = sb.generate(gpt, _ask(PNG, PHOTO)), sb.generate(gpt, _ask())
    assert seen.usage.input_tokens == blind.usage.input_tokens + 2 * SIMULATED_IMAGE_TOKENS
