"""Hugging Face dedicated Inference Endpoints: calls to the endpoint's own URL.

Chat uses the OpenAI-compatible `/v1/chat/completions` of TGI and vLLM images; a raw task call POSTs
`{"inputs": ...}` (or raw audio) to the URL itself. Usage comes from the body, else from TGI's headers
(`x-prompt-tokens`, `x-generated-tokens`, `x-compute-time`). A scaled-to-zero endpoint answers 503 while a replica
starts, unless the request sends `X-Scale-Up-Timeout`, which holds it until one is ready.

The endpoint's cost is its uptime (metered by the endpoints service); each request is logged with its usage and
0 incremental credits so analytics can attribute uptime to requests.
"""

from __future__ import annotations

from typing import Any

import httpx

from core.catalog.types import ModelPrice
from core.providers.audio import AudioFormatError, audio_seconds, mime_for
from core.providers.errors import ProviderConfigError, ProviderError, UpstreamError
from core.providers.openai_compat import OpenAICompatibleChat, guessed_chat_usage
from core.providers.tgi import read_task_stream, task_body, task_result, tgi_header_usage
from core.providers.types import Category, GenerationRequest, ProviderResult, TextStream
from core.usage import Usage


class HuggingFaceEndpointProvider(OpenAICompatibleChat):
    name = "huggingface_endpoint"
    display_name = "Hugging Face endpoint"
    key_env = "HUGGINGFACE_API_KEY (or HF_TOKEN)"
    categories = frozenset({Category.CHAT, Category.TTS, Category.SPEECH_TO_TEXT})
    requires_key = False  # a public endpoint needs no token; an authenticated one answers 401 without it
    max_tokens_field = "max_tokens"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get()}"} if self._api_key else {}

    def endpoint_url(self, model: ModelPrice, request: GenerationRequest) -> str:
        url = (request.endpoint_url or model.hf_endpoint_url or "").rstrip("/")
        if not url:
            raise ProviderConfigError(
                f"{model.key} has no endpoint URL: create or resume its endpoint on the Endpoints page (which records "
                "the URL in the catalog), or pass the endpoint URL with the request.",
                provider=self.name,
            )
        if not url.startswith(("https://", "http://")):
            raise ProviderConfigError(f"The endpoint URL {url!r} is not an http(s) URL.", provider=self.name)
        return url

    def chat_url(self, model: ModelPrice, request: GenerationRequest) -> str:
        return self.endpoint_url(model, request) + "/v1/chat/completions"

    def chat_headers(self, request: GenerationRequest) -> dict[str, str]:
        return self.scale_headers(request)

    @staticmethod
    def scale_headers(request: GenerationRequest) -> dict[str, str]:
        if request.scale_up_timeout:
            return {"X-Scale-Up-Timeout": str(int(request.scale_up_timeout))}
        return {}

    def usage_fallback(self, response: httpx.Response, request: GenerationRequest, text: str) -> Usage:
        return tgi_header_usage(response.headers) or guessed_chat_usage(request, text)

    def takes_json_output(self, model: ModelPrice, request: GenerationRequest) -> bool:
        return not request.task  # a raw task POST has no `response_format`; the chat route passes it to TGI

    def takes_tools(self, model: ModelPrice, request: GenerationRequest) -> bool:
        return not request.task  # nor tools

    def takes_images(self, model: ModelPrice, request: GenerationRequest) -> bool:
        return not request.task  # nor images

    def chat(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        if request.task:
            return self.raw_text_task(model, request)
        return super().chat(model, request)

    def chat_stream(self, model: ModelPrice, request: GenerationRequest) -> TextStream:
        if request.task:
            prompt = request.prompt_text()
            response = self.send(
                "POST",
                self.endpoint_url(model, request),
                json_body=task_body(prompt, request, stream=True),
                headers={"Accept": "text/event-stream", **self.scale_headers(request)},
                stream=True,
            )
            return TextStream(read_task_stream(response, prompt, display_name=self.display_name, provider=self.name))
        return super().chat_stream(model, request)

    def raw_text_task(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        prompt = request.prompt_text()
        response = self.send(
            "POST",
            self.endpoint_url(model, request),
            json_body=task_body(prompt, request),
            headers=self.scale_headers(request),
        )
        missing = "The endpoint answered without generated_text; check its task."
        return task_result(response, self.parse_json(response), prompt, missing=missing, provider=self.name)

    def text_to_speech(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        text = request.require_text("text to speak")
        response = self.send(
            "POST",
            self.endpoint_url(model, request),
            json_body={"inputs": text},
            headers={"Accept": "audio/*", **self.scale_headers(request)},
        )
        audio = response.content
        content_type = response.headers.get("content-type", "").split(";")[0]
        if not audio or content_type.startswith("application/json"):
            raise UpstreamError(
                f"The endpoint returned no audio ({self.upstream_message(response)}).", provider=self.name
            )
        extra: dict[str, Any] = {}
        if response.headers.get("x-compute-time"):
            extra["compute_seconds"] = response.headers["x-compute-time"]
        try:
            seconds = audio_seconds(audio)
        except AudioFormatError:
            seconds = 0  # uptime-billed: the length is informative only
            extra["seconds_unknown"] = True
        return ProviderResult(
            data=audio,
            mime=content_type if content_type.startswith("audio/") else mime_for(audio, "audio/wav"),
            usage=Usage(seconds=seconds, characters=len(text), extra=extra),
            request_id=response.headers.get("x-request-id"),
        )

    def speech_to_text(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        audio = request.require_audio()
        try:
            seconds = audio_seconds(audio)
        except AudioFormatError:
            seconds = 0
        mime = request.audio_mime or mime_for(audio, "audio/mpeg")
        response = self.send(
            "POST",
            self.endpoint_url(model, request),
            content=audio,
            headers={"Content-Type": mime, **self.scale_headers(request)},
        )
        data = self.parse_json(response)
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise UpstreamError("The endpoint answered without a transcript; check its task.", provider=self.name)
        return ProviderResult(
            text=data["text"].strip(), usage=Usage(seconds=seconds), request_id=response.headers.get("x-request-id")
        )

    def error_for(self, response: httpx.Response) -> ProviderError:
        if response.status_code == 503:
            msg = self.upstream_message(response)
            return UpstreamError(
                f"The endpoint is not ready (503: {msg}). A scaled-to-zero endpoint takes minutes to start: try again "
                "later, or send a scale-up timeout so the request waits for a replica.",
                provider=self.name,
                status_code=503,
                upstream_message=msg,
            )
        return super().error_for(response)
