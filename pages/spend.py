"""Spend (finance): who and what costs most, how it trends, what margin it leaves. Reads the DuckDB analytics store."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from core.services import Capability, Principal
from core.services.spend import (
    STALE_AFTER_SECONDS,
    FilterOptions,
    PageQuery,
    SpendPage,
    SyncReport,
    chart_frame,
    to_csv_bytes,
    to_parquet_bytes,
)
from pages.fmt import money
from pages.ui import guard, plain, services

NONE = "(nobody)"


def sync_with_progress(who: Principal, max_age_seconds: float | None) -> SyncReport:
    """Sync the store (at once when it is fresh enough), with a progress bar while rows are copied."""
    bar: list = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(st.progress(0.0))
        bar[0].progress(
            done / total if total else 1.0, text=f"Syncing the analytics store: {done:,} of about {total:,} rows"
        )

    report = services().spend.sync(who, max_age_seconds=max_age_seconds, progress=progress)
    if bar:
        bar[0].empty()
    return report


@st.cache_data(ttl=600, show_spinner=False)
def load_options(_who: Principal, who_key: str, version: str) -> FilterOptions:
    return services().spend.options(_who)


@st.cache_data(ttl=600, show_spinner=False)
def load_page(_who: Principal, who_key: str, version: str, query: PageQuery, team: int | None = None) -> SpendPage:
    if team is not None:
        return services().spend.team_page(_who, team, query)
    return services().spend.page(_who, query)


def downloads(name: str, frame: pd.DataFrame) -> None:
    """CSV and Parquet of the exact table, written only when clicked (deferred), without rerunning the page."""
    a, b, _ = st.columns([1, 1, 6])
    a.download_button(
        "CSV", lambda: to_csv_bytes(frame), f"{name}.csv", "text/csv", key=f"csv-{name}", on_click="ignore"
    )
    b.download_button(
        "Parquet",
        lambda: to_parquet_bytes(frame),
        f"{name}.parquet",
        "application/octet-stream",
        key=f"pq-{name}",
        on_click="ignore",
    )


MONEY = {
    "revenue_usd": "revenue $",
    "base_cost_usd": "provider cost $",
    "margin_usd": "margin $",
    "rounding_uplift_usd": "rounding uplift $",
    "cache_saving_usd": "cache saving $",
    "baseline_usd": "baseline $",
    "excess_usd": "excess $",
}
SHOWN = {
    "top_users": ["user", "requests", "credits", "revenue_usd", "base_cost_usd", "margin_usd", "markup_pct"],
    "top_teams": ["team", "requests", "credits", "revenue_usd", "base_cost_usd", "margin_usd", "markup_pct"],
    "top_models": [
        "model",
        "model_provider",
        "requests",
        "credits",
        "revenue_usd",
        "base_cost_usd",
        "margin_usd",
        "markup_pct",
        "cache_hits",
        "cache_saving_usd",
    ],
    "top_keys": ["api_key", "requests", "failed", "credits", "revenue_usd", "base_cost_usd", "margin_usd"],
    "user_models": [
        "model",
        "model_provider",
        "requests",
        "failed",
        "credits",
        "revenue_usd",
        "base_cost_usd",
        "margin_usd",
        "rounding_uplift_usd",
    ],
    "user_transactions": [
        "local_time",
        "kind",
        "model",
        "provider",
        "status",
        "requests",
        "credits",
        "revenue_usd",
        "base_cost_usd",
        "transaction_id",
    ],
}


def table(name: str, frame: pd.DataFrame) -> None:
    """The table (a readable subset of its columns) and the download of all of them."""
    config = {c: st.column_config.NumberColumn(label, format="%.4f") for c, label in MONEY.items()}
    config["markup_pct"] = st.column_config.NumberColumn("markup %", format="%.1f")
    st.dataframe(
        chart_frame(frame), hide_index=True, width="stretch", column_order=SHOWN.get(name), column_config=config
    )
    downloads(name, frame)


principal = guard("spend")
st.title("Spend")
svc = services()
sync_with_progress(principal, STALE_AFTER_SECONDS)  # when missing or older than five minutes
version = svc.spend.store_version(principal)  # the cache key: a new sync (or another store) means new answers
who_key = f"{principal.email}|{principal.role}"
options = load_options(principal, who_key, version)
sees_all = principal.can(Capability.VIEW_ALL_SPEND)
visible_users = [u for u, _ in options.users] if sees_all else [principal.email]
teams = {t.name: t for t in svc.spend.teams(principal)}  # every team for finance; the teams one owns otherwise

with st.sidebar:
    st.subheader("Filters")
    team = None
    if teams:
        everyone = "(everyone)" if sees_all else "(your own spend)"
        picked_team = st.selectbox("Team", [everyone, *teams], key="team", help="a team's spend: its members'")
        team = teams.get(picked_team)
        if team is not None:
            visible_users = list(team.members)
    first, last = svc.spend.default_range(principal)
    picked = st.date_input(
        f"Days ({svc.settings.reporting_tz})",
        value=(first, last),
        min_value=min(first, options.first_day or first),
        max_value=max(last, options.last_day or last),
        key="days",
    )
    since, until = picked if isinstance(picked, tuple) and len(picked) == 2 else (first, last)
    if team is not None:
        users = st.multiselect("Users", visible_users, key=f"users-team-{team.id}")
    else:
        users = st.multiselect("Users", visible_users, key="users") if sees_all else [principal.email]
    models = st.multiselect("Models", sorted({m for m, _ in options.models}), key="models")
    providers = st.multiselect("Providers", list(options.providers), key="providers")
    categories = st.multiselect("Categories", list(options.categories), key="categories")
    statuses = st.multiselect("Status", list(options.statuses), key="statuses")
    key_labels = {i: f"{label} ({owner})" if sees_all else label for i, label, owner in options.api_keys}
    api_keys = st.multiselect(
        "API keys", list(key_labels), format_func=lambda i: key_labels[i], key="api_keys", help="calls through the API"
    )
    sources = st.multiselect("Sources", list(options.sources), key="sources", help="playground, cli or api")
    sandbox = st.toggle("Include sandbox calls (would-be cost, 0 credits)", value=False, key="sandbox")
    if st.button("Refresh data", icon=":material/refresh:", help="sync new usage and ledger rows now"):
        report = sync_with_progress(principal, None)
        st.cache_data.clear()
        st.toast(f"{report.mode} sync: +{report.usage_rows:,} usage rows")
        st.rerun()
if team is not None:
    st.info(f"Team {plain(team.name)}: the spend of its {len(team.members)} members now.")
elif not sees_all:
    st.info("You see your own spend. Finance and admins see everyone's.")

drill = st.session_state.get("drill_user")
query = PageQuery(
    since=since,
    until=until,
    users=tuple(users),
    models=tuple(models),
    providers=tuple(providers),
    categories=tuple(categories),
    statuses=tuple(statuses),
    include_sandbox=sandbox,
    api_keys=tuple(api_keys),
    sources=tuple(sources),
    drill_user=drill if drill in visible_users else None,
)
page = load_page(principal, who_key, version, query, None if team is None else team.id)
k = page.kpis
st.caption(
    f"As of {page.as_of:%Y-%m-%d %H:%M:%S} UTC (last sync of the analytics store) · days in {page.tz} · "
    f"revenue = credits × ${svc.settings.credit_usd} · sandbox calls {'included' if sandbox else 'excluded'} · "
    "the KPIs cover this month whatever the day range; everything else covers the days picked."
)

c1, c2, c3, c4, c5 = st.columns(5)
mtd = k.month_to_date
c1.metric(
    f"Spend in {k.month:%b}",
    money(mtd.revenue_usd),
    f"{mtd.credits:,} credits",
    delta_color="off",
    delta_arrow="off",
    help="Revenue this month to date (credits charged x the credit price, refunds netted).",
)
fc = k.forecast
c2.metric(
    "Forecast",
    money(fc.revenue_forecast_usd),
    f"{money(fc.revenue_low_usd)} – {money(fc.revenue_high_usd)}",
    delta_color="off",
    delta_arrow="off",
    help=f"Month-end revenue forecast, {fc.band}: {fc.method}.",
)
margin_pct = f"{mtd.margin_usd / mtd.revenue_usd:.1%} of revenue" if mtd.revenue_usd else None
c3.metric(
    "Margin",
    money(mtd.margin_usd),
    margin_pct,
    delta_color="off",
    delta_arrow="off",
    help=f"Margin this month to date: revenue minus provider cost; {money(mtd.rounding_uplift_usd)} of it from "
    "rounding up to whole credits.",
)
c4.metric("Active users", f"{k.active_users:,}", "this month", delta_color="off", delta_arrow="off")
vs = k.vs_last_month_pct
c5.metric(
    "vs last month",
    "—" if vs is None else f"{vs:+.0f}%",
    f"{money(k.last_month_same_point.revenue_usd)} then",
    delta_color="off",
    delta_arrow="off",
    help=f"This month to date against last month up to the same day and hour; last month in full: "
    f"{money(k.last_month.revenue_usd)}.",
)

daily = chart_frame(page.daily_by_provider.frame)
if daily.empty:
    st.info("No spend in these days with these filters.")
else:
    fig = px.bar(
        daily,
        x="bucket",
        y="revenue_usd",
        color="provider",
        title="Daily spend by provider (revenue, USD)",
        labels={"bucket": "", "revenue_usd": "USD"},
    )
    st.plotly_chart(fig, width="stretch")
    downloads("daily_by_provider", page.daily_by_provider.frame)

left, right = st.columns(2)
with left:
    top_users = chart_frame(page.top_users.frame)
    fig = px.bar(
        top_users.iloc[::-1],
        x="revenue_usd",
        y="user",
        orientation="h",
        title="Top users (click to drill in)",
        labels={"revenue_usd": "USD", "user": ""},
    )
    event = st.plotly_chart(fig, width="stretch", on_select="rerun", selection_mode="points", key="top_users_chart")
    points = getattr(getattr(event, "selection", None), "points", None) or []
    if points and points[0].get("y") and points[0]["y"] != st.session_state.get("drill_user"):
        st.session_state["drill_user"] = points[0]["y"]
        st.rerun()
    table("top_users", page.top_users.frame)
with right:
    top_models = chart_frame(page.top_models.frame)
    fig = px.bar(
        top_models.iloc[::-1],
        x="revenue_usd",
        y="model",
        orientation="h",
        color="model_provider",
        title="Top models",
        labels={"revenue_usd": "USD", "model": "", "model_provider": "provider"},
    )
    st.plotly_chart(fig, width="stretch")
    table("top_models", page.top_models.frame)

st.subheader("By API key")
st.caption("Calls through the HTTP gateway, per key; “(no key)” is the Playground and the command line.")
table("top_keys", page.top_keys.frame)

if sees_all and team is None and teams:
    st.subheader("Spend by team")
    st.caption("Each person's spend counts for their team now (moving someone moves their history with them).")
    table("top_teams", page.top_teams.frame)

tree = chart_frame(page.provider_models.frame)
tree = tree[tree["revenue_usd"] > 0]
if not tree.empty:
    fig = px.treemap(tree, path=["provider", "model"], values="revenue_usd", title="Provider → model (revenue, USD)")
    st.plotly_chart(fig, width="stretch")
    downloads("provider_models", page.provider_models.frame)

totals = chart_frame(page.daily_totals.frame)
if not totals.empty:
    names = {"margin_usd": "margin", "rounding_uplift_usd": "rounding uplift", "base_cost_usd": "provider cost"}
    long = totals.rename(columns=names).melt(
        id_vars="bucket", value_vars=list(names.values()), var_name="series", value_name="usd"
    )
    fig = px.line(
        long,
        x="bucket",
        y="usd",
        color="series",
        title="Margin, rounding uplift and provider cost per day",
        labels={"bucket": "", "usd": "USD"},
    )
    st.plotly_chart(fig, width="stretch")
    st.caption(
        "Rounding uplift: what rounding each call up to whole credits earns before the markup (part of the margin)."
    )
    downloads("daily_totals", page.daily_totals.frame)

st.subheader("Anomalies")
st.caption("Days far above a user's or a model's own 28-day baseline (robust: median and MAD), largest first.")
if page.anomalies.frame.empty:
    st.write("None in these days.")
else:
    table("anomalies", page.anomalies.frame)

st.subheader("Drill into a user")
choices = [NONE, *visible_users]
st.selectbox("User", choices, key="drill_user", help="or click a bar in Top users")
if page.drill is not None:
    d = page.drill
    t = d.totals
    st.markdown(
        f"**{plain(d.user)}** in these days, filters applied: {t.requests:,} requests · {t.credits:,} credits · "
        f"revenue {money(t.revenue_usd)} · provider cost {money(t.base_cost_usd)} · margin {money(t.margin_usd)}"
    )
    table("user_models", d.models.frame)
    series = chart_frame(d.daily.frame)
    if not series.empty:
        fig = px.bar(
            series,
            x="bucket",
            y="revenue_usd",
            color="model",
            title=f"{d.user}: daily spend by model",
            labels={"bucket": "", "revenue_usd": "USD"},
        )
        st.plotly_chart(fig, width="stretch")
    downloads("user_daily", d.daily.frame)
    st.markdown(f"Transactions (newest first, up to {len(d.transactions.frame):,} shown)")
    table("user_transactions", d.transactions.frame)
