"""The Spend page: KPIs, charts and tables from the analytics store; filters and the drill-down change them."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.analytics import SpendFilter, SpendQueries
from core.billing import BillingService
from core.db.models import User
from core.services.spend import default_range
from tests.pages.apptest import dates_drawn_as_text, demo_database, demo_runtime, open_page, shown

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


def _frames(at: AppTest, has: str, lacks: str | None = None) -> list:
    """The tables drawn whose frames have column `has` (and not `lacks`), in page order."""
    return [d.value for d in at.dataframe if has in d.value.columns and (lacks is None or lacks not in d.value.columns)]


def users_table(at: AppTest):
    return _frames(at, "user_id", "model")[0]


def models_table(at: AppTest):
    return _frames(at, "model_name", "user")[0]


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
    want = q.breakdown("user", SpendFilter.dates(since, until)).frame  # every user, not only the top 10
    got = users_table(app)
    assert len(want) > 10 and list(got["user"]) == list(want["user"])
    assert [round(x, 6) for x in got["revenue_usd"]] == [round(float(x), 6) for x in want["revenue_usd"]]


def test_a_provider_filter_changes_every_table(app: AppTest, demo: tuple[str, Path]) -> None:
    app.sidebar.multiselect(key="providers").set_value(["anthropic"]).run()
    assert not app.exception, app.exception
    models = models_table(app)
    assert set(models["model_provider"]) == {"anthropic"}
    q = _queries(demo[1])
    since, until = default_range(q)
    want = q.breakdown("user", SpendFilter.dates(since, until, providers=("anthropic",))).frame
    assert list(users_table(app)["user"]) == list(want["user"])


def test_drilling_into_a_user_shows_their_models_daily_series_and_transactions(app: AppTest) -> None:
    top_user = users_table(app)["user"].iloc[0]
    app.selectbox(key="drill_user").set_value(top_user).run()
    assert not app.exception, app.exception
    assert any(top_user in shown(md.value) for md in app.markdown)
    tx = _frames(app, "transaction_id")[0]
    assert set(tx["user"]) == {top_user}
    # one call's provider cost to six places (a $0.000460 call read "$0.00", as if free); totals stay in cents
    [drawn] = [d for d in app.dataframe if "transaction_id" in d.value.columns]
    formats = {c: v.get("type_config", {}).get("format") for c, v in json.loads(drawn.proto.columns).items()}
    assert formats["base_cost_usd"] == "$%.6f" and formats["revenue_usd"] == "dollar", formats
    user_models = _frames(app, "model_name", "user")[-1]  # after the page's own models table
    assert user_models["credits"].sum() > 0


def test_sandbox_toggle_adds_would_be_cost_but_no_credits(app: AppTest) -> None:
    app.sidebar.multiselect(key="providers").set_value(["sandbox"]).run()
    # excluded by default: an empty state that says how to see them, not $0.00 figures and empty charts
    assert not app.dataframe
    assert any("sandbox calls in it are hidden" in i.value and "Include sandbox calls" in i.value for i in app.info)
    app.sidebar.toggle(key="sandbox").set_value(True).run()
    assert not app.exception, app.exception
    models = models_table(app)
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
    # their usage, their credits, what they spent per model: no one-bar ranking of users, no drill-down into oneself
    labels = [m.label for m in at.metric]
    assert labels[0] == "Credits left" and at.metric[0].value == f"{pm.credit_balance:,}"
    assert not [s for s in at.selectbox if s.key == "drill_user"]
    assert not [f for f in at.dataframe if "user_id" in f.value.columns]  # the every-user table
    assert any(h.value == "Your newest calls" for h in at.subheader)
    for frame in at.dataframe:
        # not finance's margin on them: the service leaves those columns out
        assert not {"margin_usd", "markup_pct", "base_cost_usd", "rounding_uplift_usd"} & set(frame.value.columns)
        if "user" in frame.value.columns:
            assert set(frame.value["user"]) <= {pm.email}
    assert "Margin" not in labels


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
    want = q.breakdown("user", SpendFilter.dates(since, until, users=tuple(members))).frame
    got = users_table(at)
    assert list(got["user"]) == list(want["user"]) and set(got["user"]) <= set(members)
    assert list(got["credits"]) == list(want["credits"])

    at = open_page("spend", timeout=120, acting_as=finance.email)
    assert any(h.value == "Spend by team" for h in at.subheader)
    by_team = next(d.value for d in at.dataframe if "team" in d.value.columns)
    want_teams = q.breakdown("team", SpendFilter.dates(since, until)).frame
    assert dict(zip(by_team["team"], by_team["credits"], strict=True)) == dict(
        zip(want_teams["team"], want_teams["credits"], strict=True)
    )
    outsider = next(u for u in q.breakdown("user", SpendFilter.dates(since, until)).frame["user"] if u not in members)
    at.selectbox(key="drill_user").set_value(outsider).run()
    assert any(outsider in shown(md.value) for md in at.markdown)
    at.selectbox(key="team").set_value("research").run()  # a drill-down outside the team is dropped, not an error
    assert not at.exception, at.exception
    assert set(users_table(at)["user"]) <= set(members)
    assert not any(outsider.replace(".", "\\.") in md.value for md in at.markdown)


MONEY = re.compile(r"^-?(\$[\d,]+\.\d\d|<\$0\.01)$")


def test_figures_are_money_notes_have_no_arrows_and_tables_say_what_they_hold(app: AppTest) -> None:
    for m in app.metric:
        if m.label.startswith(("Spend in ", "Forecast", "Margin")):
            assert MONEY.match(m.value), (m.label, m.value)
        assert m.proto.direction == m.proto.NONE, m.label  # a note such as "12,345 credits" is not a change
    spend = next(m for m in app.metric if m.label.startswith("Spend in "))
    assert re.fullmatch(r"[\d,]+ credits?", spend.proto.delta)
    users = next(d for d in app.dataframe if "user_id" in d.value.columns)
    config = json.loads(users.proto.columns)
    assert config["markup_pct"]["label"] == "effective markup %"
    assert "Ledger" in config["markup_pct"]["help"] and "whole credits" in config["markup_pct"]["help"]
    # a cache hit is no provider cost: the columns say so, and where its catalog cost went
    assert "response cache reached no provider" in config["base_cost_usd"]["help"]
    saving = next(
        c["cache_saving_usd"] for d in app.dataframe if "cache_saving_usd" in (c := json.loads(d.proto.columns))
    )
    assert "would have cost at catalog price" in saving["help"]  # the table by model shows it
    assert config["revenue_usd"]["type_config"] == {"type": "number", "format": "dollar"}
    for d in app.dataframe:  # no None or NaN in what a table shows (a blank reads as an em dash)
        shown = list(d.proto.column_order) or list(d.value.columns)
        assert not d.value[shown].isna().any().any(), shown
    labels = [b.label for b in app.get("download_button")]
    assert labels and set(labels) == {"Download CSV", "Download Parquet"}


def test_presets_and_grouping_change_the_period_and_the_partial_bucket(app: AppTest) -> None:
    assert any("The last bar (today) is partial" in c.value for c in app.caption)  # 30 days up to today
    app.sidebar.segmented_control(key="grain").set_value("week").run()
    assert not app.exception, app.exception
    assert any("The last bar (this week) is partial" in c.value for c in app.caption)
    app.sidebar.selectbox(key="preset").set_value("last month").run()
    assert not app.exception, app.exception
    assert not any("is partial" in c.value for c in app.caption)  # last month is complete
    assert any(re.match(r"\w{3} 01 \w{3} \d{4} – \w{3} \d\d \w{3} \d{4}$", c.value) for c in app.sidebar.caption)
    app.sidebar.selectbox(key="preset").set_value("custom").run()
    assert not app.exception, app.exception
    assert app.sidebar.date_input(key="days")


def test_an_anomalys_day_reads_as_a_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = demo_runtime(tmp_path, rows=1500, days=40, seed=3)
    billing = BillingService(rt.session_factory, rt.settings)
    with rt.session() as s:
        someone = s.scalars(select(User.email).where(User.role == "pm").order_by(User.id)).first()
    billing.grant(someone, 20_000)
    billing.charge(
        someone, Decimal("400"), markup_pct=0, idempotency_key="spike", description="uptime", kind="endpoint_uptime"
    )
    rt.dispose()
    monkeypatch.setenv("DATABASE_URL", rt.settings.database_url)
    monkeypatch.setenv("ANALYTICS_PATH", str(tmp_path / "analytics.duckdb"))
    at = open_page("spend", timeout=120)
    anomalies = next(d.value for d in at.dataframe if "dimension" in d.value.columns)
    assert someone in set(anomalies["entity"])
    assert dates_drawn_as_text(at) == []  # drawn as text, a day read 1796256000000


def test_every_download_is_labelled_and_a_weekly_one_says_which_days_each_week_counts(
    demo: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CSVs carry every column of their table with the on-screen kind of label (no internal `key`, no bare
    `user_id`), and a per-week table says the days each row counts: the first week the period starts inside of counts
    only from the period's first day, as the chart's caption says."""
    import io

    import pandas as pd

    import pages.tables
    from pages.tables import csv_bytes

    written: dict[str, pd.DataFrame] = {}

    def capture(name: str, frame: pd.DataFrame, spec: dict, *, parquet: bool = True) -> None:
        written[name] = pd.read_csv(io.BytesIO(csv_bytes(frame, spec)))

    monkeypatch.setattr(pages.tables, "downloads", capture)
    url, analytics = demo
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANALYTICS_PATH", str(analytics))
    at = AppTest.from_file(str(ROOT / "pages" / "spend.py"), default_timeout=120)
    at.run()
    at.sidebar.segmented_control(key="grain").set_value("week").run()
    at.selectbox(key="drill_user").set_value(at.selectbox(key="drill_user").options[1]).run()
    assert not at.exception, at.exception
    assert {"week_by_provider", "week_totals", "top_users", "user_week", "transactions"} <= set(written), written
    for name, csv in written.items():
        raw = [c for c in csv.columns if re.fullmatch(r"[a-z]+(_[a-z]+)+|key", c)]
        assert not raw, (name, raw)  # every header a label, as on screen
    weekly = written["week_by_provider"]
    since = min(pd.to_datetime(weekly["counted from"])).date()
    first_monday = min(pd.to_datetime(weekly["period from"])).date()
    assert first_monday.weekday() == 0 and first_monday <= since
    first = weekly[pd.to_datetime(weekly["period from"]).dt.date == first_monday]
    assert set(pd.to_datetime(first["counted from"]).dt.date) == {since}
    assert (pd.to_datetime(weekly["counted to"]) >= pd.to_datetime(weekly["counted from"])).all()
    assert "time (UTC)" in written["transactions"].columns
