"""The request bodies the gateway accepts, as pydantic models: they validate every request before anything else runs
(a malformed request is answered 400 and writes nothing) and they are the OpenAPI schema at /docs.

The shapes are OpenAI's and Anthropic's own; fields the gateway passes on are declared, other fields of those APIs are
accepted and ignored (clients send many: user, seed, metadata, ...), and those that would change what a call
means or what it costs but cannot be honoured here (several choices, log probabilities, audio output, reasoning
effort, extended thinking, audio and file inputs, hosted and server tools, the deprecated function calling) are
declared too, so that they are refused with a sentence naming the field rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.services.errors import InvalidInputError
from core.services.generation import checked_response_format, checked_tool_choice, checked_tools

ModelId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
MAX_TOKENS = 1_000_000
MAX_TEXT = 1_000_000
JSON_BODY_BYTES = 16 * 1024 * 1024  # an image's URL (a base64 data URL) may be as long as the body (limits.py)


class _Open(BaseModel):
    """OpenAI and Anthropic clients send fields this gateway does not use: accept them, use only what is declared.
    A declared field of the wrong JSON type is refused, as OpenAI's and Anthropic's APIs refuse it (strict): a
    `max_tokens` of "10" or true, a `stream` of "yes" are not taken for 10, 1 and true."""

    model_config = ConfigDict(extra="allow", strict=True)


def _as_field(check: Callable[..., Any], *args: Any) -> Any:
    """An engine check run as a field's validator: its InvalidInputError is the field's error (a 400 naming it)."""
    try:
        return check(*args)
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None


def unsupported(what: str, instead: str) -> ValueError:
    """A field this gateway cannot honour: refused (400, naming the field) rather than silently ignored."""
    return ValueError(f"{what} is not supported by this gateway; {instead}.")


def refused(*fields: str, what: str, instead: str, even_empty: bool = False) -> Any:
    """A validator refusing each of `fields` when it is set (to anything but empty, or, `even_empty`, to anything at
    all: `web_search_options: {}` turns search on); `{field}` in `what` and `instead` names the field."""

    def check(cls: type, value: Any, info: ValidationInfo) -> Any:
        if value is not None if even_empty else value:
            name = info.field_name or ""
            raise unsupported(what.format(field=name), instead.format(field=name))
        return value

    return field_validator(*fields)(classmethod(check))  # type: ignore[arg-type]


def first_orphan(steps: Iterable[tuple[Iterable[str], Iterable[str]]]) -> tuple[int, str] | None:
    """The first result that answers a call no earlier step made, as (step index, call id); None when every result
    follows its call. Each step gives (the ids of the calls it makes, the ids of the calls it answers)."""
    called: set[str] = set()
    for i, (made, answered) in enumerate(steps):
        called.update(made)
        for call_id in answered:
            if call_id not in called:
                return i, call_id
    return None


def one_at_a_time(n: Any, what: str) -> Any:
    """`n` above 1 is refused (one answer is made and billed per request), before the schema's bound is checked."""
    if isinstance(n, int) and n > 1:
        raise unsupported(f"`n` > 1 (several {what})", "leave `n` out and send one request per answer you need")
    return n


def _text_only(content: Any, kind: str, also: tuple[str, ...] = ()) -> Any:
    """Content given as a list of parts/blocks may hold text only (and the kinds `also` names)."""
    if isinstance(content, list):
        for part in content:
            other = part.get("type") if isinstance(part, dict) else None
            if isinstance(other, str) and other != "text" and other not in also:
                allowed = " and ".join(("text", *also))
                raise unsupported(f"Content of type `{other}`", f"send {allowed} {kind} only")
    return content


class TextPart(_Open):
    type: Literal["text"]
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)]


ImageUrlText = Annotated[str, StringConstraints(min_length=1, max_length=JSON_BODY_BYTES)]


class ImageUrl(_Open):
    url: ImageUrlText
    detail: Literal["auto", "low", "high"] | None = None


