"""Deterministic synthetic history for the embedded default: users, usage events and the matching ledger.

Everything is computed in whole nano-dollars and whole credits with numpy, so every row equals what
`price_usage` and the money rules give for its usage, and the ledger is exactly consistent:
each successful usage row's credits equal its debit, every cached balance equals the sum of its transactions,
and no balance ever goes below zero (grants and top-ups arrive before the spend that needs them).
"""

from __future__ import annotations

import functools
import gc
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from core.catalog.lookup import list_models
from core.catalog.types import ModelPrice
from core.db import Database
from core.db.models import (
    AIUsageLog,
    Alert,
    AlertDeliveryAttempt,
    AlertNotification,
    AuditLog,
    BudgetPeriod,
    CreditHold,
    CreditTransaction,
    User,
)
from core.demo.budgets import recount_budget_counters
from core.errors import InvalidInputError

T = TypeVar("T")

Progress = Callable[[int, int], None]
# Columns the demo leaves out of its INSERTs (NULL, or the column's server default: no demo call wrote a 1-hour
# cache, was disputed or was billed by accrual); every other column of the two tables is written.
# tests/core/test_schema_contract.py holds these lists to the ORM models.
USAGE_LEFT_NULL = frozenset(
    {
        "endpoint_id",
        "request_id",
        "idempotency_key",
        "cache_write_1h_tokens",
        "usage_disputed",
        "accrued_nano",
        "api_key_id",
    }
)
LEDGER_LEFT_NULL = frozenset({"idempotency_key", "metadata"})
NANO_PER_USD = 10**9

FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jamal",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pablo",
    "Qin",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Silva",
    "Novak",
    "Okafor",
    "Tanaka",
    "Muller",
    "Haddad",
    "Kowalski",
    "Rossi",
    "Nguyen",
    "Larsen",
    "Costa",
    "Ibrahim",
    "Schmidt",
    "Moreau",
    "Park",
    "Petrov",
    "Garcia",
    "Mensah",
    "Khan",
    "Dubois",
]
ROLE_COUNTS = {"admin": 2, "finance": 4, "engineer": 14, "pm": 30}
MARKUPS = np.array([100, 100, 100, 100, 50, 150, 200, 80])

# (provider, model_id, weight for pm, weight for engineer)
MIX: list[tuple[str, str, float, float]] = [
    ("openai", "gpt-4o", 10, 6),
    ("openai", "gpt-4o-mini", 22, 12),
    ("anthropic", "claude-sonnet-4-5", 9, 8),
    ("anthropic", "claude-haiku-4-5", 5, 4),
    ("anthropic", "claude-opus-4-5", 1.5, 2),
    ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", 3, 8),
    ("openai", "whisper-1", 5, 4),
    ("openai", "tts-1", 6, 3),
    ("openai", "tts-1-hd", 2, 1),
    ("openai", "dall-e-3", 3, 1),
    ("minimax", "speech-02-hd", 4, 3),
    ("minimax", "speech-02-turbo", 3, 3),
    ("minimax", "music-2.0", 1, 0.5),
    ("minimax", "voice-clone", 0.2, 0.2),
    ("huggingface", "facebook/mms-tts-eng", 2, 9),
    ("huggingface", "openai/whisper-large-v3", 2, 9),
    ("huggingface", "suno/bark", 1, 4),
    ("huggingface", "meta-llama/Llama-3.1-8B-Instruct", 2, 10),
    ("sandbox", "sandbox-chat", 2.5, 1.5),
    ("sandbox", "sandbox-tts", 0.8, 0.5),
    ("sandbox", "sandbox-image", 0.3, 0.2),
]
IMAGE_VARIANTS = [
    ("standard", "1024x1024", 0.7),
    ("standard", "1024x1792", 0.1),
    ("hd", "1024x1024", 0.15),
    ("hd", "1024x1792", 0.05),
]
ERRORS = [
    "upstream 503: model overloaded, retried 3 times",
    "upstream 429: rate limited",
    "timeout after 60 s",
    "upstream 500: internal error",
]


