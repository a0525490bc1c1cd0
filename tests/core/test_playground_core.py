"""The Playground's figures: usage in words, the cost card, the session totals, the models offered."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from core.access import SYSTEM
from core.config import Secret, Settings
from core.db import Database
from core.generate import GenerationResult
from core.providers import AIProviderFactory
from core.services import Services
from core.services.playground import cost_card, describe_usage, session_totals
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
        catalog_cost_usd=Decimal("0.003"),
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
    assert (card.tag, sandbox.tag) == ("", "simulated, not charged")


def test_a_cache_hits_card_says_the_provider_was_not_called_and_what_the_call_would_have_cost() -> None:
    charged = cost_card(result(cache_hit=True, base_cost_usd=Decimal(0)), Decimal("0.04"))
    assert (charged.base_cost_usd, charged.catalog_cost_usd, charged.credits_charged) == (0, Decimal("0.003"), 2)
    assert "the provider was not called and billed nothing" in charged.note
    assert "would have cost $0.003, and was charged as if called" in charged.note
    assert charged.tag == "cached: provider not called ($0.003 at catalog price)"
    free = cost_card(
        result(cache_hit=True, base_cost_usd=Decimal(0), base_credits=0, credits_charged=0), Decimal("0.04")
    )
    assert free.charged_usd == 0 and "would have cost $0.003 (2 credits); cache hits are not charged" in free.note
    at_cost = cost_card(  # a 0% markup: one credit, in the singular
        result(cache_hit=True, base_cost_usd=Decimal(0), credits_charged=0, would_be_credits=1), Decimal("0.04")
    )
    assert "would have cost $0.003 (1 credit); cache hits" in at_cost.note


def test_session_totals() -> None:
    totals = session_totals(
        [result(), result(credits_charged=5), result(sandbox=True, credits_charged=0)], Decimal("0.04")
    )
    assert (totals.calls, totals.credits, totals.usd, totals.would_be_credits) == (3, 7, Decimal("0.28"), 9)


def test_only_configured_providers_and_the_sandbox_are_offered(sqlite_runtime: Database) -> None:
    settings = Settings(
        database_url=sqlite_runtime.settings.database_url, api_keys={"anthropic": Secret("sk-ant-xxxxxxxx")}
    )
    catalog = Services(sqlite_runtime, providers=AIProviderFactory(settings)).playground.catalog(SYSTEM)
    assert catalog.providers("chat") == ["anthropic", "sandbox"]
    assert catalog.providers("tts") == ["sandbox"]
    assert "openai" in catalog.unconfigured and "anthropic" not in catalog.unconfigured
    assert all(m.deployment_type != "dedicated" for ms in catalog.models.values() for m in ms)
    assert catalog.categories() == ["chat", "tts", "speech_to_text", "image", "music", "voice_clone"]


def _models(rt: Database, *keys: str):
    from core.catalog import get_model

    with rt.session() as s:
        return [get_model(s, model_id, provider=provider) for provider, model_id in (k.split("/", 1) for k in keys)]


def test_compare_takes_one_input_to_models_of_one_category(sqlite_runtime: Database) -> None:
    """Chat, speech, images and transcripts: each model gets the same input and is billed on its own; the sandbox
    twin is logged at its would-be cost and charged nothing."""
    import base64

    import httpx

    from tests.core.providers.fakes import json_response, wav_bytes
    from tests.core.test_generate import Env, funded_user

    rt = sqlite_runtime
    user = funded_user(rt)
    png = b"\x89PNG\r\n\x1a\n" + bytes(20)
    mp3 = b"\xff\xfb\x90\x00" + bytes(413)
    cases = [
        ("tts", "Hello there", None, httpx.Response(200, content=mp3, headers={"content-type": "audio/mpeg"})),
        (
            "image",
            "A cat",
            None,
            json_response(200, {"created": 1, "data": [{"b64_json": base64.b64encode(png).decode()}]}),
        ),
        (
            "speech_to_text",
            None,
            wav_bytes(1.0),
            json_response(200, {"text": "Hi.", "usage": {"type": "duration", "seconds": 1}}),
        ),
    ]
    openai_model = {"tts": "openai/tts-1", "image": "openai/dall-e-3", "speech_to_text": "openai/whisper-1"}
    sandbox_model = {
        "tts": "sandbox/sandbox-tts",
        "image": "sandbox/sandbox-image",
        "speech_to_text": "sandbox/sandbox-stt",
    }
    for category, prompt, audio, reply in cases:
        env = Env(rt, [reply])
        models = _models(rt, openai_model[category], sandbox_model[category])
        entries = env.services.playground.compare(
            SYSTEM, user, models, prompt, category=category, audio=audio, audio_filename="a.wav"
        )
        assert [e.error for e in entries] == [None, None], entries
        real, simulated = (e.result for e in entries)
        assert real.category == simulated.category == category
        assert real.credits_charged > 0 and simulated.sandbox and simulated.credits_charged == 0
        assert (real.text or real.data) and (simulated.text or simulated.data)
        assert len(env.upstream.requests) == 1  # the sandbox made no upstream call


def test_compare_refuses_what_it_cannot_do(sqlite_runtime: Database) -> None:
    import pytest

    from core.errors import InvalidInputError
    from tests.core.test_generate import funded_user

    rt = sqlite_runtime
    user = funded_user(rt)
    chat, tts = _models(rt, "sandbox/sandbox-chat", "sandbox/sandbox-tts")
    for kwargs, message in [
        ({"models": [chat, tts], "prompt": "hi"}, "not a chat model"),
        ({"models": [chat], "prompt": "hi"}, "two or three"),
        ({"models": [chat, chat], "prompt": "  "}, "Write the prompt"),
        ({"models": [tts, tts], "prompt": None, "category": "speech_to_text"}, "not a speech_to_text model"),
        ({"models": [chat, chat], "prompt": "hi", "category": "music"}, "Compare mode takes"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            Services(rt).playground.compare(SYSTEM, user, **kwargs)


def test_every_model_billed_per_use_has_a_sandbox_twin_priced_as_it(sqlite_runtime: Database) -> None:
    from core.catalog import list_models
    from core.catalog.types import PRICE_FIELDS

    with sqlite_runtime.session() as s:
        models = list_models(s)
    twins = {m.mirrors: m for m in models if m.provider == "sandbox"}
    for m in models:
        if m.provider == "sandbox" or m.cost_unit == "uptime":
            continue
        twin = twins[m.key]
        assert twin.category == m.category and twin.cost_unit == m.cost_unit
        assert [getattr(twin, f) for f in PRICE_FIELDS] == [getattr(m, f) for f in PRICE_FIELDS]
        assert twin.price_variants == m.price_variants
        assert "simulated" in twin.model_name
    assert twins["openai/gpt-4o"].model_id == "sandbox:openai/gpt-4o"


def test_compare_offline_prices_each_twin_as_its_real_model_and_charges_nothing(sqlite_runtime: Database) -> None:
    """No provider key at all: GPT-4o, GPT-4o mini and Llama compared through their sandbox twins. Each call shows
    what the real one would cost; no credit leaves the balance, and spend counts no revenue for them."""
    from core.services.playground import compare_summary
    from tests.core.test_generate import funded_user

    rt = sqlite_runtime
    settings = Settings(database_url=rt.settings.database_url, api_keys={})
    services = Services(rt, providers=AIProviderFactory(settings))
    user = funded_user(rt, credits=100)
    catalog = services.playground.catalog(SYSTEM)
    pool = {m.mirrors: m for m in catalog.models["chat"] if m.provider == "sandbox"}
    assert catalog.providers("chat") == ["sandbox"]  # nothing real is callable without keys
    chosen = [pool["openai/gpt-4o"], pool["openai/gpt-4o-mini"], pool["huggingface/meta-llama/Llama-3.1-8B-Instruct"]]

    entries = services.playground.compare(SYSTEM, user, chosen, "Summarise the plot of Hamlet in two sentences.")
    assert [e.error for e in entries] == [None, None, None]
    results = [e.result for e in entries]
    assert all(r.sandbox and r.credits_charged == 0 for r in results)
    # priced as the real models: the same usage costs 2.50/10.00 vs 0.15/0.60 per 1M tokens
    gpt4o, mini, llama = results
    assert gpt4o.usage == mini.usage
    assert gpt4o.base_cost_usd / mini.base_cost_usd == Decimal("2.50") / Decimal("0.15")
    assert llama.base_cost_usd < mini.base_cost_usd  # $0.02 per 1M tokens on the Hugging Face router
    assert all(r.would_be_credits >= 2 for r in results)  # at least 1 base credit, doubled by the 100% markup
    card = cost_card(gpt4o, Decimal("0.04"))
    assert card.priced_as == "openai/gpt-4o" and "nothing was charged" in card.note

    # the billing rule: no money for no service
    assert services.billing.balance(user.id).available == 100
    usage = services.spend.total_usage(SYSTEM, user.id, include_sandbox=True)
    assert (usage.requests, usage.credits, usage.cost_usd) == (3, 0, Decimal(0))

    summary = compare_summary(entries, Decimal("0.04"))
    marked = {r.model_name: (r.cheapest, r.fastest) for r in summary.rows}
    assert [name for name, (cheap, _) in marked.items() if cheap] == ["Llama 3.1 8B Instruct (simulated)"]
    # the sandbox's latency is its own (a few ms, often equal), not the models': no fastest, no tie to announce
    assert not any(fast for _, fast in marked.values()) and summary.tie_note is None
    assert summary.rounding_note is not None and "whole-credit rounding" in summary.rounding_note
    assert summary.simulated_note is not None and "none of them is marked the fastest" in summary.simulated_note


def test_the_rounding_note_names_the_spread_and_the_shared_credits() -> None:
    from core.catalog.types import ModelPrice
    from core.services.playground import CompareEntry, compare_summary

    def entry(name: str, usd: str, latency: int) -> CompareEntry:
        model = ModelPrice(
            id=1, provider="openai", model_id=name, model_name=name, category="chat", deployment_type="api_proxy",
            cost_unit="token",
        )  # fmt: skip
        cost = Decimal(usd)
        return CompareEntry(
            model=model, result=result(base_cost_usd=cost, catalog_cost_usd=cost, latency_ms=latency), error=None
        )

    summary = compare_summary(
        [entry("a", "0.000170", 300), entry("b", "0.002890", 120), entry("c", "0.001000", 900)], Decimal("0.04")
    )
    assert summary.rounding_note is not None
    assert summary.rounding_note.startswith("Three calls differing 17x in provider cost all cost 2 credits")
    assert [(r.cheapest, r.fastest) for r in summary.rows] == [(True, False), (False, True), (False, False)]
    differing = compare_summary([entry("a", "0.03", 1), entry("b", "0.05", 2)], Decimal("0.04"))
    assert differing.rounding_note is None  # 1.7x apart: not worth a sentence
    tied = compare_summary([entry("a", "0.01", 3), entry("b", "0.02", 3)], Decimal("0.04"))
    assert not any(r.fastest for r in tied.rows) and tied.tie_note is not None and "3 ms" in tied.tie_note
    # an answer from the response cache cost no provider anything; which model is cheaper is a matter of its price
    cached = entry("a", "0", 5)
    hit = replace(cached.result, cache_hit=True, catalog_cost_usd=Decimal("0.003"))  # charged 2 credits, as b
    mixed = compare_summary([replace(cached, result=hit), entry("b", "0.002", 6)], Decimal("0.04"))
    assert [(r.cached, r.provider_cost_usd, r.cheapest) for r in mixed.rows] == [
        (True, 0, False),
        (False, Decimal("0.002"), True),
    ]


def test_a_simulated_call_is_never_the_fastest() -> None:
    """The sandbox answers in a few milliseconds: beside real calls it would always win, and among simulated calls
    the winner is noise."""
    from core.catalog.types import ModelPrice
    from core.services.playground import CompareEntry, compare_summary

    def entry(name: str, latency: int, sandbox: bool) -> CompareEntry:
        model = ModelPrice(
            id=1, provider="sandbox" if sandbox else "openai", model_id=name, model_name=name, category="chat",
            deployment_type="api_proxy", cost_unit="token",
        )  # fmt: skip
        return CompareEntry(
            model=model, result=result(base_cost_usd=Decimal("0.01"), latency_ms=latency, sandbox=sandbox), error=None
        )

    mixed = compare_summary([entry("a", 300, False), entry("b", 120, False), entry("c", 2, True)], Decimal("0.04"))
    assert [r.fastest for r in mixed.rows] == [False, True, False] and mixed.tie_note is None
    simulated = compare_summary([entry("a", 3, True), entry("b", 1, True)], Decimal("0.04"))
    assert not any(r.fastest for r in simulated.rows) and simulated.tie_note is None
    one_real = compare_summary([entry("a", 300, False), entry("b", 1, True)], Decimal("0.04"))
    assert not any(r.fastest for r in one_real.rows)  # nothing real to compare it with
    real_tie = compare_summary([entry("a", 5, False), entry("b", 5, False), entry("c", 1, True)], Decimal("0.04"))
    assert not any(r.fastest for r in real_tie.rows) and real_tie.tie_note is not None and "5 ms" in real_tie.tie_note
