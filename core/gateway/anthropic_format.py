"""Engine results in Anthropic's Messages API shapes (a message, its streamed events, the models list)."""

from __future__ import annotations

import json
from typing import Any

from core.gateway.schemas import (
    AnthropicImageBlock,
    AnthropicMessage,
    AnthropicTextBlock,
    MessagesPrompt,
    MessagesRequest,
    ToolResultBlock,
    ToolUseBlock,
    text_of,
)
from core.services.generation import Chunk, GenerationRequest, GenerationResult, Usage

STOP = {
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "stop": "end_turn",
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "refusal": "refusal",
    "tool_use": "tool_use",
    "tool_calls": "tool_use",
}


def content(blocks: str | list[AnthropicTextBlock] | None) -> str | list[dict[str, Any]]:
    """Text, or the text blocks themselves when one marks a prompt-cache breakpoint (`cache_control`), which Anthropic
    must receive where it was put (and the hold then counts the prompt as a cache write)."""
    if isinstance(blocks, list) and any((b.model_extra or {}).get("cache_control") for b in blocks):
        return [
            {
                "type": "text",
                "text": b.text,
                **({"cache_control": c} if (c := (b.model_extra or {}).get("cache_control")) else {}),
            }
            for b in blocks
        ]
    return text_of(blocks)


def turns(m: AnthropicMessage) -> list[dict[str, Any]]:
    """One Anthropic message as the engine's turns (OpenAI's shapes; the provider translates them back): an
    assistant's `tool_use` blocks as its `tool_calls`, a user's `tool_result` blocks as `tool` messages ahead of its
    text."""
    blocks = m.content if isinstance(m.content, list) else []
    texts = [b for b in blocks if isinstance(b, AnthropicTextBlock)]
    if len(texts) == len(blocks):
        return [{"role": m.role, "content": content(m.content)}]
    if m.role == "assistant":
        calls = [
            {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
            for b in blocks
            if isinstance(b, ToolUseBlock)
        ]
        return [{"role": "assistant", "content": text_of(texts) or None, "tool_calls": calls}]
    out: list[dict[str, Any]] = [
        {
            "role": "tool",
            "tool_call_id": b.tool_use_id,
            "content": text_of(b.content),
            **({"is_error": True} if b.is_error else {}),
        }
        for b in blocks
        if isinstance(b, ToolResultBlock)
    ]
    said = [b for b in blocks if isinstance(b, AnthropicTextBlock | AnthropicImageBlock)]
    if len(said) > len(texts):  # images: the text and image blocks, in order, as the engine's parts
        out.append({"role": "user", "content": [_part(b) for b in said]})
    elif texts:
        out.append({"role": "user", "content": content(texts)})
    return out


def _part(block: AnthropicTextBlock | AnthropicImageBlock) -> dict[str, Any]:
    if isinstance(block, AnthropicImageBlock):
        return block.to_engine()
    cache = (block.model_extra or {}).get("cache_control")  # a breakpoint stays on its block
    return {"type": "text", "text": block.text, **({"cache_control": cache} if cache else {})}


def _prompt(body: MessagesPrompt) -> dict[str, Any]:
    system = content(body.system)
    breakpoints = isinstance(system, list)
    return {
        "category": "chat",
        "messages": (
            *([{"role": "system", "content": system}] if breakpoints else []),
            *(turn for m in body.messages for turn in turns(m)),
        ),
        "system": None if breakpoints else system or None,
        **body.engine_tools(),
    }


def prompt_request(body: MessagesPrompt) -> GenerationRequest:
    """The prompt alone: what a token count counts, as a message would send it."""
    return GenerationRequest(**_prompt(body))


def messages_request(body: MessagesRequest) -> GenerationRequest:
    return GenerationRequest(
        **_prompt(body),
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=tuple(body.stop_sequences or ()),
        stream=body.stream,
    )


def message_id(rid: str) -> str:
    return "msg_" + rid.removeprefix("req_")


def stop_reason(result: GenerationResult) -> str:
    reason = STOP.get(str(result.metadata.get("finish_reason") or "end_turn"), "end_turn")
    if reason == "stop_sequence" and not result.metadata.get("stop_sequence"):
        return "end_turn"  # the SDK expects the sequence with this reason
    return reason


def stop_sequence(result: GenerationResult) -> str | None:
    """The stop sequence the answer ended at (Anthropic states it with stop_reason "stop_sequence")."""
    return result.metadata.get("stop_sequence") if stop_reason(result) == "stop_sequence" else None


def usage(result: GenerationResult) -> dict[str, int]:
    return usage_of(result.usage)


def usage_of(u: Usage) -> dict[str, int]:
    """Anthropic's usage shape: `input_tokens` is the uncached part; cache writes and reads are counted apart."""
    return {
        "input_tokens": u.input_tokens - u.cached_tokens - u.cache_write_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
    }


def blocks(result: GenerationResult) -> list[dict[str, Any]]:
    """The answer's content: its text block (unless it only calls tools), then a `tool_use` block per call."""
    out = [{"type": "text", "text": result.text or ""}] if result.text or not result.tool_calls else []
    for call in result.tool_calls or ():
        fn = call["function"]
        try:
            given = json.loads(fn["arguments"] or "{}")
        except json.JSONDecodeError:
            given = None
        out.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": fn["name"],
                "input": given if isinstance(given, dict) else {},
            }
        )
    return out


