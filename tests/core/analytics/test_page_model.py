"""The Spend page's data: the drill-down's tables equal the engine's own answers."""

from __future__ import annotations

from datetime import date

import pandas as pd

from core.analytics import SpendFilter
from core.services.spend import PageQuery, spend_page, user_drill
from tests.core.analytics.conftest import END, ROLLUP_TZ


def test_user_drill_equals_the_engine_breakdown_and_totals(synced) -> None:
    _rt, q, _ref = synced
    for email, _name in q.options().users[:3]:
        for include in (False, True):
            f = SpendFilter.dates(
                date(2025, 3, 1), date(2025, 3, 31), tz=ROLLUP_TZ, users=(email,), include_sandbox=include
            )
            d = user_drill(q, f, email)
            pd.testing.assert_frame_equal(d.models.frame, q.breakdown("model", f).frame)
            t, _ = q.totals(f)
            assert d.totals == t
            assert set(d.transactions.frame["user"]) <= {email}


def test_spend_page_data_has_every_table(synced) -> None:
    _rt, q, _ref = synced
    email = q.options().users[0][0]
    page = spend_page(q, PageQuery(since=date(2025, 3, 1), until=date(2025, 3, 31), drill_user=email), now=END)
    assert page.drill is not None and page.drill.user == email
    assert not page.top_users.frame.empty and not page.series_by_provider.frame.empty
    assert page.as_of <= q.as_of()
    assert int(page.top_users.frame["credits"].iloc[0]) >= int(page.top_users.frame["credits"].iloc[-1])
