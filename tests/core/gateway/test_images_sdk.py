"""Images (vision) through the gateway with the official SDKs: a chat's image parts reach an OpenAI-compatible
upstream as sent and Claude as `image` blocks; `/v1/messages` image blocks reach Claude unchanged; a Responses
`input_image` becomes chat's image part. What cannot be honoured is a 400 naming it, before any hold or upstream call;
the hold counts each image at the most its model bills for one."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import openai
import pytest

from tests.core.gateway.conftest import GatewayWorld
from tests.support.loopback import PNG_1PX

DATA = base64.b64encode(PNG_1PX).decode()
PNG = f"data:image/png;base64,{DATA}"
PHOTO = "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"
LOOK: list[Any] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
        ],
    }
]


def test_a_chat_image_reaches_openai_as_sent_and_is_billed(world: GatewayWorld) -> None:
    user = world.user()
    raw = world.openai(world.key(user)).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=LOOK)
    assert json.loads(world.upstream.requests[-1].body)["messages"] == LOOK
    assert int(raw.headers["x-credits-charged"]) > 0 and world.balance(user) < 10_000


def test_a_chat_image_reaches_claude_as_an_image_block(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    parts: list[Any] = [{"type": "image_url", "image_url": {"url": PHOTO}}, {"type": "text", "text": "Describe it."}]
    looking: list[Any] = [{"role": "user", "content": parts}]
    client.chat.completions.create(model="claude-haiku-4-5", messages=looking, max_tokens=50)
    sent = json.loads(world.upstream.requests[-1].body)
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": PHOTO}},
                {"type": "text", "text": "Describe it."},
            ],
        }
    ]


def test_messages_image_blocks_reach_claude_unchanged(world: GatewayWorld) -> None:
    client = world.anthropic(world.key(world.user()))
    # Anthropic's vision example: the image first, then the question
    blocks: list[Any] = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": DATA}},
        {"type": "image", "source": {"type": "url", "url": PHOTO}},
        {"type": "text", "text": "Compare these images."},
    ]
    answer = client.messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": blocks}]
    )
    assert json.loads(world.upstream.requests[-1].body)["messages"] == [{"role": "user", "content": blocks}]
    assert answer.content[0].text  # type: ignore[union-attr]
    counted = client.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": blocks}])
    assert counted.input_tokens == 14  # Anthropic's own count (the loopback's), of the same blocks
    assert json.loads(world.upstream.requests[-1].body)["messages"] == [{"role": "user", "content": blocks}]


def test_a_responses_input_image_becomes_a_chat_image_part(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user()))
    content: list[Any] = [
        {"type": "input_text", "text": "What is in this image?"},
        {"type": "input_image", "image_url": PHOTO, "detail": "low"},
    ]
    answer = client.responses.create(model="gpt-4o-mini", input=[{"role": "user", "content": content}])
    sent = json.loads(world.upstream.requests[-1].body)["messages"]
    assert sent == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": PHOTO, "detail": "low"}},
            ],
        }
    ]
    assert answer.output_text == "Hello from the loopback."


def test_the_count_of_a_model_without_a_counting_api_holds_each_image_at_its_most(world: GatewayWorld) -> None:
    client = world.anthropic(world.key(world.user()))
    text_only = [{"role": "user", "content": "What is in this image?"}]
    with_image: list[Any] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image", "source": {"type": "url", "url": PHOTO}},
            ],
        }
    ]
    plain = client.messages.count_tokens(model="gpt-4o-mini", messages=text_only).input_tokens  # type: ignore[arg-type]
    seen = client.messages.count_tokens(model="gpt-4o-mini", messages=with_image).input_tokens
    assert seen == plain + 2_833 + 5_667 * 8  # gpt-4o-mini's most for one image (2 x 4 tiles)


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": PHOTO}}]}], "only user"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}], "https"),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zz4="}}],
                }
            ],
            "PNG",
        ),
    ],
)
def test_refused_images_cost_nothing(world: GatewayWorld, messages: list[Any], says: str) -> None:
    user = world.user()
    calls = world.upstream_calls()
    with pytest.raises(openai.BadRequestError) as refused:
        world.openai(world.key(user)).chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert says in refused.value.message
    assert refused.value.param == "messages"  # the field at fault, as the README promises for every refusal
    with pytest.raises(anthropic.BadRequestError, match="user message"):
        world.anthropic(world.key(user)).messages.create(
            model="claude-haiku-4-5",
            max_tokens=10,
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{"type": "image", "source": {"type": "url", "url": PHOTO}}]},
            ],
        )
    assert world.upstream_calls() == calls and world.balance(user) == 10_000
