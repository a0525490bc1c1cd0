"""The simulator's only database reads: the hardware catalog, and a model's recorded traffic in `ai_usage_log`.

Traffic is counted per minute (or per hour) in SQL, so only the buckets travel, never the rows. Every provider's rows
for the model id count (its serverless and dedicated traffic alike); cache hits do not, since they never reach a GPU.
Times are stored as naive UTC, but a range is days in the reporting time zone, the same days Spend counts (the service
turns them into UTC instants with `core.services.times.day_bounds`): the buckets start at the first day's local
midnight, so "the requests of model X on 2026-12-01" are the same here as on the Spend page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import BigInteger, cast, extract, func, select
from sqlalchemy.orm import Session

from core.breakeven.defaults import RequestSize
from core.breakeven.errors import EmptyHistoryError, InvalidRateError
from core.breakeven.scenario import Gpu
from core.catalog.hardware_names import hardware_choices, match_hardware
from core.catalog.lookup import UnknownHardwareError, UnknownModelError, list_hardware
from core.db.models import AIModel, AIUsageLog

RESOLUTIONS = {"minute": 1, "hour": 60}
MAX_DAYS = 366
EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, kw_only=True)
class HistoryDays:
    """Days `since`..`until` (both included) in time zone `tz`, and the UTC instants [start, end) they cover."""

    since: date
    until: date
    tz: str
    start: datetime  # naive UTC: the local midnight that starts `since`
    end: datetime  # naive UTC: the local midnight after `until`

    def describe(self) -> str:
        return f"between {self.since} and {self.until} ({self.tz})"


@dataclass(frozen=True, eq=False)
class HistoryCounts:
    model_id: str
    counts: np.ndarray  # requests per bucket, from `start`
    bucket_minutes: int
    start: datetime  # naive UTC: the first day's local midnight
    end: datetime  # exclusive
    days: HistoryDays

    @property
    def requests(self) -> int:
        return int(self.counts.sum())


def default_range(today: date, days: int = 30) -> tuple[date, date]:
    """The last `days` days, `today` (the reporting time zone's) included."""
    return today - timedelta(days=days - 1), today


def check_range(since: date, until: date) -> None:
    """Refuse a range that ends before it starts, or is longer than MAX_DAYS, before anything is computed from it."""
    if until < since:
        raise InvalidRateError(f"The range ends ({until}) before it starts ({since}); swap the dates.")
    if (until - since).days + 1 > MAX_DAYS:
        raise InvalidRateError(f"The range covers {(until - since).days + 1} days; the limit is {MAX_DAYS}.")
    if until >= date.max - timedelta(days=1):
        raise EmptyHistoryError(f"The range ending {until} is in the future: choose dates up to today.")


def _model_pks(session: Session, model_id: str) -> list[int]:
    pks = list(session.scalars(select(AIModel.id).where(AIModel.model_id == model_id)))
    if not pks:
        raise UnknownModelError(
            f"Unknown model {model_id!r}: it is not in the catalog. `python -m core models list` shows the choices."
        )
    return pks


def _seconds(session: Session):
    """`created_at` as whole seconds since 1970 (naive UTC), on SQLite and PostgreSQL alike."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", AIUsageLog.created_at), BigInteger)
    return cast(func.floor(extract("epoch", AIUsageLog.created_at)), BigInteger)


def _epoch_seconds(at: datetime) -> int:
    return int((at - EPOCH).total_seconds())


def load_history(
    session: Session,
    model_id: str,
    days: HistoryDays,
    *,
    resolution: str = "minute",
    now: datetime | None = None,
) -> HistoryCounts:
    """Requests per minute (or hour) for `model_id` over `days`, cut at now. Buckets count from the first day's local
    midnight, so each local day is a whole number of them (hours too, in a zone half an hour off UTC)."""
    if resolution not in RESOLUTIONS:
        raise InvalidRateError(f"Resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}.")
    check_range(days.since, days.until)
    step = RESOLUTIONS[resolution]
    bucket = timedelta(minutes=step)
    start, end = days.start, days.end
    at = now or datetime.now(UTC)
    now_naive = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
    if now_naive < start:
        raise EmptyHistoryError(
            f"The range starting {days.since} ({days.tz}) is in the future: choose dates up to today."
        )
    # the bucket now falls in counts; the future has no traffic yet, and counting it as idle would flatter scale-to-zero
    end = min(end, start + ((now_naive - start) // bucket + 1) * bucket)
    pks = _model_pks(session, model_id)
    rows_in_range = (
        select(
            ((_seconds(session) - _epoch_seconds(start)) // (step * 60)).label("bucket"),
            AIUsageLog.requests_count.label("requests"),
        )
        .where(
            AIUsageLog.ai_model_id.in_(pks),
            AIUsageLog.created_at >= start,
            AIUsageLog.created_at < end,
            AIUsageLog.cache_hit.is_(False),
        )
        .subquery()
    )  # grouped outside: PostgreSQL would not match a GROUP BY expression whose bound parameters are new ones
    rows = session.execute(
        select(rows_in_range.c.bucket, func.sum(rows_in_range.c.requests)).group_by(rows_in_range.c.bucket)
    ).all()
    n = -(-(end - start) // bucket)  # a partial last bucket (a local day 23.5 hours long) still counts
    counts = np.zeros(n, dtype=np.int64)
    if rows:
        idx = np.array([int(r[0]) for r in rows], dtype=np.int64)
        keep = (idx >= 0) & (idx < n)
        np.add.at(counts, idx[keep], np.array([int(r[1] or 0) for r in rows], dtype=np.int64)[keep])
    if counts.sum() == 0:
        raise EmptyHistoryError(
            f"{model_id} has no recorded requests {days.describe()}: widen the range, pick a model with traffic, or "
            "use a synthetic profile."
        )
    return HistoryCounts(model_id=model_id, counts=counts, bucket_minutes=step, start=start, end=end, days=days)


def observed_request_size(session: Session, model_id: str, start: datetime, end: datetime) -> RequestSize | None:
    """The average successful request of `model_id` in [start, end) (naive UTC), or None if there is none."""
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
