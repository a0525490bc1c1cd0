"""Refusals as the official `openai` SDK expects them: 401 unknown/revoked/expired keys, 403 a model the key may not
use, 429 over the key's requests per minute (with Retry-After), 402 insufficient_quota before any upstream call,
404 an unknown model, 400 a malformed request, 413 an oversized upload, upstream faults as 5xx; never a stack trace."""

from __future__ import annotations

from datetime import timedelta

import anthropic
import httpx
import openai
import pytest

from core.access import SYSTEM
from core.db.models import utcnow
from core.endpoints import OwnerOverdrawnError
from core.gateway.errors import problem_of
from tests.core.gateway.conftest import GatewayWorld

ASK = [{"role": "user", "content": "Say hello."}]


def chat(client: openai.OpenAI, model: str = "gpt-4o-mini") -> object:
    return client.chat.completions.create(model=model, messages=ASK, max_tokens=300)


def test_unknown_revoked_and_expired_keys_are_401(world: GatewayWorld) -> None:
    with pytest.raises(openai.AuthenticationError) as err:
        chat(world.openai("sk-ac-nope"))
    assert err.value.code == "invalid_api_key"
    user = world.user()
    made = world.services.keys.create(SYSTEM, user.id, "to revoke")
    world.services.keys.revoke(SYSTEM, user.id, made.key.id)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        chat(world.openai(made.secret))
    soon = world.services.keys.create(SYSTEM, user.id, "expiring", expires=utcnow() + timedelta(milliseconds=30))
    import time

    time.sleep(0.05)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        chat(world.openai(soon.secret))
    missing = httpx.post(f"{world.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": ASK})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"


def test_a_model_the_key_may_not_use_is_403(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user(), models=["sandbox-chat"]))
    calls = world.upstream_calls()
    with pytest.raises(openai.PermissionDeniedError, match="may not call 'gpt-4o-mini'"):
        chat(client)
    assert world.upstream_calls() == calls


def test_over_the_keys_rpm_is_429_with_retry_after(world: GatewayWorld) -> None:
    client = world.openai(world.key(world.user(), rpm=2))
    chat(client)
    chat(client)
    with pytest.raises(openai.RateLimitError) as err:
        chat(client)
    assert err.value.code == "rate_limit_exceeded" and "limited to 2 requests per minute" in err.value.message
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 30
    one = world.openai(world.key(world.user(), rpm=1))
    chat(one)
    with pytest.raises(openai.RateLimitError) as err:
        chat(one)
    assert "limited to 1 request per minute;" in err.value.message


def test_not_enough_credits_is_402_insufficient_quota_without_calling_upstream(world: GatewayWorld) -> None:
    user = world.user(credits=1)
    client = world.openai(world.key(user))
    calls = world.upstream_calls()
    with pytest.raises(openai.APIStatusError) as err:
        chat(client)
    assert err.value.status_code == 402 and err.value.code == "insufficient_quota"
    assert err.value.body["type"] == "insufficient_quota"  # type: ignore[index]
    assert "Not enough credits" in err.value.message
    assert world.upstream_calls() == calls and world.balance(user) == 1


def test_over_the_keys_monthly_credits_is_402(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user, monthly_credits=3))
    chat(client)  # 2 credits
    with pytest.raises(openai.APIStatusError, match="credits a month") as err:
        chat(client)
    assert err.value.status_code == 402 and err.value.code == "insufficient_quota"


def test_a_used_up_hard_budget_is_402_with_its_sentence_on_both_doors(world: GatewayWorld) -> None:
    """It was a 500 "the gateway failed on its side" (BudgetExceededError had no status), which the SDKs retried:
    three requests per refused call, and the budget's sentence never shown."""
    user = world.user()
    world.services.budgets.set_budget(SYSTEM, user=user.id, credits=3)
    key = world.key(user)
    chat(world.openai(key))  # 2 of the 3 credits
    calls = world.upstream_calls()
    with pytest.raises(openai.APIStatusError) as err:
        chat(world.openai(key))
    assert err.value.status_code == 402 and err.value.code == "insufficient_quota"
    assert "is used up" in err.value.message or "left" in err.value.message, err.value.message
    with pytest.raises(anthropic.APIStatusError) as refused:
        world.anthropic(key).messages.create(model="claude-haiku-4-5", max_tokens=300, messages=ASK)
    assert refused.value.status_code == 402 and refused.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert world.upstream_calls() == calls and world.balance(user) == 10_000 - 2


