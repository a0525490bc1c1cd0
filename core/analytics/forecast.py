"""Month-end forecast: a linear trend plus day-of-week seasonality fitted to recent complete days, with a band.

Model, fitted by least squares on the last `window` complete days (zero-filled):
    y(d) = a + b * t(d) + s[weekday(d)]          (s[Monday] = 0; six weekday offsets)
The forecast of the month = actual month-to-date + the predicted rest of today (its unelapsed fraction) + the
predicted remaining days, each prediction floored at 0. The band is the ordinary-least-squares prediction interval of
that remaining sum: sigma^2 * (n + w' (X'X)^-1 w), w the sum of the remaining days' design rows weighted by the
fraction of each day still to come, at `BAND_Z` standard errors (90%), floored at the month-to-date actual.
With fewer than MIN_DAYS complete days the forecast is the mean day times the days left, with the band of a mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

WINDOW_DAYS = 56
MIN_DAYS = 14
BAND_Z = 1.645  # two-sided 90%


@dataclass(frozen=True, kw_only=True)
class SeriesForecast:
    actual_to_date: float
    forecast: float
    low: float
    high: float
    method: str
    daily: pd.DataFrame  # day, actual (NaN for the future), predicted, low, high (per-day band)


def _design(t: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    cols = [np.ones_like(t, dtype=float), t.astype(float)]
    cols += [(weekday == w).astype(float) for w in range(1, 7)]
    return np.column_stack(cols)


def forecast_month(
    daily: pd.Series,
    *,
    today: date,
    today_fraction: float,
    month_end: date,
    month_start: date,
    window: int = WINDOW_DAYS,
) -> SeriesForecast:
    """Forecast a month's total from `daily` (index: local dates, values: the day's total, today's partial).

    `today_fraction` is the share of today already elapsed (0..1); `month_end` is the month's last day.
    """
    if not 0 <= today_fraction <= 1:
        raise ValueError("today_fraction must be between 0 and 1")
    values = {pd.Timestamp(d).date(): float(v) for d, v in daily.items()}
    first_hist = today - timedelta(days=window)
    hist_days = [first_hist + timedelta(days=i) for i in range(window)]
    observed = [d for d in hist_days if d >= min(values, default=today)]
    y = np.array([values.get(d, 0.0) for d in observed])
    mtd = sum(v for d, v in values.items() if month_start <= d <= today)
    future = [today + timedelta(days=i) for i in range((month_end - today).days + 1)]
    weights = np.array([1.0 - today_fraction] + [1.0] * (len(future) - 1))
    origin = today - timedelta(days=window)

    def t_of(days: list[date]) -> np.ndarray:
        return np.array([(d - origin).days for d in days])

    def wd_of(days: list[date]) -> np.ndarray:
        return np.array([d.weekday() for d in days])

    if len(observed) >= MIN_DAYS:
        X = _design(t_of(observed), wd_of(observed))
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = y - X @ beta
        dof = max(len(y) - X.shape[1], 1)
        sigma = math.sqrt(float(resid @ resid) / dof)
        Xf = _design(t_of(future), wd_of(future))
        pred = np.maximum(Xf @ beta, 0.0)
        xtx_inv = np.linalg.pinv(X.T @ X)
        w = weights @ Xf
        var_sum = sigma**2 * (float(weights @ weights) + float(w @ xtx_inv @ w))
        per_day_se = sigma * np.sqrt(1.0 + np.einsum("ij,jk,ik->i", Xf, xtx_inv, Xf))
        method = f"trend + weekday seasonality, least squares on {len(observed)} complete days"
    else:
        mean = float(y.mean()) if len(y) else 0.0
        sd = float(y.std(ddof=1)) if len(y) > 1 else mean
        pred = np.full(len(future), mean)
        var_sum = sd**2 * float(weights @ weights) + (sd**2 / max(len(y), 1)) * float(weights.sum()) ** 2
        per_day_se = np.full(len(future), sd)
        method = f"mean of {len(observed)} complete days (too little history for a trend)"
    remaining = float(weights @ pred)
    half = BAND_Z * math.sqrt(max(var_sum, 0.0))
    total = mtd + remaining
    rows = [
        {"day": d, "actual": values.get(d, 0.0), "predicted": None, "low": None, "high": None}
        for d in sorted(set(values) | set(observed))
        if d < today
    ]
    for i, d in enumerate(future):
        actual = values.get(d, 0.0) if d == today else None
        p = float(pred[i]) * (weights[i] if d == today else 1.0) + (actual or 0.0)
        band = BAND_Z * float(per_day_se[i]) * weights[i]
        rows.append({"day": d, "actual": actual, "predicted": p, "low": max(p - band, actual or 0.0), "high": p + band})
    return SeriesForecast(
        actual_to_date=mtd,
        forecast=total,
        low=max(total - half, mtd),
        high=total + half,
        method=method,
        daily=pd.DataFrame(rows, columns=["day", "actual", "predicted", "low", "high"]),
    )
