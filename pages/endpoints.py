"""Endpoints: dedicated Hugging Face Inference Endpoints, what each costs per hour and this month, their lifecycle."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import plotly.express as px
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.errors import CoreError
from core.services import Principal, hourly_text
from core.services.endpoints import MAX_IDLE_MINUTES, EndpointRow, EndpointsOverview, EndpointView, HardwareOption
from core.services.times import stamp, to_local
from pages.charts.safe import show as show_chart
from pages.fmt import count, credits, money
from pages.tables import table
from pages.ui import guard, plain, services, whole

STATE_COLORS = {
    "running": "#2e7d32",
    "initializing": "#f9a825",
    "updating": "#fbc02d",
    "pending": "#90a4ae",
    "paused": "#5c6bc0",
    "scaledToZero": "#b3e5fc",
    "failed": "#c62828",
    "updateFailed": "#e57373",
}

principal = guard("endpoints")
st.title("Endpoints")
svc = services()
settings = svc.settings
tz = settings.reporting_tz  # every time and month on this page
endpoints = svc.endpoints
problem = endpoints.configuration_problem(principal)
if problem:
    st.info(
        "**Dedicated endpoints are not configured.** To manage Hugging Face Inference Endpoints, set `HF_TOKEN` "
        "(a token with write access to Inference Endpoints) and `HF_NAMESPACE` (your user or organization) in the "
        "environment or `.streamlit/secrets.toml`. To try everything offline, set `HF_ENDPOINTS_API_URL=local`: "
        "a local stand-in of the management API with the same routes and states (no GPU runs, nothing is billed "
        "by Hugging Face)."
    )
    st.stop()


@st.cache_data(ttl=15, show_spinner="Asking the management API for each endpoint's state…")
def load_overview(_who: Principal, who_key: str) -> EndpointsOverview:
    return services().endpoints.overview(_who)


@st.cache_data(ttl=300, show_spinner=False)
def load_hardware(_who: Principal, database_url: str) -> tuple[list[HardwareOption], str | None]:
    return services().endpoints.hardware_options(_who)


@st.cache_data(ttl=60, show_spinner=False)
def load_owners(_who: Principal, who_key: str) -> list[str]:
    return services().endpoints.owners(_who)


def breakeven_link(row: EndpointRow) -> None:
    """Break-even for this endpoint in the same tab and session (so as the same person), its settings filled in."""
    label = "Break-even with this endpoint's traffic and settings"
    try:
        st.page_link("pages/breakeven.py", label=label, icon=":material/balance:", query_params=row.breakeven_query)
    except StreamlitAPIException:  # the page run on its own (no navigation to link within): a plain link
        st.markdown(f"[{label}]({row.breakeven_link})")


def done(message: str) -> None:
    load_overview.clear()
    st.session_state["endpoints_flash"] = message
    st.rerun()


def in_words(state: str) -> str:
    """An endpoint state as a sentence says it (`scaledToZero`, the API's word, is "scaled to zero")."""
    return {"scaledToZero": "scaled to zero", "updateFailed": "update failed"}.get(state, state)


def run_action(label: str, call: Callable[[Principal, str], EndpointView], name: str) -> None:
    try:
        view = call(principal, name)
    except CoreError as exc:
        st.error(plain(str(exc)))
        return
    done(f"{label} {name}." if view.state == "deleted" else f"{label} {name}: now {in_words(view.state)}.")


who_key = f"{settings.database_url}|{principal.email}|{principal.role}"
if endpoints.is_local(principal):
    st.caption(
        "Connected to the **local stand-in** of the management API (`HF_ENDPOINTS_API_URL=local`): same routes, "
        "payloads and states as Hugging Face, with brisk transitions; no GPU runs and Hugging Face bills nothing. "
        "Uptime is still metered into the owners' credits, as it would be for a real endpoint."
    )
else:
    st.caption(f"Hugging Face namespace `{settings.hf_namespace}` at `{settings.hf_endpoints_api_url}`.")

if flash := st.session_state.pop("endpoints_flash", None):
    st.success(plain(flash))

try:
    ov = load_overview(principal, who_key)
except CoreError as exc:
    st.error(plain(str(exc)))
    st.stop()

c1, c2, c3, c4 = st.columns(4)
c1.metric("Live endpoints", count(len(ov.rows)), help="endpoints not deleted")
c2.metric("Billing now", hourly_text(ov.cost_per_hour_now_usd), help="hourly rate x replicas billed right now")
c3.metric(
    "Uptime this month",
    money(ov.shown_month_total_usd),
    help="At the hardware catalog's hourly rates, before credits and markup: hours already posted to the owners' "
    "ledgers plus uptime not yet metered.",
)
c4.metric("Credits charged (month)", credits(ov.month_credits), help="endpoint uptime debits, owners' markup included")
st.caption(
    f"Uptime this month {money(ov.shown_month_total_usd)} = {money(ov.shown_month_metered_usd)} posted to the "
    f"owners' ledgers + {money(ov.shown_month_accrued_usd)} not yet metered (whole hours are posted by "
    "`python -m core endpoints meter`, or *Meter now* below). Uptime is billed per started minute, per replica, "
    "while initializing or running; nothing while pending, paused, scaled to zero or failed. "
    f"As of {stamp(ov.as_of, tz, '%Y-%m-%d %H:%M:%S')}; the month starts "
    f"{stamp(ov.month_start, tz)} (times and months in the reporting time zone)."
)
for name, why in ov.refresh_errors.items():
    st.warning(plain(f"{name}: {why}"))

if ov.all_rows:
    table(
        pd.DataFrame(
            [
                {
                    "name": r.endpoint.name + (" (deleted)" if r.endpoint.deleted_at else ""),
                    "model": r.endpoint.model_repo,
                    "hardware": r.endpoint.hardware_id,
                    "state": r.endpoint.state,
                    "replicas": f"{r.endpoint.replicas} (min {r.endpoint.min_replicas}, max {r.endpoint.max_replicas})",
                    "hourly_usd": float(r.endpoint.hourly_usd),
                    "month_usd": float(r.shown_month_to_date_usd),
                    "owner": r.endpoint.owner_email,
                    "url": r.endpoint.url or "",
                }
                for r in ov.all_rows
            ]
        ),
        {
            "name": ("Name", "text"),
            "model": ("Model", "text"),
            "hardware": ("Hardware", "text"),
            "state": ("State", "text"),
            "replicas": ("Replicas", "text"),
            "hourly_usd": ("Per replica-hour", "money"),
            "month_usd": ("Month to date", "money"),
            "owner": ("Owner", "text"),
            "url": ("URL", "link"),
        },
        help={"month_usd": "posted + not yet metered", "url": "empty until the endpoint runs"},
        key="endpoints_table",
    )
else:
    st.info("No endpoints yet. Create one below; its uptime is charged to its owner's credits.")
    if endpoints.is_local(principal) and st.button(
        "Load a 3-day demo on the stand-in",
        key="do_demo",
        help="Creates demo-tts (T4, scales to zero) and demo-chat (L4, paused at night) with three days of use, "
        "run through the stand-in with its clock wound back, and meters them into the first engineer's credits.",
    ):
        try:
            demo = endpoints.demo(principal, days=3)
        except CoreError as exc:
            st.error(plain(str(exc)))
        else:
            done(
                f"Demo loaded: {', '.join(demo.endpoints)} with {demo.events} state changes; "
                f"{demo.metered.hours_charged} hours metered ({credits(demo.metered.credits)})."
            )

live = list(ov.rows)
if live:
    st.subheader("Manage")
    names = [r.endpoint.name for r in live]
    chosen = st.selectbox("Endpoint", names, key="endpoint_choice")
    row = next(r for r in live if r.endpoint.name == chosen)
    e = row.endpoint
    idle = (
        f"scales to zero after {e.scale_to_zero_minutes} idle min"
        if e.scale_to_zero_minutes
        else "no idle timeout"  # it may still be scaled to zero by hand
    )
    st.markdown(
        f"{plain(e.model_repo)} on **{e.hardware_id}** ({e.instance_type}, {e.vendor} {e.region}) · "
        f"**{in_words(e.state)}** with "
        f"{e.replicas} billed {'replica' if e.replicas == 1 else 'replicas'} · "
        f"{plain(hourly_text(e.hourly_usd))} per replica, {plain(hourly_text(e.cost_per_hour_now_usd))} now · "
        f"{idle} · owner {plain(e.owner_email)} · this month {plain(money(row.shown_month_to_date_usd))}"
    )
    breakeven_link(row)
    b1, b2, b3, b4 = st.columns(4)
    if b1.button("Refresh", width="stretch", key="do_refresh"):
        run_action("Refreshed", endpoints.refresh, chosen)
    if b2.button("Pause", width="stretch", disabled=e.state == "paused", key="do_pause"):
        run_action("Paused", endpoints.pause, chosen)
    if b3.button("Resume", width="stretch", disabled=e.state == "running", key="do_resume"):
        run_action("Resumed", endpoints.resume, chosen)
    scaled = e.state in ("scaledToZero", "paused")
    if b4.button("Scale to zero", width="stretch", disabled=scaled, key="do_scale_to_zero"):
        run_action("Scaled to zero", endpoints.scale_to_zero, chosen)
    with st.expander(f"Delete {plain(chosen)}"):
        st.write(
            "Deleting cannot be undone: the endpoint and its URL are gone. Uptime up to the deletion is still "
            "metered to the owner."
        )
        typed = st.text_input("Type the endpoint's name to confirm", key=f"confirm_{chosen}")
        if st.button("Delete endpoint", type="primary", disabled=typed.strip() != chosen, key="do_delete"):
            run_action("Deleted", endpoints.delete, chosen)

if ov.segments:
    st.subheader("States this month")
    seg = pd.DataFrame(
        [
            {
                "endpoint": s.endpoint,
                "state": s.state,
                "replicas": s.replicas,
                "from": to_local(s.start, tz),
                "to": to_local(s.end, tz),
            }
            for s in ov.segments
        ]
    )
    fig = px.timeline(
        seg,
        x_start="from",
        x_end="to",
        y="endpoint",
        color="state",
        color_discrete_map=STATE_COLORS,
        hover_data=["replicas"],
        labels={"endpoint": ""},
    )
    fig.update_layout(
        height=170 + 40 * seg["endpoint"].nunique(),
        xaxis_title=tz,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "title": ""},
    )
    show_chart(fig, width="stretch")