class ImageUrlPart(_Open):
    """An image in a user message (vision): an https URL or a base64 data URL (core/providers/images.py)."""

    type: Literal["image_url"]
    image_url: ImageUrl

    def to_engine(self) -> dict[str, Any]:
        return {
            "type": "image_url",
            "image_url": self.image_url.model_dump(exclude_none=True, include={"url", "detail"}),
        }


ContentPart = Annotated[TextPart | ImageUrlPart, Field(discriminator="type")]


def engine_content(content: Any) -> Any:
    """A message's content as the engine takes it: its text, or its parts when it holds an image (text parts and
    image parts in OpenAI's shape)."""
    if isinstance(content, list) and any(isinstance(p, ImageUrlPart) for p in content):
        return [p.to_engine() if isinstance(p, ImageUrlPart) else {"type": "text", "text": p.text} for p in content]
    return text_of(content)


LEGACY_FUNCTIONS = "use `tools`, `tool_choice` and `tool` messages instead"
MAX_TOOL_CALLS = 128
TOOL_USE = "offer client tools (`tools` with name and input_schema) instead"


class FunctionCall(_Open):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    arguments: Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class ToolCall(_Open):
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[ContentPart] | None = None
    tool_calls: Annotated[list[ToolCall], Field(max_length=MAX_TOOL_CALLS)] | None = None  # an assistant's calls
    tool_call_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None  # a tool's result
    function_call: Any = None
    name: str | None = None

    _no_name = refused(
        "name",
        what="A message's `{field}` (a participant's name)",
        instead="say who speaks in the message's content",
    )

    @field_validator("role", mode="before")
    @classmethod
    def _no_function_results(cls, role: Any) -> Any:
        if role == "function":
            raise unsupported("A `function` message (the deprecated function calling)", LEGACY_FUNCTIONS)
        return role

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, content: Any) -> Any:
        return _text_only(content, "content parts", also=("image_url",))

    _no_function_call = refused(
        "function_call", what="An assistant message with `{field}` (deprecated)", instead=LEGACY_FUNCTIONS
    )

    @model_validator(mode="after")
    def _tool_roles(self) -> ChatMessage:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message may carry `tool_calls`")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a `tool` message needs the `tool_call_id` of the call it answers")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError("only a `tool` message carries a `tool_call_id`")
        if isinstance(self.content, list) and not self.content:
            raise ValueError("`content` must hold at least one part")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a `{self.role}` message needs its `content`")
        return self

    def to_engine(self) -> dict[str, Any]:
        """The message as the engine passes it on (OpenAI's shape; `developer` as `system`)."""
        out: dict[str, Any] = {"role": "system" if self.role == "developer" else self.role}
        out["content"] = None if self.content is None and self.tool_calls else engine_content(self.content)
        if self.tool_calls:
            out["tool_calls"] = [c.model_dump(include={"id", "type", "function"}) for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class StreamOptions(_Open):
    include_usage: bool | None = False


StopSequence = Annotated[str, StringConstraints(min_length=1, max_length=1_000)]


class ChatCompletionRequest(_Open):
    model: ModelId
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=10_000)]
    max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: StopSequence | Annotated[list[StopSequence], Field(max_length=4)] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = 1
    tools: list[Any] | None = None  # function tools (core/providers/tools.py)
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    # Accepted only where they do not change the answer (no log probabilities, text or JSON out):
    functions: list[Any] | None = None
    function_call: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: Any = None
    reasoning_effort: str | None = None
    logit_bias: dict[str, Any] | None = None
    prediction: Any = None
    web_search_options: Any = None
    verbosity: Any = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    user: Annotated[str, StringConstraints(max_length=512)] | None = None

    _one_choice = field_validator("n", mode="before")(classmethod(lambda cls, n: one_at_a_time(n, "choices")))

    _no_functions = refused(
        "functions", "function_call", what="`{field}` (the deprecated function calling)", instead=LEGACY_FUNCTIONS
    )
    _no_logprobs = refused(
        "logprobs", "top_logprobs", what="`{field}` (log probabilities)", instead="leave `{field}` out"
    )
    _no_other_output = refused(
        "audio", "reasoning_effort", "logit_bias", what="`{field}`", instead="send the request without `{field}`"
    )
    _not_passed_on = refused(
        "prediction", "verbosity", what="`{field}`", instead="send the request without `{field}`", even_empty=True
    )
    _no_hosted_search = refused(
        "web_search_options",
        what="`{field}` (web search)",
        instead="offer a function tool that searches, and run it yourself",
        even_empty=True,
    )
    # a penalty other than 0 changes the answer and is not passed on (0, the default, is accepted)
    _no_penalties = refused(
        "frequency_penalty", "presence_penalty", what="`{field}` other than 0", instead="leave `{field}` out"
    )

    # checked as the engine checks them (core/providers/tools.py, json_output.py); JSON output None for text
    _tools = field_validator("tools")(classmethod(lambda cls, tools: _as_field(checked_tools, tools)))
    _json_output = field_validator("response_format")(
        classmethod(lambda cls, fmt: _as_field(checked_response_format, fmt))
    )

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, choice: Any, info: ValidationInfo) -> Any:
        return _as_field(checked_tool_choice, choice, info.data.get("tools"))

    @field_validator("modalities")
    @classmethod
    def _text_modality(cls, modalities: Any) -> Any:
        if modalities and set(modalities) != {"text"}:
            raise unsupported("`modalities` other than text", "use /v1/audio/speech for audio, or leave it out")
        return modalities

    @field_validator("messages")
    @classmethod
    def _a_message_to_answer(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role in ("user", "assistant") for m in messages):
            raise ValueError("at least one user (or assistant) message is needed")
        orphan = first_orphan(
            ([c.id for c in m.tool_calls or ()], [m.tool_call_id] if m.role == "tool" and m.tool_call_id else [])
            for m in messages
        )
        if orphan is not None:
            raise ValueError(
                f"the `tool` message {orphan[0]} answers the call {orphan[1]!r}, which no earlier assistant message"
                " made: send the assistant message with its `tool_calls` before the results"
            )
        return messages

    @field_validator("stream_options")
    @classmethod
    def _stream_options_with_a_stream(cls, options: Any, info: ValidationInfo) -> Any:
        if options is not None and not info.data.get("stream"):
            raise ValueError("only allowed with `stream: true`")
        return options

    def stop_sequences(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())


