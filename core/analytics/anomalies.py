"""Spend anomalies: a day far above an entity's (a user's or a model's) own recent baseline, robustly.

For each entity and each day checked, the baseline is the `BASELINE_DAYS` days before it, from the entity's first day
with spend on (zero-filled: a day without spend counts as 0); a day with fewer than MIN_BASELINE_DAYS such days
before it is not checked. With m = their median and MAD = their median absolute deviation, the robust scale is
s = max(1.4826 * MAD, 10% of m, `min_scale`) (the floor keeps a flat or mostly-idle baseline from making any spend an
anomaly). A day is an anomaly when its value is at least `threshold` scales above m, at least twice m, and at least
`min_excess` above m. Its size is the excess over the median; its score is that excess in scales.
Medians and MADs ignore a single past spike, so one anomaly does not hide the next.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BASELINE_DAYS = 28
MIN_BASELINE_DAYS = 7
THRESHOLD = 6.0


def find_anomalies(
    daily: pd.DataFrame,
    *,
    first_day: object,
    last_day: object,
    threshold: float = THRESHOLD,
    min_excess: float = 0.0,
    min_scale: float = 1.0,
    baseline_days: int = BASELINE_DAYS,
) -> pd.DataFrame:
    """`daily` has columns entity, day, value (one row per entity and day with spend). Days between `first_day` and
    `last_day` (included) are checked. Returns entity, day, value, baseline_median, baseline_mad, excess, ratio,
    score, sorted by excess descending."""
    columns = ["entity", "day", "value", "baseline_median", "baseline_mad", "excess", "ratio", "score"]
    if daily.empty:
        return pd.DataFrame(columns=columns)
    first = pd.Timestamp(first_day)
    last = pd.Timestamp(last_day)
    start = min(pd.Timestamp(daily["day"].min()), first - pd.Timedelta(days=baseline_days))
    days = pd.date_range(start, last, freq="D")
    frame = daily.assign(day=pd.to_datetime(daily["day"]))
    mat = frame.pivot_table(index="entity", columns="day", values="value", aggfunc="sum", fill_value=0.0)
    mat = mat.reindex(columns=days, fill_value=0.0)
    values = mat.to_numpy(dtype=float)
    n_days = len(days)
    if n_days <= MIN_BASELINE_DAYS:
        return pd.DataFrame(columns=columns)
    # windows[:, j] are the baseline_days values before day j + baseline_days (zero-padded at the start)
    # before an entity's first spend there is no baseline (a new user is not an anomaly): NaN, not 0
    history = values.copy()
    first_active = np.where((values != 0).any(axis=1), (values != 0).argmax(axis=1), n_days)
    history[np.arange(n_days)[None, :] < first_active[:, None]] = np.nan
    padded = np.concatenate([np.full((values.shape[0], baseline_days), np.nan), history], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(padded[:, :-1], baseline_days, axis=1)
    # A window with no history at all (before the entity's first spend) has no median: NaN, computed on a stand-in
    # window of zeros so that numpy does not warn (warnings.catch_warnings is not thread-safe, and pages run in threads)
    n_base = np.sum(~np.isnan(windows), axis=2)
    empty = n_base == 0
    windows = np.where(empty[..., None], 0.0, windows)
    med = np.nanmedian(windows, axis=2)
    mad = np.nanmedian(np.abs(windows - med[..., None]), axis=2)
    med[empty] = np.nan
    mad[empty] = np.nan
    scale = np.maximum.reduce([1.4826 * np.nan_to_num(mad), 0.1 * np.nan_to_num(med), np.full_like(med, min_scale)])
    excess = values - np.nan_to_num(med)
    check = (days >= first) & (days <= last)
    flagged = (
        check[None, :]
        & (n_base >= MIN_BASELINE_DAYS)
        & (excess >= threshold * scale)
        & (values >= 2 * np.nan_to_num(med))
        & (excess >= min_excess)
        & (excess > 0)
    )
    ei, di = np.nonzero(flagged)
    if ei.size == 0:
        return pd.DataFrame(columns=columns)
    m = med[ei, di]
    out = pd.DataFrame(
        {
            "entity": mat.index.to_numpy()[ei],
            "day": [d.date() for d in days[di]],
            "value": values[ei, di],
            "baseline_median": m,
            "baseline_mad": mad[ei, di],
            "excess": excess[ei, di],
            "ratio": np.where(m > 0, values[ei, di] / np.where(m > 0, m, 1), np.nan),
            "score": excess[ei, di] / scale[ei, di],
        }
    )
    return out.sort_values(["excess", "day"], ascending=[False, True], ignore_index=True)
