"""Chat completions in OpenAI's wire format, shared by OpenAI, Together AI and Hugging Face (router and endpoints).

Streaming sends `stream_options: {"include_usage": true}` so the last chunk (`choices: []`) carries `usage`. A stream
that breaks, or ends without that chunk, is billed from a token estimate and flagged (`Usage.estimated`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar

import httpx

from core.catalog.types import ModelPrice
from core.providers.base import BaseProvider, find_message
from core.providers.errors import UpstreamError, UpstreamProtocolError
from core.providers.estimate import MESSAGE_OVERHEAD_TOKENS, approx_tokens, output_token_limit
from core.providers.sse import JsonEvents
from core.providers.tools import StreamedCalls, answered_text, tool_calls_of
from core.providers.types import Chunk, GenerationRequest, ProviderResult, TextStream
from core.providers.usage_figures import count, unreadable
from core.usage import Usage


def openai_usage(raw: Any, provider: str = "the upstream") -> Usage | None:
    """Usage from an OpenAI-style `usage` object; cached tokens are part of prompt_tokens (priced at their rate)."""
    if not isinstance(raw, dict) or ("prompt_tokens" not in raw and "completion_tokens" not in raw):
        return None
    try:
        prompt = count(raw, "prompt_tokens", provider=provider)
        completion = count(raw, "completion_tokens", provider=provider)
        details = raw.get("prompt_tokens_details") if isinstance(raw.get("prompt_tokens_details"), dict) else {}
        cached = min(count(details, "cached_tokens", provider=provider), prompt)
        extra: dict[str, Any] = {}
        out_details = raw.get("completion_tokens_details")
        out_details = out_details if isinstance(out_details, dict) else {}
        if out_details.get("reasoning_tokens"):
            extra["reasoning_tokens"] = count(out_details, "reasoning_tokens", provider=provider)
        if details.get("audio_tokens"):
            extra["input_audio_tokens"] = count(details, "audio_tokens", provider=provider)
    except UpstreamProtocolError as exc:
        return unreadable(exc)
    return Usage(input_tokens=prompt, output_tokens=completion, cached_tokens=cached, extra=extra)


def guessed_chat_usage(request: GenerationRequest, text: str) -> Usage:
    """Best guess when the upstream did not state usage (flagged as estimated)."""
    messages = request.chat_messages()
    prompt = approx_tokens(request.prompt_text()) + MESSAGE_OVERHEAD_TOKENS * len(messages)
    return Usage(input_tokens=prompt, output_tokens=approx_tokens(text), estimated=True)


class OpenAICompatibleChat(BaseProvider):
    json_output = True  # `response_format` is passed on as is
    tool_calling = True  # so are `tools`, `tool_choice` and the tool messages
    image_input = True  # and the messages' image parts
    """Chat completions, plain and streamed, in OpenAI's format."""

    chat_path: ClassVar[str] = "/chat/completions"
    max_tokens_field: ClassVar[str] = "max_tokens"
    request_id_header: ClassVar[str] = "x-request-id"

    def chat_url(self, model: ModelPrice, request: GenerationRequest) -> str:
        return self.url(self.chat_path)

    def chat_headers(self, request: GenerationRequest) -> dict[str, str]:
        return {}

    def chat_model_name(self, model: ModelPrice, request: GenerationRequest) -> str:
        return model.model_id

    def chat_body(self, model: ModelPrice, request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.chat_model_name(model, request),
            "messages": request.chat_messages(),
            self.max_tokens_field: output_token_limit(request),
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if request.response_format is not None:
            body["response_format"] = dict(request.response_format)
        if request.tools:
            body["tools"] = [dict(t) for t in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
        if request.parallel_tool_calls is not None and request.tools:
            body["parallel_tool_calls"] = request.parallel_tool_calls
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def usage_fallback(self, response: httpx.Response, request: GenerationRequest, text: str) -> Usage:
        """Usage when the body states none (dedicated endpoints read TGI's headers here)."""
        return guessed_chat_usage(request, text)

    def chat(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        response = self.send(
            "POST",
            self.chat_url(model, request),
            json_body=self.chat_body(model, request, stream=False),
            headers=self.chat_headers(request),
        )
        data = self.parse_json(response)
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise UpstreamError(
                f"{self.display_name} answered without a message ({find_message(data) or 'no choices'}); try again.",
                provider=self.name,
            ) from None
        calls = tool_calls_of(choice["message"])
        answered = answered_text(text, calls)  # calls are output tokens too
        usage = openai_usage(data.get("usage"), self.display_name) or self.usage_fallback(response, request, answered)
        return ProviderResult(
            text=text,
            usage=usage,
            request_id=response.headers.get(self.request_id_header) or data.get("id"),
            tool_calls=calls,
            metadata={"finish_reason": choice.get("finish_reason")},
        )

    def chat_stream(self, model: ModelPrice, request: GenerationRequest) -> TextStream:
        # Sent now, not lazily: an error before the stream starts (401, 429...) raises here, where it can be retried.
        response = self.send(
            "POST",
            self.chat_url(model, request),
            json_body=self.chat_body(model, request, stream=True),
            headers={**self.chat_headers(request), "Accept": "text/event-stream"},
            stream=True,
        )
        return TextStream(self._read_stream(response, request))

    def _read_stream(
        self, response: httpx.Response, request: GenerationRequest
    ) -> Generator[Chunk, None, ProviderResult]:
        parts: list[str] = []
        calls = StreamedCalls()  # an answer's function calls come as fragments: handed on, and put together
        raw_usage: Any = None
        finish: str | None = None
        request_id = response.headers.get(self.request_id_header)
        with JsonEvents(response, done="[DONE]") as events:
            for _name, chunk in events:
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    events.stop(find_message(chunk) or "error event")
                    continue
                request_id = request_id or chunk.get("id")
                if chunk.get("usage"):
                    raw_usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    piece = delta.get("content")
                    if piece:
                        parts.append(piece)
                        yield piece
                    if delta.get("tool_calls"):
                        yield from calls.openai_delta(delta["tool_calls"])
                    finish = choice.get("finish_reason") or finish
        text = "".join(parts)
        made = calls.calls()
        answered = answered_text(text, made)  # calls are output tokens too
        usage = openai_usage(raw_usage, self.display_name)
        events.raise_if_empty(
            answered, display_name=self.display_name, provider=self.name, usage_stated=usage is not None
        )
        metadata: dict[str, Any] = {"finish_reason": finish}
        if usage is None:
            usage = guessed_chat_usage(request, answered)
            metadata["usage_estimated"] = "stream ended without a usage chunk"
        events.mark(metadata)
        return ProviderResult(text=text, usage=usage, request_id=request_id, tool_calls=made, metadata=metadata)