@dataclass(frozen=True)
class DemoReport:
    users: int
    usage_rows: int
    transactions: int
    seconds: float
    teams: int = 0  # written by `write_demo_budgets` (the services' demo writes both)
    budgets: int = 0


def _nano(value: Decimal | None, scale: int, what: str) -> int:
    """A price as an integer number of nano-dollars per `1/scale` unit; demo prices must be exact at that scale."""
    if value is None:
        raise InvalidInputError(f"demo model has no {what} price")
    n = Decimal(value) * NANO_PER_USD / scale
    if n != n.to_integral_value():
        raise InvalidInputError(f"demo price {value} for {what} is not a whole number of nano-dollars per unit")
    return int(n)


def _lognormal_int(rng: np.random.Generator, median: float, sigma: float, n: int, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.round(rng.lognormal(np.log(median), sigma, n)), lo, hi).astype(np.int64)


def _usage_for(rng: np.random.Generator, m: ModelPrice, n: int) -> dict[str, np.ndarray]:
    """Usage quantities for `n` calls of model `m`, and their cost in nano-dollars (exactly `price_usage`)."""
    z = np.zeros(n, dtype=np.int64)
    u: dict[str, np.ndarray] = {
        k: z.copy() for k in ("input", "output", "cached", "cache_write", "chars", "ms", "images")
    }
    u["variant"] = np.full(n, -1, dtype=np.int64)
    cost = np.zeros(n, dtype=np.int64)
    if m.cost_unit == "token":
        inp = _lognormal_int(rng, 900, 1.0, n, 5, 150_000)
        out = _lognormal_int(rng, 350, 0.8, n, 1, 8_000)
        cached = np.where(rng.random(n) < 0.25, (inp * rng.uniform(0.2, 0.8, n)).astype(np.int64), 0)
        cw_rate = m.price_variants.get("cache_write_per_1m_usd")
        cw = np.where(rng.random(n) < 0.08, ((inp - cached) * 0.5).astype(np.int64), 0) if cw_rate else z.copy()
        u.update(input=inp, output=out, cached=cached, cache_write=cw)
        in_r = _nano(m.input_per_1m_usd, 10**6, "input")
        out_r = _nano(m.output_per_1m_usd, 10**6, "output")
        ca_r = _nano(m.cached_input_per_1m_usd, 10**6, "cached") if m.cached_input_per_1m_usd is not None else in_r
        cw_r = _nano(Decimal(cw_rate), 10**6, "cache write") if cw_rate else 0
        cost = (inp - cached - cw) * in_r + out * out_r + cached * ca_r + cw * cw_r
    elif m.cost_unit == "character":
        chars = _lognormal_int(rng, 400, 0.9, n, 5, 10_000)
        u["chars"] = chars
        cost = chars * _nano(m.per_character_usd, 1, "per-character")
    elif m.cost_unit == "second":
        median_ms = 45_000 if m.category == "speech_to_text" else 12_000
        ms = _lognormal_int(rng, median_ms, 0.9, n, 500, 3_600_000)
        u["ms"] = ms
        cost = ms * _nano(m.per_second_usd, 1000, "per-second")
    elif m.cost_unit == "request":
        cost = np.full(n, _nano(m.per_request_usd, 1, "per-request"), dtype=np.int64)
    elif m.cost_unit == "image":
        probs = np.array([p for *_, p in IMAGE_VARIANTS])
        v = rng.choice(len(IMAGE_VARIANTS), size=n, p=probs / probs.sum())
        prices = np.array(
            [_nano(Decimal(m.price_variants["images"][f"{q}/{s}"]), 1, "image") for q, s, _ in IMAGE_VARIANTS]
        )
        u["images"] = np.ones(n, dtype=np.int64)
        u["variant"] = v
        cost = prices[v]
    u["cost"] = cost.astype(np.int64)
    return u