class SpeechRequest(_Open):
    model: ModelId
    input: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    voice: Annotated[str, StringConstraints(max_length=200)] | None = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Annotated[float, Field(ge=0.25, le=4.0)] | None = None
    instructions: Annotated[str, StringConstraints(max_length=4_096)] | None = None
    stream_format: Literal["audio", "sse"] | None = None

    @field_validator("stream_format")
    @classmethod
    def _audio_bytes(cls, fmt: Any) -> Any:
        if fmt == "sse":
            raise unsupported("`stream_format` 'sse' (audio as server-sent events)", "leave it out to get the audio")
        return fmt


class ImageRequest(_Open):
    model: ModelId
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=32_000)]
    n: Annotated[int, Field(ge=1, le=1)] | None = 1
    size: Annotated[str, StringConstraints(pattern=r"^\d{2,5}x\d{2,5}$")] | None = None
    quality: Literal["standard", "hd", "low", "medium", "high", "auto"] | None = None
    response_format: Literal["b64_json", "url"] = "b64_json"
    style: Any = None

    _no_style = refused("style", what="`{field}`", instead="describe the style in the prompt", even_empty=True)
    _one_image = field_validator("n", mode="before")(classmethod(lambda cls, n: one_at_a_time(n, "images")))


class MusicRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: ModelId
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=2_000)]
    lyrics: Annotated[str, StringConstraints(max_length=3_500)] | None = None


class AnthropicTextBlock(_Open):
    type: Literal["text"]
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class ToolUseBlock(_Open):
    """An assistant's call of a tool (Anthropic's `tool_use` block)."""

    type: Literal["tool_use"]
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    input: dict[str, Any]


