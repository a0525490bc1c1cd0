"""`python -m core generate`: one billed call of a catalog model, printing its output and what it cost."""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from core.cli import Context
from core.cli.args import positive_int
from core.cli.output import print_json
from core.cli.output_file import check_writable, deliver
from core.errors import InvalidInputError
from core.services import credits_text
from core.services.generation import GenerationRequest, GenerationResult
from core.services.playground import IMAGE_FILE_TYPES, file_part

EXTENSIONS = {
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/flac": ".flac",
    "audio/ogg": ".ogg",
    "audio/aac": ".aac",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
}
BINARY_INPUT = ("speech_to_text", "voice_clone")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="make one billed call of a model (chat, speech, transcription, image...)")
    p.add_argument("--user", required=True, help="email or id of the user who pays")
    p.add_argument("--model", required=True, help="catalog model id (`python -m core models list`)")
    p.add_argument("--provider", help="the provider, when the same model id is served by several")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="the prompt, or the text to speak")
    src.add_argument("--file", type=Path, help="audio to transcribe or clone; for other models a text file")
    p.add_argument("--voice", help="voice id (text-to-speech), or the id of the voice to create (voice clone)")
    p.add_argument("--max-tokens", type=positive_int, help="most output tokens (chat; default 1024)")
    p.add_argument("--size", help="image size, e.g. 1024x1024")
    p.add_argument("--quality", help="image quality, e.g. standard or hd")
    p.add_argument("--lyrics", help="lyrics (music)")
    p.add_argument("--system", help="system prompt (chat)")
    p.add_argument("--endpoint-url", help="dedicated endpoint URL (huggingface_endpoint models)")
    p.add_argument("--stream", action="store_true", help="print chat text as it arrives")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json-object", action="store_true", help="ask the chat model for a JSON object (OpenAI-compatible models)"
    )
    fmt.add_argument(
        "--json-schema",
        type=Path,
        metavar="FILE",
        help="ask for an answer that follows this JSON Schema (a .json file)",
    )
    p.add_argument(
        "--image",
        action="append",
        metavar="FILE_OR_URL",
        help="show the chat model an image (a PNG, JPEG, GIF or WebP file, or an https URL); repeatable",
    )
    p.add_argument(
        "--tools",
        type=Path,
        metavar="FILE",
        help="offer the chat model these functions (a .json file: a list of OpenAI-style function tools); the answer's "
        "calls are printed, not run",
    )
    p.add_argument(
        "--tool-choice",
        metavar="CHOICE",
        help="with --tools: auto (default), none, required, or the name of the one function the model must call",
    )
    p.add_argument("--out", type=Path, help="where to write audio or image output (default generation-<id>.<ext>)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _read_input(args: argparse.Namespace, category: str) -> dict[str, object]:
    if args.text is not None:
        if category in BINARY_INPUT:
            raise InvalidInputError(f"A {category} model needs an audio file: pass --file PATH instead of --text.")
        if not args.text.strip():  # as the Playground's buttons: nothing to send is not a call (nor a charge)
            raise InvalidInputError("--text is empty: give the model something to answer, speak or draw.")
        return {"text": args.text}
    path: Path = args.file
    if not path.is_file():
        raise InvalidInputError(f"No file at {path}.")
    if category in BINARY_INPUT:
        return {"audio": path.read_bytes(), "audio_filename": path.name, "text": None}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not UTF-8 text; a {category} model takes text.") from None
    if not text.strip():
        raise InvalidInputError(f"{path} is empty: give the model something to answer, speak or draw.")
    return {"text": text}


def _response_format(args: argparse.Namespace) -> dict[str, Any] | None:
    """JSON output, as OpenAI's `response_format` (checked with the request: chat models only)."""
    if args.json_object:
        return {"type": "json_object"}
    path: Path | None = args.json_schema
    if path is None:
        return None
    schema = _json_file(path, "the JSON Schema")
    if not isinstance(schema, dict):
        raise InvalidInputError(f"{path} holds no JSON Schema object.")
    title = schema.get("title") if isinstance(schema.get("title"), str) else path.stem
    name = re.sub(r"[^A-Za-z0-9_-]", "_", title)[:64] or "answer"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def _json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {what} at {path} ({exc.strerror}).") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path} is not a JSON file ({exc}); give {what}.") from None


def _with_images(args: argparse.Namespace, fields: dict[str, object]) -> dict[str, object]:
    """With --image: the prompt and the images as one user message (OpenAI's content parts)."""
    if not args.image:
        return fields
    parts: list[dict[str, Any]] = [{"type": "text", "text": fields["text"]}]
    for given in args.image:
        if given.startswith("https://"):
            parts.append({"type": "image_url", "image_url": {"url": given}})
            continue
        path = Path(given)
        if "://" in given or path.suffix.lower().lstrip(".") not in IMAGE_FILE_TYPES:
            raise InvalidInputError(f"--image {given}: give a .png, .jpg, .gif or .webp file, or an https URL.")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"Cannot read the image at {path} ({exc.strerror}).") from None
        parts.append(file_part(path.name, data))
    return {"messages": [{"role": "user", "content": parts}]}


