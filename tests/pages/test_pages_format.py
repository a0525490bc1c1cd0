"""Issue 17's formatting rules on the Overview, Savings, Pricing lab, Budgets and API keys pages: no `None` or NaN in
what a table shows, every table labelled through `pages/tables.table()`, money figures as money, and a note under a
figure ("12,345 credits", "$32.88 prepaid") drawn without a change arrow."""

from __future__ import annotations

import json
import re

import pytest

from core.services import SYSTEM, Services
from tests.pages.apptest import open_page

MONEY = re.compile(r"^-?(\$[\d,]+\.\d\d|<\$0\.01)$")
NOTES = {"Revenue last month", "Credits outstanding", "Revenue billed", "People paying more / less"}


@pytest.mark.parametrize("name", ["home", "savings", "pricing_lab", "budgets", "keys"])
def test_tables_and_figures_follow_the_vocabulary(name: str, demo) -> None:
    services = Services(demo)
    services.keys.create(SYSTEM, services.users.list(SYSTEM)[0].email, "never used")  # "last used" is blank
    services.close()
    at = open_page(name, timeout=120)
    for d in at.dataframe:
        config = json.loads(d.proto.columns)
        shown = list(d.proto.column_order) or list(d.value.columns)
        assert not d.value[shown].isna().any().any(), (name, shown)
        assert all("label" in config[c] for c in shown), (name, config)  # labelled by a spec, not raw names
        for c in shown:
            if config[c]["type_config"].get("type") == "number":
                assert config[c]["type_config"].get("format"), (name, c)  # money, counts... each with its format
    for m in at.metric:
        if m.value.startswith(("$", "-$", "<$")):
            assert MONEY.match(m.value), (name, m.label, m.value)
        if m.label in NOTES:
            assert m.proto.direction == m.proto.NONE, (name, m.label)
        assert "None" not in m.value and "None" not in m.proto.delta
