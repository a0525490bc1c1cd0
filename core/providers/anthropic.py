"""Anthropic: the Messages API, plain and streamed. Cache reads, 5-minute cache writes and 1-hour cache writes
(`usage.cache_creation.ephemeral_1h_input_tokens`) are each priced at their own rate.

Streaming starts from the usage in `message_start` and takes every figure the LAST `message_delta` states, as
Anthropic's SDK does: its usage is cumulative (output tokens, and input and cache counts when present), so
message_delta figures are never added together. The message_start counts are also stated on the stream as soon as
they arrive (`TextStream.stated_input`), so the gateway's own message_start can carry them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import Any

import httpx

from core.catalog.types import ModelPrice
from core.providers.anthropic_tools import anthropic_messages, anthropic_tools, check_claude_request, tool_calls_from
from core.providers.base import BaseProvider, find_message
from core.providers.errors import UpstreamError, UpstreamProtocolError
from core.providers.estimate import approx_tokens, output_token_limit
from core.providers.openai_compat import guessed_chat_usage
from core.providers.sse import JsonEvents
from core.providers.tools import StreamedCalls, answered_text
from core.providers.types import Category, Chunk, GenerationRequest, ProviderResult, TextStream
from core.providers.usage_figures import count, unreadable
from core.usage import Usage

ANTHROPIC_VERSION = "2023-06-01"


def anthropic_usage(raw: Any, delta: Any = None) -> Usage | None:
    """Usage from Anthropic's `usage`: total input = input + cache creation + cache read tokens. `delta` is the last
    message_delta's cumulative usage, whose stated figures replace the ones in `raw`."""
    if not isinstance(raw, dict) or "input_tokens" not in raw:
        return None
    merged = dict(raw)
    if isinstance(delta, dict):
        merged.update({k: v for k, v in delta.items() if v is not None})
    try:
        uncached = count(merged, "input_tokens", provider="Anthropic")
        cache_write = count(merged, "cache_creation_input_tokens", provider="Anthropic")
        cache_read = count(merged, "cache_read_input_tokens", provider="Anthropic")
        split = merged.get("cache_creation") if isinstance(merged.get("cache_creation"), dict) else {}
        one_hour = count(split, "ephemeral_1h_input_tokens", provider="Anthropic")
        cache_write = max(cache_write, one_hour + count(split, "ephemeral_5m_input_tokens", provider="Anthropic"))
        output = count(merged, "output_tokens", provider="Anthropic")
    except UpstreamProtocolError as exc:
        return unreadable(exc)
    return Usage(
        input_tokens=uncached + cache_write + cache_read,
        output_tokens=output,
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=one_hour,
    )


def anthropic_system(parts: list[Any]) -> str | list[dict[str, Any]]:
    """The system prompt: the system messages' text, or their text blocks when one of them is a list of blocks (a
    block may carry a prompt-cache breakpoint, `cache_control`, which must stay on its block)."""
    if not any(isinstance(p, list) for p in parts):
        return "\n\n".join(str(p) for p in parts)
    return [block for p in parts for block in (p if isinstance(p, list) else [{"type": "text", "text": str(p)}])]


