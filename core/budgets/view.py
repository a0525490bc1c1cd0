"""What the Budgets & alerts page shows, in one call: the budgets with where each stands, a burn-down per budget
(spend to date, the forecast to the period's end with its band, the limit), the alert history, the banners of the
person looking, and for finance the webhooks and their delivery log.

This is the page-shaped function the services layer will take over (core/services/budgets.py): it checks no access
itself. The caller says whose view it is: `only_user` narrows everything to one person (their own budgets, their
team's, the teams they own; alerts about them or their team) and leaves out webhooks and deliveries, which are
finance's.

The burn-down counts spend by the budgets' own rules (core/billing/budget_sql.py) per local day, and forecasts the
rest of the period with the Spend analytics' model (trend plus day-of-week effects over the last 56 complete days).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from core.alerts.records import AlertLog, AlertView, DeliveryView
from core.alerts.webhooks import WebhookRegistry, WebhookView
from core.analytics.forecast import WINDOW_DAYS, forecast_month
from core.billing.budget_periods import FOREVER
from core.billing.budget_sql import BudgetSQL
from core.billing.ledger_sql import read_transaction
from core.budgets.budgets import BudgetBook, BudgetView
from core.budgets.teams import TeamDirectory, TeamView
from core.config import Settings
from core.db.models import utcnow

ONE_OFF_HORIZON_DAYS = 30  # how far a one-off budget's forecast looks ahead
ONE_OFF_HISTORY_DAYS = 90  # how much of a one-off budget's past the chart shows


@dataclass(frozen=True, kw_only=True)
class BurnDown:
    """One budget's chart: `daily` has a row per local day of the period (for a one-off budget, its last 90 days
    and the next 30): day, spent (that day), cumulative (to date; None in the future), forecast (cumulative
    forecast from today on; None before), low and high (the forecast's 90% band), limit."""

    budget_id: int
    daily: pd.DataFrame
    spent_to_date: int
    forecast_total: float  # spend forecast by the end of the period (or of the horizon for a one-off budget)
    forecast_low: float
    forecast_high: float
    over_on: date | None  # the local day the forecast passes the limit, if it does before the end
    method: str


@dataclass(frozen=True, kw_only=True)
class BudgetsPage:
    budgets: list[BudgetView]
    burn_downs: dict[int, BurnDown]
    alerts: list[AlertView]  # newest first
    banners: list[AlertView]  # the viewer's active ones
    teams: list[TeamView]
    webhooks: list[WebhookView]  # finance's view only
    deliveries: list[DeliveryView]  # finance's view only
    email_configured: bool
    tz: str
    as_of: datetime  # naive UTC


def budgets_page(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    viewer_id: int | None = None,
    only_user: int | None = None,
    alert_limit: int = 200,
    now: datetime | None = None,
) -> BudgetsPage:
    """Everything the Budgets & alerts page draws. `viewer_id`: whose banners; `only_user`: a person's own view."""
    now = now or utcnow()
    book = BudgetBook(session_factory, settings)
    teams = TeamDirectory(session_factory)
    log = AlertLog(session_factory, settings)
    if only_user is None:
        shown = book.list_budgets()
        alerts = log.list_alerts(limit=alert_limit)
        team_list = teams.list_teams()
    else:
        own = {b.id: b for b in book.list_budgets(covering_user=only_user)}
        for team in teams.owned_by(only_user):
            own.update({b.id: b for b in book.list_budgets(team=team.id)})
        shown = sorted(own.values(), key=lambda b: b.id)
        mine = teams.team_of(only_user)
        alerts = log.list_alerts(user_id=only_user, team_id=mine.id if mine else None, limit=alert_limit)
        team_list = [t for t in teams.list_teams() if (mine and t.id == mine.id) or t.owner_id == only_user]
    return BudgetsPage(
        budgets=shown,
        burn_downs={b.id: burn_down(session_factory, settings, b, now) for b in shown},
        alerts=alerts,
        banners=log.banners(viewer_id, now) if viewer_id is not None else [],
        teams=team_list,
        webhooks=WebhookRegistry(session_factory).list_webhooks() if only_user is None else [],
        deliveries=log.deliveries() if only_user is None else [],
        email_configured=settings.smtp_url is not None,
        tz=settings.reporting_tz,
        as_of=now,
    )


def burn_down(session_factory: sessionmaker[Session], settings: Settings, b: BudgetView, now: datetime) -> BurnDown:
    """A budget's burn-down: actual spend per local day to date, and the forecast to the period's end."""
    tz = settings.tz
    engine = session_factory.kw["bind"]
    sql = BudgetSQL(engine.dialect.name)
    one_off = b.period_end >= FOREVER
    first = b.period_start if not one_off else max(b.period_start, now - timedelta(days=ONE_OFF_HISTORY_DAYS))
    since = min(first, now - timedelta(days=WINDOW_DAYS + 1))
    scope_id = {"user": b.user_id, "team": b.team_id, "api_key": b.api_key_id}[b.scope]
    with read_transaction(engine) as conn:
        rows = sql.series(conn, b.scope, scope_id, since, now + timedelta(microseconds=1))  # up to now, included
    per_day: dict[date, int] = defaultdict(int)
    for _uid, quarter, credits in rows:
        per_day[quarter.replace(tzinfo=UTC).astimezone(tz).date()] += credits
    local_now = now.replace(tzinfo=UTC).astimezone(tz)
    today = local_now.date()
    start_day = first.replace(tzinfo=UTC).astimezone(tz).date()
    last_day = (
        today + timedelta(days=ONE_OFF_HORIZON_DAYS)
        if one_off
        else (b.period_end - timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(tz).date()
    )
    elapsed = (local_now - local_now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds() / 86_400
    fc = forecast_month(
        pd.Series({d: float(v) for d, v in per_day.items()} or {today: 0.0}),
        today=today,
        today_fraction=elapsed,
        month_end=last_day,
        month_start=start_day,
    )
    predicted = {
        r["day"]: (r["predicted"], r["low"], r["high"]) for r in fc.daily.to_dict("records") if r["day"] >= today
    }
    spent_before_today = b.spent - per_day.get(today, 0)
    out = []
    cumulative = 0
    forecast = float(spent_before_today)
    variance = 0.0  # of the cumulative forecast: the days' own variances summed (their 90% half-widths, squared)
    over_on = None
    day = start_day
    while day <= last_day:
        spent = per_day.get(day, 0) if day <= today else None
        row: dict[str, object] = {"day": day, "spent": spent, "limit": b.credits}
        if day <= today:
            cumulative += spent or 0
            row["cumulative"] = cumulative
        else:
            row["cumulative"] = None
        if day >= today and day in predicted:
            p, low, high = predicted[day]
            forecast += float(p)
            variance += ((float(high) - float(low)) / 2) ** 2
            band = variance**0.5
            row |= {"forecast": forecast, "low": max(forecast - band, float(b.spent)), "high": forecast + band}
            if over_on is None and forecast > b.credits:
                over_on = day
        else:
            row |= {"forecast": None, "low": None, "high": None}
        out.append(row)
        day += timedelta(days=1)
    daily = pd.DataFrame(out, columns=["day", "spent", "cumulative", "forecast", "low", "high", "limit"])
    total = float(daily["forecast"].dropna().iloc[-1]) if daily["forecast"].notna().any() else float(b.spent)
    return BurnDown(
        budget_id=b.id,
        daily=daily,
        spent_to_date=b.spent,
        forecast_total=total,
        forecast_low=float(daily["low"].dropna().iloc[-1]) if daily["low"].notna().any() else total,
        forecast_high=float(daily["high"].dropna().iloc[-1]) if daily["high"].notna().any() else total,
        over_on=over_on,
        method=fc.method,
    )
