"""Home: this month's spend against last month, credits outstanding, active users, top model, daily spend."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from core.services import Principal
from core.services.overview import Overview
from core.services.spend import zone
from core.services.times import stamp
from pages.charts.colors import series_colors
from pages.charts.safe import show as show_chart
from pages.charts.spend_charts import lines
from pages.fmt import count, credits, money
from pages.metrics import figure
from pages.ui import guard, plain, services

CACHED_FOR_SECONDS = 60


@st.cache_data(ttl=CACHED_FOR_SECONDS, show_spinner=False)
def load_overview(_who: Principal, database_url: str) -> tuple[Overview, datetime]:
    """The overview and when it was read (naive UTC): kept for a minute, so say from when."""
    return services().overview.overview(_who), datetime.now(UTC).replace(tzinfo=None)


principal = guard("home")
title, refresh = st.columns([4, 1], vertical_alignment="bottom")
title.title("Overview")
if refresh.button(
    "Refresh",
    icon=":material/refresh:",
    help="Read the figures again now: new usage is synced into the analytics store and balances are read afresh "
    f"(otherwise they are kept for {CACHED_FOR_SECONDS} s).",
    key="refresh_overview",
):
    with st.spinner("Syncing new usage…"):
        services().spend.sync(principal)
    load_overview.clear()
ov, read_at = load_overview(principal, services().settings.database_url)
age = (datetime.now(UTC).replace(tzinfo=None) - read_at).total_seconds()
st.markdown(
    f"**Figures from {stamp(read_at, ov.tz, '%H:%M:%S')}**"
    + (f" ({age:,.0f} s ago; **Refresh** reads them again)" if age >= 1 else " (just read)")
)
st.caption(
    f"Usage as of {stamp(ov.as_of, ov.tz)} (last sync of the analytics store) · balances read at "
    f"{stamp(read_at, ov.tz, '%H:%M:%S')} · times, months and days in {ov.tz} · "
    f"revenue = credits charged × ${services().settings.credit_usd}, endpoint uptime included and refunds netted, "
    "the same figures as the Spend page; sandbox calls are excluded (nobody pays for them)."
)

c1, c2, c3, c4 = st.columns(4)
vs = ov.vs_last_month_pct
delta = None if vs is None else f"{vs:+,.1f}% vs same point last month"
c1.metric("Revenue this month", money(ov.this_month.revenue_usd), delta)  # a real change: arrow and colour
figure(c2, "Revenue last month", money(ov.last_month.revenue_usd), f"margin {money(ov.last_month.margin_usd)}")
figure(
    c3,
    "Credits outstanding",
    count(ov.credits_outstanding),
    f"{money(ov.credits_outstanding_usd)} prepaid"
    + (
        f" · {count(ov.credits_overdrawn)} owed by {count(ov.accounts_overdrawn)} overdrawn"
        if ov.accounts_overdrawn
        else ""
    ),
    help="Every positive balance now: credits bought and not yet spent. Overdrawn accounts owe their credits "
    "and are not netted against them.",
)
figure(c4, "Active users this month", f"{count(ov.active_users)} of {count(ov.users)}")
if ov.top_model:
    st.markdown(f"**Top model this month:** {plain(ov.top_model)} · {credits(ov.top_model_credits)}")

if ov.daily:
    df = pd.DataFrame(
        {
            "day": [d.day for d in ov.daily],
            "revenue": [float(d.revenue_usd) for d in ov.daily],  # floats for the chart only
            "provider cost": [float(d.base_cost_usd) for d in ov.daily],
        }
    )
    long = df.melt(id_vars="day", value_vars=["revenue", "provider cost"], var_name="series", value_name="usd")
    today = ov.as_of.replace(tzinfo=UTC).astimezone(zone(ov.tz)).date()
    fig = lines(
        long,
        x="day",
        y="usd",
        series="series",
        colors=series_colors(["revenue", "provider cost"]),
        partial=today if ov.daily[-1].day == today else None,
        title=f"Daily revenue and provider cost ({ov.tz} days)",
    )
    show_chart(fig, width="stretch")
    if ov.daily[-1].day == today:
        st.caption("The dotted end is today, still running.")
else:
    st.info("No usage yet. `python -m core demo` writes a demo history; the Playground makes real calls.")
