from decimal import Decimal
from pathlib import Path

import pytest

from core.billing import UnpricedModelError, price_uptime, price_usage
from core.catalog import ModelPrice, get_model
from core.db import Database
from core.usage import Usage


def model(rt: Database, model_id: str) -> ModelPrice:
    with rt.session() as s:
        return get_model(s, model_id)


def test_openai_tokens_with_cached_input(sqlite_runtime: Database) -> None:
    m = model(sqlite_runtime, "gpt-4o")
    # 1,000 prompt tokens of which 400 cached, 500 completion tokens
    cost = price_usage(m, Usage(input_tokens=1000, cached_tokens=400, output_tokens=500))
    assert (
        cost
        == Decimal("600") * Decimal("2.50") / 10**6
        + Decimal(400) * Decimal("1.25") / 10**6
        + Decimal(500) * Decimal(10) / 10**6
    )
    assert cost == Decimal("0.007000000")


def test_anthropic_cache_write_and_read(sqlite_runtime: Database) -> None:
    m = model(sqlite_runtime, "claude-sonnet-4-5")
    usage = Usage(input_tokens=10_000, cache_write_tokens=2_000, cached_tokens=5_000, output_tokens=1_000)
    # 3,000 plain x $3 + 2,000 writes x $3.75 + 5,000 reads x $0.30 + 1,000 out x $15, per 1M
    assert price_usage(m, usage) == Decimal("0.009") + Decimal("0.0075") + Decimal("0.0015") + Decimal("0.015")


def test_anthropic_long_context_applies_to_whole_request(sqlite_runtime: Database) -> None:
    m = model(sqlite_runtime, "claude-sonnet-4-5")
    usage = Usage(input_tokens=250_000, output_tokens=10_000)
    assert price_usage(m, usage) == Decimal("1.5") + Decimal("0.225")


def test_seconds_characters_requests_images(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    assert price_usage(model(rt, "whisper-1"), Usage(seconds=Decimal(30))) == Decimal("0.003")
    assert price_usage(model(rt, "facebook/mms-tts-eng"), Usage(seconds=Decimal("12.5"))) == Decimal("0.00125")
    assert price_usage(model(rt, "tts-1"), Usage(characters=1000)) == Decimal("0.015")
    assert price_usage(model(rt, "suno/bark"), Usage()) == Decimal("0.01")
    dalle = model(rt, "dall-e-3")
    assert price_usage(dalle, Usage(images=1)) == Decimal("0.04")
    assert price_usage(dalle, Usage(images=2, image_size="1024x1792", image_quality="hd")) == Decimal("0.24")
    with pytest.raises(UnpricedModelError, match="no price for standard images of 512x512"):
        price_usage(dalle, Usage(images=1, image_size="512x512"))


def test_dedicated_uptime_by_the_minute() -> None:
    assert price_uptime(Decimal("0.60"), 90) == Decimal("0.9")
    assert price_uptime(Decimal("0.80"), 1) == Decimal("0.013333334")  # rounded up to the nano-dollar


def test_missing_price_is_refused_not_free(sqlite_runtime: Database) -> None:
    m = model(sqlite_runtime, "gpt-4o")
    unpriced = ModelPrice(**{**m.__dict__, "output_per_1m_usd": None})
    with pytest.raises(UnpricedModelError, match="no output-token price"):
        price_usage(unpriced, Usage(input_tokens=10, output_tokens=10))
    with pytest.raises(UnpricedModelError, match="Unknown model"):
        price_usage(None, Usage())


def test_sandbox_is_priced_like_its_mirror(sqlite_runtime: Database, tmp_path: Path) -> None:
    sb = model(sqlite_runtime, "sandbox-chat")
    real = model(sqlite_runtime, "gpt-4o-mini")
    u = Usage(input_tokens=1234, output_tokens=567)
    assert price_usage(sb, u) == price_usage(real, u) > 0
