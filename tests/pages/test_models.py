"""The Models & pricing page: the catalog, the calculator's breakdown, and the admin price edit with its history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from core.billing.quote import quote
from core.catalog import get_model, list_models
from core.db import Database
from core.db.models import AIModelPriceHistory, AIUsageLog, AuditLog
from core.usage import Usage
from tests.pages.apptest import open_page, page_path, shown

PAGE = page_path("models")


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_catalog_lists_every_model_with_source_and_date(demo: Database) -> None:
    at = open_page("models")
    with demo.session() as s:
        models = list_models(s, include_inactive=True)
    table = at.dataframe[0].value
    assert len(table) == len([m for m in models if m.provider != "sandbox"])  # the twins behind a toggle
    at.toggle(key="cat_twins").set_value(True).run()
    assert len(at.dataframe[0].value) == len(models)
    at.toggle(key="cat_twins").set_value(False).run()
    table = at.dataframe[0].value
    assert {"price", "source", "as_of", "input_per_1m_usd", "pricing_page"} <= set(table.columns)
    row = table[table["model"] == "gpt-4o"].iloc[0]
    assert row["input_per_1m_usd"] == "$2.50" and row["as_of"]
    assert row["pricing_page"] == "https://openai.com/api/pricing/"
    # the price source never shows a file of the repository
    assert not table["source"].str.contains(r"\.md|\.ya?ml|shared/", regex=True).any()
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    at.selectbox(key="cat_category").set_value("tts").run()
    assert set(at.dataframe[0].value["category"]) == {"tts"}


def test_calculator_shows_the_breakdown(demo: Database) -> None:
    at = open_page("models")
    at.number_input(key="calc_in").set_value(100_000)
    at.number_input(key="calc_out").set_value(10_000)
    at.number_input(key="calc_markup").set_value(50.0)
    at.run()
    with demo.session() as s:
        expected = quote(
            get_model(s, "gpt-4o"), Usage(input_tokens=100_000, output_tokens=10_000), Decimal(50), Decimal("0.04")
        )
    # $0.35 -> 9 base credits ($0.36: a $0.01 rounding uplift) -> 14 credits at 50%
    assert (expected.base_credits, expected.final_credits) == (9, 14)
    shown = metrics(at)
    assert shown["Provider cost"] == "$0.35"
    assert shown["Base credits"] == "9" and shown["Final credits"] == "14"
    assert shown["Rounding uplift"] == "$0.01" and shown["Markup"] == "+5 credits"


def test_catalog_prices_a_typical_call_in_credits_at_the_viewers_markup(demo: Database) -> None:
    """ "About N credits for a typical call": 1,000 input + 500 output tokens for chat, at the viewer's own markup."""
    from core.users import get_user

    at = open_page("models")
    with demo.session() as s:
        viewer = get_user(s, "admin@demo.example")
        gpt4o = get_model(s, "gpt-4o")
    expected = quote(gpt4o, Usage(input_tokens=1_000, output_tokens=500), viewer.developer_markup_pct, Decimal("0.04"))
    table = at.dataframe[0].value
    row = table[table["model"] == "gpt-4o"].iloc[0]
    assert int(row["typical_credits"]) == expected.final_credits  # a column with blanks is drawn as text
    assert row["typical_call"] == "1,000 input + 500 output tokens"
    uptime = table[table["unit"] == "uptime"]
    assert uptime["typical_call"].eq("billed by uptime").all()


def test_calculator_prints_huge_figures_whole(demo: Database) -> None:
    at = open_page("models")
    at.number_input(key="calc_in").set_value(1_000_000_000)
    at.number_input(key="calc_out").set_value(500)
    at.run()
    assert not at.exception
    shown = metrics(at)
    assert shown["Provider cost"] == "$2,500.00"  # $2,500.005 in cents, never $2500.005000
    assert shown["Final credits"].replace(",", "").isdigit() and "," in shown["Final credits"]


def test_calculator_refuses_a_markup_finer_than_the_ledger_keeps_with_a_sentence(demo: Database) -> None:
    at = open_page("models")
    at.number_input(key="calc_markup").set_value(33.33333).run()
    assert not at.exception  # it was "Something went wrong" and nothing below the calculator was drawn
    assert any("more than 4 decimal places" in e.value for e in at.error)
    assert "Final credits" not in metrics(at)


def test_calculator_refuses_impossible_usage(demo: Database) -> None:
    at = open_page("models")
    at.number_input(key="calc_in").set_value(100)
    at.number_input(key="calc_cached").set_value(500)
    at.run()
    assert any("cannot exceed" in e.value for e in at.error)
    assert "Final credits" not in metrics(at)


def review_mini_input_price(typed: str) -> AppTest:
    """The Models page with gpt-4o-mini's input price typed as `typed` and reviewed."""
    at = open_page("models")
    at.selectbox(key="edit_model").set_value("openai/gpt-4o-mini").run()
    at.text_input(key="edit_openai/gpt-4o-mini_input_per_1m_usd").input(typed)
    next(b for b in at.button if b.label == "Review new prices").click().run()
    assert not at.exception, at.exception
    return at


def save_prices(at: AppTest) -> None:
    """Review the typed prices, then confirm them (the two steps of a price change)."""
    next(b for b in at.button if b.label == "Review new prices").click().run()
    assert not at.exception, at.exception
    at.button(key="price_confirm").click().run()


