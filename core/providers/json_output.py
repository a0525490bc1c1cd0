"""JSON output for chat (OpenAI's `response_format`): a JSON object (`json_object`) or an answer that follows a JSON
schema (`json_schema`). Checked once here for every door (the gateway, the engine); passed as is to the upstreams
that take it (the OpenAI-compatible ones: OpenAI, Together AI, Hugging Face's router and endpoints); refused before
any credit is held for the others (Anthropic's models). The sandbox answers JSON too (`example_of`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.errors import InvalidInputError

KINDS = ("json_object", "json_schema")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_DEPTH = 32


def checked_response_format(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`value` as the engine keeps it: None for plain text (left out, or `{"type": "text"}`), else a JSON output
    request in OpenAI's shape. Raises InvalidInputError naming what is wrong."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError('`response_format` must be an object such as {"type": "json_object"}.')
    kind = value.get("type", "text")
    if kind == "text":
        return None
    if kind not in KINDS:
        raise InvalidInputError(
            f"`response_format` type {kind!r} is not supported by this gateway; use 'text', 'json_object' or "
            "'json_schema'."
        )
    if kind == "json_object":
        return {"type": "json_object"}
    spec = value.get("json_schema")
    if not isinstance(spec, Mapping):
        raise InvalidInputError(
            '`response_format` json_schema needs a `json_schema` object: {"name": ..., "schema": {...}}.'
        )
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            "`response_format.json_schema.name` must be 1 to 64 letters, digits, underscores or dashes."
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise InvalidInputError("`response_format.json_schema.schema` must be a JSON Schema object.")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidInputError("`response_format.json_schema.strict` must be true or false.")
    out: dict[str, Any] = {"name": name}
    for key in ("description", "schema", "strict"):
        if spec.get(key) is not None:
            out[key] = spec[key]
    return {"type": "json_schema", "json_schema": out}


def kind_of(response_format: Mapping[str, Any] | None) -> str:
    return "text" if response_format is None else str(response_format["type"])


def example_of(schema: Any, text: str, depth: int = 0, root: Any = None) -> Any:
    """A small value that follows `schema` (the sandbox's answer to a json_schema request): its listed properties
    filled by type, the first of an enum, `text` for strings; local references (`#/$defs/...`) followed."""
    root = schema if root is None else root
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return text
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        return example_of(target, text, depth + 1, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_of(options[0], text, depth + 1, root)
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: the first that is not null
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), Mapping)):
        props = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        return {name: example_of(sub, text, depth + 1, root) for name, sub in props.items()}
    if kind == "array":
        least = schema.get("minItems") if isinstance(schema.get("minItems"), int) else 1
        return [example_of(schema.get("items"), text, depth + 1, root) for _ in range(max(least, 1))]
    if kind == "integer":
        return int(schema.get("minimum", 0)) if isinstance(schema.get("minimum"), int | float) else 0
    if kind == "number":
        return schema.get("minimum", 0) if isinstance(schema.get("minimum"), int | float) else 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text