def _ceil_div(a: np.ndarray, b: int) -> np.ndarray:
    return -((-a) // b)


def _timestamps(rng: np.random.Generator, n: int, days: int, end: datetime) -> np.ndarray:
    """Event times with a weekly shape, a daily shape peaking in the afternoon (UTC) and slow growth."""
    start = end - timedelta(days=days)
    day_idx = np.arange(days)
    weekday = np.array([(start + timedelta(days=int(d))).weekday() for d in day_idx])
    day_w = np.where(weekday >= 5, 0.35, 1.0) * (0.7 + 0.6 * day_idx / max(days - 1, 1))
    hours = np.arange(24)
    hour_w = 0.15 + np.exp(-0.5 * ((hours - 14.5) / 3.2) ** 2) + 0.25 * np.exp(-0.5 * ((hours - 20) / 1.5) ** 2)
    d = rng.choice(days, size=n, p=day_w / day_w.sum())
    h = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    micro = rng.integers(0, 3_600_000_000, size=n)
    start_us = np.datetime64(start.replace(tzinfo=None), "us")
    ts = start_us + (d * 86_400_000_000 + h * 3_600_000_000 + micro).astype("timedelta64[us]")
    return np.minimum(ts, np.datetime64(end.replace(tzinfo=None), "us") - np.timedelta64(1, "s"))


def _ts_text(ts: np.ndarray) -> np.ndarray:
    return np.char.replace(np.datetime_as_string(ts, unit="us"), "T", " ")


# Repeated identical requests: cache hits repeat an earlier text-to-speech or transcription request, and so do 1% of
# the others (sent with no_cache); 8% of chat, image and music requests repeat a popular request (the cache is off for
# them). Each model has REPEAT_POOL popular requests.
REPEAT_POOL = 400
REPEAT_SHARE = {"cached": 0.01, "uncached": 0.08}
_MASK64 = (1 << 64) - 1


def _fingerprints(
    rng: np.random.Generator, model_idx: np.ndarray, category: np.ndarray, cache_hit: np.ndarray, seed: int
) -> np.ndarray:
    """A request fingerprint per row: 16 hex digits of a 64-bit hash (real calls carry a full sha256, whose first 16
    digits are what the analytics store keeps), shared by the rows that repeat one of their model's popular requests."""
    n = model_idx.size
    cacheable = np.isin(category, ["tts", "speech_to_text"])
    share = np.where(cacheable, REPEAT_SHARE["cached"], REPEAT_SHARE["uncached"])
    repeat = cache_hit | (rng.random(n) < share)
    popular = model_idx.astype(np.uint64) * np.uint64(REPEAT_POOL) + rng.integers(0, REPEAT_POOL, n).astype(np.uint64)
    keys = np.where(repeat, popular, np.uint64(1 << 40) + np.arange(n, dtype=np.uint64))
    z = keys + np.uint64((seed * 0x9E3779B97F4A7C15) & _MASK64)  # splitmix64: distinct per seed (history window)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return np.array([f"{x:016x}" for x in z.tolist()], dtype=object)


def _gc_paused(fn: Callable[..., T]) -> Callable[..., T]:
    """Run `fn` with the cyclic garbage collector off: millions of short-lived tuples, none of them cyclic, and the
    collector would only slow the work down."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper


# The demo builds its rows in memory as numpy columns: a trillion rows asked for 7 TiB after users were written.
# Ten million rows is the largest history the spend benchmarks measure; ten years of days keeps every timestamp far
# inside date arithmetic.
DEMO_MAX_ROWS = 10_000_000
DEMO_MAX_DAYS = 3_650
DEMO_MAX_SEED = 2**32 - 1  # numpy's generators take seeds 0 .. 2**32 - 1


def check_demo_size(*, rows: int, days: int, seed: int) -> None:
    """Refuse, before anything is written, a demo this engine cannot build; the message says the limit."""
    if not 1 <= rows <= DEMO_MAX_ROWS:
        raise InvalidInputError(f"--rows {rows:,} is out of range: write 1 to {DEMO_MAX_ROWS:,} usage events.")
    if not 1 <= days <= DEMO_MAX_DAYS:
        raise InvalidInputError(f"--days {days:,} is out of range: write 1 to {DEMO_MAX_DAYS:,} days of history.")
    if not 0 <= seed <= DEMO_MAX_SEED:
        raise InvalidInputError(f"--seed {seed:,} is out of range: use 0 to {DEMO_MAX_SEED:,}.")


@_gc_paused
def write_demo_history(
    rt: Database,
    *,
    rows: int = 200_000,
    days: int = 90,
    seed: int = 7,
    end: datetime | None = None,
    replace: bool = False,
    progress: Progress | None = None,
) -> DemoReport:
    """Write `rows` usage events over `days` days ending at `end` (default: now), deterministic for `seed`."""
    import time

    check_demo_size(rows=rows, days=days, seed=seed)
    t0 = time.perf_counter()
    tick = progress or (lambda done, total: None)
    end = (end or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    rng = np.random.default_rng(seed)
    credit_n = int(rt.settings.credit_usd * NANO_PER_USD)

    with rt.session() as s:
        existing = int(s.scalar(select(func.count()).select_from(AIUsageLog)) or 0)
        if existing and not replace:
            raise InvalidInputError(
                f"The database already has {existing:,} usage events; pass --replace to wipe usage, ledger and demo "
                "users and write a fresh history."
            )
        if replace:
            _wipe(s)
        models = {m.key: m for m in list_models(s)}
        missing = [f"{p}/{mid}" for p, mid, *_ in MIX if f"{p}/{mid}" not in models]
        if missing:
            raise InvalidInputError(f"Run `python -m core init` first: the catalog lacks {', '.join(missing)}.")
        user_rows = _make_users(s, rng, end - timedelta(days=days + 1))
    tick(0, rows)

    # ---- who calls which model, when ------------------------------------------------------------------
    n_users = len(user_rows)
    roles = np.array([u["role"] for u in user_rows])
    user_w = rng.pareto(1.3, n_users) + 0.05  # heavy tail: a few users spend most
    user_w = np.where(roles == "finance", user_w * 0.1, user_w)
    user_idx = rng.choice(n_users, size=rows, p=user_w / user_w.sum())
    is_eng = roles[user_idx] == "engineer"
    w_pm = np.array([m[2] for m in MIX])
    w_eng = np.array([m[3] for m in MIX])
    model_idx = np.where(
        is_eng,
        rng.choice(len(MIX), size=rows, p=w_eng / w_eng.sum()),
        rng.choice(len(MIX), size=rows, p=w_pm / w_pm.sum()),
    )
    ts = _timestamps(rng, rows, days, end)
    failed = rng.random(rows) < 0.02

    cols = {
        k: np.zeros(rows, dtype=np.int64)
        for k in ("input", "output", "cached", "cache_write", "chars", "ms", "images", "cost")
    }
    variant = np.full(rows, -1, dtype=np.int64)
    for i, (prov, mid, *_w) in enumerate(MIX):
        sel = np.nonzero(model_idx == i)[0]
        if sel.size:
            u = _usage_for(rng, models[f"{prov}/{mid}"], sel.size)
            for k in cols:
                cols[k][sel] = u[k]
            variant[sel] = u["variant"]
    mix_models = [models[f"{p}/{mid}"] for p, mid, *_ in MIX]
    is_sandbox = np.array([m.provider == "sandbox" for m in mix_models])[model_idx]
    category = np.array([m.category for m in mix_models], dtype=object)[model_idx]
    markup = np.array([u["markup"] for u in user_rows], dtype=np.int64)[user_idx]
    base_credits = _ceil_div(cols["cost"], credit_n)
    final_credits = _ceil_div(base_credits * (100 + markup), 100)
    charged = ~failed & ~is_sandbox
    cost_n = np.where(failed, 0, cols["cost"])
    credits = np.where(charged, final_credits, 0)
    for k in ("output", "cached", "cache_write", "ms", "images"):  # a failed call produced nothing
        cols[k] = np.where(failed, 0, cols[k])
    cache_hit = ~failed & np.isin(category, ["tts", "speech_to_text"]) & (rng.random(rows) < 0.06)
    fingerprint = _fingerprints(np.random.default_rng([seed, 18]), model_idx, category, cache_hit, seed)
    lat_median = {"chat": 1400, "tts": 900, "speech_to_text": 2500, "image": 9000, "music": 30000, "voice_clone": 6000}
    latency = np.array([lat_median[c] for c in category]) * rng.lognormal(0, 0.45, rows)
    latency = np.where(cache_hit, rng.integers(2, 15, rows), latency).astype(np.int64)

    # ---- the ledger: grants and top-ups land before the spend that needs them --------------------------
    order = np.lexsort((ts, user_idx))
    debit_pos = order[charged[order]]  # charged events, sorted by user then time
    d_user = user_idx[debit_pos]
    d_amt = credits[debit_pos]
    d_ts = ts[debit_pos]
    starts = np.r_[0, np.flatnonzero(np.diff(d_user)) + 1] if d_user.size else np.array([], dtype=np.int64)
    cum = np.cumsum(d_amt)
    group_base = np.repeat(np.r_[0, cum[starts[1:] - 1]] if starts.size else [], np.diff(np.r_[starts, d_user.size]))
    user_cum = cum - group_base
    totals = np.zeros(n_users, dtype=np.int64)
    np.add.at(totals, d_user, d_amt)
    block = np.maximum(500, _ceil_div(totals, 6) // 100 * 100 + 100)
    grant = 2 * block
    needed = np.maximum(0, _ceil_div(user_cum - grant[d_user], block[d_user]))
    prev = np.r_[0, needed[:-1]]
    prev[starts] = 0
    jumps = needed - prev
    top_pos = np.flatnonzero(jumps > 0)

    tx_user = np.concatenate([np.arange(n_users), d_user[top_pos], d_user])
    tx_amt = np.concatenate([grant, jumps[top_pos] * block[d_user[top_pos]], -d_amt])
    first_ts = np.datetime64((end - timedelta(days=days, hours=1)).replace(tzinfo=None), "us")
    tx_ts = np.concatenate([np.full(n_users, first_ts), d_ts[top_pos] - np.timedelta64(1, "s"), d_ts])
    tx_kind = np.concatenate([np.zeros(n_users, np.int64), np.ones(top_pos.size, np.int64), np.full(d_user.size, 2)])
    # running balance per user in time order (grants/top-ups before a debit at the same instant)
    per_user = np.lexsort((tx_kind, tx_ts, tx_user))
    amt_sorted = tx_amt[per_user]
    cum_tx = np.cumsum(amt_sorted)
    u_sorted = tx_user[per_user]
    tx_starts = np.r_[0, np.flatnonzero(np.diff(u_sorted)) + 1]
    base = np.repeat(np.r_[0, cum_tx[tx_starts[1:] - 1]], np.diff(np.r_[tx_starts, u_sorted.size]))
    balance_after = np.empty_like(tx_amt)
    balance_after[per_user] = cum_tx - base
    assert (balance_after >= 0).all(), "demo ledger would overdraw"
    final_balance = np.zeros(n_users, dtype=np.int64)
    np.add.at(final_balance, tx_user, tx_amt)

    # ids in time order, continuing after whatever the tables hold
    with rt.session() as s:
        tx_id0 = int(s.scalar(select(func.coalesce(func.max(CreditTransaction.id), 0))) or 0) + 1
        us_id0 = int(s.scalar(select(func.coalesce(func.max(AIUsageLog.id), 0))) or 0) + 1
        for u, bal in zip(user_rows, final_balance.tolist(), strict=True):
            s.get(User, u["id"]).credit_balance = bal
    tx_order = np.lexsort((tx_kind, tx_ts))
    tx_ids = np.empty(tx_amt.size, dtype=np.int64)
    tx_ids[tx_order] = np.arange(tx_id0, tx_id0 + tx_amt.size)
    us_order = np.argsort(ts, kind="stable")
    us_ids = np.empty(rows, dtype=np.int64)
    us_ids[us_order] = np.arange(us_id0, us_id0 + rows)
    usage_tx = np.full(rows, -1, dtype=np.int64)
    usage_tx[debit_pos] = tx_ids[n_users + top_pos.size :]

    user_ids = np.array([u["id"] for u in user_rows], dtype=np.int64)
    model_pk = np.array([m.id for m in mix_models], dtype=np.int64)[model_idx]
    provider = np.array([m.provider for m in mix_models], dtype=object)[model_idx]
    deployment = np.array([m.deployment_type for m in mix_models], dtype=object)[model_idx]
    model_name = np.array([m.model_id for m in mix_models], dtype=object)[model_idx]
    # SQLite keeps NUMERIC as a double and SQLAlchemy reads it back rounded to the column's 9 places, so binding
    # the nearest double of an exact nano-dollar amount stores what the ORM would (PostgreSQL parses it exactly).
    usd_value = cost_n / NANO_PER_USD
    cost_usd_value = (credits * credit_n) / NANO_PER_USD
    meta = np.full(rows, None, dtype=object)
    for v, (q, size, _p) in enumerate(IMAGE_VARIANTS):
        meta[variant == v] = json.dumps({"size": size, "quality": q})
    # a cache hit (charged at catalog price) reached no provider: 0 provider cost, its catalog cost in metadata, as
    # core/billing/usage_rows.py writes a hit (cache hits are audio calls: no image metadata to keep)
    for i in np.flatnonzero(cache_hit):
        meta[i] = json.dumps({"catalog_cost_usd": format(Decimal(int(cost_n[i])).scaleb(-9), "f")})
    usd_value = np.where(cache_hit, 0, usd_value)
    err_idx = rng.integers(0, len(ERRORS), rows)
    error = np.where(failed, np.array(ERRORS, dtype=object)[err_idx], None)
    status = np.where(failed, "failed", "success")
    seconds_value = cols["ms"] / 1000

    # Columns stay numpy arrays until the final, ordered tolist(); NULL-only columns are left out of the INSERT.
    usage_columns: dict[str, np.ndarray] = {
        "id": us_ids,
        "created_at": _ts_text(ts),
        "user_id": user_ids[user_idx],
        "ai_model_id": model_pk,
        "provider": provider,
        "category": category,
        "deployment_type": deployment,
        "input_tokens": cols["input"],
        "output_tokens": cols["output"],
        "cached_tokens": cols["cached"],
        "cache_write_tokens": cols["cache_write"],
        "characters": cols["chars"],
        "duration_seconds": seconds_value,
        "images": cols["images"],
        "requests_count": np.ones(rows, dtype=np.int64),
        "base_cost_usd": usd_value,
        "markup_pct": markup,
        "cost_credits": credits,
        "charged_usd": cost_usd_value,
        "status": status,
        "error": error,
        "latency_ms": latency,
        "cache_hit": cache_hit,
        "sandbox": is_sandbox,
        "transaction_id": np.where(usage_tx > 0, usage_tx, None),
        "metadata": meta,
        "request_fingerprint": fingerprint,
        # the demo's calls came from the Playground, one in seven from the command line (no API keys yet)
        "source": np.where(np.arange(rows) % 7 == 3, "cli", "playground").astype(object),
    }
    tx_desc = np.concatenate(
        [
            np.full(n_users, "welcome grant", dtype=object),
            np.full(top_pos.size, "top-up", dtype=object),
            np.char.add("usage ", model_name[debit_pos].astype(str)).astype(object),
        ]
    )
    tx_columns: dict[str, np.ndarray] = {
        "id": tx_ids,
        "created_at": _ts_text(tx_ts),
        "user_id": user_ids[tx_user],
        "amount": tx_amt,
        "transaction_type": np.array(["grant", "topup", "usage"], dtype=object)[tx_kind],
        "description": tx_desc,
        "balance_after": balance_after,
    }

    _bulk_load(
        rt,
        direct=("ai_usage_log", usage_columns, us_order),
        staged=("credit_transactions", tx_columns, tx_order),
        tick=lambda k: tick(k, rows),
    )
    if replace:  # budgets in force count the new history from now on
        recount_budget_counters(rt)
    tick(rows, rows)
    return DemoReport(n_users, rows, int(tx_amt.size), time.perf_counter() - t0)


Table = tuple[str, dict[str, np.ndarray], np.ndarray]


def _ordered_batches(columns: dict[str, np.ndarray], order: np.ndarray, chunk: int = 100_000) -> Iterator[list[tuple]]:
    """Rows in `order`: each column is put in order once (numpy take, then tolist) and zipped lazily in C."""
    ordered = [col[order].tolist() for col in columns.values()]
    rows = zip(*ordered, strict=True)
    for _ in range(0, order.size, chunk):
        yield list(islice(rows, chunk))


def _insert_sql(table: str, names: tuple[str, ...] | list[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608


def _write_staging(path: str, tables: list[Table]) -> None:
    """Child process: write tables into a bare staging database (no indexes, no constraints)."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    for name, columns, order in tables:
        conn.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
        for rows in _ordered_batches(columns, order):
            conn.executemany(_insert_sql(name, list(columns)), rows)
    conn.execute("COMMIT")
    conn.close()


# Share of the directly written table that the child takes as well, so both cores finish together (measured: the
# usage table costs about 3.5x the ledger's per row set, so the child takes the ledger plus the last 30% of usage).
CHILD_SHARE_OF_DIRECT = 0.3


def _bulk_load(rt: Database, direct: Table, staged: Table, tick: Callable[[int], None]) -> None:
    """Write both tables in one database transaction, as fast as the machine allows.

    SQLite: `staged` is written by a forked child into a staging file while this process writes `direct`, using both
    cores; the staging rows are then copied in with one INSERT ... SELECT, and secondary indexes are rebuilt once.
    PostgreSQL: COPY.
    """
    raw = rt.engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        if rt.engine.dialect.name == "sqlite":
            _sqlite_load(dbapi, rt.engine.url.database or "", direct, staged, tick)
        else:
            with dbapi.cursor() as cur:
                for table, columns, order in (staged, direct):
                    done = 0
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
                        for rows in _ordered_batches(columns, order):
                            for row in rows:
                                cp.write_row(row)
                            done += len(rows)
                            if table == direct[0]:
                                tick(done)
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"  # noqa: S608
                    )
            dbapi.commit()
    finally:
        raw.close()


