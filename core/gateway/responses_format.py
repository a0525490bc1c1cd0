"""OpenAI's Responses API shapes (`POST /v1/responses`, text or JSON out): the request as the engine's chat request, the
`response` object, and the events of a streamed response in the order the `openai` SDK's stream helper accumulates
them (created, in_progress; at the first text the message item and its content part added, one text delta per piece;
then the done events, each function call's item, and `response.completed`, or `response.incomplete` when the answer
stopped at `max_output_tokens`)."""

from __future__ import annotations

import time
from typing import Any

from core.gateway.openai_format import finish_reason
from core.gateway.schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImagePart,
    InputMessage,
    ResponsesRequest,
    text_of,
)
from core.services.generation import Chunk, GenerationRequest, GenerationResult

Event = tuple[str, dict[str, Any]]


def _turns(given: list[Any]) -> list[dict[str, Any]]:
    """The input items as the engine's turns (chat's shapes): messages, a run of `function_call` items as one
    assistant turn's `tool_calls` (joined to the assistant message before them), each `function_call_output` as a
    `tool` message."""
    turns: list[dict[str, Any]] = []
    for item in given:
        if isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = turns[-1] if turns else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                turns.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            turns.append({"role": "tool", "tool_call_id": item.call_id, "content": text_of(item.output)})
        else:
            turns.append(
                {"role": "system" if item.role == "developer" else item.role, "content": _content(item.content)}
            )
    return turns


def _content(given: str | list[Any]) -> Any:
    """An input message's content as the engine takes it: its text, or its parts when it holds an image."""
    if isinstance(given, list) and any(isinstance(p, InputImagePart) for p in given):
        return [p.to_engine() if isinstance(p, InputImagePart) else {"type": "text", "text": p.text} for p in given]
    return text_of(given)


def generation_request(body: ResponsesRequest) -> GenerationRequest:
    """The chat request the engine runs: `instructions` as a system message ahead of the input (as a chat
    completion's system message is), a string input as one user message, `developer` as `system`, function calls
    and their outputs as chat's tool calls and tool messages."""
    given = [InputMessage(role="user", content=body.input)] if isinstance(body.input, str) else body.input
    system = ({"role": "system", "content": body.instructions},) if body.instructions else ()
    return GenerationRequest(
        category="chat",
        messages=(*system, *_turns(given)),
        max_tokens=body.max_output_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        response_format=body.response_format(),
        stream=bool(body.stream),
        **body.engine_tools(),
    )


def response_id(rid: str) -> str:
    return "resp_" + rid.removeprefix("req_")


def item_id(rid: str) -> str:
    return "msg_" + rid.removeprefix("req_")


def usage(result: GenerationResult) -> dict[str, Any]:
    """OpenAI's Responses usage: `input_tokens` counts every input token, cached or not (as the engine's do)."""
    u = result.usage
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": int(u.extra.get("reasoning_tokens") or 0)},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def stopped_at_limit(result: GenerationResult) -> bool:
    return finish_reason(result) == "length"


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message(item: str, text: str, status: str) -> dict[str, Any]:
    """The assistant's message item `item` (its id)."""
    content = [output_text(text)] if status != "in_progress" else []
    return {"id": item, "type": "message", "role": "assistant", "status": status, "content": content}


def _nth(item: str, n: int) -> str:
    """The id of the answer's n-th output item when it is a message (the first keeps the plain id)."""
    return item if n == 0 else f"{item}_{n}"


def function_call(rid: str, index: int, call: dict[str, Any]) -> dict[str, Any]:
    """A call the answer makes, as a completed `function_call` output item (`call_id` is what its output answers)."""
    fn = call["function"]
    return {
        "id": f"fc_{rid.removeprefix('req_')}_{index}",
        "type": "function_call",
        "status": "completed",
        "call_id": call["id"],
        "name": fn["name"],
        "arguments": fn["arguments"],
    }


def output(rid: str, result: GenerationResult, status: str) -> list[dict[str, Any]]:
    """The response's output items: its message (unless it only calls functions), then a `function_call` per call."""
    said = result.text or ""
    items = [message(item_id(rid), said, status)] if said or not result.tool_calls else []
    return items + [function_call(rid, i, c) for i, c in enumerate(result.tool_calls or ())]


def response(
    rid: str,
    body: ResponsesRequest,
    model: str,
    result: GenerationResult | None = None,
    *,
    created_at: int | None = None,
) -> dict[str, Any]:
    """The `response` object: in progress (no output yet) until there is a `result`, then completed, or incomplete
    when the answer stopped at `max_output_tokens`. Nothing is stored (`store: false`)."""
    status = "in_progress"
    if result is not None:
        status = "incomplete" if stopped_at_limit(result) else "completed"
    items = [] if result is None else output(rid, result, status)
    return {
        "id": response_id(rid),
        "object": "response",
        "created_at": created_at if created_at is not None else result.created if result else int(time.time()),
        "status": status,
        "background": False,
        "completed_at": result.created if result and status == "completed" else None,  # as OpenAI: only when completed
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "model": model,
        "output": items,
        "parallel_tool_calls": body.parallel_tool_calls is not False,  # as OpenAI echoes its defaults
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "text": {"format": (body.text or {}).get("format") or {"type": "text"}},
        "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
        "tools": [{"strict": None, "description": None, **t} for t in body.tools or ()],
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "truncation": "disabled",
        "usage": None if result is None else usage(result),
        "user": body.user,
        "metadata": body.metadata or {},
    }