class ToolResultBlock(_Open):
    """A tool's result sent back (Anthropic's `tool_result` block), text only."""

    type: Literal["tool_result"]
    tool_use_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    content: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[AnthropicTextBlock] | None = None
    is_error: bool | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_blocks(cls, content: Any) -> Any:
        return _text_only(content, "tool_result content blocks")


class Base64ImageSource(_Open):
    type: Literal["base64"]
    media_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    data: ImageUrlText


class UrlImageSource(_Open):
    type: Literal["url"]
    url: ImageUrlText


class AnthropicImageBlock(_Open):
    """An image in a user message (Anthropic's `image` block: base64 data or a URL)."""

    type: Literal["image"]
    source: Annotated[Base64ImageSource | UrlImageSource, Field(discriminator="type")]

    def to_engine(self) -> dict[str, Any]:
        """As the engine's (OpenAI's) image part: the data as a data URL, or the URL."""
        src = self.source
        url = f"data:{src.media_type};base64,{src.data}" if isinstance(src, Base64ImageSource) else src.url
        return {"type": "image_url", "image_url": {"url": url}}


AnthropicBlock = Annotated[
    AnthropicTextBlock | AnthropicImageBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")
]
ANTHROPIC_BLOCKS = ("text", "image", "tool_use", "tool_result")


