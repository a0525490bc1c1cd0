"""Budgets & alerts: finance and admins set and edit budgets and see every alert and webhook delivery; everyone else
sees their own budgets, their team's, and the alerts about them. A burn-down per budget shows spend to date, the
forecast to the period's end and the limit."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import CoreError
from core.services import Capability, Principal
from core.services.budgets import BudgetsPage
from pages.charts.safe import show as show_chart
from pages.fmt import credits
from pages.tables import table
from pages.ui import billed_calls, guard, plain, services

BUDGETS = {
    "id": ("id", "count"),
    "budget": ("budget", "text"),
    "covers": ("covers", "text"),
    "kind": ("kind", "text"),
    "limit": ("limit", "credits"),
    "spent": ("spent", "credits"),
    "in flight": ("in flight", "credits"),
    "left": ("left", "credits"),
    "used %": ("used %", "pct"),
    "period": ("period", "text"),
    "resets on": ("resets on", "date"),
}
ALERTS = {
    "at": ("at", "instant"),
    "kind": ("kind", "text"),
    "severity": ("severity", "text"),
    "about": ("about", "text"),
    "message": ("message", "text"),
}
WEBHOOKS = {
    "name": ("name", "text"),
    "host": ("host", "text"),
    "kinds": ("kinds", "text"),
    "active": ("active", "text"),
}
DELIVERIES = {
    "at": ("at", "instant"),
    "alert": ("alert", "count"),
    "to": ("to", "text"),
    "attempt": ("attempt", "count"),
    "ok": ("ok", "text"),
    "code": ("HTTP status", "text"),
    "error": ("error", "text"),
    "ms": ("took", "ms"),
    "state": ("state", "text"),
}

principal = guard("budgets")
sees_all = principal.can(Capability.VIEW_ALL_SPEND)
can_manage = principal.can(Capability.MANAGE_BUDGETS)
who_key = f"{services().settings.database_url}|{principal.email}|{principal.role}|{billed_calls()}"


@st.cache_data(ttl=30, show_spinner=False)
def load(_who: Principal, who_key: str) -> BudgetsPage:
    return services().budgets.page(_who)


def saved(message: str) -> None:
    """After a change: fresh data, and the message shown once at the top of the rerun."""
    load.clear()
    st.session_state["budgets_flash"] = message
    st.rerun()


page = load(principal, who_key)
if "budgets_flash" in st.session_state:
    st.success(plain(st.session_state.pop("budgets_flash")))
st.title("Budgets & alerts")
st.caption(
    f"Monthly budgets follow the calendar in {page.tz}. A hard budget refuses a call that would pass it; a soft one "
    "only alerts. Spend counts usage and endpoint uptime, less refunds, and calls in flight hold their credits."
)
if not sees_all:
    st.info("You see your own budgets and your team's. Finance and admins see and set every budget.")

names = ["Budgets", "Alerts"] + (["Webhook deliveries"] if sees_all else [])
tabs = dict(zip(names, st.tabs(names), strict=True))

with tabs["Budgets"]:
    if not page.budgets:
        st.write("No budget covers anyone yet." if sees_all else "No budget covers your calls.")
    else:
        rows = pd.DataFrame(
            [
                {
                    "id": b.id,
                    "budget": b.name,
                    "covers": b.target,
                    "kind": f"{b.enforcement} {b.period}",
                    "limit": b.credits,
                    "spent": b.spent,
                    "in flight": b.in_flight,
                    "left": b.left,
                    "used %": round(b.used_pct, 1),
                    "period": b.period_label,
                    "resets on": b.resets_on,
                }
                for b in page.budgets
            ]
        )
        table(rows, BUDGETS, key="budgets_table", help={"limit": "credits", "spent": "credits", "left": "credits"})
        chosen = st.selectbox(
            "Burn-down of",
            [b.id for b in page.budgets],
            format_func=lambda i: next(f"{b.name} ({b.target})" for b in page.budgets if b.id == i),
            key="burn_budget",
        )
        chart = page.burn_downs[chosen]
        d = chart.daily
        fig = go.Figure()
        fig.add_scatter(x=d["day"], y=d["cumulative"], name="spent to date", mode="lines+markers")
        fig.add_scatter(x=d["day"], y=d["high"], line={"width": 0}, showlegend=False, hoverinfo="skip")
        fig.add_scatter(
            x=d["day"], y=d["low"], fill="tonexty", line={"width": 0}, name="forecast band (90%)", hoverinfo="skip"
        )
        fig.add_scatter(x=d["day"], y=d["forecast"], name="forecast", line={"dash": "dash"})
        fig.add_scatter(x=d["day"], y=d["limit"], name="limit", line={"color": "red"})
        fig.update_layout(height=360, margin={"t": 10, "b": 10}, yaxis_title="credits")
        show_chart(fig, width="stretch")
        over = f"; it passes the limit on {chart.over_on:%Y-%m-%d}" if chart.over_on else ""
        st.caption(f"Forecast {credits(round(chart.forecast_total))} by the period's end{over}. {chart.method}.")

    if can_manage:
        st.subheader("Set a budget")
        with st.form("set_budget"):
            scope = st.radio("Covers", ["user", "team", "api_key"], horizontal=True, key="set_scope")
            target = st.text_input("User email, team name or API key id", key="set_target")
            limit = st.text_input("Limit (credits)", value="1,000", key="set_credits")
            period = st.radio("Period", ["monthly", "once"], horizontal=True, key="set_period")
            enforcement = st.radio("Kind", ["hard", "soft"], horizontal=True, key="set_kind")
            thresholds = st.text_input("Alert thresholds (%)", value="50, 80, 100", key="set_thresholds")
            submitted = st.form_submit_button("Save budget")
        if submitted:
            try:
                budget = services().budgets.set_budget(
                    principal,
                    user=target if scope == "user" else None,
                    team=target if scope == "team" else None,
                    api_key_id=target if scope == "api_key" else None,
                    credits=limit,  # as typed: the engine refuses 2.5 or 1e20 with a sentence
                    period=period,
                    enforcement=enforcement,
                    thresholds=thresholds,
                )
            except CoreError as exc:
                st.error(plain(str(exc)))
            else:
                saved(f"Saved budget {budget.id} on {budget.target}: {credits(budget.left)} left.")
        if page.budgets:
            st.subheader("Remove a budget")
            described = {
                b.id: f"{b.id}: {b.name} ({b.enforcement}, {b.credits:,} credits {b.period}, {b.spent:,} spent)"
                for b in page.budgets
            }
            gone = st.selectbox(
                "Budget", list(described), format_func=lambda i: described.get(i, str(i)), key="remove_id"
            )
            # a removal lifts a limit at once (a hard one stops refusing calls): said, then confirmed
            sure = st.checkbox(
                plain(f"Yes, remove budget {described.get(gone, gone)}: its calls are no longer limited by it"),
                key="remove_sure",
            )
            if st.button("Remove budget", key="remove_go", disabled=not sure):
                try:
                    services().budgets.remove_budget(principal, gone)
                except CoreError as exc:
                    st.error(plain(str(exc)))
                else:
                    st.session_state.pop("remove_sure", None)
                    saved(f"Removed budget {described.get(gone, gone)}.")

with tabs["Alerts"]:
    if not page.alerts:
        st.write("No alerts yet.")
    else:
        table(
            pd.DataFrame(
                [
                    {
                        "at": a.created_at,
                        "kind": a.kind,
                        "severity": a.severity,
                        "about": a.user_email or (f"team {a.team_name}" if a.team_name else ""),
                        "message": a.message,
                    }
                    for a in page.alerts
                ]
            ),
            ALERTS,
            key="alerts_table",
        )

if sees_all:
    with tabs["Webhook deliveries"]:
        st.caption(
            "Webhooks get a signed JSON POST (`X-AI-Credits-Signature: sha256=...`, HMAC of the body); failures are "
            f"retried with backoff. Email: {'on' if page.email_configured else 'off (set SMTP_URL)'}. "
            "`python -m core alerts run` (cron) sends what is queued."
        )
        table(
            pd.DataFrame(
                [{"name": w.name, "host": w.host, "kinds": ", ".join(w.kinds) or "all",
                  "active": "yes" if w.active else "no"} for w in page.webhooks],
                columns=list(WEBHOOKS),
            ),
            WEBHOOKS,
            key="webhooks_table",
        )  # fmt: skip
        table(
            pd.DataFrame(
                [
                    {
                        "at": d.at,
                        "alert": d.alert_id,
                        "to": f"{d.channel}: {d.destination}",
                        "attempt": d.attempt,
                        "ok": "yes" if d.ok else "no",
                        "code": None if d.status_code is None else str(d.status_code),
                        "error": d.error,
                        "ms": d.duration_ms,
                        "state": d.status,
                    }
                    for d in page.deliveries
                ]
            ),
            DELIVERIES,
            key="deliveries_table",
        )