class EventWriter:
    """The events of one streamed response, numbered in order (`sequence_number`). Output items are added as the
    answer makes them: the message item at its first text (an answer that only calls functions has none), a
    `function_call` item at a call's first piece, its arguments in deltas; each item is done when the next starts."""

    def __init__(self, rid: str, body: ResponsesRequest) -> None:
        self.rid, self.body, self.created_at = rid, body, int(time.time())
        self.sequence = 0
        self.items: list[dict[str, Any]] = []  # the output items so far, as they will be when done
        self.open: int | None = None  # the output index of the item not yet done
        self.call_items: dict[int, int] = {}  # a call's index among the answer's calls -> its item's output index

    def _event(self, kind: str, **data: Any) -> Event:
        event = (kind, {"type": kind, "sequence_number": self.sequence, **data})
        self.sequence += 1
        return event

    def _where(self, index: int) -> dict[str, Any]:
        where = {"item_id": self.items[index]["id"], "output_index": index}
        return where | ({"content_index": 0} if self.items[index]["type"] == "message" else {})

    def start(self) -> list[Event]:
        begun = response(self.rid, self.body, self.body.model, created_at=self.created_at)
        return [self._event("response.created", response=begun), self._event("response.in_progress", response=begun)]

    def _add(self, item: dict[str, Any]) -> list[Event]:
        """Finish the open item, add `item` (as done) and announce it in progress."""
        events = self._done()
        self.open = len(self.items)
        self.items.append(item)
        if item["type"] == "message":
            begun = message(item["id"], "", "in_progress")
            return [
                *events,
                self._event("response.output_item.added", output_index=self.open, item=begun),
                self._event("response.content_part.added", **self._where(self.open), part=output_text("")),
            ]
        begun = {**item, "status": "in_progress", "arguments": ""}
        return [*events, self._event("response.output_item.added", output_index=self.open, item=begun)]

    def _done(self) -> list[Event]:
        if self.open is None:
            return []
        index, self.open = self.open, None
        item, where = self.items[index], self._where(index)
        if item["type"] == "message":
            text = item["content"][0]["text"]
            return [
                self._event("response.output_text.done", **where, text=text, logprobs=[]),
                self._event("response.content_part.done", **where, part=output_text(text)),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        done = self._event(
            "response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]
        )
        return [done, self._event("response.output_item.done", output_index=index, item=item)]

    def piece(self, item: Chunk) -> list[Event]:
        """A piece of the answer as it comes: text, or a piece of a function call (its first adds its item)."""
        if isinstance(item, str):
            at = self.open
            events: list[Event] = []
            if at is None or self.items[at]["type"] != "message":
                events = self._add(message(_nth(item_id(self.rid), len(self.items)), "", "completed"))
                at = self.open
            assert at is not None
            self.items[at]["content"][0]["text"] += item
            return [*events, self._event("response.output_text.delta", **self._where(at), delta=item, logprobs=[])]
        events = []
        if item.name is not None:
            call = {"id": item.id or "", "type": "function", "function": {"name": item.name, "arguments": ""}}
            events = self._add(function_call(self.rid, item.index, call))
            self.call_items[item.index] = len(self.items) - 1
        at = self.call_items.get(item.index)
        if at is None or not item.arguments:
            return events
        self.items[at]["arguments"] += item.arguments
        return [*events, self._event("response.function_call_arguments.delta", **self._where(at), delta=item.arguments)]

    def finish(self, result: GenerationResult) -> list[Event]:
        """The open item's done events, and the last one (completed, or incomplete), which carries the usage and
        what the call was charged (the headers left before the charge was known). An answer with nothing at all has
        its (empty) message item, as a whole response's output does."""
        events = [] if self.items else self._add(message(item_id(self.rid), "", "completed"))
        done = response(self.rid, self.body, self.body.model, result, created_at=self.created_at)
        if done["status"] == "incomplete" and self.open is not None and self.items[self.open]["type"] == "message":
            self.items[self.open]["status"] = "incomplete"  # cut at max_output_tokens, as the response is
        events += self._done()
        done["output"] = self.items
        last = "response.incomplete" if done["status"] == "incomplete" else "response.completed"
        return [*events, self._event(last, response=done, credits=result.credits_summary())]

    def error(self, message: str, code: str | None) -> Event:
        """A fault after the start: OpenAI's `error` event."""
        return self._event("error", code=code, message=message, param=None)
