"""What deserves an alert, and what it says: pure functions from facts (a budget's counter, a refusal, a balance and
its burn rate, a spend anomaly) to `NewAlert`s. Each alert's key names exactly what it is about, so it is recorded
once per budget, period and threshold; per user and funding (a top-up re-arms the low-balance alerts); per anomaly
day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.alerts.records import NewAlert
from core.billing.budget_periods import Window, period_label, resets_on
from core.billing.errors import BudgetExceededError
from core.money import credits_text


@dataclass(frozen=True, kw_only=True)
class CounterFacts:
    """A budget and its counter for the current period, as the hook and `alerts run` read them."""

    budget_id: int
    name: str
    scope: str  # user | team | api_key
    user_id: int | None
    team_id: int | None
    team_owner_id: int | None
    credits: int
    enforcement: str
    thresholds: tuple[int, ...]
    counter_id: int
    spent: int
    alerted_pct: int
    period_start: datetime
    period_end: datetime

    @property
    def concerns(self) -> int | None:
        """The person whose banner and email it is: the user, or the team's owner (members see team banners)."""
        return self.user_id if self.scope == "user" else self.team_owner_id

    def crossed(self) -> list[int]:
        """Thresholds reached by the spend and not alerted on yet this period, lowest first."""
        return [t for t in self.thresholds if t > self.alerted_pct and self.spent * 100 >= t * self.credits]


def _period(start: datetime) -> str:
    return start.strftime("%Y-%m-%dT%H:%M")


def _when(window: Window, tz: ZoneInfo) -> str:
    day = resets_on(window, tz)
    return f"it resets on {day:%Y-%m-%d}" if day else "it is a one-off budget"


def threshold_alerts(c: CounterFacts, tz: ZoneInfo) -> list[NewAlert]:
    """The alert of the highest threshold newly crossed. One spend (a large call, an endpoint's uptime, spend no
    settle saw until `alerts run`) can pass several at once: one alert then says so, rather than one per threshold
    whose figures contradict it ("has reached 50%: 22 of 20 credits spent"); the lower ones are marked alerted too."""
    crossed = c.crossed()
    if not crossed:
        return []
    t = crossed[-1]
    window = Window(c.period_start, c.period_end)
    label = f"{c.name}, {period_label(window, tz)}"
    spent = f"{c.spent:,} of {credits_text(c.credits)} spent"
    if t >= 100 and c.enforcement == "soft":
        passed = "reached" if c.spent == c.credits else "passed"
        what = f"has {passed} its limit (a soft budget: calls go on): {spent}"
    elif t >= 100:
        what = f"is used up: {spent}, further calls are refused"
    else:
        what = f"has reached {t}%: {spent}"
    if len(crossed) > 1:
        what += f" (passing {_listed([f'{x}%' for x in crossed])} at once)"
    return [
        NewAlert(
            key=f"threshold:budget={c.budget_id}:period={_period(c.period_start)}:pct={t}",
            kind="threshold",
            severity="critical" if t >= 100 else "warning" if t >= 80 else "info",
            message=f"Budget '{label}' {what}; {_when(window, tz)}.",
            user_id=c.concerns,
            team_id=c.team_id,
            budget_id=c.budget_id,
            threshold_pct=t,
            period_start=c.period_start,
            period_end=c.period_end,
            details={
                "budget": c.name,
                "scope": c.scope,
                "spent": c.spent,
                "limit": c.credits,
                "pct": t,
                "passed": crossed,
            },
        )
    ]


def _listed(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def hard_limit_alert(
    err: BudgetExceededError, *, user_id: int, concerns: int | None, team_id: int | None, user_email: str
) -> NewAlert:
    """A hard budget refused a call: once per budget and period."""
    return NewAlert(
        key=f"hard_limit:budget={err.budget_id}:period={_period(err.period_start)}",
        kind="hard_limit",
        severity="critical",
        message=f"A call by {user_email} was refused: {err}",
        user_id=concerns,
        team_id=team_id,
        budget_id=err.budget_id,
        period_start=err.period_start,
        period_end=err.period_end,
        details={
            "budget": err.budget,
            "limit": err.limit,
            "left": err.left,
            "needed": err.needed,
            "refused_user_id": user_id,
        },
    )


def low_balance_alert(*, user_id: int, email: str, balance: int, mark: int, armed_by: int) -> NewAlert:
    """The balance fell under LOW_BALANCE_CREDITS; `armed_by` is the user's latest credit in (a top-up re-arms)."""
    return NewAlert(
        key=f"low_balance:credits:user={user_id}:since={armed_by}",
        kind="low_balance",
        severity="warning",
        message=(
            f"{email} has {credits_text(balance)} left, under the low-balance mark of {mark:,}; "
            "ask finance for a top-up."
        ),
        user_id=user_id,
        details={"balance": balance, "mark": mark, "reason": "credits"},
    )


def runway_alert(
    *, user_id: int, email: str, available: int, burn_per_day: float, days: Decimal, armed_by: int
) -> NewAlert:
    """At the forecast burn rate the available credits last less than LOW_BALANCE_DAYS."""
    runway = available / burn_per_day
    return NewAlert(
        key=f"low_balance:runway:user={user_id}:since={armed_by}",
        kind="low_balance",
        severity="warning",
        message=(
            f"{email} has about {runway:.1f} days of credits left ({available:,} available at the forecast burn of "
            f"{credits_text(round(burn_per_day))} a day), under the {days} days of runway the team wants; "
            "top up before they run out."
        ),
        user_id=user_id,
        # the banner shows while the balance is under what the wanted runway needs
        details={
            "available": available,
            "burn_per_day": round(burn_per_day, 2),
            "runway_days": round(runway, 2),
            "mark": int(burn_per_day * float(days)) + 1,
            "reason": "runway",
        },
    )


def anomaly_alert(
    *, dimension: str, entity: str, day: str, revenue_usd: Decimal, median_usd: Decimal, ratio: float | None
) -> NewAlert:
    """A day of spend far above a user's or a model's own baseline (core.analytics.anomalies): for finance."""
    times = f", {ratio:.1f}x the 28-day median of ${median_usd:,.2f}" if ratio else ""
    return NewAlert(
        key=f"anomaly:{dimension}={entity}:day={day}",
        kind="anomaly",
        severity="warning",
        message=f"Spend anomaly: {dimension} {entity} spent ${revenue_usd:,.2f} on {day}{times}.",
        details={"dimension": dimension, "entity": entity, "day": day, "revenue_usd": str(revenue_usd)},
    )