def _tools(args: argparse.Namespace) -> dict[str, Any]:
    """`tools` and `tool_choice` for the request (checked with it: chat models that take tools only)."""
    if args.tools is None:
        if args.tool_choice is not None:
            raise InvalidInputError("--tool-choice needs --tools: the functions to choose from.")
        return {}
    tools = _json_file(args.tools, "a list of function tools")
    if isinstance(tools, dict) and "type" in tools:  # one tool alone
        tools = [tools]
    choice: Any = args.tool_choice
    if choice is not None and choice not in ("auto", "none", "required"):
        choice = {"type": "function", "function": {"name": choice}}
    return {"tools": tools, "tool_choice": choice}


def _call_line(call: dict[str, Any]) -> str:
    fn = call["function"]
    return f"call {fn['name']}({fn['arguments']}) [id {call['id']}]"


def _print_stream(stream: Any) -> None:
    """Text as it arrives; each function call on a line of its own, its name, then its arguments as they arrive (as
    `_call_line` prints a whole one)."""
    open_call: str | None = None  # the id of the call being printed

    def close() -> str:
        return "" if open_call is None else f") [id {open_call}]"

    for chunk in stream:
        if isinstance(chunk, str):
            sys.stdout.write(close() + ("\n" if open_call is not None else "") + chunk)
            open_call = None
        else:
            if chunk.name is not None:
                sys.stdout.write(f"{close()}\ncall {chunk.name}(")
                open_call = chunk.id or ""
            sys.stdout.write(chunk.arguments)
        sys.stdout.flush()
    sys.stdout.write(close() + "\n")


def run(args: argparse.Namespace, ctx: Context) -> int:
    services, caller = ctx.services, ctx.caller
    services.init()
    model = services.models.get(caller, args.model, args.provider)
    fields = _read_input(args, model.category)
    if args.image and model.category != "chat":
        raise InvalidInputError(f"--image is for chat models; {model.model_id} is a {model.category} model.")
    fields = _with_images(args, fields)
    if model.category in ("tts", "music", "image"):
        check_writable(args.out)  # before the call: a bad path must not cost credits
    if model.category == "voice_clone" and not args.voice:
        raise InvalidInputError("Name the new voice with --voice (at least 8 letters and digits).")
    request = GenerationRequest(
        category=model.category,
        voice=args.voice,
        max_tokens=args.max_tokens,
        size=args.size,
        quality=args.quality,
        lyrics=args.lyrics,
        system=args.system,
        endpoint_url=args.endpoint_url,
        stream=args.stream,
        response_format=_response_format(args),
        **_tools(args),
        **fields,  # type: ignore[arg-type]
    )
    if args.stream and model.category == "chat" and not args.json:
        stream = services.generation.stream(
            caller, args.user, model.model_id, request, provider=model.provider, source="cli"
        )
        _print_stream(stream)
        result = stream.result
        output: object = None
    else:
        result = services.generation.generate(
            caller, args.user, model.model_id, request, provider=model.provider, source="cli"
        )
        output = None
        if result.data is not None:
            ext = EXTENSIONS.get(result.mime or "", ".bin")
            name = f"generation-{result.usage_id if result.usage_id is not None else 'pending-' + uuid.uuid4().hex[:8]}"
            out, problem = deliver(result.data, args.out or Path(f"{name}{ext}"), ext)
            output = str(out)
            if problem:
                billed = (
                    f"billed as transaction {result.transaction_id}"
                    if result.transaction_id is not None
                    else "not billed: a free call"  # the sandbox, or a call that cost 0 credits
                )
                print(f"warning: {problem} ({billed})", file=sys.stderr)
        elif result.voice_id is not None and result.text is None:
            output = result.voice_id
    if args.json:
        print_json(result.to_dict(output))
        return 0
    if not args.stream or model.category != "chat":
        said = output if output is not None else result.text
        if said or not result.tool_calls:
            print(said)
        for call in result.tool_calls or ():
            print(_call_line(call))
    print(_cost_line(result), file=sys.stderr)
    return 0


def _cost_line(r: GenerationResult) -> str:
    what = "simulated; not charged, would cost" if r.sandbox else "charged"
    credits = r.would_be_credits if r.sandbox else r.credits_charged
    # a cache hit: the provider was not called (provider cost 0); its credits are of the catalog cost, if charged
    cost = f"base ${r.base_cost_usd.normalize():f} = {credits_text(r.base_credits)}"
    if r.cache_hit:
        cost = f"catalog ${r.catalog_cost_usd.normalize():f}" + (
            f" = {credits_text(r.base_credits)}" if r.base_credits else ""
        )
    if r.charge_pending or r.balance_after is None:
        charge = ["charge pending: the database was unavailable; it is posted when the database is back"]
    else:
        charge = [f"{what} {credits_text(credits or 0)}", f"balance {r.balance_after:,}"]
    parts = [f"{r.provider}/{r.model_id}", cost, f"markup {r.markup_pct.normalize():f}%", *charge, f"{r.latency_ms} ms"]
    if r.cache_hit:
        parts.append("cache hit (provider not called)")
    if r.usage.estimated:
        parts.append("usage estimated")
    return " · ".join(parts)
