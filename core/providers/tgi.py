"""Text generation as a task call (`{"inputs", "parameters"}`), the way Text Generation Inference serves it on Hugging
Face's serverless hf-inference and on dedicated endpoints: the body, the one-shot answer, and the streamed answer.

Streaming sends `"stream": true` and reads SSE events `{"token": {"text", "special"}, "generated_text", "details"}`;
the last event carries `details.generated_tokens`. Usage comes from TGI's headers when present (x-prompt-tokens,
x-generated-tokens, x-compute-time), else from the stream's token count with the prompt estimated.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

from core.providers.base import find_message
from core.providers.errors import UpstreamError
from core.providers.estimate import approx_tokens, output_token_limit
from core.providers.sse import JsonEvents
from core.providers.types import GenerationRequest, ProviderResult
from core.usage import Usage


def tgi_header_usage(headers: httpx.Headers) -> Usage | None:
    """Usage from TGI's response headers (x-prompt-tokens, x-generated-tokens, x-compute-time), when present."""
    prompt, generated = headers.get("x-prompt-tokens"), headers.get("x-generated-tokens")
    if prompt is None and generated is None:
        return None
    extra: dict[str, Any] = {}
    seconds = "0"
    if headers.get("x-compute-time"):
        seconds = headers["x-compute-time"]
        extra["compute_seconds"] = seconds
    for name in ("x-compute-type", "x-total-time", "x-queue-time", "x-inference-time"):
        if headers.get(name):
            extra[name.removeprefix("x-").replace("-", "_")] = headers[name]
    try:
        return Usage(
            input_tokens=int(prompt or 0),
            output_tokens=int(generated or 0),
            seconds=seconds,
            extra=extra,
        )
    except (ValueError, ArithmeticError):
        return None


def generated_text(data: Any) -> str | None:
    """text-generation answers `[{"generated_text": ...}]` or `{"generated_text": ...}`."""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict) and isinstance(data.get("generated_text"), str):
        return data["generated_text"]
    return None


def task_body(prompt: str, request: GenerationRequest, *, stream: bool = False) -> dict[str, Any]:
    parameters: dict[str, Any] = {"max_new_tokens": output_token_limit(request), "return_full_text": False}
    if request.temperature is not None:
        parameters["temperature"] = request.temperature
    body: dict[str, Any] = {"inputs": prompt, "parameters": parameters}
    if stream:
        body["stream"] = True
    return body


def task_result(response: httpx.Response, data: Any, prompt: str, *, missing: str, provider: str) -> ProviderResult:
    """The one-shot answer; `missing` is the message when it holds no generated_text."""
    text = generated_text(data)
    if text is None:
        raise UpstreamError(missing, provider=provider)
    usage = tgi_header_usage(response.headers) or Usage(
        input_tokens=approx_tokens(prompt), output_tokens=approx_tokens(text), estimated=True
    )
    return ProviderResult(text=text, usage=usage, request_id=response.headers.get("x-request-id"))


def read_task_stream(
    response: httpx.Response, prompt: str, *, display_name: str, provider: str
) -> Generator[str, None, ProviderResult]:
    """Yield the streamed tokens' text; return the result (cut short and flagged when the stream broke)."""
    parts: list[str] = []
    details: dict[str, Any] = {}
    with JsonEvents(response) as events:
        for _name, payload in events:
            if not isinstance(payload, dict):
                continue
            if payload.get("error"):
                events.stop(find_message(payload) or "error event")
                continue
            token = payload.get("token")
            if isinstance(token, dict) and token.get("text") and not token.get("special"):
                parts.append(token["text"])
                yield token["text"]
            if isinstance(payload.get("details"), dict):
                details = payload["details"]
    text = "".join(parts)
    events.raise_if_empty(text, display_name=display_name, provider=provider)
    metadata: dict[str, Any] = {}
    if details.get("finish_reason"):
        metadata["finish_reason"] = details["finish_reason"]
    usage = tgi_header_usage(response.headers)
    if usage is None:
        generated = details.get("generated_tokens")
        usage = Usage(
            input_tokens=approx_tokens(prompt),
            output_tokens=int(generated) if isinstance(generated, int) else approx_tokens(text),
            estimated=True,
        )
        metadata["usage_estimated"] = "the prompt's tokens are estimated (the stream reports only the generated ones)"
    events.mark(metadata)
    return ProviderResult(text=text, usage=usage, request_id=response.headers.get("x-request-id"), metadata=metadata)
