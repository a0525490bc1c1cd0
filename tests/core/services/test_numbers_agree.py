"""One number, one value: every surface that reports a balance, a spend, a provider cost, a margin or a request count
agrees exactly with the ledger (the system of record) and with every other surface.

A mixed history is made through the services on SQLite with a reporting time zone that has DST (America/New_York):
four people, grants, chat calls through OpenAI-shaped MockTransport upstreams (one through an API key, as the gateway
makes them), a refund, sandbox calls, a failed call, a response-cache hit, calls either side of the local month start
(some of them already in the new month in UTC but not locally) and on the local DST day, and a hold in flight. Every
figure is then read from each service (and the command line's --json) and compared with Decimal / int equality.

The history is made once with cache hits charged at catalog price (the default, on SQLite and PostgreSQL) and once
with CHARGE_CACHE_HITS=false: either way the hit reached no provider, so provider cost leaves it out and the cache
saving is its catalog cost, while its credits (if any) stay revenue.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

import core.billing.ledger as ledger_module
from core.access import SYSTEM, Principal
from core.analytics.filters import local_midnight_utc, zone
from core.billing.key_limits import KeyLimitError
from core.cli import main
from core.config import Secret, Settings
from core.db import Database
from core.db.models import AIUsageLog, CreditTransaction
from core.providers import AIProviderFactory, BadRequestError, GenerationRequest, RetryPolicy
from core.services import Services
from core.services.breakeven import BreakevenInput, BreakevenResult
from core.services.spend import STALE_AFTER_SECONDS, PageQuery, SpendFilter, to_csv_bytes, to_parquet_bytes
from core.services.times import to_local
from core.users import UserView, add_user
from tests.conftest import PG_URL
from tests.core.providers.fakes import Upstream, json_response
from tests.support.pg_schema import scratch_schema

TZ = "America/New_York"
KEYS = {p: Secret(f"test-{p}-key-0000") for p in ("openai", "anthropic", "minimax", "huggingface", "together_ai")}
KEY_LIMIT = 100  # the API key's monthly credits
CHARGES = ("usage", "endpoint_uptime")  # spend; a refund of one of them is negative spend
MP3 = b"\xff\xfb\x90\x00" + bytes(413)


def chat_reply(prompt: int, completion: int) -> httpx.Response:
    return json_response(
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1741569952,
            "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Fine."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        },
        {"x-request-id": "req_1"},
    )


def bad_request() -> httpx.Response:
    return json_response(
        400, {"error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}}
    )


@dataclass
class Clock:
    now: datetime


@dataclass
class World:
    services: Services
    db: Database
    settings: Settings
    people: dict[str, UserView]
    month: date  # the local month the "this month" figures are about (first day)
    today: date  # local
    dst_day: date  # a local day 23 or 25 hours long, with calls on it
    key_id: int
    charge_hits: bool = True  # CHARGE_CACHE_HITS
    key_headers: list[int] = field(default_factory=list)  # x-credits-remaining of the key's calls
    env: dict[str, str] = field(default_factory=dict)
    clock: Clock = field(default_factory=lambda: Clock(datetime(2000, 1, 1)))


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _dst_day(before: date) -> date:
    """The latest local day before `before` that is not 24 hours long in TZ."""
    day = before - timedelta(days=1)
    while True:
        length = local_midnight_utc(day + timedelta(days=1), TZ) - local_midnight_utc(day, TZ)
        if length != timedelta(hours=24):
            return day
        day -= timedelta(days=1)


@pytest.fixture(scope="module", params=["sqlite", "postgres", "sqlite, cache hits free"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The history on SQLite, and on PostgreSQL when TEST_DATABASE_URL names one; and on SQLite with
    CHARGE_CACHE_HITS=false."""
    tmp: Path = tmp_path_factory.mktemp("numbers")
    with contextlib.ExitStack() as stack:
        if request.param.startswith("sqlite"):
            url = f"sqlite:///{tmp / 'app.db'}"
        elif request.getfixturevalue("pg_available"):  # CI=true fails here rather than skipping
            url = stack.enter_context(scratch_schema(PG_URL, "numbers"))
        else:
            pytest.skip("PostgreSQL not configured (set TEST_DATABASE_URL)")
        yield from _world(url, tmp, charge_hits="free" not in request.param)


