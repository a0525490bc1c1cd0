"""What a caller asks a provider for and what a provider gives back: frozen, keyword-only values."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from core.errors import InvalidInputError
from core.providers.images import check_images
from core.providers.json_output import checked_response_format
from core.providers.tools import ToolCallDelta, checked_tool_choice, checked_tools
from core.usage import Usage


class Category(StrEnum):
    """What a model does; the same names as the catalog's `category` column."""

    CHAT = "chat"
    TTS = "tts"
    SPEECH_TO_TEXT = "speech_to_text"
    MUSIC = "music"
    VOICE_CLONE = "voice_clone"
    IMAGE = "image"


@dataclass(frozen=True, kw_only=True)
class GenerationRequest:
    """One call's input. Which fields matter depends on the category:

    - chat: `messages` (a list of {"role", "content"}; a user message's content may hold image parts, OpenAI's
      shape: core/providers/images.py) or `text` as a single user message; `system`; `max_tokens`;
      `stop` (sequences that end the answer, sent upstream as the provider names them); `response_format` (JSON
      output, OpenAI's shape: core/providers/json_output.py)
    - tts: `text`, `voice`; music: `text` (the prompt) and `lyrics`
    - speech_to_text: `audio` (bytes) with `audio_filename` / `audio_mime`
    - image: `text` (the prompt), `size`, `quality`, `n`
    - voice_clone: `audio` (the sample) and `voice` (the id to create), `text` (optional preview sentence)
    - dedicated endpoints: `endpoint_url` (else the catalog's), `task` for a raw task POST, `scale_up_timeout` (s)
    """

    category: Category | str
    text: str | None = None
    messages: tuple[Mapping[str, Any], ...] | None = None
    system: str | None = None
    audio: bytes | None = field(default=None, repr=False)
    audio_filename: str | None = None
    audio_mime: str | None = None
    voice: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None  # nucleus sampling, 0 <= top_p <= 1 (chat)
    stop: tuple[str, ...] = ()
    response_format: Mapping[str, Any] | None = None  # chat: JSON output (json_object / json_schema); None: text
    # chat: the function tools offered, which to call, and whether several calls may come at once (core/providers/tools)
    tools: tuple[Mapping[str, Any], ...] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    size: str | None = None
    quality: str | None = None
    n: int = 1
    lyrics: str | None = None
    stream: bool = False
    endpoint_url: str | None = None
    task: str | None = None
    scale_up_timeout: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "category", Category(self.category))
        except ValueError:
            choices = ", ".join(c.value for c in Category)
            raise InvalidInputError(f"Unknown category {self.category!r}; choose one of: {choices}.") from None
        if self.messages is not None:
            object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))
            check_images(self.messages)
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "response_format", checked_response_format(self.response_format))
        if self.response_format is not None and self.category != Category.CHAT:
            raise InvalidInputError("`response_format` (JSON output) is for chat calls only.")
        object.__setattr__(self, "tools", checked_tools(self.tools))
        object.__setattr__(self, "tool_choice", checked_tool_choice(self.tool_choice, self.tools))
        if (self.tools or self.tool_choice is not None) and self.category != Category.CHAT:
            raise InvalidInputError("`tools` (tool calling) are for chat calls only.")
        if self.parallel_tool_calls is not None and not isinstance(self.parallel_tool_calls, bool):
            raise InvalidInputError("`parallel_tool_calls` must be true or false.")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise InvalidInputError("Each stop sequence must be a non-empty string.")
        if self.top_p is not None and not 0 <= self.top_p <= 1:
            raise InvalidInputError("top_p must be from 0 to 1.")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise InvalidInputError("max_tokens must be a positive whole number.")
        if self.n < 1:
            raise InvalidInputError("n (the number of images) must be at least 1.")

    def chat_messages(self) -> list[dict[str, Any]]:
        """The conversation as OpenAI-style messages (system first when given)."""
        msgs: list[dict[str, Any]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        if self.messages:
            msgs.extend(dict(m) for m in self.messages)
        elif self.text is not None:
            msgs.append({"role": "user", "content": self.text})
        if not any(m.get("role") != "system" for m in msgs):
            raise InvalidInputError("A chat call needs a message: give text or messages.")
        return msgs

    def prompt_text(self) -> str:
        """All text the call sends (for estimates and the cache key)."""
        if self.category == Category.CHAT:
            return "\n".join(content_text(m.get("content")) for m in self.chat_messages())
        return self.text or ""

    def require_text(self, what: str = "text") -> str:
        if not self.text or not self.text.strip():
            raise InvalidInputError(f"This {self.category} call needs {what}.")
        return self.text

    def require_audio(self) -> bytes:
        if not self.audio:
            raise InvalidInputError(f"This {self.category} call needs an audio file.")
        return self.audio


def content_text(content: Any) -> str:
    """A message's text, whether its content is a string or a list of text parts/blocks (one line each)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI/Anthropic content parts: their text ones (an image part has none)
        return "\n".join(str(p["text"]) for p in content if isinstance(p, Mapping) and "text" in p)
    return "" if content is None else str(content)


@dataclass(frozen=True, kw_only=True)
class ProviderResult:
    """What a provider returned: the output (text, or bytes with their MIME type, or a voice id) and its usage."""

    usage: Usage
    text: str | None = None
    data: bytes | None = field(default=None, repr=False)
    mime: str | None = None
    voice_id: str | None = None
    request_id: str | None = None
    simulated: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    # chat: the functions the answer calls, OpenAI's shape ({"id", "type": "function", "function": {name, arguments}})
    tool_calls: tuple[dict[str, Any], ...] | None = None


R = TypeVar("R")


# A piece of a streamed answer: text, or (only for a chat offered tools) a piece of a function call it makes.
Chunk = str | ToolCallDelta


class ResultStream(Generic[R]):
    """An iterator of chunks built from a generator that yields the chunks and *returns* a result; once exhausted,
    `.result` holds it. Iterate it to the end (e.g. with `st.write_stream`) before reading `.result`. The chunks are
    text, and `ToolCallDelta`s only where the request offered tools."""

    def __init__(
        self,
        chunks: Generator[Chunk, None, R],
        *,
        stated_input: Usage | None = None,
        source: ResultStream[Any] | None = None,
    ) -> None:
        self._chunks = chunks
        self._result: R | None = None
        self._stated_input = stated_input
        self._source = source

    @property
    def stated_input(self) -> Usage | None:
        """The prompt's token counts (input, cache reads and writes; output 0) as the upstream stated them before its
        first chunk (Anthropic's message_start), or as a replayed call billed them; None while, or when, they are
        not known. Never an estimate. A stream wrapping another (`source`) tells its source's."""
        if self._stated_input is None and self._source is not None:
            return self._source.stated_input
        return self._stated_input

    def state_input(self, usage: Usage) -> None:
        """Called by the producer when the upstream states the prompt's counts (before or with its first chunk)."""
        self._stated_input = usage

    def __iter__(self) -> Iterator[Chunk]:
        return self

    def __next__(self) -> Chunk:
        try:
            return next(self._chunks)
        except StopIteration as stop:
            if stop.value is not None:
                self._result = stop.value
            raise

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> R:
        if self._result is None:
            raise RuntimeError("the stream has not finished: iterate it to the end first")
        return self._result

    def close(self) -> None:
        """Stop early; the generator's cleanup runs (the upstream connection is closed)."""
        self._chunks.close()


class TextStream(ResultStream[ProviderResult]):
    """A provider's text chunks; `.result` is the `ProviderResult` (usage included)."""


def single_chunk_stream(result: ProviderResult) -> TextStream:
    """A stream of one chunk (the whole text) for providers or categories that do not stream."""

    def gen() -> Generator[str, None, ProviderResult]:
        if result.text:
            yield result.text
        return result

    return TextStream(gen())
