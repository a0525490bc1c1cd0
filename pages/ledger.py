"""Ledger (finance, admin): every account's credits, one user's history with its running balance, grants and top-ups
with a confirmation step, CSV exports and the audit log."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import date

import pandas as pd
import plotly.express as px
import streamlit as st

from core.errors import CoreError
from core.services import Capability, Principal
from core.services.ledger import (
    GRANT_KINDS,
    PAGE_SIZE,
    TRANSACTION_TYPES,
    AccountBalance,
    AuditEntry,
    DisputedCall,
    HistoryPage,
    Transaction,
)
from core.services.times import labelled, to_local_all
from core.services.users import ROLES
from pages.charts.safe import show as show_chart
from pages.fmt import count, credits, money
from pages.tables import csv_bytes, table
from pages.ui import guard, plain, services, show_error

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
def load_page(
    _who: Principal,
    who_key: str,
    email: str,
    before: int | None,
    kinds: tuple[str, ...],
    since: date | None,
    until: date | None,
) -> HistoryPage:
    return services().ledger.history_page(_who, email, before=before, kinds=kinds, since=since, until=until)


@st.cache_data(ttl=30, show_spinner=False)
def load_disputed(_who: Principal, who_key: str) -> list[DisputedCall]:
    return services().ledger.disputed(_who)


@st.cache_data(ttl=30, show_spinner=False)
def load_audit(_who: Principal, who_key: str, prefix: str | None) -> list[AuditEntry]:
    return services().ledger.audit(_who, action_prefix=prefix)


def refresh() -> None:
    load_balances.clear()
    load_page.clear()
    load_audit.clear()


def refund_form(tx: Transaction, refundable: bool) -> None:
    """Refund the selected debit: a reason and, optionally, part of it; reviewed, then confirmed."""
    if not refundable:
        st.caption(
            f"Transaction {tx.id} is a {tx.transaction_type} of {credits(tx.amount, signed=True)}: "
            "only debits (usage, endpoint uptime, a negative adjustment) not yet refunded can be refunded."
        )
        return
    with st.form("refund_form"):
        st.markdown(f"**Refund transaction {tx.id}**: {tx.transaction_type} of {credits(tx.amount, signed=True)}")
        reason = st.text_input("Reason (shown in the history and the audit log)", key="refund_reason")
        part = st.text_input("Credits to refund (blank: all of it)", key="refund_credits")
        asked = st.form_submit_button("Review refund")
    if asked:
        st.session_state.pop("refund_pending", None)
        try:  # checked at Review, as a grant is: "abc", 0 or more than the debit never reach Confirm
            amount = services().ledger.review_refund(actor, -tx.amount, part)
        except CoreError as exc:
            st.error(plain(str(exc)))
            return
        st.session_state["refund_pending"] = {"tx": tx.id, "reason": reason, "credits": part, "amount": amount}
    pending = st.session_state.get("refund_pending")
    if not pending or pending["tx"] != tx.id:
        return
    debited = credits(-tx.amount)
    amount = pending["amount"]
    what = f"{credits(amount)} of the {debited}" if amount != -tx.amount else f"all {debited}"
    st.warning(plain(f"Confirm: refund {what} of transaction {tx.id}. Reason: {pending['reason'] or '(none)'}"))

    def post() -> str:
        done = services().ledger.refund(actor, tx.id, pending["reason"], credits=pending["credits"])
        st.session_state["hist_reset"] = True  # the rows move down one: the selection must not land on another
        return (
            f"Refunded {credits(done.amount, signed=True)} of transaction {tx.id} (transaction {done.id}); "
            f"balance is now {done.balance_after:,}."
        )

    confirm_buttons("refund", "Confirm refund", post, failed="Not refunded")


def confirm_buttons(prefix: str, label: str, post: Callable[[], str], *, failed: str, disabled: bool = False) -> None:
    """Confirm and Cancel under a reviewed posting (`{prefix}_pending`): Confirm runs `post`, whose sentence shows
    after the rerun (`{prefix}_done`); an error shows here and posts nothing; Cancel drops the review."""
    c1, c2 = st.columns(2)
    if c1.button(label, type="primary", key=f"{prefix}_confirm", disabled=disabled):
        try:
            said = post()
        except CoreError as exc:
            st.error(plain(f"{failed}: {exc}"))
        else:
            st.session_state.pop(f"{prefix}_pending", None)
            st.session_state[f"{prefix}_done"] = said
            refresh()
            st.rerun()
    if c2.button("Cancel", key=f"{prefix}_cancel"):
        st.session_state.pop(f"{prefix}_pending", None)
        st.rerun()


st.title("Ledger")
credit_usd = services().settings.credit_usd
tz = services().settings.reporting_tz  # every time and day on this page, as on Spend
st.caption(
    "Every balance is the sum of its transactions (`python -m core ledger check` proves it). "
    f"1 credit = ${credit_usd}. Held credits are reserved by calls in flight; available = balance − held. "
    f"Times and days are in {tz} (the reporting time zone), as on Spend."
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
else:
    spool = services().ledger.spool(principal)  # charges kept on this server while the database was unavailable
    drained = st.session_state.pop("spool_drained", None)
    if drained:
        st.success(plain(drained))
    if spool.waiting:
        st.warning(
            plain(
                f"{len(spool.waiting)} ledger write(s) wait on this server: their calls ended while the database was "
                "unavailable. They are posted automatically once it answers; the balances below do not include them "
                "yet."
            )
            + " `python -m core ledger spool` lists them.",
            icon=":material/schedule:",
        )
        if can_grant and st.button("Post the waiting writes now", key="ledger_drain_spool"):
            try:
                done = services().ledger.drain_spool(principal)
            except Exception as exc:  # every failure is one line, never a traceback
                show_error(exc)
            else:
                left = f"; still unavailable: {done.unavailable}" if done.unavailable else ""
                st.session_state["spool_drained"] = (
                    f"Posted {done.posted}, already written {done.already_written}, set aside {done.rejected}{left}."
                )
                refresh()
                st.rerun()
    if spool.set_aside:
        where = spool.directory / "rejected" if spool.directory else "the spool"
        st.error(
            plain(f"{len(spool.set_aside)} ledger write(s) were set aside for a person to check (in {where}).")
            + " `python -m core ledger spool` says why.",
            icon=":material/error:",
        )
names = (
    ["Balances", "History"]
    + (["Grant / top-up"] if can_grant else [])
    + (["Audit log", "Disputed calls"] if sees_all else [])
)
tabs = dict(zip(names, st.tabs(names), strict=True))
refunded = st.session_state.pop("refund_done", None)
if refunded:
    st.success(plain(refunded))
tab_balances, tab_history = tabs["Balances"], tabs["History"]

# ---- balances of all users ---------------------------------------------------------------------------------------
BALANCE_SPEC = {
    "email": ("email", "text"),
    "name": ("name", "text"),
    "role": ("role", "text"),
    "markup_pct": ("configured markup %", "pct"),
    "balance": ("balance (credits)", "credits"),
    "held": ("held", "credits"),
    "available": ("available", "credits"),
    "transactions": ("transactions", "count"),
    "last_activity": ("last activity", "instant"),
}
with tab_balances:
    role, search, lo, hi = "all", "", None, None  # one's own account alone: nothing to filter
    if sees_all:
        c1, c2, c3, c4 = st.columns([1, 2, 1, 1])
        role = c1.selectbox("Role", ["all", *ROLES], key="bal_role")
        search = c2.text_input("Search email or name", key="bal_search")
        # float fields (an integer one reads a typed "1e20" as 1); whole credits at least / at most what was typed
        lo = c3.number_input("Available at least", value=None, step=100.0, format="%g", key="bal_min")
        hi = c4.number_input("Available at most", value=None, step=100.0, format="%g", key="bal_max")
    rows = load_balances(
        principal,
        who_key,
        None if role == "all" else role,
        search,
        None if lo is None else math.ceil(lo),
        None if hi is None else math.floor(hi),
    )
    df = pd.DataFrame(
        [
            {
                "email": a.email,
                "name": a.name,
                "role": a.role,
                "markup_pct": float(a.markup_pct),
                "balance": a.total,
                "held": a.held,
                "available": a.available,
                "transactions": a.transactions,
                "last_activity": a.last_activity,
            }
            for a in rows
        ],
        columns=list(BALANCE_SPEC),
    )
    st.caption(f"{count(len(rows))} of {count(len(everyone))} accounts, lowest available first.")
    table(
        df,
        BALANCE_SPEC,
        help={"markup_pct": "the markup set on the account; Spend shows the effective markup after rounding"},
    )
    st.download_button(
        "Download balances (CSV)",
        csv_bytes(df, BALANCE_SPEC),
        file_name="balances.csv",
        mime="text/csv",
        key="dl_balances",
    )

# ---- one user's history, a page at a time ------------------------------------------------------------------------
HISTORY_SPEC = {
    "id": ("id", "text"),
    "created_at": ("at", "instant"),
    "transaction_type": ("type", "text"),
    "amount": ("amount (credits)", "credits"),
    "balance_after": ("balance after", "credits"),
    "description": ("description", "text"),
    "refund": ("refund", "text"),
    "idempotency_key": ("idempotency key", "text"),
}


def more_history() -> None:
    st.session_state["hist_pages"] = st.session_state.get("hist_pages", 1) + 1


with tab_history:
    f1, f2, f3, f4 = st.columns([2, 2, 1, 1])
    who = f1.selectbox("User", emails, key="hist_user")
    kinds = tuple(f2.multiselect("Types", TRANSACTION_TYPES, key="hist_types", placeholder="every type"))
    since = f3.date_input(f"From ({tz})", value=None, key="hist_since")
    until = f4.date_input(f"To ({tz}, included)", value=None, key="hist_until")
    filters = (who, kinds, since, until)
    if st.session_state.get("hist_filters") != filters:  # new filters start again from the newest page
        st.session_state["hist_filters"] = filters
        st.session_state["hist_pages"] = 1
        st.session_state["hist_reset"] = True
    if st.session_state.pop("hist_reset", False):  # a selected row is a position: other rows, no selection
        # a new key draws a new table: dropping the old key's state left its row ticked in the browser, with no
        # refund form under it and a first click that only unticked it
        st.session_state["hist_table_n"] = st.session_state.get("hist_table_n", 0) + 1
    pages: list[HistoryPage] = []
    try:
        with st.spinner(plain(f"Reading {who}'s transactions…")):
            before: int | None = None
            for _ in range(st.session_state["hist_pages"]):
                pages.append(load_page(principal, who_key, who, before, kinds, since, until))
                before = pages[-1].next_before
                if before is None:
                    break
    except CoreError as exc:
        st.error(plain(str(exc)))
    if pages:
        first = pages[0]
        txs = [t for p in pages for t in p.transactions]
        refundable = frozenset().union(*(p.refundable for p in pages))
        st.metric(
            "Balance",
            credits(first.balance),
            f"{money(first.balance_usd)} prepaid",
            delta_color="off",
            delta_arrow="off",
            help=f"what the balance was bought for, at ${credit_usd} a credit",
        )
        if not txs:
            filtered = bool(kinds or since or until)
            st.info(
                plain(
                    f"No transactions of {who} match these filters: clear the types or dates to see them all."
                    if filtered
                    else f"{who} has no transactions yet."
                )
            )
        else:
            st.progress(
                len(txs) / max(first.matching, 1),
                text=f"{count(len(txs))} of {count(first.matching)} transactions shown, newest first",
            )
            hist = pd.DataFrame(
                [
                    {
                        "id": t.id,
                        "created_at": t.created_at,
                        "transaction_type": t.transaction_type,
                        "amount": t.amount,
                        "balance_after": t.balance_after,
                        "description": t.description or "",
                        "refund": "refundable" if t.id in refundable else "",
                        "idempotency_key": t.idempotency_key or "",
                    }
                    for t in txs
                ],
                columns=list(HISTORY_SPEC),
            )
            fig = px.line(
                hist.assign(created_at=to_local_all(hist["created_at"], tz)),
                x="created_at",
                y="balance_after",
                line_shape="hv",
                title=f"Balance after each transaction shown ({count(len(txs))}, credits)",
                labels={"created_at": labelled("at", tz), "balance_after": "balance after (credits)"},
                hover_data=["id", "transaction_type", "amount", "description"],
            )
            show_chart(fig, width="stretch")
            if can_grant:
                st.caption("Select a debit (usage, endpoint uptime, a negative adjustment) to refund it.")
            picked = table(
                hist, HISTORY_SPEC, key=f"hist_table_{st.session_state.get('hist_table_n', 0)}", select_row=can_grant
            )
            b1, b2 = st.columns([1, 3])
            if first.matching > len(txs):
                b1.button(
                    f"Load {count(min(PAGE_SIZE, first.matching - len(txs)))} more",
                    key="hist_more",
                    on_click=more_history,
                )
            b2.download_button(
                f"Download the {count(len(txs))} shown (CSV)",
                csv_bytes(hist, HISTORY_SPEC),
                file_name=f"history-{who}.csv",
                mime="text/csv",
                key="dl_history",
            )
            if picked is not None:
                refund_form(txs[picked], txs[picked].id in refundable)

# ---- grant / top-up with a confirmation step ---------------------------------------------------------------------
if can_grant:
    with tabs["Grant / top-up"]:
        done = st.session_state.pop("grant_done", None)
        if done:
            st.success(plain(done))
        with st.form("grant_form", clear_on_submit=False):
            g_user = st.selectbox("User", emails, key="grant_user")
            g_kind = st.radio("Kind", GRANT_KINDS, horizontal=True, key="grant_kind")
            g_credits = st.text_input(
                "Credits",
                value="100",
                key="grant_credits",
                help="A whole number (1,500 is fine). Negative only for an adjustment.",
            )
            g_note = st.text_input("Note (shown in the history and the audit log)", key="grant_note")
            review = st.form_submit_button("Review")
        if review:
            st.session_state.pop("grant_pending", None)  # a new Review replaces the last one, even when it fails
            try:
                checked = services().ledger.review_grant(actor, g_user, g_credits, kind=g_kind)
            except CoreError as exc:
                st.error(plain(f"Not posted: {exc}"))
            else:
                # One idempotency key per reviewed submission: a double click on Confirm posts once.
                st.session_state["grant_pending"] = {
                    "review": checked,
                    "note": g_note or None,
                    "key": f"ledger-form-{uuid.uuid4().hex}",
                }
        pending = st.session_state.get("grant_pending")
        if pending:
            r = pending["review"]
            st.warning(
                plain(
                    f"Confirm: {r.kind} of {credits(r.credits, signed=True)} ({money(r.usd)}) to {r.user}: balance "
                    f"{r.balance:,} now, {r.balance_after:,} after (available now {r.available:,}), as {actor.email}."
                    + (f" Note: {pending['note']}" if pending["note"] else "")
                )
            )
            large_ok = True
            if r.large:
                large_ok = st.checkbox(
                    f"Yes, post {credits(r.credits, signed=True)} ({money(r.usd)}): "
                    f"above the {r.confirm_above:,}-credit limit that needs a second confirmation",
                    key=f"grant_large_ok_{pending['key']}",  # one tick per review: never carried to the next
                )

            def post() -> str:
                tx = services().ledger.grant(
                    actor,
                    r.user,
                    r.credits,
                    kind=r.kind,
                    note=pending["note"],
                    idempotency_key=pending["key"],
                    confirm_large=large_ok,
                )
                after = f"balance is now {tx.balance_after:,}."
                return f"Posted transaction {tx.id}: {credits(tx.amount, signed=True)} to {r.user}; {after}"

            confirm_buttons("grant", "Confirm", post, failed="Not posted", disabled=not large_ok)

# ---- audit log ---------------------------------------------------------------------------------------------------
AUDIT_SPEC = {
    "at": ("at", "instant"),
    "actor": ("actor", "text"),
    "action": ("action", "text"),
    "target": ("target", "text"),
    "details": ("details", "text"),
}
DISPUTED_SPEC = {
    "at": ("at", "instant"),
    "user": ("user", "text"),
    "model": ("model", "text"),
    "reported -> billed": ("reported -> billed", "text"),
    "credits charged": ("credits charged", "credits"),
    "request id": ("request id", "text"),
    "usage id": ("usage id", "text"),
}
if sees_all:
    with tabs["Audit log"]:
        audit_kinds = {"everything": None, "credits": "credits.", "prices": "catalog.", "endpoints": "endpoint"}
        what = st.selectbox("Show", list(audit_kinds), key="audit_kind")
        entries = load_audit(principal, who_key, audit_kinds[what])
        if not entries:
            st.info("Nothing audited yet: grants, refunds and price changes appear here.")
        else:
            audit = pd.DataFrame(
                [
                    {
                        "at": e.at,
                        "actor": e.actor,
                        "action": e.action,
                        "target": e.target,
                        "details": json.dumps(e.details, sort_keys=True) if e.details else "",
                    }
                    for e in entries
                ]
            )
            table(audit, AUDIT_SPEC, key="audit_table")
            st.download_button(
                "Download audit log (CSV)",
                csv_bytes(audit, AUDIT_SPEC),
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
            calls = pd.DataFrame(
                [
                    {
                        "at": c.at,
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
            table(calls, DISPUTED_SPEC, key="disputed_table")
            st.download_button(
                "Download disputed calls (CSV)",
                csv_bytes(calls, DISPUTED_SPEC),
                file_name="disputed-calls.csv",
                mime="text/csv",
                key="dl_disputed",
            )