def _world(url: str, tmp: Path, *, charge_hits: bool) -> Iterator[World]:
    settings = Settings(
        database_url=url,
        analytics_path=tmp / "analytics.duckdb",
        reporting_tz=TZ,
        api_keys=KEYS,
        charge_cache_hits=charge_hits,
    )
    db = Database(settings)
    db.init()
    upstream = Upstream([])
    client = httpx.Client(transport=httpx.MockTransport(upstream))
    services = Services(db, providers=AIProviderFactory(settings, client, sleep=lambda s: None, retry=RetryPolicy()))
    clock = Clock(_utcnow())
    mp = pytest.MonkeyPatch()
    mp.setattr(ledger_module, "utcnow", lambda: clock.now)  # the ledger's clock: when each write happens
    try:
        w = _history(services, db, settings, upstream, clock)
    finally:
        mp.undo()
    w.charge_hits = charge_hits
    w.env = {
        "DATABASE_URL": url,
        "ANALYTICS_PATH": str(tmp / "analytics.duckdb"),
        "REPORTING_TZ": TZ,
        "CHARGE_CACHE_HITS": str(charge_hits).lower(),
    }
    yield w
    services.close()
    db.dispose()


def _history(services: Services, db: Database, settings: Settings, upstream: Upstream, clock: Clock) -> World:
    """The mixed history, each write at its own time on the ledger's clock; the World describing it."""
    real_now = _utcnow()
    today = real_now.replace(tzinfo=UTC).astimezone(zone(TZ)).date()
    month = today.replace(day=1)
    start = local_midnight_utc(month, TZ)
    if real_now - start < timedelta(hours=10):  # too early in the month for the calls below: use the month before
        month = (month - timedelta(days=1)).replace(day=1)
        start = local_midnight_utc(month, TZ)
    dst_day = _dst_day(month)

    with db.session() as s:
        people = {
            "ana": add_user(s, email="ana@example.com", name="Ana", role="pm", markup_pct=Decimal(100)),
            "ben": add_user(s, email="ben@example.com", name="Ben", role="engineer", markup_pct=Decimal(50)),
            "cy": add_user(s, email="cy@example.com", name="Cy", role="pm", markup_pct=Decimal(200)),
            "fin": add_user(s, email="fin@example.com", name="Fin", role="finance", markup_pct=Decimal(100)),
        }
    key = services.keys.create(SYSTEM, "ana@example.com", "ci", monthly_credits=KEY_LIMIT)
    as_key = services.keys.admit(SYSTEM, key.secret)
    w = World(services, db, settings, people, month, today, dst_day, key.key.id, clock=clock)

    def at(t: datetime) -> None:
        assert t <= _utcnow(), "the history must be in the past"
        clock.now = t

    def chat(who: str, t: datetime, prompt: int, completion: int, *, caller: object = SYSTEM, **kw: object) -> object:
        at(t)
        upstream.replies.append(chat_reply(prompt, completion))
        return services.generation.generate(
            caller,  # type: ignore[arg-type]
            people[who].email,
            "gpt-4o",
            GenerationRequest(category="chat", text=f"hello {t.isoformat()}", max_tokens=800),
            **kw,
        )

    dst0 = local_midnight_utc(dst_day, TZ)
    at(dst0 - timedelta(days=3))
    for who, credits in (("ana", 5_000), ("ben", 3_000), ("cy", 2_000)):
        services.ledger.grant(SYSTEM, people[who].email, credits, note="opening grant")
    # the DST day: just after its local midnight and just before the next one
    chat("ana", dst0 + timedelta(minutes=30), 2006, 300)
    chat("ben", local_midnight_utc(dst_day + timedelta(days=1), TZ) - timedelta(minutes=20), 1500, 120)
    # either side of the local month start: 6 h and 2 h before it (the second is already this month in UTC here)
    chat("cy", start - timedelta(hours=6), 900, 40)
    refunded = chat("ana", start - timedelta(hours=2), 3000, 700)
    chat("ben", start + timedelta(minutes=30), 400, 10)
    # this month: the refund of last month's call, sandbox calls, a failed call, a cached call and its hit
    at(start + timedelta(hours=1))
    services.ledger.refund(SYSTEM, refunded.transaction_id, "wrong answer")  # type: ignore[attr-defined]
    at(start + timedelta(hours=2))
    for i in range(3):
        services.generation.generate(
            SYSTEM, people["cy"].email, "sandbox-chat", GenerationRequest(category="chat", text=f"try {i}")
        )
    at(start + timedelta(hours=3))
    upstream.replies.append(bad_request())
    with pytest.raises(BadRequestError):
        services.generation.generate(
            SYSTEM, people["ben"].email, "gpt-4o", GenerationRequest(category="chat", text="x")
        )
    tts = GenerationRequest(category="tts", text="Welcome aboard! " * 200, voice="nova")
    at(start + timedelta(hours=4))
    upstream.replies.append(httpx.Response(200, content=MP3, headers={"content-type": "audio/mpeg"}))
    services.generation.generate(SYSTEM, people["cy"].email, "tts-1", tts)
    at(start + timedelta(hours=5))
    hit = services.generation.generate(SYSTEM, people["cy"].email, "tts-1", tts)
    assert hit.cache_hit
    # calls through the API key, as the gateway makes them
    for minutes in (0, 7):
        r = chat("ana", start + timedelta(hours=6, minutes=minutes), 1200, 90, caller=as_key)
        w.key_headers.append(r.balance_after)  # type: ignore[attr-defined]
    at(start + timedelta(hours=6, minutes=30))
    services.ledger.refund(SYSTEM, r.transaction_id, "the key leaked")  # type: ignore[attr-defined]
    chat("cy", real_now - timedelta(minutes=10), 700, 60)
    # a call in flight: its hold lowers what is available, not the balance
    at(_utcnow())
    services.billing.reserve(people["ben"].id, 37, "in-flight-1")
    services.budgets.set_budget(SYSTEM, credits=50_000, user=people["ana"].email)
    services.budgets.set_budget(SYSTEM, credits=50_000, api_key_id=key.key.id)
    services.spend.sync(SYSTEM)
    return w


