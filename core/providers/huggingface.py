"""Hugging Face serverless, through the Inference Providers router (`https://router.huggingface.co`).

Chat goes to the OpenAI-compatible `/v1/chat/completions` (a model id may carry `:provider`, `:fastest`,
`:cheapest`); tasks go to `/hf-inference/models/{model_id}`: text-to-speech returns audio bytes (billed by the seconds
measured from the returned file), speech recognition takes raw audio (billed by the seconds of the input audio),
text generation takes `{"inputs", "parameters"}`. The retired `api-inference.huggingface.co` host is refused with a
configuration message, and so is a 410 Gone.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from core.catalog.types import ModelPrice
from core.providers.audio import AudioFormatError, audio_seconds, mime_for
from core.providers.errors import AuthError, ProviderConfigError, ProviderError, UpstreamError
from core.providers.estimate import estimate_max_usage
from core.providers.openai_compat import OpenAICompatibleChat, guessed_chat_usage
from core.providers.tgi import read_task_stream, task_body, task_result, tgi_header_usage
from core.providers.types import Category, GenerationRequest, ProviderResult, TextStream
from core.usage import Usage

RETIRED_HOST = "api-inference.huggingface.co"
ROUTER_URL = "https://router.huggingface.co"


class HuggingFaceProvider(OpenAICompatibleChat):
    name = "huggingface"
    display_name = "Hugging Face"
    key_env = "HUGGINGFACE_API_KEY (or HF_TOKEN)"
    categories = frozenset({Category.CHAT, Category.TTS, Category.SPEECH_TO_TEXT})
    chat_path = "/v1/chat/completions"
    max_tokens_field = "max_tokens"

    def configuration_problem(self) -> str | None:
        if RETIRED_HOST in self.base_url:
            return (
                f"HUGGINGFACE_BASE_URL is set to the retired {self.base_url}; Hugging Face moved serverless inference "
                f"to {ROUTER_URL}. Set HUGGINGFACE_BASE_URL={ROUTER_URL} or remove it."
            )
        return super().configuration_problem()

    def auth_headers(self) -> dict[str, str]:
        headers = super().auth_headers()
        if self.settings.hf_bill_to:
            headers["X-HF-Bill-To"] = self.settings.hf_bill_to
        return headers

    def task_url(self, model: ModelPrice, request: GenerationRequest) -> str:
        return self.url(f"/hf-inference/models/{model.model_id}")

    # ---- chat and text generation --------------------------------------------------------------------------
    def takes_json_output(self, model: ModelPrice, request: GenerationRequest) -> bool:
        return request.task != "text-generation"  # the raw task POST has no `response_format`

    def takes_tools(self, model: ModelPrice, request: GenerationRequest) -> bool:
        return request.task != "text-generation"  # nor tools: refused before any hold rather than dropped

    def takes_images(self, model: ModelPrice, request: GenerationRequest) -> bool:
        return request.task != "text-generation"  # nor images

    def chat(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        if request.task == "text-generation":
            return self.text_generation(model, request)
        return super().chat(model, request)

    def chat_stream(self, model: ModelPrice, request: GenerationRequest) -> TextStream:
        if request.task == "text-generation":
            prompt = request.prompt_text()
            response = self.send(
                "POST",
                self.task_url(model, request),
                json_body=task_body(prompt, request, stream=True),
                headers={"Accept": "text/event-stream"},
                stream=True,
            )
            return TextStream(read_task_stream(response, prompt, display_name=self.display_name, provider=self.name))
        return super().chat_stream(model, request)

    def text_generation(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        prompt = request.prompt_text()
        response = self.send("POST", self.task_url(model, request), json_body=task_body(prompt, request))
        missing = f"{self.display_name} answered without generated_text; try again."
        return task_result(response, self.parse_json(response), prompt, missing=missing, provider=self.name)

    def usage_fallback(self, response: httpx.Response, request: GenerationRequest, text: str) -> Usage:
        return tgi_header_usage(response.headers) or guessed_chat_usage(request, text)

    # ---- audio ---------------------------------------------------------------------------------------------
    def text_to_speech(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        text = request.require_text("text to speak")
        body: dict[str, Any] = {"inputs": text}
        if request.options.get("parameters"):
            body["parameters"] = dict(request.options["parameters"])
        response = self.send("POST", self.task_url(model, request), json_body=body, headers={"Accept": "audio/*"})
        audio = response.content
        content_type = response.headers.get("content-type", "").split(";")[0]
        if not audio or content_type.startswith("application/json"):
            raise UpstreamError(
                f"{self.display_name} returned no audio ({self.upstream_message(response)}); try again.",
                provider=self.name,
            )
        metadata: dict[str, Any] = {}
        try:
            seconds = audio_seconds(audio)
            estimated = False
        except AudioFormatError:
            # Delivered but unmeasurable: bill the most it could be and flag it.
            seconds = estimate_max_usage(model, request).seconds
            estimated = True
            metadata["usage_estimated"] = "the returned audio's length could not be measured"
        usage = Usage(seconds=seconds, characters=len(text), estimated=estimated)
        mime = content_type if content_type.startswith("audio/") else mime_for(audio, "audio/flac")
        return ProviderResult(
            data=audio, mime=mime, usage=usage, request_id=response.headers.get("x-request-id"), metadata=metadata
        )

    def speech_to_text(self, model: ModelPrice, request: GenerationRequest) -> ProviderResult:
        audio = request.require_audio()
        seconds = audio_seconds(audio)  # measured before the call: it is what we bill
        mime = request.audio_mime or mime_for(audio, "audio/mpeg")
        response = self.send("POST", self.task_url(model, request), content=audio, headers={"Content-Type": mime})
        data = self.parse_json(response)
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise UpstreamError(f"{self.display_name} answered without a transcript; try again.", provider=self.name)
        return ProviderResult(
            text=data["text"].strip(),
            usage=Usage(seconds=seconds),
            request_id=response.headers.get("x-request-id"),
            metadata={"chunks": len(data["chunks"])} if isinstance(data.get("chunks"), list) else {},
        )

    # ---- errors --------------------------------------------------------------------------------------------
    def retry_hint(self, response: httpx.Response) -> float | None:
        hint = super().retry_hint(response)
        if hint is None and response.status_code == 503:
            # {"error": "Model ... is currently loading", "estimated_time": 20.0}
            try:
                body = json.loads(response.content)
                hint = float(body["estimated_time"]) if isinstance(body, dict) and "estimated_time" in body else None
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError):
                hint = None
        return hint

    def error_for(self, response: httpx.Response) -> ProviderError:
        msg = self.upstream_message(response)
        if response.status_code == 410:
            return ProviderConfigError(
                f"Hugging Face says this URL is gone (410: {msg}). Serverless inference moved to {ROUTER_URL}; "
                "set HUGGINGFACE_BASE_URL to it (or remove the variable).",
                provider=self.name,
                status_code=410,
                upstream_message=msg,
            )
        if response.status_code == 403:
            return AuthError(
                f"Hugging Face refused the token (403: {msg}); give it the 'Make calls to Inference Providers' "
                "permission.",
                provider=self.name,
                status_code=403,
                upstream_message=msg,
            )
        if response.status_code == 503 and "loading" in msg.lower():
            return UpstreamError(
                f"The model is still loading on Hugging Face (503: {msg}); try again in a minute.",
                provider=self.name,
                status_code=503,
                upstream_message=msg,
            )
        return super().error_for(response)
