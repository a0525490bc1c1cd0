"""Every spend query equals a pandas reference computed from the source tables (property test over filters)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.analytics import SpendFilter
from core.analytics.filters import local_midnight_utc
from tests.core.analytics.conftest import END, ROLLUP_TZ, START
from tests.core.analytics.history import reference_measures

ZONES = ["UTC", ROLLUP_TZ, "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]
MEASURES = [
    "requests",
    "failed",
    "credits",
    "base_cost_usd",
    "revenue_usd",
    "margin_usd",
    "rounding_uplift_usd",
    "cache_hits",
    "cache_saving_usd",
]
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def filters(draw: st.DrawFn, options: dict) -> tuple[SpendFilter, str]:
    tz = draw(st.sampled_from(ZONES))
    kw: dict = {"include_sandbox": draw(st.booleans())}
    span = (END - START).days
    if draw(st.booleans()):  # whole local days (the rollup can answer when tz is the rollup's)
        a = draw(st.integers(-2, span))
        b = draw(st.integers(a, span + 2))
        d0 = START.date() + timedelta(days=a)
        f = SpendFilter.dates(d0, START.date() + timedelta(days=b), tz=tz, **kw)
    else:  # arbitrary instants (the rows answer)
        a = draw(st.integers(0, span * 86400))
        b = draw(st.integers(a + 1, span * 86400 + 3600))
        f = SpendFilter(start=START + timedelta(seconds=a), end=START + timedelta(seconds=b), **kw)
    for field, values in options.items():
        if values and draw(st.integers(0, 3)) == 0:
            picked = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))
            f = SpendFilter(**{**f.__dict__, field: tuple(picked)})
    return f, tz


def _options(ref: pd.DataFrame, rt) -> dict:
    users = _emails(rt)
    return {
        "users": [users[i].upper() if i % 2 else users[i] for i in sorted(users)][:4],
        "models": ["gpt-4o", "gpt-4o-mini", "meta-llama/Llama-3.1-8B-Instruct", "tts-1", "sandbox-chat"],
        "providers": sorted(ref["provider"].unique()),
        "categories": sorted(ref["category"].unique()),
        "statuses": ["success", "failed"],
        "kinds": ["usage", "endpoint_uptime", "refund"],
    }


def _emails(rt) -> dict[int, str]:
    from sqlalchemy import select

    from core.db.models import User

    with rt.session() as s:
        return dict(s.execute(select(User.id, User.email)).all())


def _model_ids(rt) -> dict[int, tuple[str, str]]:
    from sqlalchemy import select

    from core.db.models import AIModel

    with rt.session() as s:
        return {i: (m, p) for i, m, p in s.execute(select(AIModel.id, AIModel.model_id, AIModel.provider))}


def apply(ref: pd.DataFrame, f: SpendFilter, rt) -> pd.DataFrame:
    m = pd.Series(True, index=ref.index)
    if f.start is not None:
        m &= ref["ts"] >= pd.Timestamp(f.start)
    if f.end is not None:
        m &= ref["ts"] < pd.Timestamp(f.end)
    if not f.include_sandbox:
        m &= ~ref["sandbox"]
    if f.users:
        wanted = {e.lower() for e in f.users}
        ids = [i for i, e in _emails(rt).items() if e.lower() in wanted]
        m &= ref["user_id"].isin(ids)
    if f.models:
        ids = [i for i, (mid, _p) in _model_ids(rt).items() if mid in f.models]
        m &= ref["ai_model_id"].isin(ids).fillna(False).astype(bool)
    for field, col in (
        ("providers", "provider"),
        ("categories", "category"),
        ("statuses", "status"),
        ("kinds", "kind"),
    ):
        if getattr(f, field):
            m &= ref[col].isin(getattr(f, field))
    return ref[m]


def _key(df: pd.DataFrame, dim: str, rt) -> pd.Series:
    if dim == "user":
        emails = _emails(rt)
        return df["user_id"].map(emails)
    if dim == "model":
        names = _model_ids(rt)
        return df["ai_model_id"].map(lambda i: "(unknown)/" if pd.isna(i) else f"{names[int(i)][0]}/{names[int(i)][1]}")
    return df[dim]


def _check_row(got: dict, want: dict) -> None:
    for name in MEASURES:
        assert got[name] == want[name], (name, got[name], want[name])
    assert isinstance(got["base_cost_usd"], Decimal) and isinstance(got["revenue_usd"], Decimal)


@pytest.mark.parametrize("dim", ["user", "model", "provider", "category", "deployment_type"])
def test_breakdown_matches_reference(synced, dim: str) -> None:
    rt, q, ref = synced
    opts = _options(ref, rt)

    @SLOW
    @given(case=filters(opts), top=st.one_of(st.none(), st.integers(1, 5)))
    def check(case: tuple[SpendFilter, str], top: int | None) -> None:
        f, _tz = case
        want_rows = apply(ref, f, rt)
        want = {k: reference_measures(g) for k, g in want_rows.groupby(_key(want_rows, dim, rt), dropna=False)}
        got = q.breakdown(dim, f, top=top)
        frame = got.frame
        if dim == "model":
            keys = [
                f"{k}/{p if isinstance(p, str) else ''}"
                for k, p in zip(frame["key"], frame["model_provider"], strict=True)
            ]
        else:
            keys = list(frame["key"])
        credits = list(frame["credits"])
        assert credits == sorted(credits, reverse=True)
        if top is None:
            assert set(keys) == set(want)
        else:
            assert len(keys) == min(top, len(want))
            cut = sorted((w["credits"] for w in want.values()), reverse=True)[: len(keys)]
            assert credits == cut
        for k, row in zip(keys, frame.to_dict("records"), strict=True):
            _check_row(row, want[k])
        assert got.as_of is not None

    check()


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_series_matches_reference_in_every_zone(synced, grain: str) -> None:
    rt, q, ref = synced
    opts = _options(ref, rt)

    @SLOW
    @given(case=filters(opts), split=st.sampled_from([None, "provider", "user"]))
    def check(case: tuple[SpendFilter, str], split: str | None) -> None:
        f, tz = case
        rows = apply(ref, f, rt)
        local = rows["ts"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
        if grain == "day":
            bucket = local.dt.floor("D")
        elif grain == "week":
            bucket = local.dt.to_period("W-SUN").dt.start_time
        else:
            bucket = local.dt.to_period("M").dt.start_time
        bucket = bucket.dt.date
        keys = [bucket] + ([_key(rows, split, rt)] if split else [])
        want = {}
        for k, g in rows.groupby(keys):
            want[k if split else k[0] if isinstance(k, tuple) else k] = reference_measures(g)
        got = q.series(grain, f, split=split, tz=tz).frame
        label = {"provider": "provider", "user": "user"}.get(split or "")
        got_keys = [(b, r[label]) if split else b for b, r in zip(got["bucket"], got.to_dict("records"), strict=True)]
        assert set(got_keys) == set(want)
        assert list(got["bucket"]) == sorted(got["bucket"])
        for k, row in zip(got_keys, got.to_dict("records"), strict=True):
            _check_row(row, want[k])

    check()


def test_totals_and_transactions_match_reference(synced) -> None:
    """Totals and every transaction; and with a small limit (a recent window sized by the rollup's row counts) exactly
    the newest rows of the whole range, in every zone, for partial days and for windows that turn out short."""
    rt, q, ref = synced
    opts = _options(ref, rt)

    @SLOW
    @given(case=filters(opts), limit=st.sampled_from([1, 7, 40, 300]))
    def check(case: tuple[SpendFilter, str], limit: int) -> None:
        f, tz = case
        rows = apply(ref, f, rt)
        t, _as_of = q.totals(f)
        want = reference_measures(rows)
        for name in MEASURES:
            assert getattr(t, name) == want[name], name
        assert t.users == rows["user_id"].nunique()
        tx = q.transactions(f, limit=100_000, tz=tz).frame
        assert len(tx) == len(rows)
        assert int(tx["credits"].sum()) == want["credits"]
        assert sum(tx["base_cost_usd"], Decimal(0)) == want["base_cost_usd"]
        assert list(tx["utc_time"]) == sorted(tx["utc_time"], reverse=True)
        newest = q.transactions(f, limit=limit, tz=tz).frame
        cols = ["utc_time", "kind", "source_id", "credits", "user", "model"]
        pd.testing.assert_frame_equal(newest[cols], tx[cols].head(limit))

    check()


@pytest.mark.parametrize("split", ["user", "model", "provider", "category"])
def test_split_series_equals_series_breakdown_and_totals(synced, split: str) -> None:
    rt, q, ref = synced
    opts = _options(ref, rt)

    @SLOW
    @given(case=filters(opts))
    def check(case: tuple[SpendFilter, str]) -> None:
        f, tz = case
        series, by_key, totals = q.split_series("day", f, split, tz=tz)
        pd.testing.assert_frame_equal(series.frame, q.series("day", f, split=split, tz=tz).frame)
        pd.testing.assert_frame_equal(by_key.frame, q.breakdown(split, f).frame)
        want, _ = q.totals(f)
        assert totals == replace(want, users=0)

    check()


def test_reference_covers_every_kind_of_row(synced) -> None:
    """The fixture exercises what the rules are about: uptime, refunds of both kinds, sandbox, failures, cache."""
    _rt, q, ref = synced
    kinds = q.breakdown("kind", SpendFilter(include_sandbox=True)).frame.set_index("key")
    assert set(kinds.index) == {"usage", "endpoint_uptime", "refund"}
    assert kinds.loc["refund", "credits"] < 0 and kinds.loc["endpoint_uptime", "credits"] > 0
    assert ref["sandbox"].any() and (ref["status"] == "failed").any() and ref["cache_hit"].any()
    # the refund of an adjustment is not spend; the refund without an original is, with no model
    from sqlalchemy import func, select

    from core.db.models import CreditTransaction

    with _rt.session() as s:
        source_refunds = s.scalar(select(func.count()).where(CreditTransaction.transaction_type == "refund"))
    refunds = q.transactions(SpendFilter(kinds=("refund",)), limit=100_000).frame
    assert len(refunds) == (ref["kind"] == "refund").sum() == source_refunds - 1
    unknown = q.breakdown("model", SpendFilter(kinds=("refund",))).frame
    assert "(unknown)" in set(unknown["key"])


def test_sandbox_is_left_out_of_money_by_default(synced) -> None:
    _rt, q, ref = synced
    with_sb, _ = q.totals(SpendFilter(include_sandbox=True))
    without, _ = q.totals(SpendFilter())
    sb = ref[ref["sandbox"]]
    assert with_sb.base_cost_usd - without.base_cost_usd == sum(sb["base_cost_usd"], Decimal(0)) > 0
    assert with_sb.credits == without.credits  # sandbox calls are never charged
    assert (with_sb.revenue_usd, with_sb.rounding_uplift_usd) == (without.revenue_usd, without.rounding_uplift_usd)
    assert with_sb.requests - without.requests == len(sb)


def test_day_aligned_and_row_answers_agree(synced) -> None:
    """The daily rollup and the rows give the same answer for the same whole days."""
    _rt, q, _ref = synced
    f = SpendFilter.dates(date(2025, 3, 1), date(2025, 3, 31), tz=ROLLUP_TZ)
    shifted = SpendFilter(start=f.start - timedelta(microseconds=0), end=f.end + timedelta(microseconds=1))
    assert f.day_range(ROLLUP_TZ) is not None and shifted.day_range(ROLLUP_TZ) is None
    a = q.breakdown("user", f).frame
    b = q.breakdown("user", shifted).frame  # one microsecond more: answered from the rows
    pd.testing.assert_frame_equal(a, b)
    assert local_midnight_utc(date(2025, 3, 1), ROLLUP_TZ) == datetime(2025, 2, 28, 23, 0)
