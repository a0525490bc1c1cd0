"""BaseProvider: the one seam every provider shares (HTTP through an injected httpx.Client, retries, typed errors).

A provider subclass declares its name and categories, its auth headers, how it reads the upstream's error message,
and one method per category it offers (`chat`, `chat_stream`, `text_to_speech`, `speech_to_text`, `image`, `music`,
`voice_clone`). `generate(model, request)` dispatches on the request's category.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, ClassVar

import httpx

from core import event_loop
from core.catalog.types import ModelPrice
from core.config import Secret, Settings
from core.errors import InvalidInputError
from core.providers.errors import (
    AuthError,
    BadRequestError,
    ProviderConfigError,
    ProviderError,
    ProviderTimeout,
    QuotaExceededError,
    RateLimitError,
    UpstreamError,
)
from core.providers.estimate import estimate_max_usage, max_input_tokens
from core.providers.images import image_parts
from core.providers.json_output import kind_of
from core.providers.retry import RETRYABLE_TRANSPORT_ERRORS, RetryPolicy, retry_after_seconds
from core.providers.tools import uses_tools
from core.providers.types import Category, GenerationRequest, ProviderResult, TextStream, single_chunk_stream
from core.usage import Usage

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=60.0, pool=10.0)
MAX_MESSAGE_CHARS = 300

Sleep = Callable[[float], None]


@lru_cache(maxsize=512)
def _parsed_url(url: str) -> httpx.URL:
    """A provider's URL parsed once: a provider calls the same few URLs over and over, and httpx parsing one again for
    every request was ~30 us, a quarter of httpx's own work per call (an httpx.URL is immutable, so one is shared)."""
    return httpx.URL(url)


log = logging.getLogger(__name__)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