# ---- the system of record -------------------------------------------------------------------------------------------
def ledger_spend(w: World, start: datetime | None, end: datetime | None, user: str | None = None) -> int:
    """Credits charged in [start, end) (naive UTC) by the ledger: usage debits, less refunds of them."""
    with w.db.session() as s:
        txs = list(s.scalars(select(CreditTransaction).order_by(CreditTransaction.id)))
    kinds = {t.id: t.transaction_type for t in txs}
    total = 0
    for t in txs:
        if (start is not None and t.created_at < start) or (end is not None and t.created_at >= end):
            continue
        if user is not None and t.user_id != w.people[user].id:
            continue
        of = kinds.get(int((t.meta or {}).get("refund_of", 0))) if t.transaction_type == "refund" else None
        if t.transaction_type in CHARGES or of in CHARGES:
            total -= t.amount
    return total


def ledger_refunds(w: World, start: datetime | None, end: datetime | None) -> int:
    """Credits given back in [start, end) by refunds of charges."""
    with w.db.session() as s:
        txs = list(s.scalars(select(CreditTransaction).order_by(CreditTransaction.id)))
    kinds = {t.id: t.transaction_type for t in txs}
    return sum(
        t.amount
        for t in txs
        if t.transaction_type == "refund"
        and kinds.get(int((t.meta or {}).get("refund_of", 0))) in CHARGES
        and (start is None or t.created_at >= start)
        and (end is None or t.created_at < end)
    )


def usage_rows(w: World, start: datetime | None = None, end: datetime | None = None) -> list[AIUsageLog]:
    with w.db.session() as s:
        rows = list(s.scalars(select(AIUsageLog).order_by(AIUsageLog.id)))
    return [r for r in rows if (start is None or r.created_at >= start) and (end is None or r.created_at < end)]