class AnthropicMessage(_Open):
    role: Literal["user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[AnthropicBlock]

    @field_validator("content", mode="before")
    @classmethod
    def _known_blocks(cls, content: Any) -> Any:
        for block in content if isinstance(content, list) else ():
            kind = block.get("type") if isinstance(block, dict) else None
            if isinstance(kind, str) and kind not in ANTHROPIC_BLOCKS:
                raise unsupported(f"Content of type `{kind}`", "send text, image, tool_use and tool_result blocks only")
            if isinstance(block, dict) and kind != "text" and block.get("cache_control"):
                raise unsupported(f"`cache_control` on a {kind} block", "put the breakpoint on a text block")
        return content

    @model_validator(mode="after")
    def _blocks_of_their_role(self) -> AnthropicMessage:
        if isinstance(self.content, list) and not self.content:
            raise ValueError("`content` must hold at least one block")
        kinds = {b.type for b in self.content} if isinstance(self.content, list) else set()
        if "tool_use" in kinds and self.role != "assistant":
            raise ValueError("only an assistant message may hold `tool_use` blocks")
        if "tool_result" in kinds and self.role != "user":
            raise ValueError("only a user message may hold `tool_result` blocks")
        if "image" in kinds and self.role != "user":
            raise ValueError("only a user message may hold `image` blocks")
        return self


class AnthropicTool(_Open):
    """A client tool (Anthropic's `tools` entry): its name, description and `input_schema`."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    description: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _client_tools_only(cls, tool: Any) -> Any:
        if isinstance(tool, dict):
            kind = tool.get("type")
            if kind not in (None, "custom"):
                raise unsupported(f"The server tool `{kind}`", "offer client tools (name, input_schema) only")
            if tool.get("cache_control"):
                raise unsupported("`cache_control` on a tool", "put the breakpoint on a text block")
        return tool


class MessagesPrompt(_Open):
    """What Anthropic's messages and token counts share: the model and the prompt (text, client tools and their
    tool_use / tool_result blocks)."""

    model: ModelId
    messages: Annotated[list[AnthropicMessage], Field(min_length=1, max_length=10_000)]
    system: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[AnthropicTextBlock] | None = None
    tools: Annotated[list[AnthropicTool], Field(max_length=MAX_TOOL_CALLS)] | None = None
    tool_choice: dict[str, Any] | None = None
    # Accepted only where they do not change the answer (no server tools, no extended thinking):
    thinking: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None
    mcp_servers: list[Any] | None = None
    container: Any = None

    @field_validator("system", mode="before")
    @classmethod
    def _text_system(cls, system: Any) -> Any:
        return _text_only(system, "system blocks")

    @field_validator("messages")
    @classmethod
    def _results_of_calls_made(cls, messages: list[AnthropicMessage]) -> list[AnthropicMessage]:
        """As Anthropic's API: no message but the final assistant one may be empty, and a `tool_result` answers a
        `tool_use` an earlier assistant message made."""
        for i, m in enumerate(messages):
            if m.content == "" and not (i == len(messages) - 1 and m.role == "assistant"):
                raise ValueError(f"message {i} is empty: only the final assistant message may be")
        blocks = [m.content if isinstance(m.content, list) else [] for m in messages]
        orphan = first_orphan(
            (
                [b.id for b in bs if isinstance(b, ToolUseBlock)],
                [b.tool_use_id for b in bs if isinstance(b, ToolResultBlock)],
            )
            for bs in blocks
        )
        if orphan is not None:
            raise ValueError(
                f"message {orphan[0]} holds a `tool_result` for {orphan[1]!r}, which no earlier assistant"
                " message's `tool_use` made"
            )
        return messages

    _no_server_tools = refused("mcp_servers", "container", what="`{field}` (server tools)", instead=TOOL_USE)

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, choice: Any) -> Any:
        if choice is not None and choice.get("type") not in ("auto", "any", "tool", "none"):
            raise ValueError('`tool_choice` type must be "auto", "any", "tool" or "none"')
        if choice is not None and choice.get("type") == "tool" and not isinstance(choice.get("name"), str):
            raise ValueError('`tool_choice` {"type": "tool"} needs the `name` of one of the `tools`')
        return choice

    def engine_tools(self) -> dict[str, Any]:
        """`tools` and `tool_choice` as the engine takes them (OpenAI's shapes; the provider translates them back)."""
        if not self.tools:
            return {}
        tools = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "parameters": t.input_schema,
                    **({"description": t.description} if t.description else {}),
                },
            }
            for t in self.tools
        ]
        out: dict[str, Any] = {"tools": tools}
        choice = self.tool_choice or {}
        kind = choice.get("type")
        if kind is not None:
            named = {"type": "function", "function": {"name": choice.get("name")}}
            out["tool_choice"] = named if kind == "tool" else {"auto": "auto", "any": "required", "none": "none"}[kind]
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
        return out

    @model_validator(mode="after")
    def _tools_as_the_engine_checks_them(self) -> MessagesPrompt:
        given = self.engine_tools()
        _as_field(checked_tools, given.get("tools"))  # a name twice, ...
        _as_field(checked_tool_choice, given.get("tool_choice"), given.get("tools"))  # a name among none of them
        return self

    @field_validator("thinking")
    @classmethod
    def _no_thinking(cls, thinking: Any) -> Any:
        if thinking and thinking.get("type") != "disabled":
            raise unsupported("`thinking` (extended thinking)", "send the request without it")
        return thinking

    @field_validator("output_config")
    @classmethod
    def _no_output_config(cls, config: Any) -> Any:
        for name in ("format", "effort"):
            if (config or {}).get(name) is not None:
                raise unsupported(f"`output_config.{name}`", "send the request without it")
        return config


class MessagesRequest(MessagesPrompt):
    """Anthropic's `POST /v1/messages`."""

    max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)]
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop_sequences: Annotated[list[StopSequence], Field(max_length=100)] | None = None
    stream: bool = False
    top_k: Annotated[int, Field(ge=0)] | None = None

    _no_top_k = refused(
        "top_k", what="`{field}`", instead="use `temperature` or `top_p`, or leave it out", even_empty=True
    )


class CountTokensRequest(MessagesPrompt):
    """Anthropic's `POST /v1/messages/count_tokens`: the prompt of a message, without its output settings
    (`cache_control` and `speed` are accepted and change no count)."""


class TokenCount(BaseModel):
    """The answer of `POST /v1/messages/count_tokens` (Anthropic's `MessageTokensCount`)."""

    input_tokens: int


