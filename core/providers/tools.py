"""Tool calling for chat, in OpenAI's shapes: the tools a request offers (`tools`), whether and which one the model
must call (`tool_choice`), the calls an answer makes (`tool_calls` on the assistant's message) and their results sent
back (`tool` messages). Checked once here for every door; passed as is to the OpenAI-compatible upstreams, translated
for Anthropic's (anthropic_tools.py), refused before any credit is held where a model takes text only (a raw endpoint
task). A streamed answer's calls are handed on piece by piece (`ToolCallDelta`, from `StreamedCalls`) and come whole
in its result. The engine runs no tool: the caller does, and sends the result in its next request, billed as any call.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInputError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 128
CHOICES = ("none", "auto", "required")


def checked_tools(tools: Sequence[Mapping[str, Any]] | None) -> tuple[dict[str, Any], ...] | None:
    """The tools as the engine keeps them (None: no tools), each {"type": "function", "function": {...}}."""
    if tools is None:
        return None
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
        raise InvalidInputError('`tools` must be a list of {"type": "function", "function": {...}} objects.')
    if not tools:
        return None
    if len(tools) > MAX_TOOLS:
        raise InvalidInputError(f"`tools` holds {len(tools)} tools; at most {MAX_TOOLS} are allowed.")
    out, names = [], set()
    for i, tool in enumerate(tools):
        spec = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function" or not isinstance(spec, Mapping):
            raise InvalidInputError(
                f'`tools[{i}]` must be {{"type": "function", "function": {{"name": ..., "parameters": {{...}}}}}} '
                "(function tools only)."
            )
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInputError(
                f"`tools[{i}].function.name` must be 1 to 64 letters, digits, underscores or dashes."
            )
        if name in names:
            raise InvalidInputError(f"`tools` names the function {name!r} twice; give each tool its own name.")
        names.add(name)
        if spec.get("parameters") is not None and not isinstance(spec["parameters"], Mapping):
            raise InvalidInputError(f"`tools[{i}].function.parameters` must be a JSON Schema object.")
        if spec.get("description") is not None and not isinstance(spec["description"], str):
            raise InvalidInputError(f"`tools[{i}].function.description` must be text.")
        if spec.get("strict") is not None and not isinstance(spec["strict"], bool):
            raise InvalidInputError(f"`tools[{i}].function.strict` must be true or false.")
        out.append({"type": "function", "function": dict(spec)})
    return tuple(out)


def checked_tool_choice(choice: Any, tools: Sequence[Mapping[str, Any]] | None) -> Any:
    """`tool_choice`: none, auto, required, or {"type": "function", "function": {"name": one of the tools}}."""
    if choice is None:
        return None
    if choice in CHOICES:
        if choice != "none" and not tools:
            raise InvalidInputError(f"`tool_choice` {choice!r} needs `tools` to choose from.")
        return choice
    name = choice.get("function", {}).get("name") if isinstance(choice, Mapping) else None
    if not isinstance(name, str) or (isinstance(choice, Mapping) and choice.get("type", "function") != "function"):
        raise InvalidInputError(
            '`tool_choice` must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}.'
        )
    if name not in tool_names(tools):
        raise InvalidInputError(f"`tool_choice` names the function {name!r}, which is not among `tools`.")
    return {"type": "function", "function": {"name": name}}


def tool_names(tools: Sequence[Mapping[str, Any]] | None) -> list[str]:
    return [t["function"]["name"] for t in tools or ()]


def uses_tools(messages: Sequence[Mapping[str, Any]] | None) -> bool:
    """The conversation holds tool calls or their results."""
    return any(m.get("role") == "tool" or m.get("tool_calls") for m in messages or ())


def tool_calls_of(message: Mapping[str, Any]) -> tuple[dict[str, Any], ...] | None:
    """The function calls of an assistant message in OpenAI's shape (None when it makes none)."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list) or not calls:
        return None
    out = []
    for call in calls:
        fn = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            continue
        arguments = fn.get("arguments")
        out.append(
            {
                "id": str(call.get("id") or ""),
                "type": "function",
                "function": {
                    "name": fn["name"],
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
                },
            }
        )
    return tuple(out) or None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a function call a streamed answer makes, handed on as it arrives: the first piece of a call names it
    (`id`, `name`), each adds to its arguments. `index`: the call's place among the answer's calls (0, 1, ...)."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


