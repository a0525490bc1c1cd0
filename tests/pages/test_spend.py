"""The Spend page: KPIs, charts and tables from the analytics store; filters and the drill-down change them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.analytics import SpendFilter, SpendQueries
from core.services.spend import default_range
from tests.pages.apptest import demo_database, demo_runtime, open_page, shown

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    tmp = tmp_path_factory.mktemp("spend")
    return demo_database(tmp, rows=4000, days=45, seed=5), tmp / "analytics.duckdb"


@pytest.fixture
def app(demo: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    url, analytics = demo
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(analytics))
    at = AppTest.from_file(str(ROOT / "pages" / "spend.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _queries(analytics: Path) -> SpendQueries:
    from core.analytics import AnalyticsStore

    return SpendQueries(AnalyticsStore(analytics), credit_usd=Decimal("0.04"))


def _usd(text: str) -> Decimal:
    return Decimal(text.replace("$", "").replace(",", ""))


def test_page_shows_kpis_as_of_and_every_table(app: AppTest, demo: tuple[str, Path]) -> None:
    labels = [m.label for m in app.metric]
    assert any(label.startswith("Spend in ") for label in labels)
    assert {"Forecast", "Margin", "Active users", "vs last month"} <= set(labels)
    assert any("As of" in c.value and "UTC" in c.value for c in app.caption)
    q = _queries(demo[1])
    mtd = q.kpis().month_to_date
    spend = next(m for m in app.metric if m.label.startswith("Spend in "))
    assert _usd(spend.value) == mtd.revenue_usd.quantize(Decimal("0.01"))
    assert len(app.dataframe) >= 2  # top users, top models (and anomalies when there are any)
    # the top users table equals the engine's answer for the default 30 days
    since, until = default_range(q)
    want = q.breakdown("user", SpendFilter.dates(since, until), top=10).frame
    got = app.dataframe[0].value
    assert list(got["user"]) == list(want["user"])
    assert [round(x, 6) for x in got["revenue_usd"]] == [round(float(x), 6) for x in want["revenue_usd"]]


def test_a_provider_filter_changes_every_table(app: AppTest, demo: tuple[str, Path]) -> None:
    app.sidebar.multiselect(key="providers").set_value(["anthropic"]).run()
    assert not app.exception, app.exception
    models = app.dataframe[1].value
    assert set(models["model_provider"]) == {"anthropic"}
    q = _queries(demo[1])
    since, until = default_range(q)
    want = q.breakdown("user", SpendFilter.dates(since, until, providers=("anthropic",)), top=10).frame
    assert list(app.dataframe[0].value["user"]) == list(want["user"])


def test_drilling_into_a_user_shows_their_models_daily_series_and_transactions(app: AppTest) -> None:
    top_user = app.dataframe[0].value["user"].iloc[0]
    app.selectbox(key="drill_user").set_value(top_user).run()
    assert not app.exception, app.exception
    assert any(top_user in shown(md.value) for md in app.markdown)
    frames = [d.value for d in app.dataframe]
    tx = next(f for f in frames if "transaction_id" in f.columns)
    assert set(tx["user"]) == {top_user}
    user_models = next(
        f
        for f in frames
        if "model" in f.columns and "user" not in f.columns and len(f) and "key" in f.columns and f is not frames[1]
    )
    assert user_models["credits"].sum() > 0


def test_sandbox_toggle_adds_would_be_cost_but_no_credits(app: AppTest) -> None:
    app.sidebar.multiselect(key="providers").set_value(["sandbox"]).run()
    assert app.dataframe[1].value.empty  # excluded by default
    app.sidebar.toggle(key="sandbox").set_value(True).run()
    assert not app.exception, app.exception
    models = app.dataframe[1].value
    assert set(models["model_provider"]) == {"sandbox"}
    assert (models["credits"] == 0).all() and (models["base_cost_usd"] > 0).all()


def test_a_pm_sees_only_their_own_spend(tmp_path, monkeypatch) -> None:
    from core.users import list_users

    rt = demo_runtime(tmp_path, rows=3000, days=20, seed=9)
    with rt.session() as s:
        pm = next(u for u in list_users(s, role="pm") if u.credit_balance >= 0)
    rt.dispose()
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "pm.duckdb"))
    at = open_page("spend", timeout=120, acting_as=pm.email)
    assert any("your own spend" in i.value for i in at.info)
    assert at.selectbox(key="drill_user").options == ["(nobody)", pm.email]
    for frame in at.dataframe:
        if "user" in frame.value.columns:
            assert set(frame.value["user"]) <= {pm.email}


def test_a_team_owner_sees_the_team_and_finance_sees_spend_by_team(tmp_path, monkeypatch) -> None:
    from core.services import SYSTEM, Services
    from core.users import list_users

    rt = demo_runtime(tmp_path, rows=3000, days=20, seed=9)
    with rt.session() as s:
        owner = list_users(s, role="pm")[0]
        members = sorted(u.email for u in list_users(s, role="engineer")[:3])
        finance = list_users(s, role="finance")[0]
    services = Services(rt)
    services.budgets.add_team(SYSTEM, "research", owner=owner.email, members=members)
    services.close()
    rt.dispose()
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "team.duckdb"))

    at = open_page("spend", timeout=120, acting_as=owner.email)
    assert at.selectbox(key="team").options == ["(your own spend)", "research"]
    at.selectbox(key="team").set_value("research").run()
    assert not at.exception, at.exception
    assert any("Team research: the spend of its 3 members" in i.value for i in at.info)
    assert at.selectbox(key="drill_user").options == ["(nobody)", *members]
    q = _queries(tmp_path / "team.duckdb")
    since, until = default_range(q)
    want = q.breakdown("user", SpendFilter.dates(since, until, users=tuple(members)), top=10).frame
    got = at.dataframe[0].value
    assert list(got["user"]) == list(want["user"]) and set(got["user"]) <= set(members)
    assert list(got["credits"]) == list(want["credits"])

    at = open_page("spend", timeout=120, acting_as=finance.email)
    assert any(h.value == "Spend by team" for h in at.subheader)
    by_team = next(d.value for d in at.dataframe if "team" in d.value.columns)
    want_teams = q.breakdown("team", SpendFilter.dates(since, until), top=10).frame
    assert dict(zip(by_team["team"], by_team["credits"], strict=True)) == dict(
        zip(want_teams["team"], want_teams["credits"], strict=True)
    )
    outsider = next(u for u in q.breakdown("user", SpendFilter.dates(since, until)).frame["user"] if u not in members)
    at.selectbox(key="drill_user").set_value(outsider).run()
    assert any(outsider in shown(md.value) for md in at.markdown)
    at.selectbox(key="team").set_value("research").run()  # a drill-down outside the team is dropped, not an error
    assert not at.exception, at.exception
    assert set(at.dataframe[0].value["user"]) <= set(members)
    assert not any(outsider in md.value for md in at.markdown)