with st.expander("Post complete hours to the ledger"):
    st.write(
        "Charges every complete, observed hour of uptime not yet charged to its owner (per minute x replicas x the "
        "hardware's hourly rate, then the owner's markup). Safe to repeat: an hour is charged once. The same as "
        "`python -m core endpoints meter`, which a scheduler should run hourly."
    )
    if st.button("Meter now", key="do_meter"):
        try:
            report = endpoints.meter(principal)
        except CoreError as exc:
            st.error(plain(str(exc)))
        else:
            done(
                f"Metered: {report.hours_charged} hour(s) charged, {credits(report.credits)} "
                f"({money(report.base_cost_usd)} at hardware rates)."
                + (f" Overdrawn by uptime: {', '.join(report.overdrawn)}." if report.overdrawn else "")
            )


def prefill_create_form(options: list) -> bool:
    """A link from the Savings page (`?create_model=...&create_hardware=T4&create_min=0&create_max=1&create_idle=15`
    and `create_name`) fills the create form once per link. Values that do not fit the form are left out."""
    q = st.query_params
    wanted = {k: q[k] for k in q if k.startswith("create_")}
    if "create_model" not in wanted or st.session_state.get("prefilled_from") == wanted:
        return "create_model" in wanted
    st.session_state["prefilled_from"] = wanted
    st.session_state["new_model"] = wanted["create_model"]
    st.session_state["new_name"] = wanted.get("create_name", "")
    label = next((o.label for o in options if o.id == wanted.get("create_hardware")), None)
    if label is not None:
        st.session_state["new_hardware"] = label
    st.session_state["new_autoscale"] = True
    for key, field, lo, hi in (("new_min", "create_min", 0, 10), ("new_max", "create_max", 1, 10)):
        text = wanted.get(field, "")
        if text.isdigit() and lo <= int(text) <= hi:
            st.session_state[key] = float(int(text))
    idle = wanted.get("create_idle", "")
    if idle.isdigit() and 1 <= int(idle) <= MAX_IDLE_MINUTES:
        st.session_state["new_idle"] = float(int(idle))
    return True


