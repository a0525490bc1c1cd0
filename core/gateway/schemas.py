"""The request bodies the gateway accepts, as pydantic models: they validate every request before anything else runs
(a malformed request is answered 400 and writes nothing) and they are the OpenAPI schema at /docs.

The shapes are OpenAI's and Anthropic's own; fields the gateway passes on are declared, other fields of those APIs are
accepted and ignored (clients send many), and the few that would change what a call means but cannot be honoured here
(tools, several choices) are refused with a sentence.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

ModelId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
MAX_TOKENS = 1_000_000
MAX_TEXT = 1_000_000


class _Open(BaseModel):
    """OpenAI and Anthropic clients send fields this gateway does not use: accept them, use only what is declared."""

    model_config = ConfigDict(extra="allow")


class TextPart(_Open):
    type: Literal["text"]
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[TextPart] | None = None


class StreamOptions(_Open):
    include_usage: bool = False


class ChatCompletionRequest(_Open):
    model: ModelId
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=10_000)]
    max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1

    @model_validator(mode="after")
    def _refuse_what_cannot_be_honoured(self) -> ChatCompletionRequest:
        for name in ("tools", "functions", "tool_choice", "function_call"):
            if (self.model_extra or {}).get(name):
                raise ValueError(f"`{name}` is not supported by this gateway; send the request without it.")
        if not any(m.role in ("user", "assistant") for m in self.messages):
            raise ValueError("`messages` needs at least one user message.")
        return self


class SpeechRequest(_Open):
    model: ModelId
    input: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    voice: Annotated[str, StringConstraints(max_length=200)] | None = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Annotated[float, Field(ge=0.25, le=4.0)] | None = None


class ImageRequest(_Open):
    model: ModelId
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=32_000)]
    n: Annotated[int, Field(ge=1, le=1)] = 1
    size: Annotated[str, StringConstraints(pattern=r"^\d{2,5}x\d{2,5}$")] | None = None
    quality: Literal["standard", "hd", "low", "medium", "high", "auto"] | None = None
    response_format: Literal["b64_json", "url"] = "b64_json"


class MusicRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelId
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=2_000)]
    lyrics: Annotated[str, StringConstraints(max_length=3_500)] | None = None


class AnthropicTextBlock(_Open):
    type: Literal["text"]
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class AnthropicMessage(_Open):
    role: Literal["user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[AnthropicTextBlock]


class MessagesRequest(_Open):
    model: ModelId
    max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)]
    messages: Annotated[list[AnthropicMessage], Field(min_length=1, max_length=10_000)]
    system: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | list[AnthropicTextBlock] | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    stream: bool = False

    @model_validator(mode="after")
    def _refuse_what_cannot_be_honoured(self) -> MessagesRequest:
        for name in ("tools", "tool_choice"):
            if (self.model_extra or {}).get(name):
                raise ValueError(f"`{name}` is not supported by this gateway; send the request without it.")
        return self


def text_of(content: str | list[Any] | None) -> str:
    """The text of a message's content (a string, or a list of text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)
