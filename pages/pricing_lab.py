"""Pricing lab (finance, admin): replay a period's real usage under another markup (for everyone or per person),
credit price or rounding policy, beside what was billed. Thin: the controls in,
`services.optimize.pricing_lab` out, drawn."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import plotly.express as px
import streamlit as st

from core.errors import CoreError
from core.services import Principal
from core.services.optimize import PricingDefaults, PricingLabView
from core.services.times import stamp
from pages.fmt import count, credits, money
from pages.metrics import figure
from pages.tables import downloads, table
from pages.ui import guard, plain, services, sync_when_stale

COMPARISON = {
    "measure": ("measure", "text"),
    "billed_usd": ("billed", "money"),
    "what_if_usd": ("what-if", "money"),
    "difference_usd": ("what-if − billed", "money"),
}
REPLAY = {
    "user": ("person", "text"),
    "model": ("model", "text"),
    "provider": ("provider", "text"),
    "requests": ("requests", "count"),
    "base_cost_usd": ("provider cost", "money"),
    "billed_credits": ("credits billed", "credits"),
    "what_if_credits": ("credits what-if", "credits"),
    "billed_revenue_usd": ("revenue billed", "money"),
    "what_if_revenue_usd": ("revenue what-if", "money"),
    "difference_usd": ("what-if − billed", "money"),
    "billed_margin_usd": ("margin billed", "money"),
    "what_if_margin_usd": ("margin what-if", "money"),
}


def signed(usd: Decimal) -> str:
    """A difference in dollars: `+$12.50`, `-$3.10`, `$0.00`."""
    return ("+" if usd > 0 else "") + money(usd)


def changed(where: object, label: str, usd: Decimal, difference: Decimal, help: str | None = None) -> None:
    """A what-if figure with its change against what was billed (an arrow only when there is a change)."""
    if difference == 0:
        figure(where, label, money(usd), "no change", help=help)
    else:
        where.metric(label, money(usd), signed(difference), help=help)  # type: ignore[attr-defined]


ROUNDING_LABELS = {
    "as_billed": "as billed (each call's own policy)",
    "per_call": "per call: each call rounded up to whole credits",
    "accrual": "accrual: fractions of a credit kept per person",
}


@st.cache_data(ttl=300, show_spinner=False)
def load_defaults(_who: Principal, version: str) -> PricingDefaults:
    return services().optimize.pricing_defaults(_who)


@st.cache_data(ttl=300, show_spinner="Replaying the period's usage…", max_entries=32)
def load(
    _who: Principal,
    version: str,
    markup: Decimal | None,
    user_markups: tuple[tuple[str, Decimal], ...],
    credit: Decimal | None,
    rounding: str,
    since: date,
    until: date,
) -> PricingLabView:
    return services().optimize.pricing_lab(
        _who,
        markup_pct=markup,
        user_markups=user_markups,
        credit_usd=credit,
        rounding=rounding,
        since=since,
        until=until,
    )


principal = guard("pricing_lab")
st.title("Pricing lab")
st.caption(
    "What the same usage would have earned under another markup, credit price or rounding policy, beside what was "
    "billed. With nothing changed the replay gives back the billed revenue exactly. Rounding beyond markup = "
    "revenue from charges − the provider cost with the markup and no rounding: what rounding to whole credits earns, "
    "before and after the markup (so the rounding policies compare). It is not Spend's rounding uplift (rounding "
    "before the markup only, 0 for accrual calls), shown billed beside it."
)
svc = services()
version = sync_when_stale(principal)
defaults = load_defaults(principal, version)
first, last = svc.spend.default_range(principal)  # the last 30 local days up to the last sync

with st.sidebar:
    st.subheader("Period")
    picked = st.date_input(f"Days ({svc.settings.reporting_tz})", value=(first, last), key="days")
    since, until = picked if isinstance(picked, tuple) and len(picked) == 2 else (first, last)

c1, c2, c3 = st.columns(3)
change_markup = c1.toggle("Change everyone's markup", key="change_markup")
markup = c1.slider(
    "Markup (%)",
    0,
    300,
    int(defaults.default_markup_pct),
    step=5,
    disabled=not change_markup,
    key="markup",
    help="Off: each call keeps the markup it was billed at.",
)
credit = c2.number_input(
    "Credit price ($)",
    min_value=0.001,
    max_value=1.0,
    value=float(defaults.credit_usd),
    step=0.005,
    format="%.3f",
    key="credit",
    help=f"Now ${defaults.credit_usd} (CREDIT_USD).",
)
rounding = c3.radio(
    "Rounding",
    list(defaults.rounding_choices),
    format_func=lambda r: ROUNDING_LABELS.get(r, r),
    key="rounding",
    help=f"The ledger rounds by the {defaults.rounding_policy.replace('_', ' ')} policy now (ROUNDING_POLICY).",
)
with st.expander("Per-person markups"):
    people = st.multiselect("People", list(defaults.users), key="people")
    overrides = tuple(
        (email, Decimal(str(st.number_input(plain(email), 0.0, 1000.0, now, step=5.0, key=f"m-{email}"))))
        for email in people
        # each starts at the markup the person is billed at now, so adding someone changes nothing until edited
        for now in [float(defaults.markups.get(email, defaults.default_markup_pct))]
    )

credit_usd = Decimal(str(credit)).quantize(Decimal("0.000001"))
try:
    view = load(
        principal,
        version,
        Decimal(markup) if change_markup else None,
        overrides,
        None if credit_usd == defaults.credit_usd else credit_usd,
        rounding,
        since,
        until,
    )
except CoreError as exc:  # a sentence to act on, never a stack trace
    st.error(plain(str(exc)))
    st.stop()

r = view.result
st.caption(
    f"Period {view.period} · as of {stamp(view.as_of, svc.settings.reporting_tz, '%Y-%m-%d %H:%M:%S')} "
    "(last sync of the analytics store)"
)
m1, m2, m3, m4 = st.columns(4)
figure(m1, "Revenue billed", money(r.billed.revenue_usd), credits(r.billed.credits))
changed(
    m2,
    "Revenue what-if",
    r.what_if.revenue_usd,
    r.difference_usd,
    help="Credits replayed × the credit price; the change against what was billed.",
)
changed(m3, "Margin what-if", r.what_if.margin_usd, r.what_if.margin_usd - r.billed.margin_usd)
figure(m4, "People paying more / less", f"{count(r.pays_more())} / {count(r.pays_less())}")
figure(
    st,
    "Rounding uplift billed (as on Spend)",
    money(r.rounding_uplift_usd),
    "rounding before the markup",
    help="The Spend page's figure for these days: each call's ceil(cost / credit price) × credit price − cost, 0 "
    "for calls billed by accrual. The table's rounding beyond markup also counts the rounding after the markup.",
)

left, right = st.columns(2)
left.plotly_chart(
    px.bar(view.chart, x="measure", y="usd", color="side", barmode="group", labels={"usd": "$", "measure": ""}),
    width="stretch",
)
if len(view.user_differences):
    right.plotly_chart(
        px.bar(
            view.user_differences,
            x="difference_usd",
            y="user",
            orientation="h",
            labels={"difference_usd": "what-if − billed ($)", "user": ""},
        ),
        width="stretch",
    )
else:
    right.info("Nobody pays a different amount under these settings.")

table(view.comparison, COMPARISON, key="comparison")
for title, name, frame in (("By person", "by_person", r.by_user), ("By model", "by_model", r.by_model)):
    st.subheader(title)
    spec = {c: REPLAY[c] for c in frame.columns if c in REPLAY}
    table(frame, spec, key=name, height=460 if len(frame) > 12 else "auto")
    downloads(name, frame, spec, parquet=False)
if r.uptime_debits_kept:
    st.caption(plain(f"{r.uptime_debits_kept} endpoint uptime debits carry no markup and are kept as billed."))