def test_a_review_saves_nothing_and_a_price_of_0_needs_its_own_yes(demo: Database) -> None:
    at = review_mini_input_price("0")
    assert any("Confirm: openai/gpt-4o-mini: input_per_1m_usd: 0.15 → 0" in shown(i.value) for i in at.info)
    assert any("input_per_1m_usd becomes 0: every call billed by it is free" in shown(w.value) for w in at.warning)
    with demo.session() as s:
        assert get_model(s, "gpt-4o-mini").input_per_1m_usd == Decimal("0.15")  # the review wrote nothing
    assert at.button(key="price_confirm").disabled  # not before the yes
    at.checkbox(key="price_free_sure").check().run()
    at.button(key="price_confirm").click().run()
    assert not at.exception, at.exception
    with demo.session() as s:
        assert get_model(s, "gpt-4o-mini").input_per_1m_usd == Decimal("0")


def test_admin_price_change_applies_to_new_usage_and_is_kept(demo: Database) -> None:
    with demo.session() as s:
        mini = get_model(s, "gpt-4o-mini")
        billed_before = s.scalar(select(func.sum(AIUsageLog.base_cost_usd)).where(AIUsageLog.ai_model_id == mini.id))
    at = open_page("models")
    admin = "admin@demo.example"  # local mode acts as the first admin
    assert admin.startswith("admin")
    at.selectbox(key="edit_model").set_value("openai/gpt-4o-mini").run()
    at.text_input(key="edit_openai/gpt-4o-mini_input_per_1m_usd").input("0.20")
    at.text_input(key="edit_openai/gpt-4o-mini_note").input("provider price rise")
    save_prices(at)
    assert not at.exception, at.exception
    assert any("input_per_1m_usd: 0.15 → 0.2" in shown(s.value) for s in at.success)
    with demo.session() as s:
        after = get_model(s, "gpt-4o-mini")
        twin = get_model(s, "sandbox-chat")
        hist = s.scalars(select(AIModelPriceHistory).where(AIModelPriceHistory.ai_model_id == mini.id)).one()
        billed_after = s.scalar(select(func.sum(AIUsageLog.base_cost_usd)).where(AIUsageLog.ai_model_id == mini.id))
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "catalog.price_change")).one()
    assert after.input_per_1m_usd == Decimal("0.2") and twin.input_per_1m_usd == Decimal("0.2")
    assert (
        hist.changed_by == admin and hist.previous["input_per_1m_usd"] == "0.15" and hist.note == "provider price rise"
    )
    assert billed_after == billed_before  # logged usage keeps the cost it was billed
    assert audit.actor == admin
    history_table = at.dataframe[-1].value
    assert "openai/gpt-4o-mini" in set(history_table["model"]) and admin in set(history_table["who"])


def test_non_admin_sees_no_edit_form(demo: Database) -> None:
    at = AppTest.from_file(PAGE, default_timeout=60)
    with demo.session() as s:
        from core.users import list_users

        pm = list_users(s, role="pm")[0].email
    at.session_state["local_user_email"] = pm
    at.run()
    assert not at.exception
    assert not [b for b in at.button if b.label == "Review new prices"]
    assert any("Only admins" in i.value for i in at.info)


@pytest.mark.parametrize("typed", ["1e400", "-1", "abc", "NaN", "Infinity", "1e5"])
def test_a_bad_price_is_one_clean_message_and_changes_nothing(demo: Database, typed: str) -> None:
    at = review_mini_input_price(typed)
    [error] = at.error
    assert shown(error.value).startswith("input_per_1m_usd: ") and "Traceback" not in error.value
    with demo.session() as s:
        assert get_model(s, "gpt-4o-mini").input_per_1m_usd == Decimal("0.15")


def test_a_price_in_scientific_notation_is_refused_with_the_digits_to_type(demo: Database) -> None:
    """`1e5` is $100,000 to Decimal, one slip from `15`: refused with a sentence, never stored nor shown as 1E+5."""
    at = review_mini_input_price("1e5")
    [error] = at.error
    assert shown(error.value) == (
        "input_per_1m_usd: '1e5' is in scientific notation; type the price in digits (100000)."
    )
    with demo.session() as s:
        assert get_model(s, "gpt-4o-mini").input_per_1m_usd == Decimal("0.15")


def test_a_second_save_starts_from_the_saved_prices_and_source(demo: Database) -> None:
    """After a save the form shows the model as saved: it kept the typed fields, so saving again (a note, another
    price) put the old source back over 'edited by ...' and 'changed' 0.2 to 0.20."""
    at = open_page("models")
    at.selectbox(key="edit_model").set_value("openai/gpt-4o-mini").run()
    at.text_input(key="edit_openai/gpt-4o-mini_input_per_1m_usd").input("0.20")
    save_prices(at)
    assert not at.exception, at.exception
    with demo.session() as s:
        source = get_model(s, "gpt-4o-mini").price_source
    assert source == "edited by admin@demo.example"
    assert at.text_input(key="edit_openai/gpt-4o-mini_src").value == source
    assert at.text_input(key="edit_openai/gpt-4o-mini_input_per_1m_usd").value == "0.2"
    at.text_input(key="edit_openai/gpt-4o-mini_output_per_1m_usd").input("0.70")
    save_prices(at)
    assert not at.exception, at.exception
    with demo.session() as s:
        after = get_model(s, "gpt-4o-mini")
        last = s.scalars(
            select(AIModelPriceHistory)
            .where(AIModelPriceHistory.ai_model_id == after.id)
            .order_by(AIModelPriceHistory.id.desc())
        ).first()
    assert after.price_source == source and after.output_per_1m_usd == Decimal("0.7")
    assert last is not None and set(last.previous) >= {"output_per_1m_usd"}
    assert last.previous["input_per_1m_usd"] == last.prices["input_per_1m_usd"] == "0.2"  # not changed again
    assert any(
        shown(s.value).startswith("Saved openai/gpt-4o-mini (output_per_1m_usd: 0.6 → 0.7).") for s in at.success
    )
