"""Break-even: serverless or a dedicated T4, L4, A10G or A100 (always-on or scale-to-zero), for a traffic profile
or a model's real traffic. Query parameters `?model=MODEL_ID&profile=history` open it on a model's history."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pandas as pd
import streamlit as st

from core.errors import CoreError
from core.services import Principal
from core.services.breakeven import (
    DEFAULT_COLD_START_SECONDS,
    DEFAULT_HORIZON_HOURS,
    DEFAULT_MAX_REPLICAS,
    DEFAULT_MIN_REPLICAS,
    DEFAULT_TARGET_UTILIZATION,
    HF_DEFAULT_IDLE_MINUTES,
    MONTH_HOURS,
    BreakevenInput,
    BreakevenResult,
    ScenarioDefaults,
    compare,
    options_rows,
)
from pages.charts.breakeven_charts import cost_curves, replicas_over_time
from pages.charts.safe import show as show_chart
from pages.fmt import MISSING, count
from pages.fmt import price as price_text
from pages.tables import csv_bytes, table
from pages.ui import guard, plain, services, whole

NO_MODEL = "(no model: a generic chat model)"
SYNTHETIC = ["flat", "diurnal", "poisson", "bursty"]
PROFILE_HELP = {
    "flat": "evenly spaced requests, the same every minute",
    "diurnal": "busy afternoons, quiet nights, weekends at 35% (hours in the reporting time zone)",
    "poisson": "random arrivals at a constant rate",
    "bursty": "calm hours with 20-minute bursts at 8x (a Markov-modulated Poisson process)",
}
PRICE_MODES = ["the model's catalog price", "per request", "per second of compute"]


@st.cache_data(ttl=300, show_spinner=False)
def load_model_ids(_who: Principal, database_url: str) -> list[str]:
    return services().breakeven.model_ids(_who)


@st.cache_data(ttl=300, show_spinner=False)
def load_defaults(_who: Principal, database_url: str, model_id: str | None) -> ScenarioDefaults:
    return services().breakeven.defaults(_who, model_id)


@st.cache_data(ttl=60, show_spinner="Simulating a month minute by minute…", max_entries=16)
def run(database_url: str, inp: BreakevenInput, principal: Principal) -> BreakevenResult:
    return services().breakeven.simulate(principal, inp)


principal = guard("breakeven")
st.title("Break-even")
st.caption(
    "Serverless against a dedicated T4, L4, A10G or A100 endpoint, always-on or scaled to zero. The traffic is "
    "replayed minute by minute: billed per minute while a replica starts or runs, replicas sized for the busiest "
    f"15 minutes, p95 latency from an M/M/c queue plus cold starts. Figures are per month of {MONTH_HOURS} hours."
)

# ---- the model and its traffic (outside the form: they change the form's defaults) ----
model_ids = load_model_ids(principal, services().settings.database_url)
query = st.query_params
wanted = query.get("model")


def query_int(name: str, default: int) -> int:
    """A whole number >= 1 from the link (the Endpoints page sends an endpoint's own settings), else the default."""
    text = query.get(name, "")
    return int(text) if text.isdigit() and int(text) >= 1 else default


if wanted and wanted not in model_ids:
    st.warning(f"Model {plain(repr(wanted))} from the link is not in the catalog; showing the generic defaults.")
    wanted = None
choices = [NO_MODEL, *model_ids]
top_left, top_right = st.columns([3, 2])
model_choice = top_left.selectbox(
    "Model", choices, index=choices.index(wanted) if wanted else 0, key="be_model", help="sets prices, memory, defaults"
)
model_id = None if model_choice == NO_MODEL else model_choice
use_history = top_right.toggle(
    "Use this model's real traffic",
    value=query.get("profile") == "history" and model_id is not None,
    disabled=model_id is None,
    help="replay its requests from the usage history, minute by minute",
    key="be_history",
)
defaults = load_defaults(principal, services().settings.database_url, model_id)
k = f"{model_id or 'none'}"  # widget keys per model, so a new model brings its own defaults

# ---- the scenario form ----
with st.form("be_form"):
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.markdown("**Traffic**")
        if use_history:
            first, today = services().breakeven.default_range(principal)  # the last 30 days in the reporting zone
            tz = services().settings.reporting_tz
            since = st.date_input(f"From ({tz})", first, key=f"be_since_{k}")
            until = st.date_input(f"To ({tz}, inclusive)", today, key=f"be_until_{k}")
            rescale = st.number_input(
                "Rescale to requests/hour (0 = as recorded)", value=0.0, step=10.0, key=f"be_rs_{k}"
            )
            profile, rph, hours = "history", (rescale or None), None
        else:
            profile = st.radio(
                "Profile",
                SYNTHETIC,
                horizontal=True,
                key="be_profile",
                format_func=lambda p: p,
                help="; ".join(f"{p}: {h}" for p, h in PROFILE_HELP.items()),
            )
            rph = st.number_input("Requests per hour (average)", value=60.0, step=10.0, key="be_rph")
            hours = st.number_input("Horizon (hours)", value=DEFAULT_HORIZON_HOURS, step=24.0, key="be_hours")
            since = until = None
        seed = st.number_input(
            "Seed", value=0.0, step=1.0, format="%g", help="the same seed gives the same trace", key="be_seed"
        )
    with c2:
        st.markdown("**Serverless**")
        modes = PRICE_MODES if model_id and defaults.serverless_per_request_usd is not None else PRICE_MODES[1:]
        mode = st.radio("Price", modes, key=f"be_mode_{k}")
        per_req = st.number_input(
            "USD per request",
            value=float(defaults.serverless_per_request_usd or Decimal("0.01")),
            step=0.001,
            format="%.6f",
            key=f"be_preq_{k}",
            disabled=mode != "per request",
        )
        per_sec = st.number_input(
            "USD per second of compute",
            value=0.0001,
            step=0.0001,
            format="%.6f",
            disabled=mode != "per second of compute",
            key=f"be_psec_{k}",
        )
        st.caption(f"Catalog: {defaults.serverless_basis}")
        s1, s2 = st.columns(2)
        sl_cold = s1.number_input(
            "Cold start (s)",
            value=defaults.serverless_cold_start_s,
            step=1.0,
            key=f"be_sl_cold_{k}",
            help="shared infrastructure loads a model that is not warm (the catalog's figure for this model)",
        )
        sl_share = s2.number_input(
            "Requests meeting one (%)",
            value=round(defaults.serverless_cold_start_share * 100, 4),
            step=1.0,
            key=f"be_sl_share_{k}",
            help="from 5% on, the serverless p95 includes the cold start",
        )
    with c3:
        st.markdown("**Dedicated**")
        list_prices = st.radio("GPU price", ["product rate", "Hugging Face list price"], key="be_hw") != "product rate"
        idle = st.number_input(  # a float field: a whole-number one reads "1e20" as 1 (checked whole below)
            "Scale-to-zero after (idle minutes)",
            value=float(query_int("idle", HF_DEFAULT_IDLE_MINUTES)),
            step=1.0,
            format="%g",
            key="be_idle",
        )
        cold = st.number_input("Cold start (seconds)", value=DEFAULT_COLD_START_SECONDS, step=30.0, key="be_cold")
        r1, r2 = st.columns(2)
        min_rep = r1.number_input(
            "Min replicas",
            value=float(query_int("min_replicas", DEFAULT_MIN_REPLICAS)),
            step=1.0,
            format="%g",
            help="always-on",
            key="be_min_rep",
        )
        max_rep = r2.number_input(
            "Max replicas",
            value=float(query_int("max_replicas", DEFAULT_MAX_REPLICAS)),
            step=1.0,
            format="%g",
            key="be_max_rep",
        )
        util = st.slider("Target utilization", 0.1, 1.0, DEFAULT_TARGET_UTILIZATION, 0.05)
    with c4:
        st.markdown("**Latency and fit**")
        slo = st.number_input("p95 latency target (s)", value=defaults.p95_slo_s, key=f"be_slo_{k}")
        service = st.number_input(
            "Service time (s)",
            value=defaults.service_time_s,
            key=f"be_svc_{k}",
            help="one request on an idle replica (an estimate per category; measure yours)",
        )
        memory = st.number_input(
            "GPU memory the model needs (GB, 0 = unknown)",
            value=float(defaults.memory_gb or 0.0),
            key=f"be_mem_{k}",
        )
    with st.expander(f"Replica throughput for {defaults.category} (requests/hour at the latency target; estimates)"):
        cols = st.columns(max(len(defaults.gpus), 1))
        throughput = []
        for col, g in zip(cols, defaults.gpus, strict=False):
            value = col.number_input(
                f"{g.id} ({g.memory_gb} GB, ${g.hourly_usd.normalize():f}/h)",
                value=float(g.throughput_per_hour or 0.0),
                step=100.0,
                key=f"be_thr_{g.id}_{k}",
            )
            if value != 0:  # 0 leaves the GPU out; anything else goes to the simulator, which names a bad value
                throughput.append((g.id, value))
    st.form_submit_button("Simulate", type="primary")

try:
    inp = BreakevenInput(
        requests_per_hour=rph,
        profile=profile,
        model_id=model_id,
        since=since if isinstance(since, date) else None,
        until=until if isinstance(until, date) else None,
        serverless_cost_per_request=Decimal(str(per_req)) if mode == "per request" else None,
        serverless_cost_per_second=Decimal(str(per_sec)) if mode == "per second of compute" else None,
        scale_to_zero_minutes=whole(idle, "Scale-to-zero after (idle minutes)"),
        cold_start_seconds=float(cold),
        serverless_cold_start_seconds=float(sl_cold),
        serverless_cold_start_share=float(sl_share) / 100,
        p95_slo_seconds=float(slo),
        hours=float(hours) if hours is not None else None,
        seed=whole(seed, "Seed"),
        list_prices=list_prices,
        throughput_per_hour=tuple(throughput),
        service_time_seconds=float(service),
        memory_gb=float(memory) if memory != 0 else None,
        min_replicas=whole(min_rep, "Min replicas"),
        max_replicas=whole(max_rep, "Max replicas"),
        target_utilization=float(util),
    )
    result = run(services().settings.database_url, inp, principal)
except CoreError as exc:
    st.error(plain(str(exc)))
    st.stop()

ev = result.evaluation
rec = ev.recommendation
# ---- the recommendation, up front ----
if rec.option:
    st.success(f"**Recommendation: {rec.option}.** {rec.reason}", icon=":material/recommend:")
else:
    st.warning(f"**No option meets the target.** {rec.reason}")
summary = result.summary()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Average requests/hour", f"{ev.mean_requests_per_hour:,.1f}", help="over the simulated horizon")
m2.metric(
    "Peak requests/hour", f"{ev.peak_requests_per_hour:,.0f}", help="busiest 15 minutes; replicas are sized for it"
)
m3.metric(
    "Requests simulated",
    count(ev.requests),
    f"over {ev.horizon_hours:,.0f} hours",
    delta_color="off",
    delta_arrow="off",
)
price = summary["serverless_price_per_request_usd"]
m4.metric("Serverless per request", price_text(price) if price else MISSING)
st.caption(f"Serverless price: {result.serverless_basis}.")
if result.history:
    h = result.history
    st.caption(
        f"Real traffic of {plain(str(h['model']))} from {h['start']} to {h['end']} "
        f"({h['requests']:,} requests recorded, "
        "cache hits excluded)." + (" Rescaled to the rate above, keeping its average week." if rph else "")
    )

# ---- cost against traffic ----
show_chart(cost_curves(result), width="stretch", key="be_curves")
be = ev.break_even_requests_per_hour
st.caption(
    "Always-on break-even against serverless (requests/hour): "
    + ", ".join(f"**{g}** {'never' if r is None else f'{r:,.1f}'}" for g, r in be.items())
    + ". The curves scale your traffic's shape and are evaluated in expectation; the table replays one trace."
)

# ---- the options ----
rows = options_rows(result)


def usd(value: object) -> float | None:
    """A JSON-ready dollar figure (a string, exact) as a number for a money column; None stays a blank cell."""
    return None if value is None else float(Decimal(str(value)))


def yes_no(value: object) -> str:
    return MISSING if value is None else ("yes" if value else "no")


OPTIONS_SPEC = {
    "option": ("option", "text"),
    "monthly_cost": ("monthly cost", "money"),
    "billed_hours": ("billed hours", "hours"),
    "replicas": ("replicas", "count"),
    "utilization": ("utilization", "pct"),
    "cold_starts": ("cold starts", "pct"),
    "p95": ("p95", "seconds"),
    "meets_slo": ("meets target", "text"),
    "excluded": ("excluded because", "text"),
}
table_rows = pd.DataFrame(
    [
        {
            "option": r["option"],
            "monthly_cost": usd(r["monthly_cost_usd"]),
            "billed_hours": r["billed_hours"],
            "replicas": r["replicas"],
            "utilization": None if r["utilization"] is None else r["utilization"] * 100,
            "cold_starts": None if r["cold_start_fraction"] is None else r["cold_start_fraction"] * 100,
            "p95": r["p95_latency_s"],
            "meets_slo": yes_no(r["meets_slo"]),
            "excluded": r["excluded_reason"] or "",
        }
        for r in rows
    ],
    columns=list(OPTIONS_SPEC),
)
st.subheader("Options")
table(
    table_rows,
    OPTIONS_SPEC,
    key="be_options",
    help={
        "billed_hours": "replica-hours billed per month",
        "utilization": "requests / (running hours x throughput)",
        "cold_starts": "requests that meet a cold start",
        "p95": "busiest 15 minutes, cold starts included",
    },
)

# ---- scale-to-zero over time ----
if ev.timelines:
    st.subheader("Scale-to-zero over time")
    gpus = list(ev.timelines)
    preferred = rec.option.split(" ")[0] if rec.option and rec.option.split(" ")[0] in gpus else gpus[0]
    preferred = query.get("hardware") if query.get("hardware") in gpus else preferred  # an endpoint's own GPU
    gpu = st.selectbox("GPU", gpus, index=gpus.index(preferred), key="be_timeline_gpu")
    day, week = st.tabs(["24 hours", "7 days"])
    with day:
        show_chart(replicas_over_time(result, gpu, 24, 1), width="stretch", key="be_day")
    with week:
        show_chart(replicas_over_time(result, gpu, 24 * 7, 10), width="stretch", key="be_week")

# ---- scenarios: save two and compare ----
COMPARE_SPEC = {
    "option": ("option", "text"),
    "a_cost": ("A monthly cost", "money"),
    "b_cost": ("B monthly cost", "money"),
    "change": ("B - A", "money"),
    "a_p95": ("A p95", "seconds"),
    "b_p95": ("B p95", "seconds"),
    "a_meets": ("A meets target", "text"),
    "b_meets": ("B meets target", "text"),
}
st.subheader("Compare scenarios")
export = result.export()
label = f"{summary['profile']} {ev.mean_requests_per_hour:,.0f} req/h" + (f", {model_id}" if model_id else "")
s1, s2, s3 = st.columns([1, 1, 3])
if s1.button("Save as scenario A", key="be_save_a"):
    st.session_state["be_scenario_A"] = {"label": label, "result": export}
if s2.button("Save as scenario B", key="be_save_b"):
    st.session_state["be_scenario_B"] = {"label": label, "result": export}
saved = {name: st.session_state.get(f"be_scenario_{name}") for name in ("A", "B")}
s3.caption(" · ".join(f"{n}: {plain(v['label'])}" if v else f"{n}: (not saved)" for n, v in saved.items()))
if saved["A"] and saved["B"]:
    a, b = saved["A"]["result"], saved["B"]["result"]
    ca, cb = st.columns(2)
    for col, name, res in ((ca, "A", a), (cb, "B", b)):
        r = res["recommendation"]
        head = f"**Scenario {name}: {plain(saved[name]['label'])}**"
        col.markdown(f"{head}  \n{r['option'] or 'no option'}: {r['reason']}")
    both = pd.DataFrame(
        [
            {
                "option": c["option"],
                "a_cost": usd(c["A monthly_cost_usd"]),
                "b_cost": usd(c["B monthly_cost_usd"]),
                "change": usd(c["B - A usd"]),
                "a_p95": c["A p95_latency_s"],
                "b_p95": c["B p95_latency_s"],
                "a_meets": yes_no(c["A meets_slo"]),
                "b_meets": yes_no(c["B meets_slo"]),
            }
            for c in compare(a, b)
        ],
        columns=list(COMPARE_SPEC),
    )
    table(both, COMPARE_SPEC, key="be_compare")

# ---- download ----
d1, d2 = st.columns(2)
d1.download_button(
    "Download result (JSON)",
    json.dumps(export, indent=2, default=str),
    file_name="breakeven.json",
    mime="application/json",
)
d2.download_button(
    "Download options (CSV)", csv_bytes(table_rows, OPTIONS_SPEC), file_name="breakeven.csv", mime="text/csv"
)