def _fork_is_safe() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _sqlite_load(dbapi: Any, db_path: str, direct: Table, staged: Table, tick: Callable[[int], None]) -> None:
    import multiprocessing
    import os

    staging = f"{db_path}.staging-{os.getpid()}"
    for suffix in ("", "-journal"):
        if os.path.exists(staging + suffix):
            os.remove(staging + suffix)
    child = None
    child_tables = [staged]
    # Forked only from a process with no other thread: a child forked while another thread holds a lock (SQLite's
    # memory mutex while an alert timer or a page's query runs) waits for it forever. Otherwise one core does it all.
    if _fork_is_safe() and db_path not in ("", ":memory:"):
        cut = int(direct[2].size * (1 - CHILD_SHARE_OF_DIRECT))
        child_tables.append((direct[0], direct[1], direct[2][cut:]))
        direct = (direct[0], direct[1], direct[2][:cut])
        child = multiprocessing.get_context("fork").Process(target=_write_staging, args=(staging, child_tables))
        child.start()
    cur = dbapi.cursor()
    try:
        tables = (direct[0], staged[0])
        indexes = cur.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (?, ?)",
            tables,
        ).fetchall()
        cur.execute("PRAGMA cache_size = -262144")
        cur.execute("PRAGMA foreign_keys = OFF")  # references were built from rows just read; checked by tests
        if child is not None:
            cur.execute("ATTACH DATABASE ? AS staging", (staging,))
        # Deferred BEGIN: locks only what it touches, so the child can keep writing the attached staging file.
        cur.execute("BEGIN")
        for name, _sql in indexes:  # rebuilt once at the end: far faster than maintaining them row by row
            cur.execute(f'DROP INDEX "{name}"')
        done = 0
        for rows in _ordered_batches(direct[1], direct[2]):
            cur.executemany(_insert_sql(direct[0], list(direct[1])), rows)
            done += len(rows)
            tick(done)
        if child is None:
            for rows in _ordered_batches(staged[1], staged[2]):
                cur.executemany(_insert_sql(staged[0], list(staged[1])), rows)
        else:
            child.join()
            if child.exitcode != 0:
                raise RuntimeError(f"demo staging writer failed with exit code {child.exitcode}")
            for table, columns, _order in child_tables:
                names = ", ".join(columns)
                cur.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM staging.{table}")  # noqa: S608
            tick(done + child_tables[-1][2].size)
        for _name, index_sql in indexes:
            cur.execute(index_sql)
        cur.execute("COMMIT")
    except BaseException:
        if dbapi.in_transaction:
            cur.execute("ROLLBACK")
        raise
    finally:
        if child is not None:
            if child.is_alive():
                child.terminate()
                child.join()
            cur.execute("DETACH DATABASE staging") if _attached(cur) else None
        cur.execute("PRAGMA foreign_keys = ON")
        for suffix in ("", "-journal"):
            if os.path.exists(staging + suffix):
                os.remove(staging + suffix)


