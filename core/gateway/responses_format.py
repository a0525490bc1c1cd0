"""OpenAI's Responses API shapes (`POST /v1/responses`, text or JSON out): the request as the engine's chat request, the
`response` object, and the events of a streamed response in the order the `openai` SDK's stream helper accumulates
them (created, in_progress, output item and content part added, one text delta per piece, then the done events and
`response.completed`, or `response.incomplete` when the answer stopped at `max_output_tokens`)."""

from __future__ import annotations

import time
from typing import Any

from core.gateway.openai_format import finish_reason
from core.gateway.schemas import InputMessage, ResponsesRequest, text_of
from core.services.generation import GenerationRequest, GenerationResult

Event = tuple[str, dict[str, Any]]


def generation_request(body: ResponsesRequest) -> GenerationRequest:
    """The chat request the engine runs: `instructions` as a system message ahead of the input (as a chat
    completion's system message is), a string input as one user message, `developer` as `system`."""
    given = [InputMessage(role="user", content=body.input)] if isinstance(body.input, str) else body.input
    messages = tuple(
        {"role": "system" if m.role == "developer" else m.role, "content": text_of(m.content)} for m in given
    )
    system = ({"role": "system", "content": body.instructions},) if body.instructions else ()
    return GenerationRequest(
        category="chat",
        messages=(*system, *messages),
        max_tokens=body.max_output_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        response_format=body.response_format(),
        stream=bool(body.stream),
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
    output = [] if result is None else [message(rid, (result.text or "") if text is None else text, status)]
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
        "output": output,
        "parallel_tool_calls": False,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": body.temperature,
        "text": {"format": (body.text or {}).get("format") or {"type": "text"}},
        "tool_choice": "none",
        "tools": [],
        "top_p": body.top_p,
        "truncation": "disabled",
        "usage": None if result is None else usage(result),
        "user": body.user,
        "metadata": body.metadata or {},
    }


class EventWriter:
    """The events of one streamed response, numbered in order (`sequence_number`), with the text sent so far."""

    def __init__(self, rid: str, body: ResponsesRequest) -> None:
        self.rid, self.body, self.created_at = rid, body, int(time.time())
        self.sequence = 0
        self.text = ""

    def _event(self, kind: str, **data: Any) -> Event:
        event = (kind, {"type": kind, "sequence_number": self.sequence, **data})
        self.sequence += 1
        return event

    def _where(self) -> dict[str, Any]:
        return {"item_id": item_id(self.rid), "output_index": 0, "content_index": 0}

    def start(self) -> list[Event]:
        begun = response(self.rid, self.body, self.body.model, created_at=self.created_at)
        return [
            self._event("response.created", response=begun),
            self._event("response.in_progress", response=begun),
            self._event("response.output_item.added", output_index=0, item=message(self.rid, "", "in_progress")),
            self._event("response.content_part.added", **self._where(), part=output_text("")),
        ]

    def delta(self, text: str) -> Event:
        self.text += text
        return self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[])

    def finish(self, result: GenerationResult) -> list[Event]:
        """The done events and the last one (completed, or incomplete), which carries the usage and what the call was
        charged (the headers left before the charge was known)."""
        done = response(self.rid, self.body, self.body.model, result, text=self.text, created_at=self.created_at)
        item = done["output"][0]
        last = "response.incomplete" if done["status"] == "incomplete" else "response.completed"
        credits = result.credits_summary()
        return [
            self._event("response.output_text.done", **self._where(), text=self.text, logprobs=[]),
            self._event("response.content_part.done", **self._where(), part=output_text(self.text)),
            self._event("response.output_item.done", output_index=0, item=item),
            self._event(last, response=done, credits=credits),
        ]

    def error(self, message: str, code: str | None) -> Event:
        """A fault after the start: OpenAI's `error` event."""
        return self._event("error", code=code, message=message, param=None)
