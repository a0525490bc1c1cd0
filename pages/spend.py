"""Spend (finance): who and what costs most, how it trends, what margin it leaves. Reads the DuckDB analytics store."""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.express as px
import streamlit as st

from core.services import Capability, Principal
from core.services.spend import (
    GRAINS,
    PRESETS,
    STALE_AFTER_SECONDS,
    FilterOptions,
    PageQuery,
    SpendPage,
    SyncReport,
    bucket_start,
    chart_frame,
    counted_days,
    preset_range,
)
from core.services.times import labelled, stamp
from pages.charts.colors import model_colors, provider_colors, series_colors
from pages.charts.safe import show as show_chart
from pages.charts.spend_charts import lines, ranked_bars, stacked_bars
from pages.fmt import count, credits, money, pct
from pages.metrics import figure
from pages.tables import downloads, table
from pages.ui import guard, plain, services

NONE = "(nobody)"
GRAIN_LABELS = {"day": "Day", "week": "Week", "month": "Month"}


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


# column -> (label, kind) of every spend table; a table shows the ones its frame has (one's own view has no finance
# columns), in this order, and its CSV has the same labels
COLUMNS: dict[str, tuple[str, str]] = {
    "local_time": ("time", "datetime"),
    "bucket": ("period from", "text"),
    "user": ("user", "text"),
    "user_name": ("name", "text"),
    "team": ("team", "text"),
    "api_key": ("API key", "text"),
    "dimension": ("of", "text"),
    "entity": ("who / what", "text"),
    "day": ("day", "date"),
    "provider": ("provider", "text"),  # before model_provider: where both are, the row's own provider is "provider"
    "model": ("model", "text"),
    "model_provider": ("provider", "text"),
    "kind": ("kind", "text"),
    "status": ("status", "text"),
    "requests": ("requests", "count"),
    "failed": ("failed", "count"),
    "credits": ("credits", "credits"),
    "revenue_usd": ("revenue", "money"),
    "base_cost_usd": ("provider cost", "money"),
    "margin_usd": ("margin", "money"),
    "markup_pct": ("effective markup %", "pct"),
    "rounding_uplift_usd": ("rounding uplift", "money"),
    "cache_hits": ("cache hits", "count"),
    "cache_saving_usd": ("cache saving", "money"),
    "baseline_usd": ("baseline", "money"),
    "excess_usd": ("excess", "money"),
    "ratio": ("× baseline", "ratio"),
    "transaction_id": ("transaction", "text"),
}
# columns the downloads carry beyond the tables' (every column of an answer but those repeating another: download_all),
# labelled as the tables label theirs
DOWNLOAD_ONLY: dict[str, tuple[str, str]] = {
    "counted_from": ("counted from", "date"),  # a week or month the period starts or ends inside of: its days counted
    "counted_to": ("counted to", "date"),
    "user_id": ("user id", "count"),
    "team_id": ("team id", "count"),
    "api_key_id": ("API key id", "count"),
    "model_name": ("model name", "text"),
    "score": ("anomaly score", "ratio"),
    "utc_time": ("time (UTC)", "datetime"),
    "category": ("category", "text"),
    "sandbox": ("sandbox", "text"),
    "cache_hit": ("cache hit", "text"),
    "source_id": ("usage or ledger row", "count"),
}
SPENT = ("spent", "money")  # what "revenue" is called on one's own view: what one paid
# one call's figures: its provider cost is a fraction of a cent, written to the cent it read "$0.00", as if free
PER_CALL = {"transactions": {"base_cost_usd": ("provider cost", "price")}}
HELP = {
    "markup_pct": "The effective markup: what was charged over what the providers cost, (revenue ÷ provider cost − 1) "
    "× 100. It is higher than the markup set for a person on the Ledger, because each call is first rounded up to "
    "whole credits: a $0.013 call becomes 1 credit ($0.04), and 3 credits ($0.12) at a 200% markup: 823% effective.",
    "rounding_uplift_usd": "What rounding each call up to whole credits earns before the markup (part of the margin; "
    "none for calls billed by accrual, which are not rounded one by one).",
    "revenue_usd": "Credits charged × the credit price, refunds netted.",
    "base_cost_usd": "What the providers billed, endpoint uptime included. A response served from the response cache "
    "reached no provider and adds nothing here.",
    "cache_saving_usd": "What the responses served from the response cache would have cost at catalog price: no "
    "provider billed them. The credits charged for them (if cache hits are charged) are revenue, so margin.",
    "credits": "Credits charged, refunds netted; endpoint uptime included.",
}
# the columns each table shows, in order (the download holds every column)
SHOWN = {
    "top_users": [
        "user",
        "user_name",
        "requests",
        "credits",
        "revenue_usd",
        "base_cost_usd",
        "margin_usd",
        "markup_pct",
    ],
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
    "transactions": [
        "local_time",
        "user",
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
    "anomalies": ["dimension", "entity", "day", "revenue_usd", "baseline_usd", "excess_usd", "ratio"],
}


def spec_of(name: str, frame: pd.DataFrame, *, finance: bool) -> dict[str, tuple[str, str]]:
    """The table's columns (those its frame has) with their labels and kinds; all of them for the download."""
    wanted = SHOWN.get(name) or [c for c in COLUMNS if c in frame.columns]
    spec = {c: PER_CALL.get(name, {}).get(c, COLUMNS[c]) for c in wanted if c in frame.columns}
    if not finance and "revenue_usd" in spec:
        spec["revenue_usd"] = SPENT
    if "local_time" in spec:  # already in the reporting time zone: say which, as every page does
        spec["local_time"] = (labelled(COLUMNS["local_time"][0], services().settings.reporting_tz), "datetime")
    return spec


def spend_table(name: str, frame: pd.DataFrame, *, finance: bool, height: int | str = "auto") -> None:
    """The table (every row; a readable subset of the columns) and downloads of all of it, with the same labels."""
    spec = spec_of(name, frame, finance=finance)
    table(chart_frame(frame), spec, order=list(spec), help=HELP, key=f"table-{name}", height=height)
    download_all(name, frame, finance=finance, spec=spec)


def download_all(
    name: str,
    frame: pd.DataFrame,
    *,
    finance: bool,
    spec: dict[str, tuple[str, str]] | None = None,
    days: tuple[str, date, date] | None = None,
) -> None:
    """Downloads of a table: every column but the charts' grouping key, each labelled (the table's `spec` first);
    with `days` (grain, since, until), the days each week or month counts (counted_days)."""
    if spec is None:
        spec = spec_of(name, frame, finance=finance)
    if days is not None:
        frame = counted_days(frame, *days)
    # the charts' grouping key repeats a labelled column; a call's UTC time repeats its local time when that is UTC
    same = ["key", "utc_time"] if services().settings.reporting_tz == "UTC" else ["key"]
    frame = frame.drop(columns=same, errors="ignore")
    labels = {**COLUMNS, **DOWNLOAD_ONLY}
    if "provider" in frame.columns and "model_provider" in frame.columns:
        if frame["provider"].equals(frame["model_provider"]):  # per provider, then model: the same column twice
            frame = frame.drop(columns=["model_provider"])
        else:  # the row's own provider is "provider"; the model's, beside it, says so
            spec = {**spec, "model_provider": ("model's provider", "text")}
    downloads(name, frame, {**spec, **{c: labels[c] for c in frame.columns if c in labels and c not in spec}})


def scrolled(frame: pd.DataFrame) -> int | str:
    """A long table scrolls inside about 12 rows rather than pushing the page down."""
    return 460 if len(frame) > 12 else "auto"


def models_section(page: SpendPage, title: str, heading: str) -> None:
    """The top models by spend (coloured by provider) and the table of every model."""
    top_models = chart_frame(page.top_models.frame)
    chart = ranked_bars(
        top_models, x="revenue_usd", y="model", color="model_provider", colors=provider_colors(), title=title
    )
    show_chart(chart, width="stretch", key="top_models_chart")
    st.markdown(heading)
    spend_table("top_models", page.top_models.frame, finance=page.finance, height=scrolled(top_models))


def kpis_finance(page: SpendPage) -> None:
    """This month at a glance, for finance: spend, forecast, margin, active users, against last month."""
    k = page.kpis
    c1, c2, c3, c4, c5 = st.columns(5)
    mtd = k.month_to_date
    figure(
        c1,
        f"Spend in {k.month:%b}",
        money(mtd.revenue_usd),
        credits(mtd.credits),
        help="Revenue this month to date (credits charged × the credit price, refunds netted).",
    )
    fc = k.forecast
    figure(
        c2,
        "Forecast",
        money(fc.revenue_forecast_usd),
        f"{money(fc.revenue_low_usd)} – {money(fc.revenue_high_usd)}",
        help=f"Month-end revenue forecast, {fc.band}: {fc.method}.",
    )
    figure(
        c3,
        "Margin",
        money(mtd.margin_usd),
        f"{pct(mtd.margin_usd / mtd.revenue_usd * 100)} of revenue" if mtd.revenue_usd else None,
        help=f"Margin this month to date: revenue minus provider cost; {money(mtd.rounding_uplift_usd)} of it from "
        "rounding up to whole credits.",
    )
    figure(c4, "Active users", count(k.active_users), "this month")
    vs = k.vs_last_month_pct
    figure(
        c5,
        "vs last month",
        "—" if vs is None else f"{vs:+,.0f}%",
        f"{money(k.last_month_same_point.revenue_usd)} then",
        help=f"This month to date against last month up to the same day and hour; last month in full: "
        f"{money(k.last_month.revenue_usd)}.",
    )


def kpis_own(page: SpendPage, period: str) -> None:
    """One's own figures: credits left, what one spent in the period and this month, calls made."""
    t = page.totals
    mtd = page.kpis.month_to_date
    c1, c2, c3, c4 = st.columns(4)
    figure(c1, "Credits left", count(page.balance), help="Your balance now, from the ledger (not the analytics copy).")
    figure(
        c2,
        f"Spent ({period})",
        money(t.revenue_usd),
        credits(t.credits),
        help="Credits charged in the period × the credit price, refunds netted.",
    )
    figure(c3, f"Spent in {page.kpis.month:%b}", money(mtd.revenue_usd), credits(mtd.credits))
    figure(c4, "Calls", count(t.requests), f"{count(t.failed)} failed")


def empty_state(page: SpendPage, sandbox: bool) -> None:
    """Nothing to chart: say why, and what to change, rather than $0.00 figures and empty axes."""
    days = f"{page.since:%d %b %Y}" + ("" if page.since == page.until else f" – {page.until:%d %b %Y}")
    if page.hidden_sandbox_requests:
        st.info(
            f"Nothing was billed in {days} with these filters: the {count(page.hidden_sandbox_requests)} sandbox "
            "calls in it are hidden. Switch on **Include sandbox calls** in the sidebar to see their would-be cost.",
            icon=":material/visibility_off:",
        )
    else:
        also = ", sandbox calls included" if sandbox else ""
        st.info(
            f"No spend in {days} with these filters{also}. Pick a longer period (e.g. **30 days**) or clear a filter "
            "in the sidebar.",
            icon=":material/search_off:",
        )


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
first, today = svc.spend.default_range(principal)  # the last 30 local days up to the store's last sync

with st.sidebar:
    st.subheader("Filters")
    team = None
    if teams:
        everyone = "(everyone)" if sees_all else "(your own spend)"
        picked_team = st.selectbox("Team", [everyone, *teams], key="team", help="a team's spend: its members'")
        team = teams.get(picked_team)
        if team is not None:
            visible_users = list(team.members)
    preset = st.selectbox(
        f"Period ({svc.settings.reporting_tz} days)", PRESETS, index=PRESETS.index("30 days"), key="preset"
    )
    if preset == "custom":
        picked = st.date_input(
            "Days",
            value=(first, today),
            min_value=min(first, options.first_day or first),
            max_value=max(today, options.last_day or today),
            key="days",
        )
        since, until = picked if isinstance(picked, tuple) and len(picked) == 2 else (first, today)
    else:
        since, until = preset_range(preset, today)
        st.caption(f"{since:%a %d %b %Y}" + ("" if since == until else f" – {until:%a %d %b %Y}"))
    grain = (
        st.segmented_control(
            "Group by", GRAINS, format_func=GRAIN_LABELS.get, default="day", key="grain", required=True
        )
        or "day"
    )
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
personal = not sees_all and team is None  # one's own spend: no ranking of users, no drill-down into oneself
if team is not None:
    st.info(f"Team {plain(team.name)}: the spend of its {len(team.members)} members now.")
elif personal:
    st.info(
        "You see your own spend: your calls, your credits and what you spent per model. Finance and admins see "
        "everyone's, with the provider cost and margin."
    )

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
    drill_user=drill if drill in visible_users and not personal else None,
    grain=grain,
)
page = load_page(principal, who_key, version, query, None if team is None else team.id)
finance = page.finance
spent = "revenue" if finance else "spent"
period = preset if preset != "custom" else f"{since:%d %b} – {until:%d %b}"
st.caption(
    f"As of {stamp(page.as_of, page.tz, '%Y-%m-%d %H:%M:%S')} (last sync of the analytics store) · times and "
    f"days in {page.tz} · "
    f"{spent} = credits × ${svc.settings.credit_usd} · sandbox calls {'included' if sandbox else 'excluded'}"
    + (" · the KPIs cover this month whatever the period; everything else covers the period picked." if finance else "")
)

