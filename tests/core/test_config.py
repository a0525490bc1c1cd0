"""Settings from the environment: defaults, and a clear error for a value that cannot be used."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import ConfigError


def settings(tmp_path: Path, **env: str):
    return load_settings(env, secrets_path=tmp_path / "none.toml")


def test_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert (s.credit_usd, s.default_markup_pct, s.reporting_tz, s.hold_ttl_seconds) == (
        Decimal("0.04"),
        Decimal("100"),
        "UTC",
        600,
    )
    assert s.charge_cache_hits is True
    # the response cache: a week, 500 MB, each user's entries their own
    assert (s.response_cache_max_age_seconds, s.response_cache_max_mb, s.response_cache_shared) == (604800, 500, False)


def test_values_are_read(tmp_path: Path) -> None:
    s = settings(tmp_path, HOLD_TTL_SECONDS="900", CHARGE_CACHE_HITS="false", REPORTING_TZ="Europe/Paris")
    assert (s.hold_ttl_seconds, s.charge_cache_hits, s.reporting_tz) == (900, False, "Europe/Paris")
    c = settings(tmp_path, RESPONSE_CACHE_MAX_AGE_SECONDS="60", RESPONSE_CACHE_MAX_MB="0", RESPONSE_CACHE_SHARED="true")
    assert (c.response_cache_max_age_seconds, c.response_cache_max_mb, c.response_cache_shared) == (60, 0, True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOLD_TTL_SECONDS", "0"),
        ("HOLD_TTL_SECONDS", "-5"),
        ("HOLD_TTL_SECONDS", "1.5"),
        ("HOLD_TTL_SECONDS", "999999"),
        ("HOLD_TTL_SECONDS", "2"),  # shorter than a plain call may take: its hold expired under it
        ("CREDIT_USD", "0"),
        ("CREDIT_USD", "abc"),
        ("REPORTING_TZ", "Mars/Olympus"),
        ("RESPONSE_CACHE_MAX_AGE_SECONDS", "0"),
        ("RESPONSE_CACHE_MAX_AGE_SECONDS", "abc"),
        ("RESPONSE_CACHE_MAX_MB", "-1"),
        ("RESPONSE_CACHE_MAX_MB", "1e9"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        settings(tmp_path, **{name: value})


def test_rounding_policy(tmp_path: Path) -> None:
    assert settings(tmp_path).rounding_policy == "per_call"
    assert settings(tmp_path, ROUNDING_POLICY="Accrual").rounding_policy == "accrual"
    with pytest.raises(ConfigError, match="ROUNDING_POLICY='monthly' is not a rounding policy; use per_call"):
        settings(tmp_path, ROUNDING_POLICY="monthly")