def cli(w: World, monkeypatch: pytest.MonkeyPatch, *argv: str) -> object:
    for k, v in w.env.items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def days(w: World, since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    return (
        local_midnight_utc(since, TZ) if since else None,
        local_midnight_utc(until + timedelta(days=1), TZ) if until else None,
    )


def per_user(frame: pd.DataFrame, column: str = "credits") -> dict[str, object]:
    return {u: v for u, v in zip(frame["user"], frame[column], strict=True) if v}


# ---- balances -------------------------------------------------------------------------------------------------------
def test_every_balance_surface_shows_the_ledgers_balance(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    s = world.services
    rows = {a.email: a for a in s.ledger.balances(SYSTEM)}
    for who, u in world.people.items():
        with world.db.session() as sess:
            summed = sum(
                sess.scalars(select(CreditTransaction.amount).where(CreditTransaction.user_id == u.id)), start=0
            )
        b = s.ledger.balance(SYSTEM, u.email)
        assert b.total == summed, who
        assert s.ledger.history(SYSTEM, u.email).balance == summed, who
        assert s.ledger.history_page(SYSTEM, u.email).balance == summed, who
        assert s.users.get(SYSTEM, u.email).credit_balance == summed, who
        assert (rows[u.email].total, rows[u.email].held, rows[u.email].available) == (b.total, b.held, b.available)
        assert s.playground.available_credits(SYSTEM, u.email) == b.available == b.total - b.held
        assert cli(world, monkeypatch, "credits", "balance", "--user", u.email, "--json") == {
            "total": b.total,
            "held": b.held,
            "available": b.available,
        }
    assert s.ledger.balance(SYSTEM, "ben@example.com").held == 37
    ov = s.overview.overview(SYSTEM)
    assert ov.credits_outstanding == sum(max(a.total, 0) for a in rows.values())  # an overdraft is owed, not netted
    assert ov.credits_overdrawn == sum(-min(a.total, 0) for a in rows.values())
    assert ov.credits_outstanding_usd == ov.credits_outstanding * world.settings.credit_usd
    assert ov.users == len(rows)


def test_the_gateways_credits_remaining_is_the_ledgers_balance_after(world: World) -> None:
    with world.db.session() as s:
        after = [
            t.balance_after
            for t in s.scalars(
                select(CreditTransaction)
                .join(AIUsageLog, AIUsageLog.transaction_id == CreditTransaction.id)
                .where(AIUsageLog.api_key_id == world.key_id)
                .order_by(CreditTransaction.id)
            )
        ]
    assert world.key_headers == after


# ---- spend over local days ------------------------------------------------------------------------------------------
def periods(w: World) -> dict[str, tuple[date | None, date | None]]:
    last = w.month - timedelta(days=1)
    return {
        "this month": (w.month, w.today),
        "last month": (last.replace(day=1), last),
        "dst day": (w.dst_day, w.dst_day),
        "last day of last month": (last, last),
        "first day of this month": (w.month, w.month),
        "everything": (None, None),
    }


@pytest.mark.parametrize(
    "period", ["this month", "last month", "dst day", "last day of last month", "first day of this month", "everything"]
)
def test_spend_per_user_agrees_with_the_ledger_on_every_surface(
    world: World, monkeypatch: pytest.MonkeyPatch, period: str
) -> None:
    since, until = periods(world)[period]
    start, end = days(world, since, until)
    truth = {u.email: c for who, u in world.people.items() if (c := ledger_spend(world, start, end, who))}
    s = world.services
    f = SpendFilter.dates(since, until, tz=TZ)
    assert per_user(s.spend.breakdown(SYSTEM, "user", f).frame) == truth
    series = s.spend.series(SYSTEM, "day", f, split="user").frame
    assert {u: int(c) for u, c in series.groupby("user")["credits"].sum().items() if c} == truth
    argv = ["spend", "--by", "user", "--json"]
    argv += [*(["--since", since.isoformat()] if since else []), *(["--until", until.isoformat()] if until else [])]
    assert {r["key"]: r["credits"] for r in cli(world, monkeypatch, *argv) if r["credits"]} == truth  # type: ignore[attr-defined]
    if since is None or until is None:
        return
    page = s.spend.page(SYSTEM, PageQuery(since=since, until=until, drill_user="ana@example.com"))
    assert per_user(page.top_users.frame) == truth
    csv = pd.read_csv(io.BytesIO(to_csv_bytes(page.top_users.frame)), dtype={"base_cost_usd": str})
    assert {u: int(c) for u, c in zip(csv["user"], csv["credits"], strict=True) if c} == truth
    parquet = pd.read_parquet(io.BytesIO(to_parquet_bytes(page.top_users.frame)))
    assert {u: int(c) for u, c in zip(parquet["user"], parquet["credits"], strict=True) if c} == truth
    base = dict(zip(page.top_users.frame["user"], page.top_users.frame["base_cost_usd"], strict=True))
    assert dict(zip(parquet["user"], parquet["base_cost_usd"], strict=True)) == base
    assert {u: Decimal(v) for u, v in zip(csv["user"], csv["base_cost_usd"], strict=True)} == base
    total = sum(truth.values())
    assert page.totals.credits == total
    assert int(page.top_models.frame["credits"].sum()) == total
    assert int(page.top_keys.frame["credits"].sum()) == total
    assert int(page.series_totals.frame["credits"].sum()) == total
    assert page.drill is not None and page.drill.totals.credits == truth.get("ana@example.com", 0)
    for who, u in world.people.items():
        if who == "fin":  # finance sees everyone's spend: its own view is the whole page above
            continue
        own = s.spend.page(Principal.of(u), PageQuery(since=since, until=until))
        assert own.totals.credits == truth.get(u.email, 0), who


SPEND_KINDS = ("usage", "endpoint_uptime", "refund")  # every refund in this history gives back a charge


@pytest.mark.parametrize("period", ["dst day", "last day of last month", "first day of this month"])
def test_the_ledger_lists_on_a_local_day_the_calls_spend_counts_on_it(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], period: str
) -> None:
    """A call at 23:40 or 22:00 in New York (already the next day in UTC) is on the same day in the Ledger's day
    filter, its times and the command line's history as in Spend: each user's charges on the day agree."""
    since, until = periods(world)[period]
    assert since is not None and until is not None
    s = world.services
    spend = per_user(s.spend.breakdown(SYSTEM, "user", SpendFilter.dates(since, until, tz=TZ)).frame)
    listed: dict[str, int] = {}
    crossing = 0  # transactions on a different day in UTC than locally: the ones a UTC ledger put elsewhere
    for u in world.people.values():
        txs = s.ledger.history_page(SYSTEM, u.email, since=since, until=until, kinds=SPEND_KINDS).transactions
        for t in txs:
            local = to_local(t.created_at, TZ)
            assert local is not None and since <= local.date() <= until, (u.email, t.id, t.created_at)
            crossing += local.date() != t.created_at.date()
        if charged := -sum(t.amount for t in txs):
            listed[u.email] = charged
        argv = ["credits", "history", "--user", u.email, "--since", since.isoformat(), "--until", until.isoformat()]
        on_cli = cli(world, monkeypatch, *argv, *(a for k in SPEND_KINDS for a in ("--type", k)), "--json")
        assert sorted(t["id"] for t in on_cli) == sorted(t.id for t in txs), u.email  # type: ignore[attr-defined]
    assert listed == spend
    if period != "first day of this month":
        assert crossing, "the day should hold a call near local midnight"
    capsys.readouterr()
    for k, v in world.env.items():
        monkeypatch.setenv(k, v)
    assert main(["credits", "history", "--user", "ben@example.com", "--since", since.isoformat()]) == 0
    assert f"at ({TZ})" in capsys.readouterr().out.splitlines()[0]


def breakeven_days(result: BreakevenResult, since: date, until: date) -> dict[date, int]:
    """Break-even's replayed requests per local day: the trace's minutes from each day's local midnight to the next."""
    start = result.traffic.start
    assert start is not None and start == local_midnight_utc(since, TZ)
    counts, out = result.traffic.counts, {}
    for k in range((until - since).days + 1):
        day = since + timedelta(days=k)
        lo, hi = (
            int((local_midnight_utc(d, TZ) - start) / timedelta(minutes=1)) for d in (day, day + timedelta(days=1))
        )
        if n := int(counts[lo:hi].sum()):
            out[day] = n
    return out


@pytest.mark.parametrize("resolution", ["minute", "hour"])
@pytest.mark.parametrize(
    "period", ["dst day", "last day of last month", "first day of this month", "last month", "this month"]
)
def test_break_even_replays_on_each_local_day_the_requests_spend_counts(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], period: str, resolution: str
) -> None:
    """The requests of gpt-4o on a day are one number on Spend and in Break-even's history: calls at 00:30 and
    23:40 in New York (the second already the next day in UTC), on a DST day and either side of the month start, are
    on their local day in both, on the page's service and the command line. (gpt-4o has no cache hit here: Spend
    counts hits as requests, Break-even leaves them out as they never reach a GPU.)"""
    since, until = periods(world)[period]
    assert since is not None and until is not None
    model = "gpt-4o"
    series = world.services.spend.series(SYSTEM, "day", SpendFilter.dates(since, until, tz=TZ, models=(model,))).frame
    spend = {pd.Timestamp(d).date(): int(n) for d, n in zip(series["bucket"], series["requests"], strict=True) if n}
    inp = BreakevenInput(profile="history", model_id=model, since=since, until=until, resolution=resolution)
    result = world.services.breakeven.simulate(SYSTEM, inp)
    if resolution == "minute":
        assert breakeven_days(result, since, until) == spend
    assert result.history is not None and result.history["requests"] == result.traffic.requests == sum(spend.values())
    assert result.history["start"] == f"{since} 00:00 {TZ}"
    if period in ("dst day", "last day of last month", "last month"):  # days a UTC reading would cut short
        start, end = days(world, since, until)
        on_utc_days = [r for r in usage_rows(world) if r.created_at.date() != to_local(r.created_at, TZ).date()]
        assert any(start <= r.created_at < end for r in on_utc_days), "the days should hold a call near local midnight"
    for k, v in world.env.items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    argv = ["breakeven", "--profile", "history", "--model", model, "--resolution", resolution]
    assert main([*argv, "--since", since.isoformat(), "--until", until.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f" {sum(spend.values()):,} requests over " in out and f"from {since} 00:00 {TZ} to " in out


def test_provider_cost_margin_and_requests_agree_with_the_usage_log(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Provider cost is what the providers billed: the cache hit is not in it (no provider was called), whether or
    not it was charged; its catalog cost (that of the identical call it repeats) is the cache saving; the credits it
    was charged are revenue, so they are margin in full."""
    since, until = world.month, world.today
    start, end = days(world, since, until)
    rows = [r for r in usage_rows(world, start, end) if not r.sandbox]
    [hit] = [r for r in rows if r.cache_hit]
    [repeated] = [r for r in rows if r.request_fingerprint == hit.request_fingerprint and not r.cache_hit]
    catalog = Decimal(repeated.base_cost_usd)
    assert catalog > 0 and hit.cost_credits == (repeated.cost_credits if world.charge_hits else 0)
    base = sum((Decimal(r.base_cost_usd) for r in rows if not r.cache_hit), Decimal(0))
    credits = ledger_spend(world, start, end)
    revenue = credits * world.settings.credit_usd
    c = world.settings.credit_usd
    # the hit's row stores what the figures count: no provider cost, its catalog cost (the saving) in metadata
    assert hit.base_cost_usd == 0 and Decimal(hit.meta["catalog_cost_usd"]) == catalog
    # rounding each call's priced cost (the hit's: its catalog cost if charged, else nothing) up to whole credits
    priced = [
        Decimal(r.meta["catalog_cost_usd"]) if r.cache_hit and r.cost_credits else Decimal(r.base_cost_usd)
        for r in rows
    ]
    assert priced.count(catalog) == (2 if world.charge_hits else 1)
    uplift = sum(((p / c).to_integral_value(ROUND_CEILING) * c - p for p in priced), Decimal(0))
    page = world.services.spend.page(SYSTEM, PageQuery(since=since, until=until))
    t = page.totals
    assert (t.requests, t.failed) == (sum(r.requests_count for r in rows), sum(r.status == "failed" for r in rows))
    assert t.base_cost_usd == base and t.revenue_usd == revenue and t.margin_usd == revenue - base
    assert t.markup_pct == ((revenue / base - 1) * 100).quantize(Decimal("0.01"))
    assert t.cache_hits == 1 and t.cache_saving_usd == catalog
    assert t.rounding_uplift_usd == uplift
    f = SpendFilter.dates(since, until, tz=TZ)
    for by in ("user", "model", "api_key", "provider", "category", "day"):
        frame = (
            world.services.spend.series(SYSTEM, by, f) if by == "day" else world.services.spend.breakdown(SYSTEM, by, f)
        ).frame
        assert sum(frame["base_cost_usd"], Decimal(0)) == base, by
        assert sum(frame["cache_saving_usd"], Decimal(0)) == catalog, by
        assert int(frame["requests"].sum()) == t.requests, by
    argv = ["spend", "--by", "user", "--since", since.isoformat(), "--until", until.isoformat(), "--json"]
    got = cli(world, monkeypatch, *argv)
    assert sum(Decimal(r["base_cost_usd"]) for r in got) == base  # type: ignore[attr-defined]
    assert sum(Decimal(r["cache_saving_usd"]) for r in got) == catalog  # type: ignore[attr-defined]
    # the hit's own row: no provider cost, all of its revenue is margin
    drill = world.services.spend.page(SYSTEM, PageQuery(since=since, until=until, drill_user="cy@example.com")).drill
    assert drill is not None and drill.totals.cache_saving_usd == catalog
    listed = drill.transactions.frame
    [row] = listed[listed["cache_hit"] & (listed["kind"] == "usage")].to_dict("records")
    assert row["base_cost_usd"] == 0 and row["margin_usd"] == row["revenue_usd"] == hit.cost_credits * c


def test_sandbox_calls_are_never_charged_and_shown_at_their_would_be_cost(world: World) -> None:
    since, until = world.month, world.today
    start, end = days(world, since, until)
    sandbox = [r for r in usage_rows(world, start, end) if r.sandbox]
    assert len(sandbox) == 3 and all(r.cost_credits == 0 and r.transaction_id is None for r in sandbox)
    s = world.services
    without = s.spend.page(SYSTEM, PageQuery(since=since, until=until)).totals
    with_ = s.spend.page(SYSTEM, PageQuery(since=since, until=until, include_sandbox=True)).totals
    assert with_.credits == without.credits
    assert with_.requests == without.requests + 3
    assert with_.base_cost_usd == without.base_cost_usd + sum((Decimal(r.base_cost_usd) for r in sandbox), Decimal(0))


# ---- this month, last month -----------------------------------------------------------------------------------------
def test_month_figures_agree_between_overview_spend_kpis_forecast_and_budgets(world: World) -> None:
    s = world.services
    month = world.today.replace(day=1)  # the calendar month now, in the reporting time zone
    this_start, _ = days(world, month, None)
    last_start, _ = days(world, (month - timedelta(days=1)).replace(day=1), None)
    mtd = ledger_spend(world, this_start, None)
    last = ledger_spend(world, last_start, this_start)
    ov = s.overview.overview(SYSTEM)
    kpis = s.spend.kpis(SYSTEM, SpendFilter())
    assert ov.month == kpis.month == month
    assert ov.this_month.credits == kpis.month_to_date.credits == mtd
    assert ov.last_month.credits == kpis.last_month.credits == last
    assert ov.this_month == kpis.month_to_date and ov.last_month == kpis.last_month
    assert kpis.forecast.revenue_to_date_usd == ov.this_month.revenue_usd == mtd * world.settings.credit_usd
    assert kpis.forecast.base_cost_to_date_usd == ov.this_month.base_cost_usd
    assert sum(d.credits for d in ov.daily if d.day >= month) == mtd
    page = s.spend.page(SYSTEM, PageQuery(since=month, until=world.today))
    assert page.kpis.month_to_date == kpis.month_to_date and page.totals.credits == mtd
    budgets = {b.scope: b for b in s.budgets.budgets(SYSTEM)}
    assert budgets["user"].spent == ledger_spend(world, this_start, None, "ana")
    key_spend = s.spend.breakdown(SYSTEM, "api_key", SpendFilter.dates(month, world.today, tz=TZ)).frame
    assert budgets["api_key"].spent == int(key_spend.loc[key_spend["api_key_id"] == world.key_id, "credits"].sum())
    assert budgets["user"].in_flight == 0 and s.budgets.budgets(SYSTEM, user="ben@example.com") == []


@pytest.mark.parametrize("period", ["this month", "last month", "dst day"])
def test_the_pricing_labs_billed_side_is_the_spend_pages(world: World, period: str) -> None:
    since, until = periods(world)[period]
    s = world.services
    totals = s.spend.page(SYSTEM, PageQuery(since=since, until=until)).totals  # type: ignore[arg-type]
    lab = s.optimize.pricing_lab(SYSTEM, since=since, until=until).result
    assert (lab.requests, lab.base_cost_usd) == (totals.requests, totals.base_cost_usd)
    assert (lab.billed.credits, lab.billed.revenue_usd) == (totals.credits, totals.revenue_usd)
    assert lab.billed.margin_usd == totals.margin_usd
    assert lab.rounding_uplift_usd == totals.rounding_uplift_usd  # one definition, one query
    assert lab.billed.refunds_usd == -world.settings.credit_usd * ledger_refunds(world, *days(world, since, until))


def test_a_budgets_burn_down_shows_the_spend_pages_days(world: World) -> None:
    """The Budgets page's spend per local day and to date, for a person's and a key's monthly budget, is the Spend
    page's for the same days (the budget's month is the calendar month now)."""
    s = world.services
    month = world.today.replace(day=1)
    page = s.budgets.page(SYSTEM)
    for b in page.budgets:
        scope = {"users": (b.user_email,)} if b.scope == "user" else {"api_keys": (b.api_key_id,)}
        f = SpendFilter.dates(month, world.today, tz=TZ, **scope)
        series = s.spend.series(SYSTEM, "day", f).frame
        spend_days = {d: int(c) for d, c in zip(series["bucket"], series["credits"], strict=True) if c}
        burn = page.burn_downs[b.id].daily
        burn_days = {d: int(c) for d, c in zip(burn["day"], burn["spent"], strict=True) if c == c and c}
        assert burn_days == spend_days, b.name
        assert page.burn_downs[b.id].spent_to_date == b.spent == sum(spend_days.values()), b.name


def test_an_api_keys_monthly_limit_counts_what_spend_by_key_and_its_budget_show(world: World) -> None:
    """A refunded call of the key no longer counts against its monthly credits, as it no longer counts in the
    Spend page's table by key or against a budget on the key."""
    s = world.services
    month = world.today.replace(day=1)  # the key's month is the calendar month now, in the reporting time zone
    f = SpendFilter.dates(month, world.today, tz=TZ, api_keys=(world.key_id,))
    spent = int(s.spend.breakdown(SYSTEM, "api_key", f).frame["credits"].sum())
    [budget] = [b for b in s.budgets.budgets(SYSTEM) if b.scope == "api_key"]
    assert budget.spent == spent
    with pytest.raises(KeyLimitError) as refused:
        s.billing.reserve(world.people["ana"].id, KEY_LIMIT, "over-the-key-limit", api_key_id=world.key_id)
    assert refused.value.left == KEY_LIMIT - spent - budget.in_flight


def test_rolling_window_agrees_between_the_specifications_call_and_the_command_line(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = world.services
    for who, u in world.people.items():
        usage = s.spend.total_usage(SYSTEM, u.email, 30)
        rows = cli(world, monkeypatch, "spend", "--by", "user", "--user", u.email, "--last-days", "30", "--json")
        assert sum(r["credits"] for r in rows) == usage.credits, who  # type: ignore[attr-defined]
        assert sum(Decimal(r["base_cost_usd"]) for r in rows) == usage.base_cost_usd, who  # type: ignore[attr-defined]
        by_provider = s.spend.usage_by_provider(SYSTEM, u.email, 30)
        assert sum(p.credits for p in by_provider) == usage.credits, who


# ---- right after a write --------------------------------------------------------------------------------------------
def test_spend_right_after_a_call_counts_the_call(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store was synced a moment ago (well within STALE_AFTER_SECONDS): each surface, asked right after a call,
    still counts it, as the balance beside it does."""
    upstream = Upstream([])
    client = httpx.Client(transport=httpx.MockTransport(upstream))
    fresh = Services(
        world.db, providers=AIProviderFactory(world.settings, client, sleep=lambda s: None, retry=RetryPolicy())
    )
    month = local_midnight_utc(world.month, TZ)

    def call() -> int:
        upstream.replies.append(chat_reply(500, 50))
        r = fresh.generation.generate(SYSTEM, "ben@example.com", "gpt-4o", GenerationRequest(category="chat", text="q"))
        assert r.balance_after == fresh.ledger.balance(SYSTEM, "ben@example.com").total
        return ledger_spend(world, month, None)

    try:
        truth = call()  # the Spend page: syncs when stale (pages/ui.py), then asks for the page
        fresh.spend.sync(SYSTEM, max_age_seconds=STALE_AFTER_SECONDS)
        assert fresh.spend.page(SYSTEM, PageQuery(since=world.month, until=world.today)).totals.credits == truth
        truth = call()
        assert fresh.overview.overview(SYSTEM).this_month.credits == truth
        truth = call()
        f = SpendFilter.dates(world.month, None, tz=TZ)
        assert int(fresh.spend.breakdown(SYSTEM, "user", f).frame["credits"].sum()) == truth
        truth = call()  # another process (the command line) asking right after
        rows = cli(world, monkeypatch, "spend", "--by", "user", "--since", world.month.isoformat(), "--json")
        assert sum(r["credits"] for r in rows) == truth  # type: ignore[attr-defined]
        call()
        ben = ledger_spend(world, datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30), None, "ben")
        assert fresh.spend.total_usage(SYSTEM, "ben@example.com", 30).credits == ben
    finally:
        fresh.close()


# ---- rounding -------------------------------------------------------------------------------------------------------
def test_the_rounding_uplift_is_part_of_the_margin_under_accrual_rounding(tmp_path: Path) -> None:
    """Calls billed by accrual are not rounded up one by one: the Spend page's rounding uplift counts none for them
    (it claimed up to a credit per call, far more than the whole margin), and the margin is revenue less cost."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        analytics_path=tmp_path / "analytics.duckdb",
        api_keys=KEYS,
        rounding_policy="accrual",
    )
    db = Database(settings)
    db.init()
    upstream = Upstream([chat_reply(300, 20) for _ in range(20)])
    client = httpx.Client(transport=httpx.MockTransport(upstream))
    services = Services(db, providers=AIProviderFactory(settings, client, sleep=lambda s: None, retry=RetryPolicy()))
    try:
        with db.session() as s:
            add_user(s, email="ana@example.com", name="Ana", role="pm", markup_pct=Decimal(100))
        services.ledger.grant(SYSTEM, "ana@example.com", 1000)
        for i in range(20):  # $0.00095 each: 0.0475 credits at 100% markup
            services.generation.generate(
                SYSTEM, "ana@example.com", "gpt-4o", GenerationRequest(category="chat", text=f"q{i}", max_tokens=50)
            )
        with db.session() as sess:
            rows = list(sess.scalars(select(AIUsageLog)))
        assert len(rows) == 20 and all(r.accrued_nano is not None for r in rows)
        base = sum((Decimal(r.base_cost_usd) for r in rows), Decimal(0))
        credits = 1000 - services.ledger.balance(SYSTEM, "ana@example.com").total
        services.spend.sync(SYSTEM)
        t = services.spend.page(SYSTEM, PageQuery(since=date(2000, 1, 1), until=date(2100, 1, 1))).totals
        assert (t.credits, t.base_cost_usd) == (credits, base)
        assert t.margin_usd == credits * settings.credit_usd - base
        assert t.rounding_uplift_usd == 0
    finally:
        services.close()
        db.dispose()