if finance:
    k = page.kpis
    if k.month_to_date.requests or k.month_to_date.credits or k.last_month.credits:
        kpis_finance(page)
else:
    kpis_own(page, period)

t = page.totals
if not (t.requests or t.credits):
    empty_state(page, sandbox)
    st.stop()

every = f"per {grain}"
running = {"day": "today", "week": "this week", "month": "this month"}[grain]
series = chart_frame(page.series_by_provider.frame)
fig = stacked_bars(
    series,
    x="bucket",
    y="revenue_usd",
    color="provider",
    colors=provider_colors(),
    partial=page.partial_bucket,
    title=f"{spent.capitalize()} {every} by provider (USD)",
    grain=grain,
)
show_chart(fig, width="stretch", key="by_provider_chart")
clipped = bucket_start(since, grain) != since  # a week or month the period starts inside of
notes = [f"The last bar ({running}) is partial: spend so far, up to {stamp(page.as_of, page.tz, '%H:%M')}."] * (
    page.partial_bucket is not None
)
notes += [f"The first bar counts only from {since:%a %d %b}, where the period starts."] * clipped
if notes:
    st.caption(" ".join(notes))
download_all(
    f"{grain}_by_provider", page.series_by_provider.frame, finance=finance, days=(grain, page.since, page.until)
)