def message(result: GenerationResult, rid: str) -> dict[str, Any]:
    return {
        "id": message_id(rid),
        "type": "message",
        "role": "assistant",
        "model": result.model_id,
        "content": blocks(result),
        "stop_reason": stop_reason(result),
        "stop_sequence": stop_sequence(result),
        "usage": usage(result),
    }


Event = tuple[str, dict[str, Any]]


class MessageStream:
    """The events of one streamed message, as Anthropic's own stream orders them: message_start and a ping, then each
    content block as the answer makes it (a text block at its first text, a `tool_use` block at a call's first piece,
    its input in `input_json_delta` pieces), each stopped when the next starts; message_delta with the stop reason and
    the usage, message_stop."""

    def __init__(self, rid: str, model: str) -> None:
        self.rid, self.model = rid, model
        self.blocks = 0  # content blocks started
        self.open: int | None = None  # the index of the block not yet stopped
        self.text_block: int | None = None  # the open block, when it is text
        self.call_blocks: dict[int, int] = {}  # a call's index among the answer's calls -> its block's index

    def start(self, stated: Usage | None = None) -> list[Event]:
        """message_start carries the prompt's counts when the upstream stated them before its first text (`stated`),
        as Anthropic's own does; when they are not known it says 0 rather than an estimate, and the counts come with
        message_delta, whose usage the SDK's final message takes."""
        start_usage = {"input_tokens": 0, "output_tokens": 0} if stated is None else usage_of(stated)
        message = {
            "id": message_id(self.rid),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        return [("message_start", {"type": "message_start", "message": message}), ("ping", {"type": "ping"})]

    def _begin(self, block: dict[str, Any]) -> list[Event]:
        """Stop the open block, start `block` as the next."""
        events = self._stop()
        self.open = self.blocks
        self.blocks += 1
        return [
            *events,
            ("content_block_start", {"type": "content_block_start", "index": self.open, "content_block": block}),
        ]

    def _stop(self) -> list[Event]:
        if self.open is None:
            return []
        stopped, self.open, self.text_block = self.open, None, None
        return [("content_block_stop", {"type": "content_block_stop", "index": stopped})]

    def piece(self, item: Chunk) -> list[Event]:
        """A piece of the answer as it comes: text, or a piece of a function call (its first starts its block)."""
        if isinstance(item, str):
            events = [] if self.text_block is not None else self._begin({"type": "text", "text": ""})
            self.text_block = self.open
            delta = {"type": "text_delta", "text": item}
            return [
                *events,
                ("content_block_delta", {"type": "content_block_delta", "index": self.open, "delta": delta}),
            ]
        events = []
        if item.name is not None:
            tool = {"type": "tool_use", "id": item.id or "", "name": item.name, "input": {}}
            events = self._begin(tool)
            self.call_blocks[item.index] = self.blocks - 1
        block = self.call_blocks.get(item.index)
        if block is None or not item.arguments:
            return events
        delta = {"type": "input_json_delta", "partial_json": item.arguments}
        return [*events, ("content_block_delta", {"type": "content_block_delta", "index": block, "delta": delta})]

    def end(self, result: GenerationResult) -> list[Event]:
        # an answer with nothing at all still has its (empty) text block, as a whole message's content does
        events = self._stop() if self.blocks else [*self._begin({"type": "text", "text": ""}), *self._stop()]
        stopped = {"stop_reason": stop_reason(result), "stop_sequence": stop_sequence(result)}
        ended = {"type": "message_delta", "delta": stopped, "usage": usage(result), "credits": result.credits_summary()}
        return [*events, ("message_delta", ended), ("message_stop", {"type": "message_stop"})]


def model(entry: Any) -> dict[str, Any]:
    return {
        "type": "model",
        "id": entry.model_id,
        "display_name": entry.model_name,
        "created_at": "1970-01-01T00:00:00Z",
    }


MODELS_PAGE = 20  # Anthropic's default `limit`


def models(
    entries: list[Any], *, limit: int | None = None, after_id: str | None = None, before_id: str | None = None
) -> dict[str, Any]:
    """One page of the models, as Anthropic pages them: `limit` (20 unless given) after `after_id` or before
    `before_id`; `has_more` says whether more lie that way (the SDK's auto-pagination follows `last_id`)."""
    data = [model(m) for m in entries]
    ids = [d["id"] for d in data]
    size = limit or MODELS_PAGE
    if before_id is not None:
        end = ids.index(before_id) if before_id in ids else len(ids)
        start = max(0, end - size)
        page, more = data[start:end], start > 0
    else:
        start = ids.index(after_id) + 1 if after_id in ids else (len(ids) if after_id is not None else 0)
        page, more = data[start : start + size], start + size < len(data)
    return {
        "data": page,
        "has_more": more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }
