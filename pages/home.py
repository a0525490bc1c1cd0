"""Home: this month's spend against last month, credits outstanding, active users, top model, daily spend."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from core.services import Principal
from core.services.overview import Overview
from pages.fmt import money
from pages.ui import guard, plain, services


@st.cache_data(ttl=60, show_spinner=False)
def load_overview(_who: Principal, database_url: str) -> Overview:
    return services().overview.overview(_who)


principal = guard("home")
st.title("Overview")
ov = load_overview(principal, services().settings.database_url)
st.caption(
    f"As of {ov.as_of:%Y-%m-%d %H:%M} UTC (last sync of the analytics store) · months and days in {ov.tz} · "
    f"revenue = credits charged × ${services().settings.credit_usd}, endpoint uptime included and refunds netted, "
    "the same figures as the Spend page; sandbox calls are excluded (nobody pays for them)."
)

c1, c2, c3, c4 = st.columns(4)
vs = ov.vs_last_month_pct
delta = None if vs is None else f"{vs:+.1f}% vs same point last month"
c1.metric("Revenue this month", money(ov.this_month.revenue_usd), delta)
c2.metric(
    "Revenue last month",
    money(ov.last_month.revenue_usd),
    f"margin {money(ov.last_month.margin_usd)}",
    delta_color="off",
    delta_arrow="off",
)
c3.metric(
    "Credits outstanding",
    f"{ov.credits_outstanding:,}",
    f"{money(ov.credits_outstanding_usd)} prepaid",
    delta_color="off",
    delta_arrow="off",
)
c4.metric("Active users this month", f"{ov.active_users} of {ov.users}")
if ov.top_model:
    st.markdown(f"**Top model this month:** {plain(ov.top_model)} · {ov.top_model_credits:,} credits")

if ov.daily:
    df = pd.DataFrame(
        {
            "day": [d.day for d in ov.daily],
            "revenue": [float(d.revenue_usd) for d in ov.daily],  # floats for the chart only
            "provider cost": [float(d.base_cost_usd) for d in ov.daily],
        }
    )
    long = df.melt(id_vars="day", value_vars=["revenue", "provider cost"], var_name="series", value_name="usd")
    fig = px.line(
        long,
        x="day",
        y="usd",
        color="series",
        title=f"Daily revenue and provider cost ({ov.tz} days)",
        labels={"usd": "USD", "day": ""},
    )
    st.plotly_chart(fig, width="stretch")
else:
    st.info("No usage yet. `python -m core demo` writes a demo history; the Playground makes real calls.")