if personal:
    models_section(page, "What you spent per model (top 10)", "Per model")
else:
    left, right = st.columns(2)
    with left:
        top_users = chart_frame(page.top_users.frame)
        fig = ranked_bars(top_users, x="revenue_usd", y="user", title="Top 10 users (click one to drill in)")
        event = show_chart(fig, width="stretch", on_select="rerun", selection_mode="points", key="top_users_chart")
        points = getattr(getattr(event, "selection", None), "points", None) or []
        if points and points[0].get("y") and points[0]["y"] != st.session_state.get("drill_user"):
            st.session_state["drill_user"] = points[0]["y"]
            st.rerun()
        st.markdown(f"**Every user** ({count(len(top_users))})")
        spend_table("top_users", page.top_users.frame, finance=finance, height=scrolled(top_users))
    with right:
        models_section(page, "Top 10 models", f"**Every model** ({count(len(page.top_models.frame))})")

st.subheader("By API key")
st.caption("Calls through the HTTP gateway, per key; “(no key)” is the Playground and the command line.")
spend_table("top_keys", page.top_keys.frame, finance=finance)

if sees_all and team is None and teams:
    st.subheader("Spend by team")
    st.caption("Each person's spend counts for their team now (moving someone moves their history with them).")
    spend_table("top_teams", page.top_teams.frame, finance=finance)