class AnthropicProvider(BaseProvider):
    name = "anthropic"
    display_name = "Anthropic"
    key_env = "ANTHROPIC_API_KEY"
    categories = frozenset({Category.CHAT})
    tool_calling = True  # OpenAI's tools and tool messages, translated (core/providers/anthropic_tools.py)
    image_input = True  # image parts, as `image` blocks

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key(), "anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}

    def validate(self, model: ModelPrice, request: GenerationRequest) -> None:
        super().validate(model, request)
        check_claude_request(request)

    def prompt(self, model: ModelPrice, request: GenerationRequest) -> dict[str, Any]:
        """The model, the messages and the system prompt: what both a message and a token count are sent."""
        messages = request.chat_messages()
        system = anthropic_system([m["content"] for m in messages if m.get("role") == "system"])
        prompt: dict[str, Any] = {
            "model": model.model_id,
            "messages": anthropic_messages([m for m in messages if m.get("role") != "system"]),
        }
        if system:
            prompt["system"] = system
        return prompt | anthropic_tools(request)  # the tools are prompt tokens too

    def body(self, model: ModelPrice, request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        body = self.prompt(model, request)
        body["max_tokens"] = output_token_limit(request)  # required by the API
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if stream:
            body["stream"] = True
        return body

    def chat(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        response = self.send("POST", self.url("/v1/messages"), json_body=self.body(model, request, stream=False))
        data = self.parse_json(response)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise UpstreamError(
                f"Anthropic answered without content ({find_message(data) or 'unexpected shape'}); try again.",
                provider=self.name,
            )
        text = "".join(b.get("text", "") for b in data["content"] if isinstance(b, dict) and b.get("type") == "text")
        calls = tool_calls_from(data["content"])
        usage = anthropic_usage(data.get("usage")) or guessed_chat_usage(request, answered_text(text, calls))
        return ProviderResult(
            text=text,
            usage=usage,
            request_id=response.headers.get("request-id") or data.get("id"),
            tool_calls=calls,
            metadata={"finish_reason": data.get("stop_reason"), "stop_sequence": data.get("stop_sequence")},
        )

    def count_input_tokens(self, model: ModelPrice, request: GenerationRequest) -> int:
        """Anthropic's own count (`POST /v1/messages/count_tokens`, free): the prompt as a message would send it."""
        self._check_category(model, Category.CHAT)
        response = self.send("POST", self.url("/v1/messages/count_tokens"), json_body=self.prompt(model, request))
        data = self.parse_json(response)
        tokens = data.get("input_tokens") if isinstance(data, dict) else None
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise UpstreamError(
                f"Anthropic answered a token count without input_tokens ({find_message(data) or 'unexpected shape'}); "
                "try again.",
                provider=self.name,
            )
        return tokens

    def chat_stream(self, model: ModelPrice, request: GenerationRequest) -> TextStream:
        response = self.send(
            "POST",
            self.url("/v1/messages"),
            json_body=self.body(model, request, stream=True),
            headers={"Accept": "text/event-stream"},
            stream=True,
        )
        stream = TextStream(self._read_stream(response, request, lambda usage: stream.state_input(usage)))
        return stream

    def _read_stream(
        self, response: httpx.Response, request: GenerationRequest, stated: Callable[[Usage], None]
    ) -> Generator[Chunk, None, ProviderResult]:
        parts: list[str] = []
        calls = StreamedCalls()  # tool_use blocks and their input_json_delta pieces: handed on, and put together
        start_usage: Any = None
        last_delta: dict[str, Any] | None = None  # cumulative: the last message_delta wins
        stop_reason: str | None = None
        stop_sequence: str | None = None
        request_id = response.headers.get("request-id")
        with JsonEvents(response) as events:
            for name, payload in events:
                kind = payload.get("type", name) if isinstance(payload, dict) else name
                if kind == "message_start":
                    message = payload.get("message") or {}
                    request_id = request_id or message.get("id")
                    start_usage = message.get("usage")
                    prompt = anthropic_usage(start_usage)
                    if prompt is not None and not prompt.estimated:  # the real count, known before any text
                        stated(replace(prompt, output_tokens=0))
                elif kind == "content_block_start":
                    block = payload.get("content_block") or {}
                    if isinstance(block, dict) and block.get("type") == "tool_use":
                        yield from calls.start(_index(payload), block.get("id"), block.get("name"))
                elif kind == "content_block_delta":
                    delta = payload.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        parts.append(delta["text"])
                        yield delta["text"]
                    elif delta.get("type") == "input_json_delta":
                        yield from calls.add_arguments(_index(payload), delta.get("partial_json"))
                elif kind == "message_delta":
                    usage = payload.get("usage")
                    if isinstance(usage, dict) and usage.get("output_tokens") is not None:
                        last_delta = usage
                    stop_reason = (payload.get("delta") or {}).get("stop_reason") or stop_reason
                    stop_sequence = (payload.get("delta") or {}).get("stop_sequence") or stop_sequence
                elif kind == "message_stop":
                    events.stop()
                elif kind == "error":
                    events.stop(find_message(payload) or "error event")
                # ping, content_block_stop: nothing to bill or show
        text = "".join(parts)
        made = calls.calls(as_json_dumps=True)  # as the whole answer's `input`, dumped, gives them
        answered = answered_text(text, made)
        stated = start_usage is not None and last_delta is not None
        events.raise_if_empty(answered, display_name=self.display_name, provider=self.name, usage_stated=stated)
        metadata: dict[str, Any] = {"finish_reason": stop_reason, "stop_sequence": stop_sequence}
        usage = anthropic_usage(start_usage, last_delta)
        if usage is None:
            usage = guessed_chat_usage(request, answered)
            metadata["usage_estimated"] = "stream ended without message_start usage"
        elif last_delta is None:
            # No message_delta arrived: output is unknown, estimate it from what was received.
            usage = Usage(
                input_tokens=usage.input_tokens,
                output_tokens=max(approx_tokens(answered), int((start_usage or {}).get("output_tokens") or 0)),
                cached_tokens=usage.cached_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                cache_write_1h_tokens=usage.cache_write_1h_tokens,
                estimated=True,
            )
            metadata["usage_estimated"] = "stream ended before message_delta"
        events.mark(metadata)
        return ProviderResult(text=text, usage=usage, request_id=request_id, tool_calls=made, metadata=metadata)

    def upstream_message(self, response: httpx.Response) -> str:
        # {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        try:
            body = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return super().upstream_message(response)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return f"{err.get('type', 'error')}: {err['message']}"
        return super().upstream_message(response)


def _index(payload: dict[str, Any]) -> int:
    """A content block event's `index` (its block's place in the answer)."""
    index = payload.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else 0
