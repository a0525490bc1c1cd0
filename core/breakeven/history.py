"""The simulator's only database reads: the hardware catalog, and a model's recorded traffic in `ai_usage_log`.

Traffic is counted per minute (or per hour) in SQL, so only the buckets travel, never the rows. Every provider's rows
for the model id count (its serverless and dedicated traffic alike); cache hits do not, since they never reach a GPU.
Times are UTC, as stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.breakeven.defaults import RequestSize
from core.breakeven.errors import EmptyHistoryError, InvalidRateError
from core.breakeven.scenario import Gpu
from core.catalog.hardware_names import hardware_choices, match_hardware
from core.catalog.lookup import UnknownHardwareError, UnknownModelError, list_hardware
from core.db.models import AIModel, AIUsageLog

RESOLUTIONS = {"minute": 1, "hour": 60}
MAX_DAYS = 366


@dataclass(frozen=True, eq=False)
class HistoryCounts:
    model_id: str
    counts: np.ndarray  # requests per bucket, from `start`
    bucket_minutes: int
    start: datetime  # naive UTC
    end: datetime  # exclusive

    @property
    def requests(self) -> int:
        return int(self.counts.sum())


def default_range(now: datetime | None = None, days: int = 30) -> tuple[date, date]:
    """The last `days` days, today (UTC) included."""
    today = (now or datetime.now(UTC)).date()
    return today - timedelta(days=days - 1), today


def _model_pks(session: Session, model_id: str) -> list[int]:
    pks = list(session.scalars(select(AIModel.id).where(AIModel.model_id == model_id)))
    if not pks:
        raise UnknownModelError(
            f"Unknown model {model_id!r}: it is not in the catalog. `python -m core models list` shows the choices."
        )
    return pks


def _bucket(session: Session, resolution: str):
    """The UTC minute or hour of `created_at` as text, on SQLite and PostgreSQL alike."""
    if session.get_bind().dialect.name == "sqlite":
        return func.substr(AIUsageLog.created_at, 1, 16 if resolution == "minute" else 13)
    unit, fmt = ("minute", "YYYY-MM-DD HH24:MI") if resolution == "minute" else ("hour", "YYYY-MM-DD HH24")
    return func.to_char(func.date_trunc(unit, AIUsageLog.created_at), fmt)


def load_history(
    session: Session,
    model_id: str,
    since: date,
    until: date,
    *,
    resolution: str = "minute",
    now: datetime | None = None,
) -> HistoryCounts:
    """Requests per minute (or hour) for `model_id` from `since` 00:00 to the end of `until` (UTC), cut at now."""
    if resolution not in RESOLUTIONS:
        raise InvalidRateError(f"Resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}.")
    if until < since:
        raise InvalidRateError(f"The range ends ({until}) before it starts ({since}); swap the dates.")
    if (until - since).days + 1 > MAX_DAYS:
        raise InvalidRateError(f"The range covers {(until - since).days + 1} days; the limit is {MAX_DAYS}.")
    step = RESOLUTIONS[resolution]
    start = datetime.combine(since, time())
    end = datetime.combine(until + timedelta(days=1), time())
    now_naive = (now or datetime.now(UTC)).replace(tzinfo=None)
    current = now_naive.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if resolution == "hour":
        current = now_naive.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    end = min(end, current)  # the future has no traffic yet; counting it as idle would flatter scale-to-zero
    if end <= start:
        raise EmptyHistoryError(f"The range starting {since} is in the future: choose dates up to today.")
    pks = _model_pks(session, model_id)
    bucket = _bucket(session, resolution).label("bucket")
    rows = session.execute(
        select(bucket, func.sum(AIUsageLog.requests_count))
        .where(
            AIUsageLog.ai_model_id.in_(pks),
            AIUsageLog.created_at >= start,
            AIUsageLog.created_at < end,
            AIUsageLog.cache_hit.is_(False),
        )
        .group_by(bucket)
    ).all()
    n = int((end - start).total_seconds() // 60 // step)
    counts = np.zeros(n, dtype=np.int64)
    if rows:
        text = [r[0] if resolution == "minute" else f"{r[0]}:00" for r in rows]
        at = np.array([t.replace(" ", "T") for t in text], dtype="datetime64[m]")
        idx = ((at - np.datetime64(start, "m")) // np.timedelta64(step, "m")).astype(np.int64)
        keep = (idx >= 0) & (idx < n)
        np.add.at(counts, idx[keep], np.array([int(r[1] or 0) for r in rows], dtype=np.int64)[keep])
    if counts.sum() == 0:
        raise EmptyHistoryError(
            f"{model_id} has no recorded requests between {since} and {until} (UTC): widen the range, pick a model "
            "with traffic, or use a synthetic profile."
        )
    return HistoryCounts(model_id=model_id, counts=counts, bucket_minutes=step, start=start, end=end)


def observed_request_size(session: Session, model_id: str, since: date, until: date) -> RequestSize | None:
    """The average successful request of `model_id` in the range (tokens, characters, seconds), or None if none."""
    start = datetime.combine(since, time())
    end = datetime.combine(until + timedelta(days=1), time())
    row = session.execute(
        select(
            func.count(),
            func.avg(AIUsageLog.input_tokens),
            func.avg(AIUsageLog.output_tokens),
            func.avg(AIUsageLog.characters),
            func.avg(AIUsageLog.duration_seconds),
        ).where(
            AIUsageLog.ai_model_id.in_(_model_pks(session, model_id)),
            AIUsageLog.created_at >= start,
            AIUsageLog.created_at < end,
            AIUsageLog.status == "success",
            AIUsageLog.cache_hit.is_(False),
        )
    ).one()
    if not row[0]:
        return None
    return RequestSize(
        input_tokens=round(float(row[1] or 0)),
        output_tokens=round(float(row[2] or 0)),
        characters=round(float(row[3] or 0)),
        seconds=round(float(row[4] or 0), 3),
    )


def throughput_by_gpu(session: Session, given: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Throughput a person entered per GPU, keyed by the catalog's id whether they named the GPU by its id (T4) or by
    Hugging Face's instance type (nvidia-t4); an unknown name is refused with the choices."""
    catalog = list_hardware(session)
    out: dict[str, float] = {}
    for name, rate in given:
        hw = match_hardware(name, catalog)
        if hw is None:
            raise UnknownHardwareError(f"Unknown hardware {name!r}; choose from: {hardware_choices(catalog)}.")
        out[hw.id] = rate
    return out


def catalog_gpus(
    session: Session, throughput_per_hour: dict[str, float], *, list_price: bool = False
) -> tuple[Gpu, ...]:
    """Every GPU in the hardware catalog, priced at the product's hourly rate (or Hugging Face's list price)."""
    gpus = []
    for hw in list_hardware(session):
        hourly = hw.list_hourly_usd if list_price and hw.list_hourly_usd is not None else hw.hourly_usd
        gpus.append(
            Gpu(
                id=hw.id,
                hourly_usd=hourly,
                memory_gb=float(hw.gpu_memory_gb),
                throughput_per_hour=throughput_per_hour.get(hw.id),
            )
        )
    return tuple(gpus)