def text_of(content: str | list[Any] | None) -> str:
    """The text of a message's content (a string, or a list of parts: its text parts, one line each)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if isinstance(getattr(part, "text", None), str))


RESPONSE_TEXT = "send text in `input` (and `instructions`) and read the text out"


class InputTextPart(_Open):
    """A text part of a Responses input message (`output_text` in assistant turns sent back as history)."""

    type: Literal["input_text", "output_text"]
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class InputImagePart(_Open):
    """An image of a Responses input message: an https URL or a base64 data URL (`file_id` is refused: nothing is
    stored here)."""

    type: Literal["input_image"]
    image_url: ImageUrlText | None = None
    detail: Literal["auto", "low", "high"] | None = None
    file_id: Any = None

    @model_validator(mode="after")
    def _url_only(self) -> InputImagePart:
        if self.file_id is not None or self.image_url is None:
            raise unsupported(
                "An `input_image` without `image_url` (a `file_id`)", "send the image as a URL or a data URL"
            )
        return self

    def to_engine(self) -> dict[str, Any]:
        image = {"url": self.image_url} | ({"detail": self.detail} if self.detail else {})
        return {"type": "image_url", "image_url": image}


InputPart = Annotated[InputTextPart | InputImagePart, Field(discriminator="type")]


class InputMessage(_Open):
    """One item of a Responses `input` list: a message with text (the only kind of item the engine can pass on)."""

    type: Literal["message"] = "message"
    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[InputPart]

    @field_validator("type", mode="before")
    @classmethod
    def _messages_only(cls, kind: Any) -> Any:
        if isinstance(kind, str) and kind != "message":
            raise unsupported(f"An input item of type `{kind}`", "send messages with text only")
        return kind

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, content: Any) -> Any:
        if isinstance(content, list):
            for part in content:
                other = part.get("type") if isinstance(part, dict) else None
                if isinstance(other, str) and other not in ("input_text", "output_text", "input_image"):
                    raise unsupported(f"Content of type `{other}`", "send `input_text` and `input_image` parts only")
        return content


class FunctionCallItem(_Open):
    """A function call the model made, sent back as history (a Responses `function_call` input item)."""

    type: Literal["function_call"]
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    arguments: Annotated[str, StringConstraints(max_length=MAX_TEXT)]

    @property
    def role(self) -> str:
        return "assistant"


class FunctionCallOutputItem(_Open):
    """A function's result (a Responses `function_call_output` input item), text only."""

    type: Literal["function_call_output"]
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    output: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[InputTextPart]

    @property
    def role(self) -> str:
        return "tool"


def _item_kind(item: Any) -> str:
    """Which input item: a function call, its output, else a message (which refuses other kinds with a sentence)."""
    kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
    return kind if kind in ("function_call", "function_call_output") else "message"