tree = chart_frame(page.provider_models.frame)
tree = tree[tree["revenue_usd"] > 0]
if not tree.empty and len(tree) > 1:
    fig = px.treemap(
        tree,
        path=["provider", "model"],
        values="revenue_usd",
        color="provider",
        color_discrete_map={"(?)": "#ffffff", **provider_colors()},
        title=f"Provider → model ({spent}, USD)",
    )
    show_chart(fig, width="stretch", key="treemap")
    download_all("provider_models", page.provider_models.frame, finance=finance)

over_time = chart_frame(page.series_totals.frame)
if finance:
    names = {"margin_usd": "margin", "rounding_uplift_usd": "rounding uplift", "base_cost_usd": "provider cost"}
    title = f"Margin, rounding uplift and provider cost {every}"
else:
    names = {"revenue_usd": "spent"}
    title = f"What you spent {every}" if personal else f"What the team spent {every}"
long = over_time.rename(columns=names).melt(
    id_vars="bucket", value_vars=list(names.values()), var_name="series", value_name="usd"
)
fig = lines(
    long,
    x="bucket",
    y="usd",
    series="series",
    colors=series_colors(names.values()),
    partial=page.partial_bucket,
    title=title,
    grain=grain,
)
show_chart(fig, width="stretch", key="over_time_chart")
if finance:
    st.caption(
        "Rounding uplift: what rounding each call up to whole credits earns before the markup (part of the margin)."
        + (f" The dotted end is {running}, still running." if page.partial_bucket is not None else "")
    )
elif page.partial_bucket is not None:
    st.caption(f"The dotted end is {running}, still running.")
download_all(f"{grain}_totals", page.series_totals.frame, finance=finance, days=(grain, page.since, page.until))

st.subheader("Anomalies")
st.caption("Days far above a user's or a model's own 28-day baseline (robust: median and MAD), largest first.")
if page.anomalies.frame.empty:
    st.write("None in these days.")
else:
    spend_table("anomalies", page.anomalies.frame, finance=finance)

if personal:
    tx = page.transactions
    if tx is not None:
        st.subheader("Your newest calls")
        st.caption(f"Newest first, up to {count(len(tx.frame))} shown.")
        spend_table("transactions", tx.frame, finance=False, height=scrolled(tx.frame))
    st.stop()

st.subheader("Drill into a user")
choices = [NONE, *visible_users]
st.selectbox("User", choices, key="drill_user", help="or click a bar in Top users")
if page.drill is not None:
    d = page.drill
    dt = d.totals
    figures = [f"{count(dt.requests)} requests", credits(dt.credits), f"{spent} {money(dt.revenue_usd)}"]
    if finance:
        figures += [f"provider cost {money(dt.base_cost_usd)}", f"margin {money(dt.margin_usd)}"]
    st.markdown(f"**{plain(d.user)}** in these days, filters applied: " + " · ".join(figures))
    spend_table("user_models", d.models.frame, finance=finance)
    per_model = chart_frame(d.daily.frame)
    if not per_model.empty:
        fig = stacked_bars(
            per_model,
            x="bucket",
            y="revenue_usd",
            color="model",
            colors=model_colors(per_model["model"].unique()),
            partial=page.partial_bucket,
            title=f"{d.user}: {spent} {every} by model",
            grain=grain,
        )
        show_chart(fig, width="stretch", key="drill_chart")
    download_all(f"user_{grain}", d.daily.frame, finance=finance, days=(grain, page.since, page.until))
    st.markdown(f"Transactions (newest first, up to {count(len(d.transactions.frame))} shown)")
    spend_table("transactions", d.transactions.frame, finance=finance, height=scrolled(d.transactions.frame))