st.subheader("Create an endpoint")
options, live_problem = load_hardware(principal, settings.database_url)
owners = load_owners(principal, who_key)
if live_problem:
    st.caption(plain(f"Live prices unavailable: {live_problem}"))
if not owners:
    st.info("Add a user first (`python -m core users add ...`): an endpoint's uptime is charged to its owner.")
else:
    if prefill_create_form(options):
        st.info("Filled in from the Savings page: check the name and the owner, then create.")
    if st.session_state.pop("endpoints_clear_name", False):
        st.session_state["new_name"] = ""  # set before the widget exists, so the browser's field empties too
    with st.form("create_endpoint"):
        f1, f2 = st.columns(2)
        name = f1.text_input(
            "Name", placeholder="my-audio-model", help="1-32 lowercase letters, digits, hyphens", key="new_name"
        )
        model = f2.text_input("Model repository", value="facebook/mms-tts-eng", key="new_model")
        labels = {o.label: o.id for o in options}
        hardware = f1.selectbox(
            "Hardware", list(labels), help="Billed at our hourly rate; HF's live price beside it", key="new_hardware"
        )
        owner = f2.selectbox(
            "Owner (pays the uptime)",
            owners,
            key="new_owner",
            disabled=len(owners) == 1,
            help="You pay for the endpoints you create; only an admin may bill someone else."
            if len(owners) == 1
            else "Whose credits the uptime is charged to.",
        )
        g1, g2, g3, g4 = st.columns(4)
        auto_scale = g1.checkbox("Autoscale", value=True, help="off: max replicas always on", key="new_autoscale")
        # float fields, checked whole (an integer one reads a typed "1e9" as 1); the engine says the bounds
        min_r = g2.number_input("Min replicas", value=0.0, step=1.0, format="%g", key="new_min")
        max_r = g3.number_input("Max replicas", value=1.0, step=1.0, format="%g", key="new_max")
        idle = g4.number_input("Scale to zero after (min)", value=15.0, step=1.0, format="%g", key="new_idle")
        submitted = st.form_submit_button("Create endpoint", type="primary", key="do_create")
    if submitted:
        try:
            view = endpoints.create(
                principal,
                name.strip(),
                model,
                labels[hardware],
                owner=owner,
                auto_scale=auto_scale,
                min_replicas=whole(min_r, "Min replicas"),
                max_replicas=whole(max_r, "Max replicas"),
                scale_to_zero_minutes=whole(idle, "Scale to zero after (min)"),
            )
        except CoreError as exc:
            st.error(plain(str(exc)))
        else:
            st.session_state["endpoints_clear_name"] = True  # an empty Name for the next one
            done(
                f"Created {view.name} ({view.hardware_id}, {hourly_text(view.hourly_usd)} per replica): "
                f"{in_words(view.state)}."
            )