def _attached(cur: Any) -> bool:
    return any(row[1] == "staging" for row in cur.execute("PRAGMA database_list").fetchall())


def _make_users(s: Session, rng: np.random.Generator, created: datetime) -> list[dict[str, Any]]:
    existing = {u.email: u for u in s.scalars(select(User))}
    out = []
    k = 0
    for role, count in ROLE_COUNTS.items():
        for _ in range(count):
            first, last = FIRST[k % len(FIRST)], LAST[(k * 7) % len(LAST)]
            email = f"{first}.{last}@demo.example".lower()
            if k == 0:
                email, first, last = "admin@demo.example", "Ada", "Admin"
            markup = int(MARKUPS[int(rng.integers(0, len(MARKUPS)))]) if role in ("pm", "engineer") else 100
            user = existing.get(email)
            if user is None:
                user = User(
                    email=email,
                    name=f"{first} {last}",
                    role=role,
                    developer_markup_pct=Decimal(markup),
                    credit_balance=0,
                    created_at=created,
                )
                s.add(user)
                s.flush()
            else:
                markup = int(user.developer_markup_pct)
                if user.developer_markup_pct != markup:
                    raise InvalidInputError(f"{email} has a fractional markup; the demo needs whole percents.")
            out.append({"id": user.id, "email": email, "role": role, "markup": markup})
            k += 1
    return out


def _wipe(s: Session) -> None:
    """Remove every usage event, ledger row and hold (demo databases only: the CLI asks for --replace), and what was
    derived from them: budget counters (made again from the new ledger when the history is written) and alerts
    (about spend that is gone; left, they would also stop the same thresholds alerting on the new history)."""
    for model in (AIUsageLog, CreditHold, CreditTransaction, BudgetPeriod):
        s.execute(delete(model))
    for model in (AlertDeliveryAttempt, AlertNotification, Alert, AuditLog):
        s.execute(delete(model))
    s.execute(text("UPDATE users SET credit_balance = 0, credit_remainder_nano = 0"))  # the accrual remainder too
