"""Ledger (finance, admin): every account's credits, one user's history with its running balance, grants and top-ups
with a confirmation step, CSV exports and the audit log."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import plotly.express as px
import streamlit as st

from core.errors import CoreError
from core.services import Capability, Principal
from core.services.ledger import GRANT_KINDS, AccountBalance, AuditEntry, DisputedCall, History
from core.services.users import ROLES
from pages.fmt import money
from pages.ui import guard, plain, services

principal = guard("ledger")


# Cached per principal and database: one person's view never serves another's.
@st.cache_data(ttl=30, show_spinner=False)
def load_balances(
    _who: Principal, who_key: str, role: str | None, search: str, min_available: int | None, max_available: int | None
) -> list[AccountBalance]:
    return services().ledger.balances(
        _who, role=role, search=search, min_available=min_available, max_available=max_available
    )


@st.cache_data(ttl=30, show_spinner=False)
def load_history(_who: Principal, who_key: str, email: str) -> History:
    return services().ledger.history(_who, email)


@st.cache_data(ttl=30, show_spinner=False)
def load_disputed(_who: Principal, who_key: str) -> list[DisputedCall]:
    return services().ledger.disputed(_who)


@st.cache_data(ttl=30, show_spinner=False)
def load_audit(_who: Principal, who_key: str, prefix: str | None) -> list[AuditEntry]:
    return services().ledger.audit(_who, action_prefix=prefix)


def refresh() -> None:
    load_balances.clear()
    load_history.clear()
    load_audit.clear()


st.title("Ledger")
credit_usd = services().settings.credit_usd
st.caption(
    "Every balance is the sum of its transactions (`python -m core ledger check` proves it). "
    f"1 credit = ${credit_usd}. Held credits are reserved by calls in flight; available = balance − held."
)
actor = principal
who_key = f"{services().settings.database_url}|{principal.email}|{principal.role}"
sees_all = principal.can(Capability.VIEW_ALL_SPEND)
can_grant = principal.can(Capability.GRANT_CREDITS)
everyone = load_balances(principal, who_key, None, "", None, None)
if not everyone:
    st.info("No users yet. `python -m core users add ...` adds one; `python -m core demo` writes a demo history.")
    st.stop()
emails = [a.email for a in sorted(everyone, key=lambda a: a.email)]

if not sees_all:
    st.info("You see your own credits. Finance and admins see every account.")
names = (
    ["Balances", "History"]
    + (["Grant / top-up"] if can_grant else [])
    + (["Audit log", "Disputed calls"] if sees_all else [])
)
tabs = dict(zip(names, st.tabs(names), strict=True))
tab_balances, tab_history = tabs["Balances"], tabs["History"]

# ---- balances of all users ---------------------------------------------------------------------------------------
with tab_balances:
    c1, c2, c3, c4 = st.columns([1, 2, 1, 1])
    role = c1.selectbox("Role", ["all", *ROLES], key="bal_role")
    search = c2.text_input("Search email or name", key="bal_search")
    lo = c3.number_input("Available at least", value=None, step=100, key="bal_min")
    hi = c4.number_input("Available at most", value=None, step=100, key="bal_max")
    rows = load_balances(
        principal,
        who_key,
        None if role == "all" else role,
        search,
        None if lo is None else int(lo),
        None if hi is None else int(hi),
    )
    df = pd.DataFrame(
        [
            {
                "email": a.email,
                "name": a.name,
                "role": a.role,
                "markup %": float(a.markup_pct),
                "balance": a.total,
                "held": a.held,
                "available": a.available,
                "transactions": a.transactions,
                "last activity (UTC)": a.last_activity,
            }
            for a in rows
        ]
    )
    st.caption(f"{len(rows)} of {len(everyone)} accounts, lowest available first.")
    st.dataframe(df, hide_index=True, width="stretch")
    st.download_button(
        "Download balances (CSV)",
        df.to_csv(index=False).encode(),
        file_name="balances.csv",
        mime="text/csv",
        key="dl_balances",
    )

# ---- one user's history ------------------------------------------------------------------------------------------
with tab_history:
    who = st.selectbox("User", emails, key="hist_user")
    history = load_history(principal, who_key, who)
    txs = history.transactions
    if not txs:
        st.info(f"{plain(who)} has no transactions yet.")
    else:
        hist = pd.DataFrame(
            [
                {
                    "id": t.id,
                    "at (UTC)": t.created_at,
                    "type": t.transaction_type,
                    "amount": t.amount,
                    "balance after": t.balance_after,
                    "description": t.description,
                    "idempotency key": t.idempotency_key,
                }
                for t in txs
            ]
        )
        prepaid = money(history.balance_usd)
        st.metric("Balance", f"{history.balance:,} credits", f"{prepaid} prepaid", delta_color="off")
        fig = px.line(
            hist,
            x="at (UTC)",
            y="balance after",
            line_shape="hv",
            title=f"Running balance of {who} (credits, after each transaction)",
            hover_data=["id", "type", "amount", "description"],
        )
        st.plotly_chart(fig, width="stretch")
        st.dataframe(hist.iloc[::-1], hide_index=True, width="stretch")
        st.download_button(
            "Download history (CSV)",
            hist.to_csv(index=False).encode(),
            file_name=f"history-{who}.csv",
            mime="text/csv",
            key="dl_history",
        )

# ---- grant / top-up with a confirmation step ---------------------------------------------------------------------
if can_grant:
    with tabs["Grant / top-up"]:
        done = st.session_state.pop("grant_done", None)
        if done:
            st.success(plain(done))
        if actor is None:
            st.info("Add a user before granting credits.")
        else:
            with st.form("grant_form", clear_on_submit=False):
                g_user = st.selectbox("User", emails, key="grant_user")
                g_kind = st.radio("Kind", GRANT_KINDS, horizontal=True, key="grant_kind")
                g_credits = st.number_input(
                    "Credits", value=100, step=1, key="grant_credits", help="Negative only for an adjustment."
                )
                g_note = st.text_input("Note (shown in the history and the audit log)", key="grant_note")
                review = st.form_submit_button("Review")
            if review:
                # One idempotency key per reviewed submission: a double click on Confirm posts once.
                st.session_state["grant_pending"] = {
                    "user": g_user,
                    "kind": g_kind,
                    "credits": int(g_credits),
                    "note": g_note or None,
                    "key": f"ledger-form-{uuid.uuid4().hex}",
                }
            pending = st.session_state.get("grant_pending")
            if pending:
                current = next(a for a in everyone if a.email == pending["user"])
                st.warning(
                    f"Confirm: **{pending['kind']}** of **{pending['credits']:+,} credits** to "
                    f"**{plain(pending['user'])}** (balance now {current.total:,}, available {current.available:,}), "
                    f"as {plain(actor.email)}." + (f" Note: {plain(pending['note'])}" if pending["note"] else "")
                )
                b1, b2 = st.columns(2)
                if b1.button("Confirm", type="primary", key="grant_confirm"):
                    try:
                        tx = services().ledger.grant(
                            actor,
                            pending["user"],
                            pending["credits"],
                            kind=pending["kind"],
                            note=pending["note"],
                            idempotency_key=pending["key"],
                        )
                    except CoreError as exc:
                        st.error(plain(str(exc)))
                    else:
                        st.session_state.pop("grant_pending", None)
                        st.session_state["grant_done"] = (
                            f"Posted transaction {tx.id}: {tx.amount:+,} credits to {pending['user']}; "
                            f"balance is now {tx.balance_after:,}."
                        )
                        refresh()
                        st.rerun()
                if b2.button("Cancel", key="grant_cancel"):
                    st.session_state.pop("grant_pending", None)
                    st.rerun()

# ---- audit log ---------------------------------------------------------------------------------------------------
if sees_all:
    with tabs["Audit log"]:
        kinds = {"everything": None, "credits": "credits.", "prices": "catalog.", "endpoints": "endpoint"}
        what = st.selectbox("Show", list(kinds), key="audit_kind")
        entries = load_audit(principal, who_key, kinds[what])
        if not entries:
            st.info("Nothing audited yet: grants, refunds and price changes appear here.")
        else:
            audit = pd.DataFrame(
                [
                    {
                        "at (UTC)": e.at,
                        "actor": e.actor,
                        "action": e.action,
                        "target": e.target,
                        "details": json.dumps(e.details, sort_keys=True) if e.details else "",
                    }
                    for e in entries
                ]
            )
            st.dataframe(audit, hide_index=True, width="stretch")
            st.download_button(
                "Download audit log (CSV)",
                audit.to_csv(index=False).encode(),
                file_name="audit-log.csv",
                mime="text/csv",
                key="dl_audit",
            )

# ---- disputed calls ----------------------------------------------------------------------------------------------
if sees_all:
    with tabs["Disputed calls"]:
        st.caption(
            "Calls whose upstream reported more usage than the request allowed (output above max_tokens, more "
            "characters or images than were sent, more seconds than the upload). Each was billed at what the request "
            "allowed; the figures show what the provider claimed. Take them up with the provider."
        )
        disputed = load_disputed(principal, who_key)
        if not disputed:
            st.info("No disputed calls: every provider's reported usage was within what its request allowed.")
        else:
            table = pd.DataFrame(
                [
                    {
                        "at (UTC)": c.at,
                        "user": c.email,
                        "model": f"{c.provider}/{c.model_id}",
                        "reported -> billed": "; ".join(
                            f"{k} {v['reported']} -> {v['billed']}" for k, v in c.figures.items()
                        ),
                        "credits charged": c.credits_charged,
                        "request id": c.request_id or "",
                        "usage id": c.usage_id,
                    }
                    for c in disputed
                ]
            )
            st.dataframe(table, hide_index=True, width="stretch")
            st.download_button(
                "Download disputed calls (CSV)",
                table.to_csv(index=False).encode(),
                file_name="disputed-calls.csv",
                mime="text/csv",
                key="dl_disputed",
            )
