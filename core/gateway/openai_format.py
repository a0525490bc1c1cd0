"""Engine results in OpenAI's response shapes (chat completions plain and streamed, transcriptions, images, models)."""

from __future__ import annotations

import base64
import time
from typing import Any

from core.gateway.schemas import ChatCompletionRequest
from core.services.generation import Chunk, GenerationRequest, GenerationResult

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "length": "length",
    "stop": "stop",
    "refusal": "content_filter",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
}


def chat_request(body: ChatCompletionRequest) -> GenerationRequest:
    messages = tuple(m.to_engine() for m in body.messages)
    return GenerationRequest(
        category="chat",
        messages=messages,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop_sequences(),
        response_format=body.response_format,
        tools=body.tools,
        tool_choice=body.tool_choice,
        parallel_tool_calls=body.parallel_tool_calls,
        stream=bool(body.stream),
    )


def finish_reason(result: GenerationResult) -> str:
    return FINISH.get(str(result.metadata.get("finish_reason") or "stop"), "stop")


def usage(result: GenerationResult) -> dict[str, Any]:
    u = result.usage
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def completion_id(rid: str) -> str:
    return "chatcmpl-" + rid.removeprefix("req_")


def message(result: GenerationResult) -> dict[str, Any]:
    """The assistant's message: its text, and the functions it calls (content null when it only calls them)."""
    out: dict[str, Any] = {"role": "assistant", "content": result.text or "", "refusal": None}
    if result.tool_calls:
        out["content"] = result.text or None
        out["tool_calls"] = [dict(c) for c in result.tool_calls]
    return out


def chat_completion(result: GenerationResult, rid: str) -> dict[str, Any]:
    return {
        "id": completion_id(rid),
        "object": "chat.completion",
        "created": result.created,
        "model": result.model_id,
        "choices": [
            {
                "index": 0,
                "message": message(result),
                "logprobs": None,
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": usage(result),
    }


class ChunkWriter:
    """The chunks of one streamed completion (OpenAI's `chat.completion.chunk`)."""

    def __init__(self, rid: str, model: str, include_usage: bool) -> None:
        self.base = {
            "id": completion_id(rid),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        self.include_usage = include_usage

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        if self.include_usage and "usage" not in out:
            out["usage"] = None
        return out

    def piece(self, item: Chunk) -> dict[str, Any]:
        """A piece of the answer as it comes: text, or a piece of a function call (its first names the call, with
        its index among the answer's calls; each next one adds to its arguments), as OpenAI streams them."""
        if isinstance(item, str):
            return self.chunk({"content": item})
        call: dict[str, Any] = {"index": item.index}
        if item.name is not None:  # in OpenAI's order: index, id, type, function
            call |= {"id": item.id or "", "type": "function", "function": {"name": item.name}}
        call.setdefault("function", {})["arguments"] = item.arguments
        return self.chunk({"tool_calls": [call]})

    def final(self, result: GenerationResult) -> list[dict[str, Any]]:
        """The chunk with the finish reason and, when asked, the usage chunk (no choices) that also carries what the
        call was charged (the headers were sent before the charge was known)."""
        out = [self.chunk({}, finish_reason(result))]
        if self.include_usage:
            out.append(
                {
                    **self.base,
                    "choices": [],
                    "usage": usage(result),
                    "credits": result.credits_summary(),
                }
            )
        return out


def transcription(result: GenerationResult, response_format: str, language: str | None) -> dict[str, Any] | str:
    """`json`, `text`, or `verbose_json`: the json answer with the audio's duration (the seconds billed) and the
    language asked for (the engine returns no segments)."""
    if response_format == "text":
        return result.text or ""
    out: dict[str, Any] = {"text": result.text or ""}
    if response_format == "verbose_json":
        out.update(duration=float(result.usage.seconds), language=language or "", segments=[])
    if result.usage.seconds:
        out["usage"] = {"type": "duration", "seconds": float(result.usage.seconds)}
    elif result.usage.input_tokens or result.usage.output_tokens:
        out["usage"] = {
            "type": "tokens",
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
            "total_tokens": result.usage.input_tokens + result.usage.output_tokens,
        }
    return out


def image(result: GenerationResult, response_format: str) -> dict[str, Any]:
    encoded = base64.b64encode(result.data or b"").decode()
    item: dict[str, Any] = {"b64_json": encoded}
    if response_format == "url":  # nothing is hosted here: the image itself, as a data URL
        item = {"url": f"data:{result.mime or 'image/png'};base64,{encoded}"}
    if result.metadata.get("revised_prompt"):
        item["revised_prompt"] = result.metadata["revised_prompt"]
    return {"created": result.created, "data": [item]}


def model(entry: Any) -> dict[str, Any]:
    return {"id": entry.model_id, "object": "model", "created": 0, "owned_by": entry.provider}


def models(entries: list[Any]) -> dict[str, Any]:
    return {"object": "list", "data": [model(m) for m in entries]}
