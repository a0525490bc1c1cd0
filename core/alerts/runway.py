"""Burn rate: how many credits a day each user is forecast to spend, for the low-balance runway alert.

The spend is read from the ledger by the budgets' own rules (usage and endpoint-uptime debits, less refunds of them)
per UTC quarter hour, summed into days of the reporting time zone, and forecast with the Spend analytics' month-end
model (trend plus day-of-week effects over the last 56 complete days; the mean day with less history): the burn is
the mean predicted day of the next two weeks.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Connection

from core.analytics.forecast import WINDOW_DAYS, forecast_month
from core.billing.budget_sql import BudgetSQL

HORIZON_DAYS = 14


def daily_spend(rows: list[tuple[int, datetime, int]], tz: ZoneInfo) -> dict[int, dict[date, int]]:
    """(user, UTC quarter hour, credits) rows -> user -> local day -> credits."""
    out: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for uid, quarter, credits in rows:
        out[uid][quarter.replace(tzinfo=UTC).astimezone(tz).date()] += credits
    return out


def burn_per_day(days: dict[date, int], now: datetime, tz: ZoneInfo) -> float:
    """The mean credits a day forecast over the next HORIZON_DAYS (0 without any spend)."""
    if not any(days.values()):
        return 0.0
    local = now.replace(tzinfo=UTC).astimezone(tz)
    today = local.date()
    elapsed = (local - local.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds() / 86_400
    series = pd.Series({d: float(v) for d, v in days.items()})
    fc = forecast_month(
        series,
        today=today,
        today_fraction=elapsed,
        month_end=today + timedelta(days=HORIZON_DAYS),
        month_start=today,
    )
    future = fc.daily[fc.daily["day"] > today]["predicted"]
    return float(future.mean()) if len(future) else 0.0


def burn_rates(conn: Connection, sql: BudgetSQL, tz: ZoneInfo, now: datetime) -> dict[int, float]:
    """Every user with spend in the last WINDOW_DAYS days -> forecast credits a day."""
    rows = sql.series(conn, "all", None, now - timedelta(days=WINDOW_DAYS + 1), now)
    return {uid: burn_per_day(days, now, tz) for uid, days in daily_spend(rows, tz).items()}
