"""Models & pricing: the catalog with its prices, sources and dates; a calculator from usage to credits; for admins,
a price edit form (new usage only) and the price history."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import streamlit as st

from core.errors import CoreError
from core.services import Capability, Principal
from core.services.models import (
    CATEGORIES,
    PRICE_FIELDS,
    ModelPrice,
    PriceChange,
    Quote,
    TypicalCost,
    Usage,
    pricing_page,
    public_source,
)
from pages.fmt import MISSING, count, credits, pct, price
from pages.tables import table
from pages.ui import acting_user, guard, plain, services

MAX_CALC_TOKENS = 1_000_000_000  # a billion tokens: more than any call, few enough to print in full
UNIT_LABELS = {
    "input_per_1m_usd": "input / 1M tokens",
    "output_per_1m_usd": "output / 1M tokens",
    "cached_input_per_1m_usd": "cached input / 1M tokens",
    "per_second_usd": "per second",
    "per_character_usd": "per character",
    "per_request_usd": "per request",
    "per_image_usd": "per image",
}


@st.cache_data(ttl=60, show_spinner=False)
def load_catalog(_who: Principal, database_url: str) -> list[ModelPrice]:
    return services().models.list(_who, include_inactive=True)


@st.cache_data(ttl=60, show_spinner=False)
def load_typical(_who: Principal, who_key: str) -> dict[str, TypicalCost]:
    return services().models.typical_costs(_who, load_catalog(_who, services().settings.database_url))


@st.cache_data(ttl=60, show_spinner=False)
def load_history(_who: Principal, database_url: str, model_pk: int | None) -> list[PriceChange]:
    return services().models.price_history(_who, model_pk)


def price_text(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


st.title("Models & pricing")
settings = services().settings
principal = guard("models")
actor = acting_user()
database_url = services().settings.database_url  # part of every cache key: one database's rows never serve another
models = load_catalog(principal, database_url)
by_key = {m.key: m for m in models}
typical = load_typical(principal, f"{database_url}|{principal.email}|{principal.role}")
tab_catalog, tab_calc, tab_edit = st.tabs(["Catalog", "Calculator", "Price changes"])

# ---- the catalog -------------------------------------------------------------------------------------------------
with tab_catalog:
    c1, c2, c3 = st.columns([2, 2, 1])
    category = c1.selectbox("Category", ["all", *CATEGORIES], key="cat_category")
    provider = c2.selectbox("Provider", ["all", *sorted({m.provider for m in models})], key="cat_provider")
    twins = c3.toggle(
        "Sandbox twins",
        value=provider == "sandbox",
        key="cat_twins",
        help="every model billed per use has a simulated twin in the Playground, priced as it and never charged",
    )
    shown = [
        m
        for m in models
        if (category == "all" or m.category == category)
        and (provider == "all" or m.provider == provider)
        and (twins or m.provider != "sandbox")
    ]
    markup = next((t.quote.markup_pct for t in typical.values()), settings.default_markup_pct)
    table(
        pd.DataFrame(
            [
                {
                    "provider": m.provider,
                    "model": m.model_id,
                    "category": m.category,
                    "deployment": m.deployment_type,
                    "unit": m.cost_unit,
                    "price": m.price_label(),
                    "typical_credits": typical[m.key].quote.final_credits if m.key in typical else None,
                    "typical_usd": price(typical[m.key].quote.final_usd) if m.key in typical else MISSING,
                    "typical_call": typical[m.key].usage if m.key in typical else "billed by uptime",
                    "hardware": m.hardware_label or MISSING,
                    **{f: price(getattr(m, f), digits=4) for f in PRICE_FIELDS},
                    "variants": json.dumps(m.price_variants, sort_keys=True) if m.price_variants else MISSING,
                    "source": public_source(m.price_source),
                    "pricing_page": pricing_page(m) or "",
                    "as_of": m.price_as_of,
                    "status": m.status,
                }
                for m in shown
            ]
        ),
        {
            "provider": ("Provider", "text"),
            "model": ("Model", "text"),
            "category": ("Category", "text"),
            "deployment": ("Deployment", "text"),
            "unit": ("Billed per", "text"),
            "price": ("Price", "text"),
            "typical_credits": ("Typical call (credits)", "credits"),
            "typical_usd": ("Typical call (USD)", "text"),
            "typical_call": ("Typical call is", "text"),
            "hardware": ("Hardware", "text"),
            **{f: (UNIT_LABELS[f], "text") for f in PRICE_FIELDS},
            "variants": ("Other prices", "text"),
            "source": ("Source", "text"),
            "pricing_page": ("Provider's pricing page", "link"),
            "as_of": ("As of", "text"),
            "status": ("Status", "text"),
        },
        help={"typical_credits": f"about this many credits per typical call at your markup ({pct(markup, 0)})"},
        key="models_catalog",
    )
    st.caption(
        f"{count(len(shown))} models. Prices in USD as the providers bill them; **typical call** in credits at your "
        f"markup ({pct(markup, 0)}): a chat turn of 1,000 input + 500 output tokens, a minute of audio, 1,000 "
        "characters of speech, one request or one image. Sandbox models are priced like the model they mirror and "
        "are never charged. Dedicated endpoints are billed by uptime (see Endpoints and Break-even)."
    )

# ---- the calculator ----------------------------------------------------------------------------------------------
with tab_calc:
    priced = [m.key for m in models if m.status == "active"]
    key = st.selectbox("Model", priced, index=priced.index("openai/gpt-4o") if "openai/gpt-4o" in priced else 0)
    model = by_key[key]
    page_url = pricing_page(model)
    st.caption(
        plain(f"{model.model_name} · {model.price_label()} · source: {public_source(model.price_source)}, as of ")
        + plain(str(model.price_as_of))
        + (f" · [provider's pricing page]({page_url})" if page_url else "")
    )
    default_markup = float(actor.developer_markup_pct if actor else settings.default_markup_pct)
    usage: Usage | None = None
    try:
        if model.cost_unit == "token":
            c1, c2, c3, c4 = st.columns(4)
            most = MAX_CALC_TOKENS
            inp = c1.number_input("Input tokens (all)", 0, most, value=1000, step=100, key="calc_in")
            cached = c2.number_input("of which cached reads", 0, most, value=0, step=100, key="calc_cached")
            writes = 0
            if model.price_variants.get("cache_write_per_1m_usd"):
                writes = c3.number_input("of which cache writes", 0, most, value=0, step=100, key="calc_cw")
            out = c4.number_input("Output tokens", 0, most, value=500, step=100, key="calc_out")
            usage = Usage(
                input_tokens=int(inp), cached_tokens=int(cached), cache_write_tokens=int(writes), output_tokens=int(out)
            )
        elif model.cost_unit == "second":
            secs = st.number_input("Seconds of audio or compute", 0.0, 10_000_000.0, value=60.0, step=1.0, key="calc_s")
            usage = Usage(seconds=Decimal(str(secs)))
        elif model.cost_unit == "character":
            chars = st.number_input("Characters", 0, MAX_CALC_TOKENS, value=1000, step=100, key="calc_chars")
            usage = Usage(characters=int(chars))
        elif model.cost_unit == "request":
            reqs = st.number_input("Requests", 1, 1_000_000, value=1, step=1, key="calc_req")
            usage = Usage(requests=int(reqs))
        elif model.cost_unit == "image":
            variants = sorted((model.price_variants.get("images") or {}).keys())
            c1, c2 = st.columns(2)
            n = c1.number_input("Images", 1, 100_000, value=1, step=1, key="calc_img")
            variant = c2.selectbox("Quality / size", variants, key="calc_variant") if variants else None
            quality, _, size = (variant or "").rpartition("/")
            usage = Usage(images=int(n), image_size=size or None, image_quality=quality or None)
        else:
            st.info(
                "Requests to a dedicated endpoint cost nothing each: the endpoint's uptime is billed per minute at "
                "its hardware's hourly rate (see the Endpoints page)."
            )
    except ValueError as exc:
        st.error(plain(str(exc)))
        usage = None
    markup = st.number_input(
        "Markup %",
        min_value=0.0,
        max_value=1000.0,
        value=default_markup,
        step=10.0,
        key="calc_markup",
        help="Defaults to the acting user's developer markup.",
    )
    if usage is not None:
        try:
            q: Quote = services().models.quote(principal, model, usage, Decimal(str(markup)))
        except CoreError as exc:
            st.error(plain(str(exc)))
        else:
            quiet = {"delta_color": "off", "delta_arrow": "off"}  # the deltas are explanations, not changes
            m1, m2, m3 = st.columns(3)
            m1.metric("Provider cost", price(q.base_cost_usd, digits=9))
            m2.metric("Base credits", count(q.base_credits), f"= {price(q.base_credits_usd)}", **quiet)
            m3.metric("Rounding uplift", price(q.rounding_uplift_usd), "to whole credits", **quiet)
            m4, m5, m6 = st.columns(3)
            m4.metric("Markup", f"+{credits(q.markup_credits)}", f"at {pct(q.markup_pct, 0)}", **quiet)
            m5.metric("Final credits", count(q.final_credits), f"= {price(q.final_usd)}", **quiet)
            m6.metric("Margin", price(q.margin_usd), "rounding uplift + markup", **quiet)
            st.caption(
                f"base credits = ceil({price(q.base_cost_usd, digits=9)} / ${settings.credit_usd}) = "
                f"{q.base_credits:,}; final = ceil({q.base_credits:,} × (100 + {q.markup_pct.normalize():f}) / 100) "
                f"= {q.final_credits:,}."
            )

# ---- price changes: admin edit form and the history --------------------------------------------------------------
with tab_edit:
    done = st.session_state.pop("price_done", None)
    if done:
        st.success(plain(done))
    if principal.can(Capability.EDIT_PRICES):
        edit_key = st.selectbox("Model to edit", [m.key for m in models], key="edit_model")
        target = by_key[edit_key]
        with st.form("price_form"):
            st.caption(
                f"Billed per **{target.cost_unit}**. Leave a field empty for no price. The new prices apply to new "
                "usage only: logged calls keep the cost they were billed."
            )
            cols = st.columns(2)
            new: dict[str, str] = {}
            for i, f in enumerate(PRICE_FIELDS):
                new[f] = cols[i % 2].text_input(
                    f"{UNIT_LABELS[f]} (USD)", value=price_text(getattr(target, f)), key=f"edit_{edit_key}_{f}"
                )
            variants_text = ""
            if target.price_variants:
                variants_text = st.text_area(
                    "Other prices (JSON: long context, cache writes, image sizes)",
                    value=json.dumps(target.price_variants, indent=2, sort_keys=True),
                    key=f"edit_{edit_key}_variants",
                )
            source = st.text_input("Source of the new price", value=target.price_source, key=f"edit_{edit_key}_src")
            note = st.text_input("Note (why)", key=f"edit_{edit_key}_note")
            review = st.form_submit_button("Review new prices")
        if review:  # checked as the save checks them, nothing saved: the confirmation comes next
            st.session_state.pop("price_review", None)
            changes: dict[str, object] = {f: v for f, v in new.items() if v.strip() != price_text(getattr(target, f))}
            if source.strip() != target.price_source:
                changes["price_source"] = source
            try:
                if target.price_variants:
                    parsed = json.loads(variants_text or "{}")
                    if parsed != target.price_variants:
                        changes["price_variants"] = parsed
                preview = services().models.review_prices(principal, target.id, changes, note or None)
            except json.JSONDecodeError as exc:
                st.error(f"Other prices are not valid JSON ({exc.msg}, line {exc.lineno}); fix them and save again.")
            except CoreError as exc:
                st.error(plain(str(exc)))
            else:
                st.session_state["price_review"] = (edit_key, changes, note or None, preview)
        pending = st.session_state.get("price_review")
        if pending is not None and pending[0] != edit_key:  # another model picked: that review no longer applies
            st.session_state.pop("price_review", None)
            pending = None
        change = None
        if pending is not None:
            _key, changes, note_given, preview = pending
            fields = "; ".join(f"{k}: {a} → {b}" for k, (a, b) in preview.changed_fields().items())
            st.info(plain(f"Confirm: {preview.model_key}: {fields}. New usage is priced at it."))
            free = preview.made_free()
            sure = True
            if free:
                st.warning(
                    plain(
                        f"{', '.join(free)} becomes 0: every call billed by it is free for its users from now on "
                        "(0 credits), and the company pays the provider for it."
                    )
                )
                sure = st.checkbox("Yes, these calls are meant to be free", key="price_free_sure")
            c1, c2 = st.columns([1, 4])
            if c1.button("Confirm", type="primary", key="price_confirm", disabled=not sure):
                try:
                    change = services().models.update_prices(principal, target.id, changes, note_given)
                except CoreError as exc:
                    st.error(plain(str(exc)))
            if c2.button("Cancel", key="price_cancel"):
                st.session_state.pop("price_review", None)
                st.rerun()
        if change is not None:
            st.session_state.pop("price_review", None)
            st.session_state.pop("price_free_sure", None)
            load_catalog.clear()
            load_history.clear()
            # the form's fields start again from the saved model: kept, they held what was typed (the old
            # source, '1e5' for 100000), so the next save put the old source back or "changed" a price to itself
            for k in [k for k in st.session_state if str(k).startswith(f"edit_{edit_key}_")]:
                del st.session_state[k]
            fields = ", ".join(f"{k}: {a} → {b}" for k, (a, b) in change.changed_fields().items())
            st.session_state["price_done"] = f"Saved {change.model_key} ({fields}). New usage is priced at it."
            st.rerun()
    else:
        st.info("Only admins can change prices. The history of every change is below.")
    scope = st.selectbox("History of", ["all models", *[m.key for m in models]], key="hist_scope")
    changes_seen = load_history(principal, database_url, None if scope == "all models" else by_key[scope].id)
    if not changes_seen:
        st.caption("No price has been changed since the catalog was loaded.")
    else:
        table(
            pd.DataFrame(
                [
                    {
                        "when": c.changed_at,
                        "model": c.model_key,
                        "who": c.changed_by,
                        "changed": "; ".join(f"{k}: {a} → {b}" for k, (a, b) in c.changed_fields().items()),
                        "note": c.note or MISSING,
                        "previous": json.dumps(c.previous, sort_keys=True),
                    }
                    for c in changes_seen
                ]
            ),
            {
                "when": ("When", "instant"),
                "model": ("Model", "text"),
                "who": ("Who", "text"),
                "changed": ("Changed", "text"),
                "note": ("Note", "text"),
                "previous": ("Previous prices", "text"),
            },
            key="models_history",
        )
