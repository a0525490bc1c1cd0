"""OpenAI's Responses API shapes (`POST /v1/responses`, text or JSON out): the request as the engine's chat request, the
`response` object, and the events of a streamed response in the order the `openai` SDK's stream helper accumulates
them (created, in_progress; at the first text the message item and its content part added, one text delta per piece;
then the done events, each function call's item, and `response.completed`, or `response.incomplete` when the answer
stopped at `max_output_tokens`)."""

from __future__ import annotations

import time
from typing import Any

from core.gateway.openai_format import finish_reason
from core.gateway.schemas import FunctionCallItem, FunctionCallOutputItem, InputMessage, ResponsesRequest, text_of
from core.services.generation import GenerationRequest, GenerationResult

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
                {"role": "system" if item.role == "developer" else item.role, "content": text_of(item.content)}
            )
    return turns


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


def message(rid: str, text: str, status: str) -> dict[str, Any]:
    content = [output_text(text)] if status != "in_progress" else []
    return {"id": item_id(rid), "type": "message", "role": "assistant", "status": status, "content": content}


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


def output(rid: str, result: GenerationResult, status: str, text: str | None = None) -> list[dict[str, Any]]:
    """The response's output items: its message (unless it only calls functions), then a `function_call` per call."""
    said = (result.text or "") if text is None else text
    items = [message(rid, said, status)] if said or not result.tool_calls else []
    return items + [function_call(rid, i, c) for i, c in enumerate(result.tool_calls or ())]


def response(
    rid: str,
    body: ResponsesRequest,
    model: str,
    result: GenerationResult | None = None,
    *,
    text: str | None = None,
    created_at: int | None = None,
) -> dict[str, Any]:
    """The `response` object: in progress (no output yet) until there is a `result`, then completed, or incomplete
    when the answer stopped at `max_output_tokens`. Nothing is stored (`store: false`)."""
    status = "in_progress"
    if result is not None:
        status = "incomplete" if stopped_at_limit(result) else "completed"
    items = [] if result is None else output(rid, result, status, text)
    return {
        "id": response_id(rid),
        "object": "response",
        "created_at": int(time.time()) if created_at is None else created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,  # as OpenAI: only when completed
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "model": model,
        "output": items,
        "parallel_tool_calls": bool(body.tools) and body.parallel_tool_calls is not False,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": body.temperature,
        "text": {"format": (body.text or {}).get("format") or {"type": "text"}},
        "tool_choice": body.tool_choice if body.tool_choice is not None else ("auto" if body.tools else "none"),
        "tools": [{"strict": None, "description": None, **t} for t in body.tools or ()],
        "top_p": body.top_p,
        "truncation": "disabled",
        "usage": None if result is None else usage(result),
        "user": body.user,
        "metadata": body.metadata or {},
    }


class EventWriter:
    """The events of one streamed response, numbered in order (`sequence_number`), with the text sent so far. The
    message item is opened by the answer's first text (an answer that only calls functions has none), and the
    function calls the answer made follow it, each whole (they are put together as the upstream streams them)."""

    def __init__(self, rid: str, body: ResponsesRequest) -> None:
        self.rid, self.body, self.created_at = rid, body, int(time.time())
        self.sequence = 0
        self.text = ""
        self.opened = False  # the message item was added

    def _event(self, kind: str, **data: Any) -> Event:
        event = (kind, {"type": kind, "sequence_number": self.sequence, **data})
        self.sequence += 1
        return event

    def _where(self) -> dict[str, Any]:
        return {"item_id": item_id(self.rid), "output_index": 0, "content_index": 0}

    def start(self) -> list[Event]:
        begun = response(self.rid, self.body, self.body.model, created_at=self.created_at)
        return [self._event("response.created", response=begun), self._event("response.in_progress", response=begun)]

    def _open(self) -> list[Event]:
        self.opened = True
        return [
            self._event("response.output_item.added", output_index=0, item=message(self.rid, "", "in_progress")),
            self._event("response.content_part.added", **self._where(), part=output_text("")),
        ]

    def delta(self, text: str) -> list[Event]:
        """A piece of the text (the message item opened before the first)."""
        opening = [] if self.opened else self._open()
        self.text += text
        return [*opening, self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[])]

    def finish(self, result: GenerationResult) -> list[Event]:
        """The message's done events, each function call's events, and the last one (completed, or incomplete),
        which carries the usage and what the call was charged (the headers left before the charge was known)."""
        done = response(self.rid, self.body, self.body.model, result, text=self.text, created_at=self.created_at)
        events: list[Event] = []
        if done["output"] and done["output"][0]["type"] == "message":  # text came, or the answer is empty
            events += [] if self.opened else self._open()
            events += [
                self._event("response.output_text.done", **self._where(), text=self.text, logprobs=[]),
                self._event("response.content_part.done", **self._where(), part=output_text(self.text)),
                self._event("response.output_item.done", output_index=0, item=done["output"][0]),
            ]
        for i, item in enumerate(done["output"]):
            if item["type"] != "function_call":
                continue
            where = {"item_id": item["id"], "output_index": i}
            events += [
                self._event(
                    "response.output_item.added",
                    output_index=i,
                    item={**item, "status": "in_progress", "arguments": ""},
                ),
                self._event("response.function_call_arguments.delta", **where, delta=item["arguments"]),
                self._event(
                    "response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]
                ),
                self._event("response.output_item.done", output_index=i, item=item),
            ]
        last = "response.incomplete" if done["status"] == "incomplete" else "response.completed"
        return [*events, self._event(last, response=done, credits=result.credits_summary())]

    def error(self, message: str, code: str | None) -> Event:
        """A fault after the start: OpenAI's `error` event."""
        return self._event("error", code=code, message=message, param=None)
