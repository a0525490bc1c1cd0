"""`pages/tables.py`: what a table draws for missing values, and CSVs that say what the table says."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pandas as pd

from pages.tables import column_config, csv_bytes, displayable

SPEC = {
    "model": ("model", "text"),
    "revenue_usd": ("revenue", "money"),
    "markup_pct": ("effective markup %", "pct"),
    "credits": ("credits", "credits"),
}


def test_a_column_with_blanks_is_drawn_as_text_with_an_em_dash_not_none() -> None:
    frame = pd.DataFrame(
        {
            "model": ["gpt-4o", None],
            "revenue_usd": [2145.6, 1.0],
            "markup_pct": [825.0, None],
            "credits": [12345, 3],
        }
    )
    shown, kinds = displayable(frame, SPEC)
    assert list(shown["model"]) == ["gpt-4o", "—"]
    assert list(shown["markup_pct"]) == ["825.0%", "—"] and kinds["markup_pct"] == ("effective markup %", "text")
    assert kinds["revenue_usd"] == ("revenue", "money") and shown["revenue_usd"].dtype == float  # untouched
    assert frame["markup_pct"].isna().any()  # the caller's frame is not changed


def test_the_csv_has_the_tables_labels_exact_money_and_no_two_headers_alike() -> None:
    frame = pd.DataFrame(
        {
            "key": ["a"],
            "provider": ["openai"],
            "credits": [3],
            "revenue_usd": [Decimal("0.000000120")],
            "model_provider": ["openai"],
            "model": ["gpt-4o"],
        }
    )
    spec = {**SPEC, "provider": ("provider", "text"), "model_provider": ("provider", "text")}
    rows = list(csv.reader(io.StringIO(csv_bytes(frame, spec).decode())))
    header, row = rows[0], rows[1]
    assert header[:4] == ["model", "revenue", "credits", "provider"]  # the spec's columns first, labelled
    assert len(set(header)) == len(header)
    assert row[header.index("revenue")] == "0.000000120"  # never 1.20E-7


def test_ids_with_a_gap_are_written_whole() -> None:
    """pandas keeps ids with a blank as floats: a failed call's missing transaction made every id 188669.0."""
    frame = pd.DataFrame({"transaction": [188669.0, None], "share": [0.5, 1.0]})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame, {}).decode())))
    assert rows == [["transaction", "share"], ["188669", "0.5"], ["", "1.0"]]


def test_a_column_with_blanks_keeps_its_kinds_format_as_text() -> None:
    frame = pd.DataFrame(
        {
            "billed_hours": [None, 730.0, 730.08],
            "day": [date(2026, 12, 1), None, date(2026, 12, 3)],
        }
    )
    spec = {"billed_hours": ("billed hours", "hours"), "day": ("day", "date")}
    shown, _ = displayable(frame, spec)
    assert list(shown["billed_hours"]) == ["—", "730.0 h", "730.1 h"]  # one format down the column, not 730.08
    assert list(shown["day"]) == ["2026-12-01", "—", "2026-12-03"]


def test_a_day_is_drawn_as_a_date_not_as_text() -> None:
    config = column_config({"day": ("day", "date")})
    assert config["day"]["type_config"]["type"] == "date"  # a text column shows a date as epoch milliseconds


def test_a_stored_utc_time_is_shown_and_downloaded_in_the_reporting_zone_named() -> None:
    """23:30 in New York is 04:30 UTC the next day: the table and its CSV say the local day, and which zone."""
    from datetime import datetime

    from pages.tables import local_times

    frame = pd.DataFrame({"id": [1, 2], "at": [datetime(2026, 11, 10, 4, 30), None]})
    spec = {"id": ("id", "count"), "at": ("at", "instant")}
    shown, kinds = local_times(frame, spec, "America/New_York")
    assert kinds["at"] == ("at (America/New_York)", "datetime")
    assert shown["at"][0] == pd.Timestamp("2026-11-09 23:30") and pd.isna(shown["at"][1])
    assert frame["at"][0] == pd.Timestamp("2026-11-10 04:30")  # the caller's frame is not changed
    rows = list(csv.reader(io.StringIO(csv_bytes(frame, spec, "America/New_York").decode())))
    assert rows[0] == ["id", "at (America/New_York)"]
    assert rows[1][1].startswith("2026-11-09 23:30") and rows[2][1] == ""


def test_a_ratio_keeps_one_decimal_place_down_its_column() -> None:
    """The anomalies' "× baseline": 3.0 beside 20.9, not "3" (it was a text column)."""
    assert column_config({"ratio": ("× baseline", "ratio")})["ratio"]["type_config"]["format"] == "%.1f"
    shown, _ = displayable(pd.DataFrame({"ratio": [3.0, None, 20.94]}), {"ratio": ("× baseline", "ratio")})
    assert list(shown["ratio"]) == ["3.0", "—", "20.9"]