InputItem = Annotated[
    Annotated[InputMessage, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(_item_kind),
]


def _chat_choice(choice: Any) -> Any:
    """The Responses API's `tool_choice` ({"type": "function", "name"}) in chat's shape; auto, required, none as is."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _chat_format(fmt: Any) -> Any:
    """The Responses API's `text.format` ({"type": "json_schema", "name", "schema", "strict"}) in chat's
    `response_format` shape ({"type": "json_schema", "json_schema": {...}}); anything else as given."""
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
    return fmt


class ResponsesRequest(_Open):
    """OpenAI's Responses API (`POST /v1/responses`), for text: one answer per request, nothing kept between them."""

    model: ModelId
    input: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
        | Annotated[list[InputItem], Field(min_length=1, max_length=10_000)]
    )
    instructions: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None = None
    max_output_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stream: bool | None = False
    metadata: Annotated[dict[str, Annotated[str, StringConstraints(max_length=512)]], Field(max_length=16)] | None = (
        None
    )
    store: bool | None = None
    user: Annotated[str, StringConstraints(max_length=512)] | None = None
    tools: Annotated[list[dict[str, Any]], Field(max_length=MAX_TOOL_CALLS)] | None = None  # function tools
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    # Accepted only where they do not change the answer (no state kept, no hosted tools, text or JSON out):
    previous_response_id: str | None = None
    conversation: Any = None
    prompt: Any = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    include: list[Any] | None = None
    background: bool | None = None
    top_logprobs: int | None = None
    max_tool_calls: Any = None

    _stateless = refused(
        "previous_response_id",
        "conversation",
        what="`{field}` (answers are not stored here)",
        instead="send the whole conversation in `input`",
    )
    _no_other_output = refused(
        "prompt",
        "include",
        "background",
        "top_logprobs",
        "max_tool_calls",
        what="`{field}`",
        instead="send the request without `{field}`",
    )

    @field_validator("tools")
    @classmethod
    def _function_tools(cls, tools: Any) -> Any:
        for tool in tools or ():
            if tool.get("type") != "function":
                raise unsupported(
                    f"The tool type `{tool.get('type')}`", "offer function tools (type, name, parameters)"
                )
        return tools

    def engine_tools(self) -> dict[str, Any]:
        """`tools`, `tool_choice` and `parallel_tool_calls` in chat's shapes, as the engine takes them."""
        if not self.tools:
            return {}  # a `tool_choice` other than none needs tools (refused below)
        keys = ("name", "description", "parameters", "strict")
        tools = [{"type": "function", "function": {k: t[k] for k in keys if t.get(k) is not None}} for t in self.tools]
        out: dict[str, Any] = {"tools": tools, "parallel_tool_calls": self.parallel_tool_calls}
        if self.tool_choice is not None:
            out["tool_choice"] = _chat_choice(self.tool_choice)
        return out

    @field_validator("tool_choice")
    @classmethod
    def _function_choice(cls, choice: Any, info: ValidationInfo) -> Any:
        if isinstance(choice, dict) and choice.get("type") != "function":
            raise unsupported(
                f"`tool_choice` {choice.get('type')!r}", "choose a function tool, or auto, required or none"
            )
        offered = [{"type": "function", "function": {"name": t.get("name")}} for t in info.data.get("tools") or ()]
        _as_field(checked_tool_choice, _chat_choice(choice), offered)
        return choice

    @model_validator(mode="after")
    def _tools_as_the_engine_checks_them(self) -> ResponsesRequest:
        _as_field(checked_tools, self.engine_tools().get("tools"))  # a name twice, parameters that are no schema
        return self

    @field_validator("text")
    @classmethod
    def _text_out(cls, text: Any) -> Any:
        """`text.format`: text, json_object or json_schema (JSON output, checked as chat's `response_format`)."""
        for name, value in (text or {}).items():
            if name == "format":
                try:
                    checked_response_format(_chat_format(value))
                except InvalidInputError as exc:
                    said = str(exc).replace("`response_format.json_schema.", "`text.format.")  # its own field names
                    raise ValueError(said.replace("`response_format", "`text.format")) from None
            elif value is not None:
                raise unsupported(f"`text.{name}`", "send the request without it")
        return text

    def response_format(self) -> dict[str, Any] | None:
        """`text.format` in chat's `response_format` shape (None: text)."""
        return checked_response_format(_chat_format((self.text or {}).get("format")))

    @field_validator("reasoning")
    @classmethod
    def _no_reasoning(cls, reasoning: Any) -> Any:
        if any(value is not None for value in (reasoning or {}).values()):
            raise unsupported("`reasoning`", "send the request without it")
        return reasoning

    @field_validator("input")
    @classmethod
    def _a_message_to_answer(cls, given: str | list[Any]) -> str | list[Any]:
        if isinstance(given, list) and not any(m.role in ("user", "assistant") for m in given):
            raise ValueError("at least one user (or assistant) message is needed")
        items = given if isinstance(given, list) else []
        orphan = first_orphan(
            (
                [item.call_id] if isinstance(item, FunctionCallItem) else [],
                [item.call_id] if isinstance(item, FunctionCallOutputItem) else [],
            )
            for item in items
        )
        if orphan is not None:
            raise ValueError(
                f"the `function_call_output` {orphan[0]} answers the call {orphan[1]!r}, which no earlier"
                " `function_call` item made: send the call before its output"
            )
        return given
