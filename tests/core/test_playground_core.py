"""The Playground's figures: usage in words, the cost card, the session totals, the models offered."""

from __future__ import annotations

from decimal import Decimal

from core.config import Secret, Settings
from core.generate import GenerationResult, GenerationServices
from core.playground import cost_card, describe_usage, playground_catalog, session_totals
from core.providers import AIProviderFactory
from core.runtime import Runtime
from core.usage import Usage


def result(**kw: object) -> GenerationResult:
    base = dict(
        text="x",
        data=None,
        mime=None,
        voice_id=None,
        usage=Usage(input_tokens=10, output_tokens=5),
        provider="openai",
        model_id="gpt-4o",
        model_name="GPT-4o",
        category="chat",
        base_cost_usd=Decimal("0.003"),
        base_credits=1,
        markup_pct=Decimal(100),
        credits_charged=2,
        would_be_credits=2,
        balance_after=98,
        transaction_id=7,
        usage_id=1,
        latency_ms=120,
        cache_hit=False,
        sandbox=False,
        request_id=None,
    )
    base.update(kw)
    return GenerationResult(**base)  # type: ignore[arg-type]


def test_usage_in_words() -> None:
    assert describe_usage(Usage(input_tokens=1200, cached_tokens=1000, output_tokens=45)) == (
        "1,200 in (1,000 cached) / 45 out tokens"
    )
    assert describe_usage(Usage(characters=240, seconds=Decimal("3.2")), "tts") == "240 characters; 3.2 s of audio"
    assert describe_usage(Usage(images=1, image_size="1024x1024", image_quality="hd")) == "1 image (hd 1024x1024)"
    assert describe_usage(Usage()) == "1 request"
    assert describe_usage(Usage(input_tokens=3, output_tokens=1, estimated=True)).endswith("— estimated")


def test_cost_card_follows_the_spec_example() -> None:
    # the specification's example: $0.003 -> 1 base credit -> 2 credits ($0.08) at 100% markup
    card = cost_card(result(), Decimal("0.04"))
    assert (card.base_credits, card.credits_charged, card.charged_usd) == (1, 2, Decimal("0.08"))
    assert card.note == ""
    sandbox = cost_card(result(sandbox=True, credits_charged=0, would_be_credits=2), Decimal("0.04"))
    assert sandbox.charged_usd == 0 and "would cost 2 credits" in sandbox.note
    hit = cost_card(result(cache_hit=True), Decimal("0.04"))
    assert "response cache" in hit.note


def test_session_totals() -> None:
    totals = session_totals(
        [result(), result(credits_charged=5), result(sandbox=True, credits_charged=0)], Decimal("0.04")
    )
    assert (totals.calls, totals.credits, totals.usd, totals.would_be_credits) == (3, 7, Decimal("0.28"), 9)


def test_only_configured_providers_and_the_sandbox_are_offered(sqlite_runtime: Runtime) -> None:
    settings = Settings(
        database_url=sqlite_runtime.settings.database_url, api_keys={"anthropic": Secret("sk-ant-xxxxxxxx")}
    )
    sqlite_runtime.__dict__["_generation_services"] = GenerationServices.build(
        sqlite_runtime, providers=AIProviderFactory(settings)
    )
    catalog = playground_catalog(sqlite_runtime)
    assert catalog.providers("chat") == ["anthropic", "sandbox"]
    assert catalog.providers("tts") == ["sandbox"]
    assert "openai" in catalog.unconfigured and "anthropic" not in catalog.unconfigured
    assert all(m.deployment_type != "dedicated" for ms in catalog.models.values() for m in ms)
    assert catalog.categories() == ["chat", "tts", "speech_to_text", "image", "music", "voice_clone"]
