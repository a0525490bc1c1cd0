"""What the page draws: month-to-date per endpoint, the state timeline, deleted endpoints, the break-even link."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from core.db import Database
from core.endpoints import EndpointView, ManualClock
from core.endpoints.costs import EndpointCost, month_start_utc
from core.money import dollars
from core.services.endpoints import EndpointRow, EndpointsOverview, endpoints_overview
from tests.core.endpoints.helpers import add_engineer, build

UTC = ZoneInfo("UTC")


def test_month_boundary_in_the_reporting_time_zone() -> None:
    assert month_start_utc(datetime(2026, 12, 15, 12), UTC) == datetime(2026, 12, 1)
    # Paris is UTC+1 in winter: its December starts at 23:00 UTC on November 30
    assert month_start_utc(datetime(2026, 12, 15, 12), ZoneInfo("Europe/Paris")) == datetime(2026, 11, 30, 23)
    assert month_start_utc(datetime(2026, 11, 30, 23, 30), ZoneInfo("Europe/Paris")) == datetime(2026, 11, 30, 23)


def test_overview_prices_the_month_and_draws_the_timeline(runtime: Database, tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 30, 23, 0))  # running across the month boundary
    add_engineer(runtime)
    service, _ = build(runtime, tmp_path, clock)
    service.create_endpoint("audio", "facebook/mms-tts-eng", "T4", True, 1, 1, None, "eng@example.com")
    service.create_endpoint("gone", "facebook/mms-tts-eng", "L4", True, 1, 1, None, "eng@example.com")
    service.wait_until("audio", "running", poll_seconds=60)
    clock.set(datetime(2026, 12, 1, 1, 0))
    service.delete("gone")
    clock.set(datetime(2026, 12, 1, 2, 30))
    service.pause("audio")
    clock.set(datetime(2026, 12, 1, 3, 0))

    ov = endpoints_overview(service, tz=UTC)
    assert ov.month_start == datetime(2026, 12, 1)
    assert [r.endpoint.name for r in ov.rows] == ["audio"]
    assert [r.endpoint.name for r in ov.deleted_rows] == ["gone"]
    audio = ov.rows[0]
    # December only: 00:00-02:30 running on a T4 = 150 minutes x $0.01
    assert audio.month_to_date_usd == Decimal("1.5")
    assert ov.deleted_rows[0].month_to_date_usd == Decimal("0.8")  # L4 00:00-01:00
    assert ov.month_total_usd == Decimal("2.3") and ov.cost_per_hour_now_usd == 0
    assert audio.breakeven_link == (
        "/breakeven?model=facebook%2Fmms-tts-eng&profile=history&hardware=T4&min_replicas=1&max_replicas=1"
    )  # its own hardware and replicas; no idle timeout: it never scales to zero
    audio_segments = [(g.state, g.start, g.end) for g in ov.segments if g.endpoint == "audio"]
    assert audio_segments == [
        ("running", datetime(2026, 12, 1), datetime(2026, 12, 1, 2, 30)),  # carried in from November
        ("paused", datetime(2026, 12, 1, 2, 30), datetime(2026, 12, 1, 3)),
    ]
    assert [(g.state, g.end) for g in ov.segments if g.endpoint == "gone"] == [("running", datetime(2026, 12, 1, 1))]


def _row(name: str, metered: str, accrued: str = "0", *, deleted: bool = False) -> EndpointRow:
    at = datetime(2026, 12, 1)
    view = EndpointView(
        id=hash(name) % 1000, name=name, owner_id=1, owner_email="eng@example.com", model_repo="acme/m",
        hardware_id="T4", instance_type="nvidia-t4", hourly_usd=Decimal("0.60"), min_replicas=0, max_replicas=1,
        scale_to_zero_minutes=15, state="paused", replicas=0, url=None, vendor="aws", region="us-east-1",
        created_at=at, deleted_at=at if deleted else None, observed_at=at, metered_until=None,
    )  # fmt: skip
    cost = EndpointCost(
        endpoint_id=view.id, name=name, metered_usd=Decimal(metered), metered_credits=1, metered_replica_minutes=1,
        accrued_usd=Decimal(accrued), accrued_replica_minutes=0, accrued_until=None,
    )  # fmt: skip
    return EndpointRow(endpoint=view, cost=cost)


def three_half_cents(deleted: str | None = None) -> EndpointsOverview:
    """Three endpoints of $0.005 each: printed as $0.01 each, their exact sum $0.015 printed $0.02."""
    rows = [_row(n, "0.005") for n in ("a", "b", "c")]
    gone = [_row("gone", deleted, deleted=True)] if deleted else []
    at = datetime(2026, 12, 2)
    return EndpointsOverview(
        as_of=at, month_start=datetime(2026, 12, 1), rows=rows, deleted_rows=gone, refresh_errors={}, segments=[]
    )


def test_the_shown_total_is_the_sum_of_the_shown_parts() -> None:
    ov = three_half_cents()
    assert [dollars(r.shown_month_to_date_usd) for r in ov.rows] == ["$0.01"] * 3
    assert dollars(ov.shown_month_total_usd) == "$0.03" and ov.month_total_usd == Decimal("0.015")
    # posted and not yet metered each as shown, and the total their sum, per endpoint and over all
    row = _row("x", "0.005", "0.005")
    assert (row.cost.shown_metered_usd, row.cost.shown_accrued_usd, row.shown_month_to_date_usd) == (
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("0.02"),
    )
    assert ov.shown_month_total_usd == ov.shown_month_metered_usd + ov.shown_month_accrued_usd
    # under half a cent is still not free: it stays as it is (`<$0.01`), and is counted in the total
    assert dollars(_row("y", "0.004").shown_month_to_date_usd) == "<$0.01"
