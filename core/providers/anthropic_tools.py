"""Tool calling in Anthropic's shapes, from and to OpenAI's (core/providers/tools.py): the tools offered
(`input_schema` for `parameters`), `tool_choice` (`auto`, `any` for required, `tool` with its name, `none`;
`disable_parallel_tool_use` for `parallel_tool_calls: false`), an assistant's calls as `tool_use` blocks, their
results as `tool_result` blocks of a user turn, and the answer's `tool_use` blocks back as OpenAI's `tool_calls`; a
user's image parts as `image` blocks (core/providers/images.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import InvalidInputError
from core.providers.images import anthropic_image
from core.providers.types import GenerationRequest, content_text


def anthropic_tools(request: GenerationRequest) -> dict[str, Any]:
    """The body's `tools` and `tool_choice` for the request (nothing when it offers none)."""
    if not request.tools:
        return {}
    tools = []
    for tool in request.tools:
        fn = tool["function"]
        entry: dict[str, Any] = {
            "name": fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            entry["description"] = fn["description"]
        tools.append(entry)
    out: dict[str, Any] = {"tools": tools}
    choice = request.tool_choice
    if isinstance(choice, Mapping):
        out["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    elif choice in ("auto", "required", "none"):
        out["tool_choice"] = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    if request.parallel_tool_calls is False and out.get("tool_choice", {}).get("type") != "none":
        out.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
    return out


def check_claude_request(request: GenerationRequest) -> None:
    """What Claude's API refuses that other chat APIs take, refused before the hold (so what works on the sandbox's
    Claude works on Claude): a temperature above 1, and a call whose arguments are not a JSON object."""
    if request.temperature is not None and request.temperature > 1:
        raise InvalidInputError(
            f"Claude models take a temperature from 0 to 1; this call asked for {request.temperature:g}.",
            param="temperature",
        )
    if request.messages and any(m.get("tool_calls") for m in request.messages):
        anthropic_messages([m for m in request.messages if m.get("role") != "system"])


def anthropic_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shaped turns (no system) as Anthropic's: an assistant's `tool_calls` as `tool_use` blocks after its
    text, and each run of `tool` messages as one user turn of `tool_result` blocks."""
    out: list[dict[str, Any]] = []
    for m in messages:
        last = out[-1] if out else None
        after_results = last is not None and last["role"] == "user" and _all_results(last["content"])
        if m.get("role") == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": m.get("tool_call_id"),
                "content": content_text(m.get("content")),
            }
            if m.get("is_error"):  # Anthropic's own flag, kept when the call came through /v1/messages
                result["is_error"] = True
            if last is not None and after_results:
                last["content"].append(result)
            else:
                out.append({"role": "user", "content": [result]})
        elif m.get("role") == "user" and last is not None and after_results:
            given = m.get("content")  # the text sent with the results: the same user turn, after them
            last["content"] += (
                _blocks(given) if isinstance(given, list) else [{"type": "text", "text": content_text(given)}]
            )
        elif m.get("role") == "user" and isinstance(m.get("content"), list):
            out.append({**m, "content": _blocks(m["content"])})
        elif m.get("role") == "assistant" and m.get("tool_calls"):
            text = content_text(m.get("content"))
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            blocks += [_tool_use(call) for call in m["tool_calls"]]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append(dict(m))
    return out


def _blocks(parts: list[Any]) -> list[Any]:
    """A user message's content parts as Anthropic's blocks: image parts as `image` blocks, the others as they are."""
    return [anthropic_image(p) if isinstance(p, Mapping) and p.get("type") == "image_url" else p for p in parts]


def _all_results(content: Any) -> bool:
    """A user turn made of tool results (and the text sent after them)."""
    return isinstance(content, list) and bool(content) and content[0].get("type") == "tool_result"


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    arguments = fn.get("arguments") or "{}"
    try:
        given = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        given = None
    if not isinstance(given, dict):
        raise InvalidInputError(
            f"The arguments of tool call {call.get('id')!r} are not a JSON object; Anthropic's models take a call's "
            "arguments as one. Send them as the model gave them.",
            param="messages",
        )
    return {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": given}


def tool_calls_from(content: Sequence[Any]) -> tuple[dict[str, Any], ...] | None:
    """An answer's `tool_use` blocks as OpenAI's `tool_calls` (None when it calls nothing)."""
    calls = tuple(
        {
            "id": str(b.get("id") or ""),
            "type": "function",
            "function": {"name": str(b.get("name") or ""), "arguments": json.dumps(b.get("input") or {})},
        }
        for b in content
        if isinstance(b, Mapping) and b.get("type") == "tool_use"
    )
    return calls or None
