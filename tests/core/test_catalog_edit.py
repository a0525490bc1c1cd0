"""Price edits: validated, recorded with who/when/previous, followed by sandbox twins, never repricing history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.catalog import UnknownModelError, get_model
from core.catalog.edit import price_history, update_prices
from core.db import Database
from core.db.models import AIModelPriceHistory, AuditLog
from core.errors import InvalidInputError


def pk(rt: Database, model_id: str) -> int:
    with rt.session() as s:
        return get_model(s, model_id).id


def test_change_is_recorded_with_previous_prices(runtime: Database) -> None:
    mini = pk(runtime, "gpt-4o-mini")
    with runtime.session() as s:
        change = update_prices(
            s, mini, {"input_per_1m_usd": "0.20", "output_per_1m_usd": Decimal("0.8")}, "root@example.com", "rise"
        )
    fields = change.changed_fields()
    assert fields["input_per_1m_usd"] == ("0.15", "0.2") and fields["output_per_1m_usd"] == ("0.6", "0.8")
    assert set(fields) == {"input_per_1m_usd", "output_per_1m_usd", "price_source", "price_as_of"}
    with runtime.session() as s:
        m = get_model(s, "gpt-4o-mini")
        [hist] = price_history(s, mini)
        twin = get_model(s, "sandbox-chat")
        twin_hist = price_history(s, twin.id)
        audit = s.scalars(select(AuditLog)).one()
    assert m.input_per_1m_usd == Decimal("0.2") and m.price_source == "edited by root@example.com"
    assert hist.changed_by == "root@example.com" and hist.note == "rise"
    assert hist.previous["input_per_1m_usd"] == "0.15" and hist.prices["input_per_1m_usd"] == "0.2"
    assert twin.input_per_1m_usd == Decimal("0.2") and twin_hist[0].note.startswith("follows openai/gpt-4o-mini")
    assert audit.action == "catalog.price_change" and audit.target == "openai/gpt-4o-mini"


def test_reload_of_the_catalog_keeps_the_edited_price(runtime: Database) -> None:
    with runtime.session() as s:
        update_prices(s, pk(runtime, "gpt-4o"), {"input_per_1m_usd": "3"}, "root@example.com")
    runtime.init()
    with runtime.session() as s:
        assert get_model(s, "gpt-4o").input_per_1m_usd == Decimal("3")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_per_1m_usd": "-1"}, "non-negative"),
        ({"input_per_1m_usd": "NaN"}, "finite"),
        ({"input_per_1m_usd": "abc"}, "not a number"),
        ({"input_per_1m_usd": 2.5}, "decimal string"),
        ({"input_per_1m_usd": "0.0000000001"}, "9 decimal places"),
        ({"input_per_1m_usd": "Infinity"}, "finite"),
        ({"input_per_1m_usd": "-inf"}, "finite"),
        ({"input_per_1m_usd": "1e5"}, r"'1e5' is in scientific notation; type the price in digits \(100000\)\."),
        ({"input_per_1m_usd": "2.5E-1"}, r"scientific notation; type the price in digits \(0\.25\)"),
        ({"input_per_1m_usd": "1e400"}, r"'1e400' is in scientific notation; type the price in digits\.$"),
        ({"input_per_1m_usd": "1000000000"}, "too large"),
        ({"price_variants": {"cache_write_per_1m_usd": "3e0"}}, "price_variants.cache_write_per_1m_usd: '3e0' is in"),
        ({"input_per_1m_usd": ""}, "cannot be cleared"),
        ({"model_name": "x"}, "Cannot edit model_name"),
        ({"input_per_1m_usd": "2.50"}, "nothing changed"),
        ({"price_source": " "}, "cannot be empty"),
        ({"price_variants": {"cache_write_per_1m_usd": "-3"}}, "non-negative"),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_written(runtime: Database, changes: dict, message: str) -> None:
    gpt = pk(runtime, "gpt-4o")
    with pytest.raises(InvalidInputError, match=message), runtime.session() as s:
        update_prices(s, gpt, changes, "root@example.com")
    with runtime.session() as s:
        assert get_model(s, "gpt-4o").input_per_1m_usd == Decimal("2.5")
        assert s.scalar(select(func.count()).select_from(AIModelPriceHistory)) == 0


def test_unknown_model_and_missing_actor(runtime: Database) -> None:
    with pytest.raises(UnknownModelError), runtime.session() as s:
        update_prices(s, 99_999, {"input_per_1m_usd": "1"}, "root@example.com")
    with pytest.raises(InvalidInputError, match="who made it"), runtime.session() as s:
        update_prices(s, pk(runtime, "gpt-4o"), {"input_per_1m_usd": "1"}, " ")