class StreamedCalls:
    """The function calls of a streamed answer, put together as their pieces arrive: OpenAI's `delta.tool_calls`
    fragments (the first of a call names its id and function, each adds to its arguments), or Anthropic's `tool_use`
    blocks and their `input_json_delta` pieces. Each method returns the `ToolCallDelta`s to hand on (a call's pieces
    wait until its name is known); `calls()` gives the calls whole in OpenAI's shape, in the order they started."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}  # by the upstream's index
        self._order: list[int] = []  # upstream indexes of the calls whose name came, in that order

    def openai_delta(self, fragments: Any) -> list[ToolCallDelta]:
        """A chunk's `delta.tool_calls`: each fragment names its call's `index`."""
        out: list[ToolCallDelta] = []
        for position, fragment in enumerate(fragments if isinstance(fragments, list) else ()):
            if not isinstance(fragment, Mapping):
                continue
            index = fragment.get("index")
            index = index if isinstance(index, int) and not isinstance(index, bool) else position
            fn = fragment.get("function") if isinstance(fragment.get("function"), Mapping) else {}
            # the arguments first: a fragment that starts its call hands both on in one delta
            out += self.add_arguments(index, fn.get("arguments"))
            out += self.start(index, fragment.get("id"), fn.get("name"))
        return out

    def start(self, index: int, call_id: Any = None, name: Any = None) -> list[ToolCallDelta]:
        """A call begins (or a later fragment repeats its id or name): its first delta once its name is known, with
        the arguments that came before."""
        call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": []})
        if isinstance(call_id, str) and call_id and not call["id"]:
            call["id"] = call_id
        if not isinstance(name, str) or not name or call["name"]:
            return []
        call["name"] = name
        self._order.append(index)
        ordinal = len(self._order) - 1
        return [ToolCallDelta(ordinal, "".join(call["arguments"]), id=call["id"], name=name)]

    def add_arguments(self, index: int, piece: Any) -> list[ToolCallDelta]:
        if not isinstance(piece, str) or not piece:
            return []
        call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": []})
        call["arguments"].append(piece)
        return [ToolCallDelta(self._order.index(index), piece)] if call["name"] else []

    def calls(self, *, as_json_dumps: bool = False) -> tuple[dict[str, Any], ...] | None:
        """The calls whose name came (None: none), each with its arguments as received (`{}` for none).
        `as_json_dumps`: arguments that parse are given as `json.dumps` writes them, as a whole answer built from
        parsed input is (Anthropic's `tool_use.input`)."""
        out = []
        for index in self._order:
            call = self._calls[index]
            raw = "".join(call["arguments"])
            arguments = raw if raw.strip() else "{}"
            if as_json_dumps and raw.strip():
                # arguments cut short (a broken stream, the token limit) are passed on as the upstream sent them
                with contextlib.suppress(json.JSONDecodeError):
                    arguments = json.dumps(json.loads(raw))
            out.append(
                {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": arguments}}
            )
        return tuple(out) or None


def whole_call_deltas(calls: Sequence[Mapping[str, Any]] | None) -> list[ToolCallDelta]:
    """Calls already whole (a replay, the sandbox) as the deltas a stream hands on: one each."""
    return [
        ToolCallDelta(i, c["function"]["arguments"], id=c["id"], name=c["function"]["name"])
        for i, c in enumerate(calls or ())
    ]


def delivered_calls(deltas: Sequence[ToolCallDelta]) -> str:
    """What the deltas handed on so far hold (names and arguments), for an estimate of the output tokens delivered."""
    return "".join((d.name or "") + d.arguments for d in deltas)


def answered_text(text: str, calls: Sequence[Mapping[str, Any]] | None) -> str:
    """What an answer produced, for an estimate of its output tokens: its text and its calls (names, arguments)."""
    return text + "".join(json.dumps(c["function"]) for c in calls or ())


def call_id(*parts: object) -> str:
    """A deterministic call id (the sandbox's), in OpenAI's `call_...` form."""
    return "call_" + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]
