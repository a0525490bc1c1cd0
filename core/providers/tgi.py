"""Text generation as a task call (`{"inputs", "parameters"}`), the way Text Generation Inference serves it on Hugging
Face's serverless hf-inference and on dedicated endpoints: the body, the one-shot answer, and the streamed answer.

Every request asks for `parameters.details = true`, so TGI states its exact counts: the one-shot answer's `details`
has `generated_tokens` (and `prefill` when the prompt's tokens are returned), and the stream's last event (the one
with `generated_text`, which ends the stream) has `details.generated_tokens` and `details.input_length`. Usage comes
from TGI's headers when present (x-prompt-tokens, x-generated-tokens, x-compute-time), else from those details; only
a figure neither states is estimated (and flagged).
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
    parameters: dict[str, Any] = {
        "max_new_tokens": output_token_limit(request),
        "return_full_text": False,
        "details": True,  # TGI then states the exact generated (and, streaming, input) token counts
    }
    if request.temperature is not None:
        parameters["temperature"] = request.temperature
    # TGI takes 0 < top_p < 1: 1 cuts nothing, and 0 (the single likeliest token) is what TGI does without sampling
    if request.top_p is not None and 0 < request.top_p < 1:
        parameters["top_p"] = request.top_p
    if request.stop:
        parameters["stop"] = list(request.stop)
    body: dict[str, Any] = {"inputs": prompt, "parameters": parameters}
    if stream:
        body["stream"] = True
    return body


def task_result(response: httpx.Response, data: Any, prompt: str, *, missing: str, provider: str) -> ProviderResult:
    """The one-shot answer; `missing` is the message when it holds no generated_text."""
    text = generated_text(data)
    if text is None:
        raise UpstreamError(missing, provider=provider)
    first = data[0] if isinstance(data, list) and data else data
    details = first.get("details") if isinstance(first, dict) and isinstance(first.get("details"), dict) else {}
    prefill = details.get("prefill")
    metadata: dict[str, Any] = {"finish_reason": details["finish_reason"]} if details.get("finish_reason") else {}
    usage = tgi_header_usage(response.headers) or details_usage(
        details, prompt, text, input_tokens=len(prefill) if isinstance(prefill, list) and prefill else None
    )
    if usage.estimated:
        metadata["usage_estimated"] = "TGI stated no token counts for part of this call; that part is estimated"
    return ProviderResult(text=text, usage=usage, request_id=response.headers.get("x-request-id"), metadata=metadata)


def details_usage(details: dict[str, Any], prompt: str, text: str, *, input_tokens: int | None) -> Usage:
    """Usage from TGI's `details` (exact where stated); a count it does not state is estimated and flagged."""
    generated = details.get("generated_tokens")
    exact_out = isinstance(generated, int) and not isinstance(generated, bool)
    return Usage(
        input_tokens=input_tokens if input_tokens is not None else approx_tokens(prompt),
        output_tokens=int(generated) if exact_out else approx_tokens(text),
        estimated=input_tokens is None or not exact_out,
    )


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
            if payload.get("generated_text") is not None:
                events.stop()  # the last event: the stream ended normally
    text = "".join(parts)
    events.raise_if_empty(text, display_name=display_name, provider=provider, usage_stated=bool(details))
    metadata: dict[str, Any] = {}
    if details.get("finish_reason"):
        metadata["finish_reason"] = details["finish_reason"]
    usage = tgi_header_usage(response.headers)
    if usage is None:
        length = details.get("input_length")
        usage = details_usage(details, prompt, text, input_tokens=length if isinstance(length, int) else None)
        if usage.estimated:
            metadata["usage_estimated"] = "TGI's stream stated no token counts for part of this call; it is estimated"
    events.mark(metadata)
    return ProviderResult(text=text, usage=usage, request_id=response.headers.get("x-request-id"), metadata=metadata)
