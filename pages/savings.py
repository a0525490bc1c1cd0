"""Savings (admin, engineer, finance): where money is being lost in real traffic, and what to change, ranked by
monthly saving. Thin: the dates and kinds in, `services.optimize.savings` out, drawn."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.errors import CoreError
from core.services import Capability, Principal
from core.services.optimize import KIND_LABELS, Kind, SavingsView
from core.services.times import stamp
from pages.fmt import count, money
from pages.tables import downloads, table
from pages.ui import guard, plain, services, sync_when_stale

SHOWN = 25  # opportunities with their evidence; the table and the CSV hold all
COLUMNS = {
    "rank": ("#", "count"),
    "saving_per_month_usd": ("saving a month", "money"),
    "kind": ("kind", "text"),
    "subject": ("about", "text"),
    "action": ("what to do", "text"),
}
EVIDENCE = {"figure": ("figure", "text"), "value": ("value", "text")}


@st.cache_data(ttl=300, show_spinner="Replaying every model's traffic through the break-even model…")
def load(_who: Principal, who_key: str, version: str, since: date, until: date, kinds: tuple[str, ...]) -> SavingsView:
    return services().optimize.savings(_who, since=since, until=until, kinds=kinds)


principal = guard("savings")
st.title("Savings")
st.caption(
    "Found in real traffic: serverless models cheaper on a dedicated GPU, endpoints cheaper serverless, on smaller "
    "hardware or with a shorter idle timeout, repeated requests the response cache would have served, and cheaper "
    "models already carrying most of someone's or a team's traffic (hints: quality is not measured). Monthly "
    "figures are the period's scaled to 730 hours; an endpoint's are its metered hours' (it may have run for part of "
    "the period only: its evidence names them) scaled to 730, what it costs a month at the rate it ran; the break-even "
    "model's estimates (throughput, service time, a "
    "300 s cold start) are the Break-even page's defaults."
)
svc = services()
version = sync_when_stale(principal)
first, last = svc.spend.default_range(principal)  # the last 30 local days up to the last sync

with st.sidebar:
    st.subheader("Period")
    picked = st.date_input(f"Days ({svc.settings.reporting_tz})", value=(first, last), key="days")
    since, until = picked if isinstance(picked, tuple) and len(picked) == 2 else (first, last)
    # substitution hints name people and what they spend: only for those who may see everyone's spend
    shown = [k for k in KIND_LABELS if k != Kind.SUBSTITUTION or principal.can(Capability.VIEW_ALL_SPEND)]
    labels = {KIND_LABELS[k]: k.value for k in shown}
    kinds = st.multiselect("Kinds", list(labels), key="kinds", placeholder="all kinds")

try:
    view = load(
        principal,
        f"{principal.email}|{principal.role}",
        version,
        since,
        until,
        tuple(labels[k] for k in kinds) or tuple(labels.values()),
    )
except CoreError as exc:  # a sentence to act on, never a stack trace
    st.error(plain(str(exc)))
    st.stop()

st.caption(
    f"Period {view.period} · as of {stamp(view.as_of, svc.settings.reporting_tz, '%Y-%m-%d %H:%M:%S')} "
    "(last sync of the analytics store)"
)
if not view.rows:
    st.info("No saving of $1 a month or more in this period's traffic. A longer period or other kinds may find some.")
    st.stop()

c1, c2, c3 = st.columns(3)
c1.metric("Savings a month", money(view.monthly_saving_usd), help="Without the hints; opportunities can overlap.")
c2.metric("Opportunities", count(len(view.rows)))
c3.metric("Hints", count(sum(r.hint for r in view.rows)))
if view.by_kind:
    st.bar_chart(
        {"kind": list(view.by_kind), "saving a month ($)": [float(v) for v in view.by_kind.values()]},
        x="kind",
        y="saving a month ($)",
        horizontal=True,
        height=180,
    )


table(view.table, COLUMNS)
downloads("savings", view.table, COLUMNS, parquet=False)

may_create = principal.can(Capability.MANAGE_ENDPOINTS)
for row in view.rows[:SHOWN]:
    hint = " (hint)" if row.hint else ""
    title = f"#{row.rank} · {money(row.monthly_saving_usd)}/month · {row.kind_label}{hint} · {row.subject}"
    with st.expander(plain(title)):
        st.markdown(plain(row.action))
        evidence = pd.DataFrame({"figure": [k for k, _ in row.evidence], "value": [v for _, v in row.evidence]})
        table(evidence, EVIDENCE, key=f"evidence-{row.rank}")
        if row.create_link is not None and may_create:
            st.markdown(f":material/add_circle: [Open the Endpoints create form, filled in]({row.create_link})")
