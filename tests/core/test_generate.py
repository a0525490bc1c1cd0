"""generate() on both databases: the usage row and its debit are written, failures charge nothing and release the
hold, the sandbox is logged at its would-be cost and never debited, the cache answers deterministic requests."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from core.access import SYSTEM, Caller
from core.billing import BillingService
from core.billing.errors import InsufficientCreditsError, UnpricedModelError
from core.billing.replays import IdempotencyConflictError
from core.catalog import UnknownModelError
from core.config import Secret, Settings
from core.db import Database
from core.db.models import (
    AIModel,
    AIUsageLog,
    CreditHold,
    CreditTransaction,
    InferenceEndpoint,
    ResponseCache,
    User,
)
from core.endpoints import OwnerOverdrawnError
from core.errors import InvalidInputError
from core.generate import GenerationResult, GenerationStream
from core.providers import AIProviderFactory, AuthError, GenerationRequest, RetryPolicy, UpstreamError
from core.services import Services
from core.users import UserView, add_user
from tests.core.providers.fakes import Upstream, breaking_response, json_response, sse_body, sse_response, wav_bytes
from tests.support.billing import overdraw_by_uptime

KEYS = {p: Secret(f"test-{p}-key-0000") for p in ("openai", "anthropic", "minimax", "huggingface", "together_ai")}
CHAT_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
    },
}


class Env:
    def __init__(self, rt: Database, replies: list, **settings: object) -> None:
        settings.setdefault("settle_spool_dir", rt.settings.settle_spool_dir)
        self.settings = Settings(database_url=rt.settings.database_url, api_keys=KEYS, **settings)  # type: ignore[arg-type]
        self.upstream = Upstream(list(replies))
        self.client = httpx.Client(transport=httpx.MockTransport(self.upstream))
        self.services = Services(
            Database(self.settings),
            providers=AIProviderFactory(self.settings, self.client, sleep=lambda s: None, retry=RetryPolicy()),
        )
        self.billing = self.services.billing
        self.rt = rt

    def generate(self, *args: object, caller: Caller = SYSTEM, **kwargs: object) -> GenerationResult:
        return self.services.generation.generate(caller, *args, **kwargs)  # type: ignore[arg-type]

    def stream(self, *args: object, caller: Caller = SYSTEM, **kwargs: object) -> GenerationStream:
        return self.services.generation.stream(caller, *args, **kwargs)  # type: ignore[arg-type]

    def usage_rows(self) -> list[AIUsageLog]:
        with self.rt.session() as s:
            return list(s.scalars(select(AIUsageLog).order_by(AIUsageLog.id)))

    def debits(self, user: UserView) -> list[CreditTransaction]:
        with self.rt.session() as s:
            return list(
                s.scalars(
                    select(CreditTransaction)
                    .where(CreditTransaction.user_id == user.id, CreditTransaction.transaction_type == "usage")
                    .order_by(CreditTransaction.id)
                )
            )

    def holds(self) -> list[CreditHold]:
        with self.rt.session() as s:
            return list(s.scalars(select(CreditHold).order_by(CreditHold.id)))

    def balance(self, user: UserView) -> int:
        return self.billing.balance(user.id).total


def funded_user(rt: Database, credits: int = 1000, markup: str = "100", email: str = "ana@example.com") -> UserView:
    with rt.session() as s:
        user = add_user(s, email=email, name="Ana", role="pm", markup_pct=Decimal(markup))
    if credits:
        BillingService(rt.session_factory, rt.settings).grant(user.id, credits, note="test grant")
    return user


def test_chat_records_usage_and_debits_exactly_once(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK, {"x-request-id": "req_1"})])
    user = funded_user(runtime)
    r = env.generate(user.email, "gpt-4o", GenerationRequest(category="chat", text="Capital of France?"))
    # $0.005615 -> 1 base credit -> 2 credits at 100% markup
    assert r.text == "Paris." and r.base_cost_usd == Decimal("0.005615000")
    assert (r.base_credits, r.markup_pct, r.credits_charged, r.balance_after) == (1, Decimal(100), 2, 998)
    assert not r.sandbox and not r.cache_hit and r.transaction_id is not None
    [row] = env.usage_rows()
    assert (row.status, row.input_tokens, row.cached_tokens, row.output_tokens) == ("success", 2006, 1920, 300)
    assert (row.cost_credits, row.base_cost_usd, row.request_id) == (2, Decimal("0.005615000"), "req_1")
    assert row.transaction_id == r.transaction_id and row.id == r.usage_id
    [debit] = env.debits(user)
    assert debit.amount == -2 and debit.id == r.transaction_id and debit.balance_after == 998
    [hold] = env.holds()
    assert hold.status == "settled" and hold.credits >= 2  # the hold covered the most the call could cost
    assert env.balance(user) == 998


def test_the_hold_is_the_most_the_call_can_cost(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK)])
    user = funded_user(runtime, credits=3)
    # 8,000 output tokens of gpt-4o at $10/1M = $0.08, plus the prompt: just over 2 credits -> 3 -> 6 with markup
    with pytest.raises(InsufficientCreditsError, match="needs 6, you have 3"):
        env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi", max_tokens=8000))
    assert env.upstream.requests == [] and env.usage_rows() == [] and env.holds() == []


def test_auth_failure_charges_nothing_releases_the_hold_and_logs_a_failed_row(runtime: Database) -> None:
    body = {
        "error": {
            "message": "Incorrect API key provided: test-ope*****0000.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    env = Env(runtime, [json_response(401, body)])
    user = funded_user(runtime)
    with pytest.raises(AuthError, match="Incorrect API key"):
        env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"))
    [row] = env.usage_rows()
    assert row.status == "failed" and row.cost_credits == 0 and row.base_cost_usd == 0
    assert "AuthError" in row.error and "Incorrect API key" in row.error
    assert env.debits(user) == []
    [hold] = env.holds()
    assert hold.status == "released"
    assert env.balance(user) == 1000 and env.billing.balance(user.id).available == 1000


def test_upstream_503_after_retries_is_a_failed_row(runtime: Database) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    env = Env(runtime, [json_response(529, overloaded)] * 3)
    user = funded_user(runtime)
    with pytest.raises(UpstreamError, match="Overloaded"):
        env.generate(user, "claude-haiku-4-5", GenerationRequest(category="chat", text="hi"))
    assert len(env.upstream.requests) == 3
    assert [r.status for r in env.usage_rows()] == ["failed"] and env.balance(user) == 1000


def test_anthropic_stream_bills_cache_tokens(runtime: Database) -> None:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-5",
            "usage": {
                "input_tokens": 1000,
                "cache_creation_input_tokens": 2000,
                "cache_read_input_tokens": 10000,
                "output_tokens": 1,
            },
        },
    }
    events = [
        ("message_start", start),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "jour"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 400}},
        ),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 500}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    env = Env(runtime, [sse_response(events)])
    user = funded_user(runtime)
    stream = env.stream(user, "claude-sonnet-4-5", GenerationRequest(category="chat", text="Hi"))
    assert list(stream) == ["Bon", "jour"]
    r = stream.result
    # 1000 x $3 + 2000 x $3.75 + 10000 x $0.30 + 500 x $15 (per 1M) = $0.021 -> 1 credit -> 2
    assert r.base_cost_usd == Decimal("0.021000000") and r.credits_charged == 2
    [row] = env.usage_rows()
    assert (row.input_tokens, row.cache_write_tokens, row.cached_tokens, row.output_tokens) == (13000, 2000, 10000, 500)


def test_stream_broken_after_output_is_settled_with_an_estimate(runtime: Database) -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "Par"}}],
        "usage": None,
    }
    env = Env(runtime, [breaking_response([sse_body([(None, chunk)])])])
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="Capital?"))
    assert "".join(stream) == "Par"
    assert stream.result.estimated
    [row] = env.usage_rows()
    assert row.status == "success" and row.meta["incomplete"] is True
    assert row.meta["usage_estimated"] == "stream ended without a usage chunk"


def test_stream_failing_before_output_releases(runtime: Database) -> None:
    env = Env(runtime, [breaking_response([b": ping\n\n"])])
    user = funded_user(runtime)
    stream = env.stream(user, "gpt-4o-mini", GenerationRequest(category="chat", text="hi"))
    with pytest.raises(UpstreamError, match="before any output"):
        list(stream)
    assert [r.status for r in env.usage_rows()] == ["failed"] and env.holds()[0].status == "released"
    assert env.balance(user) == 1000


def test_reader_stopping_a_stream_early_bills_what_was_received(runtime: Database) -> None:
    user = funded_user(runtime)
    env = Env(runtime, [])
    stream = env.stream(user, "sandbox-chat", GenerationRequest(category="chat", text="hello"))
    first = next(stream)
    stream.close()
    [row] = env.usage_rows()
    assert row.status == "success" and row.sandbox and row.output_tokens >= 1 and first
    assert env.holds()[0].status == "settled"


def test_sandbox_is_logged_at_its_would_be_cost_and_never_debited(runtime: Database) -> None:
    env = Env(runtime, [])
    user = funded_user(runtime, credits=0)  # nobody pays for simulated output: works with an empty balance
    r = env.generate(
        user,
        "sandbox-image",
        GenerationRequest(category="image", text="a fox", quality="hd", size="1024x1792"),
    )
    assert r.data.startswith(b"\x89PNG") and r.sandbox
    assert r.base_cost_usd == Decimal("0.12") and r.credits_charged == 0 and r.would_be_credits == 6
    [row] = env.usage_rows()
    assert row.sandbox and row.cost_credits == 0 and row.base_cost_usd == Decimal("0.12")
    assert row.meta["mirrors"] == "openai/dall-e-3"
    assert env.debits(user) == [] and env.upstream.requests == []


def test_tts_cache_hit_makes_no_upstream_call_and_is_charged_at_catalog_price(runtime: Database) -> None:
    mp3 = b"\xff\xfb\x90\x00" + bytes(413)
    env = Env(runtime, [httpx.Response(200, content=mp3, headers={"content-type": "audio/mpeg"})])
    user = funded_user(runtime)
    req = GenerationRequest(category="tts", text="Welcome aboard! " * 200, voice="nova")  # 3,200 chars = $0.048
    first = env.generate(user, "tts-1", req)
    second = env.generate(user, "tts-1", req)
    assert len(env.upstream.requests) == 1
    assert not first.cache_hit and second.cache_hit and second.data == mp3
    assert first.credits_charged == second.credits_charged == 4 and second.usage == first.usage
    # the provider was not called for the hit: it cost nothing, and the result says what the call would have cost
    assert (first.base_cost_usd, first.catalog_cost_usd) == (Decimal("0.048"), Decimal("0.048"))
    assert (second.base_cost_usd, second.catalog_cost_usd) == (0, Decimal("0.048"))
    assert second.base_credits == first.base_credits == 2 and second.would_be_credits == 4
    assert GenerationResult.from_reply(second.to_reply(), None).catalog_cost_usd == Decimal("0.048")
    old = {k: v for k, v in second.to_reply().items() if k != "catalog_cost_usd"} | {"base_cost_usd": "0.048"}
    replayed = GenerationResult.from_reply(old, None)  # kept before the field: the hit's base cost was its price
    assert (replayed.base_cost_usd, replayed.catalog_cost_usd) == (0, Decimal("0.048"))
    rows = env.usage_rows()
    assert [r.cache_hit for r in rows] == [False, True] and all(r.cost_credits == 4 for r in rows)
    # the stored row agrees with the result and with Spend: no provider cost, the catalog cost kept as the saving
    assert (rows[0].base_cost_usd, rows[1].base_cost_usd) == (Decimal("0.048"), 0)
    assert rows[1].meta["catalog_cost_usd"] == "0.048000000" and "catalog_cost_usd" not in (rows[0].meta or {})
    with runtime.session() as s:
        assert s.scalar(select(ResponseCache.hits)) == 1


def test_cache_hits_free_when_the_setting_says_so(runtime: Database) -> None:
    reply = {"text": "Hello there.", "usage": {"type": "duration", "seconds": 30}}
    env = Env(runtime, [json_response(200, reply)], charge_cache_hits=False)
    user = funded_user(runtime)
    req = GenerationRequest(category="speech_to_text", audio=wav_bytes(30, rate=8000), audio_filename="a.wav")
    first = env.generate(user, "whisper-1", req)
    hit = env.generate(user, "whisper-1", req)
    assert len(env.upstream.requests) == 1 and hit.cache_hit and hit.text == "Hello there."
    assert first.credits_charged == 2 and hit.credits_charged == 0
    assert (hit.base_cost_usd, hit.catalog_cost_usd, hit.base_credits) == (0, Decimal("0.003"), 0)
    assert hit.would_be_credits == first.would_be_credits == 2  # what it would have cost, had it been charged
    row = env.usage_rows()[-1]
    assert row.cache_hit and row.cost_credits == 0 and row.meta["catalog_cost_usd"] == "0.003000000"
    assert row.base_cost_usd == 0


def test_different_text_is_not_a_cache_hit(runtime: Database) -> None:
    mp3 = b"\xff\xfb\x90\x00" + bytes(413)
    replies = [httpx.Response(200, content=mp3, headers={"content-type": "audio/mpeg"}) for _ in range(2)]
    env = Env(runtime, replies)
    user = funded_user(runtime)
    env.generate(user, "tts-1", GenerationRequest(category="tts", text="one", voice="nova"))
    env.generate(user, "tts-1", GenerationRequest(category="tts", text="one", voice="alloy"))
    assert len(env.upstream.requests) == 2


def test_minimax_http_200_error_is_a_failed_call(runtime: Database) -> None:
    err = {"data": None, "trace_id": "t", "base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}}
    env = Env(runtime, [json_response(200, err)])
    user = funded_user(runtime)
    with pytest.raises(Exception, match="insufficient balance"):
        env.generate(user, "speech-02-hd", GenerationRequest(category="tts", text="hi"))
    [row] = env.usage_rows()
    assert row.status == "failed" and "QuotaExceededError" in row.error and env.balance(user) == 1000


def test_dedicated_endpoint_requests_are_logged_with_zero_credits(runtime: Database) -> None:
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
    env = Env(
        runtime,
        [json_response(200, body, {"x-prompt-tokens": "5", "x-generated-tokens": "2", "x-compute-time": "0.12"})],
    )
    user = funded_user(runtime, credits=0)
    req = GenerationRequest(category="chat", text="hi", endpoint_url="https://x.endpoints.huggingface.cloud")
    r = env.generate(user, "meta-llama/Llama-3.1-8B-Instruct", req, provider="huggingface_endpoint")
    assert r.credits_charged == 0 and r.base_cost_usd == 0
    assert str(env.upstream.last.url) == "https://x.endpoints.huggingface.cloud/v1/chat/completions"
    [row] = env.usage_rows()
    assert (row.deployment_type, row.input_tokens, row.output_tokens, row.duration_seconds) == (
        "dedicated",
        5,
        2,
        Decimal("0.120"),
    )


def test_a_scaled_to_zero_endpoint_of_an_overdrawn_owner_is_not_woken_by_a_call(runtime: Database) -> None:
    """A call routed to an endpoint scaled to zero wakes it, and its uptime is charged to its owner past zero: while
    the owner is overdrawn the call is refused before it is sent, held or logged, as a create or a resume is."""
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}
    env = Env(runtime, [json_response(200, body, {"x-prompt-tokens": "5", "x-generated-tokens": "2"})] * 2)
    owner = funded_user(runtime, credits=0, email="eng@example.com")
    caller = funded_user(runtime, credits=0)
    url = "https://sleepy.endpoints.huggingface.cloud"
    repo = "meta-llama/Llama-3.1-8B-Instruct"
    with runtime.session() as s:
        s.add_all(
            [
                InferenceEndpoint(
                    name="sleepy",
                    owner_id=owner.id,
                    model_repo=repo,
                    hardware_id="L4",
                    url=url,
                    state="scaledToZero",
                    replicas=0,
                ),
                # the local stand-in shows no URL while scaled to zero: found by the model it serves
                InferenceEndpoint(
                    name="no-url",
                    owner_id=owner.id,
                    model_repo="facebook/mms-tts-eng",
                    hardware_id="T4",
                    url=None,
                    state="scaledToZero",
                    replicas=0,
                ),
            ]
        )
    overdraw_by_uptime(env.billing, owner.id, 7)
    req = GenerationRequest(category="chat", text="hi", endpoint_url=url + "/")
    with pytest.raises(
        OwnerOverdrawnError,
        match=r"Not woken up \(sleepy\): eng@example\.com is overdrawn by 7 credits.*top-up of at least 7 credits",
    ):
        env.generate(caller, repo, req, provider="huggingface_endpoint")
    with pytest.raises(OwnerOverdrawnError, match=r"Not woken up \(no-url\)"):
        env.stream(
            caller,
            "facebook/mms-tts-eng",
            GenerationRequest(category="tts", text="hi", endpoint_url=url + "x"),
            provider="huggingface_endpoint",
        )
    assert env.upstream.requests == [] and env.usage_rows() == [] and env.holds() == []
    assert env.balance(owner) == -7  # nothing more charged
    env.billing.grant(owner.id, 10, note="top-up")  # back above zero: the call wakes it again
    assert env.generate(caller, repo, req, provider="huggingface_endpoint").text == "ok"


def test_unknown_and_unpriced_models_are_refused_before_any_call(runtime: Database) -> None:
    env = Env(runtime, [])
    user = funded_user(runtime)
    with pytest.raises(UnknownModelError):
        env.generate(user, "gpt-9", GenerationRequest(category="chat", text="hi"))
    with runtime.session() as s:
        s.add(
            AIModel(
                provider="openai",
                model_id="gpt-unpriced",
                model_name="x",
                deployment_type="api_proxy",
                category="chat",
                cost_unit="token",
                price_source="none",
                price_as_of="2026-01-01",
            )
        )
    with pytest.raises(UnpricedModelError, match="no input-token price"):
        env.generate(user, "gpt-unpriced", GenerationRequest(category="chat", text="hi"))
    with pytest.raises(InvalidInputError, match="is a tts model"):
        env.generate(user, "tts-1", GenerationRequest(category="chat", text="hi"))
    assert env.upstream.requests == [] and env.usage_rows() == [] and env.holds() == []


def test_missing_key_is_refused_before_any_hold(runtime: Database) -> None:
    env = Env(runtime, [])
    env.services.flow.providers = AIProviderFactory(Settings(), env.client)
    user = funded_user(runtime)
    with pytest.raises(Exception, match="OPENAI_API_KEY"):
        env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"))
    assert env.holds() == []


def test_a_reused_idempotency_key_replays_the_first_result_without_a_second_call(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK)])
    user = funded_user(runtime)
    first = env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"), idempotency_key="call-1")
    again = env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"), idempotency_key="call-1")
    assert again.replayed and not first.replayed
    assert (again.text, again.credits_charged, again.usage_id, again.usage) == (
        first.text,
        first.credits_charged,
        first.usage_id,
        first.usage,
    )
    assert len(env.upstream.requests) == 1 and len(env.debits(user)) == 1
    with pytest.raises(IdempotencyConflictError, match="different request"):
        env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="bye"), idempotency_key="call-1")


def test_a_reused_key_after_a_failure_is_refused_and_charges_nothing(runtime: Database) -> None:
    env = Env(runtime, [json_response(500, {"error": {"message": "boom"}})] * 3)
    user = funded_user(runtime)
    with pytest.raises(UpstreamError):
        env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"), idempotency_key="call-2")
    with pytest.raises(IdempotencyConflictError, match="failed"):
        env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"), idempotency_key="call-2")
    assert env.debits(user) == []


def test_usage_rows_record_their_source(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK), json_response(200, CHAT_OK)])
    user = funded_user(runtime)
    env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"))
    env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"), source="cli")
    assert [(r.source, r.api_key_id) for r in env.usage_rows()] == [("playground", None), ("cli", None)]
    with pytest.raises(InvalidInputError, match="Unknown source"):
        env.generate(user, "gpt-4o", GenerationRequest(category="chat", text="hi"), source="fax")


def test_markup_of_the_user_applies(runtime: Database) -> None:
    env = Env(runtime, [json_response(200, CHAT_OK)])
    user = funded_user(runtime, markup="50")
    r = env.generate(user.id, "gpt-4o", GenerationRequest(category="chat", text="hi"))
    assert (r.base_credits, r.markup_pct, r.credits_charged) == (1, Decimal(50), 2)  # ceil(1 x 1.5)
    with runtime.session() as s:
        assert s.get(User, user.id).credit_balance == 998
    assert json.loads(env.upstream.last.content)["max_completion_tokens"] == 1024


def test_input_the_upstream_would_refuse_is_refused_before_any_hold(runtime: Database) -> None:
    env = Env(runtime, [])
    user = funded_user(runtime)
    with pytest.raises(Exception, match="needs lyrics"):
        env.generate(user, "music-2.0", GenerationRequest(category="music", text="lofi"))
    assert env.holds() == [] and env.usage_rows() == [] and env.upstream.requests == []


def test_generate_with_stream_true_streams_upstream_and_returns_the_result(runtime: Database) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    usage = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
    }
    env = Env(runtime, [sse_response([(None, chunk), (None, usage), (None, "[DONE]")])])
    user = funded_user(runtime)
    r = env.generate(user, "gpt-4o-mini", GenerationRequest(category="chat", text="hi", stream=True))
    assert r.text == "Hi" and (r.usage.input_tokens, r.usage.output_tokens) == (8, 1)
    assert json.loads(env.upstream.last.content)["stream"] is True and len(env.usage_rows()) == 1


def test_a_pm_may_bill_only_their_own_credits(runtime: Database) -> None:
    from core.access import Principal
    from core.errors import PermissionDeniedError

    env = Env(runtime, [])
    ana = funded_user(runtime)
    with runtime.session() as s:
        boss = add_user(s, email="boss@example.com", name="Boss", role="admin")
    pm = Principal.of(ana)
    with pytest.raises(PermissionDeniedError, match="bill a call to another user's credits"):
        env.generate(boss, "sandbox-chat", GenerationRequest(category="chat", text="hi"), caller=pm)
    assert env.holds() == [] and env.usage_rows() == []
    own = env.generate(ana, "sandbox-chat", GenerationRequest(category="chat", text="hi"), caller=pm)
    for_ana = env.generate(
        ana, "sandbox-chat", GenerationRequest(category="chat", text="hi"), caller=Principal.of(boss)
    )
    assert own.sandbox and for_ana.sandbox and len(env.usage_rows()) == 2


def test_a_reused_account_view_never_charges_a_stale_markup(runtime: Database) -> None:
    """With `user_ttl` (the gateway's GATEWAY_CACHE_SECONDS) a payer's account is read once and its markup sizes the
    next holds; the charge is still computed at the markup read under the account's lock, so a markup raised within
    that time is charged as raised (flagged as overage where it passes the hold), and nothing reads the account's
    balance from the kept view."""
    env = Env(runtime, [json_response(200, CHAT_OK), json_response(200, CHAT_OK), json_response(200, CHAT_OK)])
    env.services.generation.user_ttl = 3600.0
    user = funded_user(runtime)
    ask = GenerationRequest(category="chat", text="Capital of France?", max_tokens=10)
    first = env.generate(user.id, "gpt-4o", ask)
    assert (first.markup_pct, first.credits_charged) == (Decimal(100), 2)
    with runtime.session() as s:  # the markup goes from 100% to 900% while the gateway keeps the old view
        s.get(User, user.id).developer_markup_pct = Decimal(900)
        s.commit()
    second = env.generate(user.id, "gpt-4o", ask)
    assert (second.markup_pct, second.credits_charged) == (Decimal(900), 10)  # 1 base credit at 900%
    hold = env.holds()[1]
    assert hold.credits < 10  # sized at the kept 100%: the charge passed it and was posted all the same
    assert env.debits(user)[-1].meta["overage"] == {"held": hold.credits, "charged": 10}
    assert env.balance(user) == 1000 - 2 - 10
    env.services.generation.user_ttl = 0.0  # read on every call again: the hold is sized at 900%
    third = env.generate(user.id, "gpt-4o", ask)
    assert third.credits_charged == 10 and env.holds()[-1].credits >= 10