def test_unknown_model_and_malformed_requests(world: GatewayWorld) -> None:
    key = world.key(world.user())
    with pytest.raises(openai.NotFoundError) as err:
        chat(world.openai(key), "gpt-17")
    assert err.value.code == "model_not_found"
    headers = {"Authorization": f"Bearer {key}"}
    for body in (
        {"model": "gpt-4o-mini"},
        {"model": "gpt-4o-mini", "messages": []},
        {"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]},
        {"model": "gpt-4o-mini", "messages": ASK, "max_tokens": -1},
        {"model": "gpt-4o-mini", "messages": ASK, "tools": [{"type": "function"}]},
        {"model": "gpt-4o-mini", "messages": ASK, "n": 3},
    ):
        r = httpx.post(f"{world.url}/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(f"{world.url}/v1/chat/completions", content=b"{not json", headers=headers)
    assert r.status_code == 400
    r = httpx.get(f"{world.url}/v1/nothing", headers=headers)
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.parametrize(
    ("route", "field", "value"),
    [
        ("/v1/chat/completions", "max_tokens", "10"),  # was taken for 10
        ("/v1/chat/completions", "max_tokens", True),  # was taken for 1
        ("/v1/chat/completions", "stream", "yes"),  # was taken for true, and streamed
        ("/v1/chat/completions", "temperature", "0.5"),
        ("/v1/messages", "max_tokens", "10"),
        ("/v1/responses", "max_output_tokens", 10.0),
    ],
)
def test_a_field_of_the_wrong_json_type_is_refused_not_converted(
    world: GatewayWorld, route: str, field: str, value: object
) -> None:
    """OpenAI's and Anthropic's APIs refuse a string or a boolean where a number is due; so does the gateway."""
    user = world.user()
    headers = {"Authorization": f"Bearer {world.key(user)}"}
    body: dict[str, object] = {"model": "claude-haiku-4-5" if route == "/v1/messages" else "gpt-4o-mini"}
    body |= {"input": "Say hello."} if route == "/v1/responses" else {"messages": ASK, "max_tokens": 50}
    calls = world.upstream_calls()
    r = httpx.post(f"{world.url}{route}", json={**body, field: value}, headers=headers)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["message"].startswith(f"Invalid request: {field}:")
    assert world.upstream_calls() == calls and world.balance(user) == 10_000


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"model": "gpt-4o-mini", "messages": [', "the body is not valid JSON"),  # its `param` was "39"
        (b'{"model": "gpt-4o-\xff"}', "could not be parsed"),  # not UTF-8: its code was null
        (b"[" * 1000 + b"]" * 1000, "Invalid request"),
        (b'{"max_tokens": ' + b"9" * 5000 + b"}", "Invalid request"),
    ],
)
def test_a_body_that_does_not_parse_is_one_sentence_with_a_code(world: GatewayWorld, body: bytes, says: str) -> None:
    headers = {"Authorization": f"Bearer {world.key(world.user())}", "content-type": "application/json"}
    r = httpx.post(f"{world.url}/v1/chat/completions", content=body, headers=headers)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert says in error["message"] and error["code"] == "invalid_request" and error.get("param") is None, error


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/messages", "/v1/audio/speech"])
def test_a_malformed_request_without_a_good_key_is_401_not_400(world: GatewayWorld, route: str) -> None:
    """The key is judged first, as OpenAI and Anthropic do: without a good key nothing is said about the body. A
    malformed request with a good key is its 400, and does not count against the key's requests per minute."""
    user = world.user()
    made = world.services.keys.create(SYSTEM, user.id, "to revoke")
    world.services.keys.revoke(SYSTEM, user.id, made.key.id)
    anthropic = route == "/v1/messages"
    for key, said in ((None, "No API key"), ("sk-ac-nope", "Incorrect API key"), (made.secret, "was revoked")):
        headers = {"anthropic-version": "2023-06-01"} | ({"x-api-key": key} if key else {})
        for bad in ({"model": 7}, b"{not json"):
            r = httpx.post(
                f"{world.url}{route}", headers=headers, **({"json": bad} if isinstance(bad, dict) else {"content": bad})
            )
            assert r.status_code == 401, (key, bad, r.text)
            error = r.json()["error"]
            assert said in error["message"]
            assert error["type"] == ("authentication_error" if anthropic else "invalid_request_error")
    good = world.key(user, rpm=2)
    headers = {"anthropic-version": "2023-06-01", "x-api-key": good}
    for _ in range(3):
        r = httpx.post(f"{world.url}{route}", headers=headers, json={"model": 7})
        assert r.status_code == 400, r.text
    assert chat(world.openai(good)) and chat(world.openai(good))  # the three 400s counted nothing against its 2 rpm


def test_bodies_are_bounded(world: GatewayWorld) -> None:
    key = world.key(world.user())
    big = b"\0" * (26 * 1024 * 1024)
    r = httpx.post(
        f"{world.url}/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("big.wav", big, "audio/wav")},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    with pytest.raises(openai.APIStatusError) as err:
        world.openai(key).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 17_000_000}]
        )
    assert err.value.status_code == 413


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/v1/chat/completions", "/v1/messages"])
def test_a_body_sent_in_chunks_is_bounded_too(world: GatewayWorld, route: str) -> None:
    """Without a Content-Length (chunked transfer), the bound is found while the body is read: still a 413 in the
    route's envelope, never the framework's 400 "error parsing the body"."""
    user = world.user()
    key = world.key(user)

    def pieces():  # a well-formed start (a file part, a JSON string), then more than the bound allows
        if "audio" in route:
            yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        else:
            yield b'{"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "'
        for _ in range(27):
            yield b"x" * (1024 * 1024)

    kind = "multipart/form-data; boundary=xyz" if "audio" in route else "application/json"
    r = httpx.post(
        f"{world.url}{route}",
        content=pieces(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": kind, "anthropic-version": "2023-06-01"},
        timeout=60,
    )
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert (error["type"] if route == "/v1/messages" else error["code"]) == "request_too_large"
    if route == "/v1/messages":  # with its request id, as every Anthropic error
        assert r.json()["request_id"] == r.headers["request-id"] and r.json()["request_id"].startswith("req_")
    assert world.balance(user) == 10_000  # nothing held or charged


def test_upstream_faults_are_5xx_in_the_envelope(world: GatewayWorld) -> None:
    user = world.user()
    client = world.openai(world.key(user))
    world.upstream.status_override = 401  # our provider key is refused upstream: not the caller's fault
    try:
        with pytest.raises(openai.InternalServerError) as err:
            chat(client)
    finally:
        world.upstream.status_override = None
    assert err.value.status_code == 502 and err.value.code == "upstream_auth_failed"
    assert "Traceback" not in err.value.response.text and "sk-upstream" not in err.value.response.text
    assert world.balance(user) == 10_000


def test_faults_a_retry_cannot_mend_tell_the_sdk_not_to_retry(world: GatewayWorld) -> None:
    sent: list[httpx.Request] = []
    key = world.key(world.user())
    client = openai.OpenAI(
        base_url=f"{world.url}/v1",
        api_key=key,
        max_retries=2,
        http_client=httpx.Client(event_hooks={"request": [sent.append]}),
    )
    world.upstream.status_override = 401  # our provider key is refused upstream: the same on every retry
    try:
        with pytest.raises(openai.InternalServerError) as err:
            chat(client)
    finally:
        world.upstream.status_override = None
    assert err.value.response.headers["x-should-retry"] == "false" and len(sent) == 1
    with pytest.raises(openai.InternalServerError) as unconfigured:  # Together AI has no key here: 503
        chat(client, "meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert unconfigured.value.code == "provider_not_configured" and len(sent) == 2
    world.upstream.status_override = 500  # a passing upstream fault: worth the SDK's retries
    try:
        with pytest.raises(openai.InternalServerError) as passing:
            chat(client)
    finally:
        world.upstream.status_override = None
    assert "x-should-retry" not in passing.value.response.headers


def test_an_overdrawn_endpoint_owner_is_402_with_the_sentence_not_a_500() -> None:
    found = problem_of(OwnerOverdrawnError("eng@example.com", -7, "woken up (sleepy)"))
    assert found is not None and (found.status, found.code) == (402, "insufficient_quota")
    assert found.message.startswith("Not woken up (sleepy): eng@example.com is overdrawn by 7 credits")


def test_every_typed_error_the_services_name_has_a_status() -> None:
    """A typed error without a status was a 500 with a logged traceback (a used-up budget was): each one the services
    door names gets its own status and envelope; only the database being down is a 503 of its own."""
    import core.services.errors as typed

    for name in typed.__all__:
        cls = getattr(typed, name)
        if not (isinstance(cls, type) and issubclass(cls, typed.CoreError)) or cls in (
            typed.CoreError,
            typed.DatabaseError,
        ):
            continue
        exc = cls.__new__(cls)
        Exception.__init__(exc, "refused")
        assert problem_of(exc) is not None, name


@pytest.mark.parametrize(
    ("headers", "body", "said"),
    [
        (
            {"content-type": "text/plain"},
            b'{"model": "gpt-4o-mini"}',
            "must be JSON sent with `Content-Type: application/json` (this one said 'text/plain')",
        ),
        ({"content-type": "application/x-www-form-urlencoded"}, b"model=gpt-4o-mini", "must be JSON sent with"),
        ({"content-type": "application/json"}, b"", "the body is empty; send one JSON object."),
    ],
)
def test_a_body_of_another_kind_or_none_is_told_so(
    world: GatewayWorld, headers: dict[str, str], body: bytes, said: str
) -> None:
    user = world.user()
    r = httpx.post(
        f"{world.url}/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {world.key(user)}", **headers},
    )
    assert r.status_code == 400 and said in r.json()["error"]["message"], r.text
    assert r.json()["error"]["code"] == "invalid_request" and world.balance(user) == 10_000