class BaseProvider:
    """Shared behaviour of every provider. Subclasses set the class attributes and the category methods."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    key_env: ClassVar[str] = ""  # the environment variable that holds the key (named in error messages)
    categories: ClassVar[frozenset[Category]] = frozenset()
    requires_key: ClassVar[bool] = True
    simulated: ClassVar[bool] = False
    json_output: ClassVar[bool] = False  # chat takes `response_format` (JSON output; core/providers/json_output.py)
    tool_calling: ClassVar[bool] = False  # chat takes `tools` and tool messages (core/providers/tools.py)
    image_input: ClassVar[bool] = False  # chat messages may hold images (core/providers/images.py)

    def __init__(
        self,
        *,
        client: httpx.Client | None,
        api_key: Secret | str | None = None,
        base_url: str = "",
        settings: Settings | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = event_loop.sleep,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self._api_key = api_key if isinstance(api_key, Secret) or api_key is None else Secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.settings = settings or Settings()
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.timeout = timeout
        self.rng = rng or random.Random()

    # ---- configuration -------------------------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        """True when the provider can make real calls (its key is set, when it needs one)."""
        return bool(self._api_key) or not self.requires_key

    def configuration_problem(self) -> str | None:
        """A sentence saying why calls would fail before reaching the upstream, or None."""
        if not self.configured:
            return (
                f"{self.display_name} is not configured: set {self.key_env} (environment or .streamlit/secrets.toml)."
            )
        return None

    def check_configured(self) -> None:
        problem = self.configuration_problem()
        if problem:
            raise ProviderConfigError(problem, provider=self.name)

    def api_key(self) -> str:
        if not self._api_key:
            raise ProviderConfigError(
                f"{self.display_name} is not configured: set {self.key_env} (environment or .streamlit/secrets.toml).",
                provider=self.name,
            )
        return self._api_key.get()

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key()}"}

    # ---- what callers use ----------------------------------------------------------------------------------
    # Input audio billed by the second must be measurable by us, unless the upstream states the seconds itself.
    upstream_states_audio_seconds: ClassVar[bool] = False

    def estimate_max_usage(self, model: ModelPrice, request: GenerationRequest) -> Usage:
        """The most `request` can consume, in the model's billing unit (for the credit hold)."""
        return estimate_max_usage(
            model,
            request,
            must_measure_audio=not self.upstream_states_audio_seconds,
            count_characters=self.billed_characters,
        )

    def count_input_tokens(self, model: ModelPrice, request: GenerationRequest) -> int:
        """The input tokens of a chat request, without making it (free: nothing is held or billed). Providers whose
        API counts tokens ask it (Anthropic); the others answer the bound the hold reserves for, an estimate that is
        never below the real count."""
        self._check_category(model, Category.CHAT)
        return max_input_tokens(request, model)

    @staticmethod
    def billed_characters(text: str) -> int:
        """How the provider counts the characters it bills (one per character unless a provider says otherwise)."""
        return len(text)

    def validate(self, model: ModelPrice, request: GenerationRequest) -> None:
        """Refuse a request the upstream would refuse, before any credit is held (category, key, input limits)."""
        self._check_category(model, Category(request.category))
        if request.response_format is not None and not self.takes_json_output(model, request):
            raise InvalidInputError(
                f"{model.key} cannot be asked for JSON output (`response_format` "
                f"{kind_of(request.response_format)!r}) here: ask for JSON in the prompt, or use a model of an "
                "OpenAI-compatible provider (OpenAI, Together AI, Hugging Face)."
            )
        if image_parts(request.messages) and not self.takes_images(model, request):
            raise InvalidInputError(
                f"{model.key} cannot be given images here (a raw text-generation task takes text only): send text "
                "only, or use a chat model through its chat route."
            )
        if (request.tools or uses_tools(request.messages)) and not self.takes_tools(model, request):
            raise InvalidInputError(
                f"{model.key} cannot be given tools or tool calls here (a raw text-generation task takes text "
                "only): send the request without them, or use a chat model through its chat route."
            )
        self.check_configured()

    def takes_json_output(self, model: ModelPrice, request: GenerationRequest) -> bool:
        """Whether this call can be asked for JSON output (`response_format`)."""
        return self.json_output

    def takes_tools(self, model: ModelPrice, request: GenerationRequest) -> bool:
        """Whether this call can be given tools and tool calls (`tools`, `tool` messages)."""
        return self.tool_calling

    def takes_images(self, model: ModelPrice, request: GenerationRequest) -> bool:
        """Whether this call's messages can hold images (a model that cannot see them says so upstream)."""
        return self.image_input

    def generate(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        category = Category(request.category)
        self.validate(model, request)
        handler = {
            Category.CHAT: self.chat,
            Category.TTS: self.text_to_speech,
            Category.SPEECH_TO_TEXT: self.speech_to_text,
            Category.IMAGE: self.image,
            Category.MUSIC: self.music,
            Category.VOICE_CLONE: self.voice_clone,
        }[category]
        return handler(model, request)

    def stream(self, model: ModelPrice, request: GenerationRequest) -> TextStream:
        """Text chunks as they arrive (chat; offered tools, also the pieces of the function calls it makes, as
        `ToolCallDelta`s), then `.result` (with the calls whole); other categories give their text as one chunk."""
        category = Category(request.category)
        self.validate(model, request)
        if category == Category.CHAT:
            return self.chat_stream(model, request)
        return single_chunk_stream(self.generate(model, request))

    def _check_category(self, model: ModelPrice, category: Category) -> None:
        if category not in self.categories:
            offered = ", ".join(sorted(self.categories))
            raise BadRequestError(
                f"{self.display_name} does not offer {category} here; it offers: {offered}.", provider=self.name
            )
        if model.category != category:
            raise BadRequestError(
                f"{model.key} is a {model.category} model; it cannot serve a {category} request.", provider=self.name
            )

    # ---- category methods (subclasses implement the ones they offer) ---------------------------------------
    def chat(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        raise NotImplementedError

    def chat_stream(self, model: ModelPrice, request: GenerationRequest) -> TextStream:
        return single_chunk_stream(self.chat(model, request))

    def text_to_speech(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        raise NotImplementedError

    def speech_to_text(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        raise NotImplementedError

    def image(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        raise NotImplementedError

    def music(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        raise NotImplementedError

    def voice_clone(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        raise NotImplementedError

    # ---- HTTP ----------------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with retries and return a 2xx response (its body unread when `stream`, else read).

        Retries 429/502/503/504/529 and connection failures, at most `retry.max_attempts` tries, waiting what the
        upstream asks (Retry-After, rate-limit headers) or an exponential backoff with jitter. A timeout waiting for
        the answer is not retried (the upstream may be doing, and billing, the work). Anything else raises the typed
        error for its status.
        """
        if self.client is None:
            raise ProviderConfigError(f"{self.display_name} has no HTTP client.", provider=self.name)
        all_headers = {**self.auth_headers(), **(headers or {})}
        attempts = max(1, self.retry.max_attempts)
        for attempt in range(1, attempts + 1):
            request = self.client.build_request(
                method,
                _parsed_url(url),
                json=json_body,
                content=content,
                files=files,
                data=data,
                params=params,
                headers=all_headers,
                timeout=self.timeout,
            )
            try:
                response = self.client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                retryable = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                if retryable and attempt < attempts:
                    self.sleep(self.retry.backoff(attempt, self.rng))
                    continue
                raise ProviderTimeout(
                    f"{self.display_name} did not answer in time ({type(exc).__name__}); try again, or ask for less "
                    "output.",
                    provider=self.name,
                ) from exc
            except RETRYABLE_TRANSPORT_ERRORS as exc:
                if attempt < attempts:
                    self.sleep(self.retry.backoff(attempt, self.rng))
                    continue
                # the address and the system's words go to the log only: the message reaches the gateway's callers,
                # who should not learn where (on which internal host) the upstream is
                log.warning("%s unreachable after %d tries: %s", self.display_name, attempts, _clip(str(exc)))
                raise UpstreamError(
                    f"Could not reach {self.display_name} after {attempts} tries ({type(exc).__name__}). Check the "
                    "network or try again later.",
                    provider=self.name,
                ) from exc
            if response.is_success:
                if not stream:
                    self.read_body(response)
                return response
            self.read_body(response)
            if response.status_code in self.retry.retry_statuses and attempt < attempts:
                wait = self.retry_wait(response, attempt)
                if wait is not None:
                    self.sleep(wait)
                    continue
            raise self.error_for(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def read_body(self, response: httpx.Response) -> bytes:
        """Read a body; a connection that breaks mid-body is an UpstreamError, never retried."""
        try:
            return response.read()
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(
                f"{self.display_name} stopped sending its answer (timeout); try again.", provider=self.name
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamError(
                f"The connection to {self.display_name} broke while reading its answer ({type(exc).__name__}); "
                "try again.",
                provider=self.name,
            ) from exc
        finally:
            response.close()

    def retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before the next try, or None when the upstream asks for longer than we will wait."""
        hint = self.retry_hint(response)
        if hint is None:
            return self.retry.backoff(attempt, self.rng)
        if hint > self.retry.max_retry_after:
            return None
        return hint + self.rng.uniform(0, min(1.0, hint * 0.1))

    def retry_hint(self, response: httpx.Response) -> float | None:
        """How long the upstream asks us to wait (headers; providers may also read the body)."""
        return retry_after_seconds(response.headers)

    def parse_json(self, response: httpx.Response) -> Any:
        try:
            return json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UpstreamError(
                f"{self.display_name} returned a malformed answer (not JSON: {_clip(response.text[:120])!r}); "
                "try again.",
                provider=self.name,
                status_code=response.status_code,
            ) from exc

    # ---- errors --------------------------------------------------------------------------------------------
    def upstream_message(self, response: httpx.Response) -> str:
        """The upstream's own error message (OpenAI-style `{"error": {"message"}}` by default)."""
        try:
            body = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _clip(response.text) or response.reason_phrase
        return _clip(find_message(body) or response.text or response.reason_phrase)

    def error_for(self, response: httpx.Response) -> ProviderError:
        """The typed error for a non-2xx response, carrying the upstream's message."""
        status = response.status_code
        msg = self.upstream_message(response)
        who = self.display_name
        kw: dict[str, Any] = {"provider": self.name, "status_code": status, "upstream_message": msg}
        if status in (401, 403):
            hint = f"check {self.key_env}" if status == 401 else "the key lacks a permission this call needs"
            return AuthError(f"{who} refused the API key ({status}: {msg}); {hint}.", **kw)
        if status == 402:
            return QuotaExceededError(
                f"{who} says our account is out of credit ({status}: {msg}); an admin must top it up.", **kw
            )
        if status == 408:
            return ProviderTimeout(f"{who} timed out ({status}: {msg}); try again.", **kw)
        if status == 429:
            wait = retry_after_seconds(response.headers)
            when = f"try again in {wait:.0f} s" if wait is not None else "try again in a moment"
            return RateLimitError(f"{who} is rate limiting us ({status}: {msg}); {when}.", retry_after=wait, **kw)
        if 400 <= status < 500:
            return BadRequestError(f"{who} refused the request ({status}: {msg}).", **kw)
        return UpstreamError(f"{who} failed ({status}: {msg}); try again later.", **kw)


def find_message(body: Any) -> str | None:
    """The message in the common error shapes: {"error": {"message"}}, {"error": "..."}, {"message"}, {"detail"}."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        for key in ("message", "detail", "msg"):
            if isinstance(body.get(key), str):
                return body[key]
    return None
