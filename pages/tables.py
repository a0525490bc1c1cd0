"""Every `st.dataframe` goes through `table()`: one column spec (label and kind) gives the on-screen format and the
CSV headers, so a table and its download say the same thing. Kinds are those of `pages.fmt.COLUMN_FORMATS`, and
"instant": a time as stored (naive UTC), drawn and downloaded in the reporting time zone with the zone in its label
("at" becomes "at (America/New_York)"), so every page's times fall on the days Spend counts them in."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from core.services.spend import chart_frame, to_csv_bytes, to_parquet_bytes
from core.services.times import labelled, to_local_all
from pages import fmt
from pages.fmt import COLUMN_FORMATS

Spec = Mapping[str, tuple[str, str]]  # column -> (label, kind); kind "text" for anything not numeric


def column_config(spec: Spec, help: Mapping[str, str] | None = None) -> dict[str, object]:
    """Streamlit column configs for the columns in `spec`."""
    help = help or {}
    config: dict[str, object] = {}
    for column, (label, kind) in spec.items():
        if kind in COLUMN_FORMATS:
            config[column] = st.column_config.NumberColumn(label, format=COLUMN_FORMATS[kind], help=help.get(column))
        elif kind == "link":
            config[column] = st.column_config.LinkColumn(label, help=help.get(column))
        elif kind == "datetime":
            config[column] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm", help=help.get(column))
        elif kind == "date":  # a TextColumn would draw a date as its epoch milliseconds
            config[column] = st.column_config.DateColumn(label, format="YYYY-MM-DD", help=help.get(column))
        else:
            config[column] = st.column_config.TextColumn(label, help=help.get(column))
    return config


_TEXT_OF_KIND = {
    "money": fmt.money,
    "price": fmt.price,
    "credits": fmt.count,
    "count": fmt.count,
    "pct": fmt.pct,
    "seconds": lambda v: f"{float(v):.2f} s",  # type: ignore[arg-type]
    "ms": lambda v: f"{float(v):.0f} ms",  # type: ignore[arg-type]
    "hours": lambda v: f"{float(v):.1f} h",  # type: ignore[arg-type]
    "ratio": lambda v: f"{float(v):.1f}",  # type: ignore[arg-type]
    "datetime": lambda v: pd.Timestamp(v).strftime("%Y-%m-%d %H:%M"),  # type: ignore[arg-type]
    "date": lambda v: pd.Timestamp(v).strftime("%Y-%m-%d"),  # type: ignore[arg-type]
}  # how a present value of a column with blanks is written (blanks: fmt.MISSING)


def reporting_tz() -> str:
    """The reporting time zone (REPORTING_TZ) every page shows times and days in."""
    from pages.ui import services

    return services().settings.reporting_tz


def local_times(
    frame: pd.DataFrame, spec: Spec, tz: str | None = None
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """The frame with its "instant" columns (naive UTC) as wall-clock times in `tz` (default: the reporting time
    zone), and the spec with those columns labelled with the zone (kind "datetime"); the caller's frame is not
    changed."""
    instants = [c for c, (_, kind) in spec.items() if kind == "instant"]
    if not instants:
        return frame, dict(spec)
    zone = tz or reporting_tz()
    out = frame.copy()
    kinds = dict(spec)
    for column in instants:
        kinds[column] = (labelled(spec[column][0], zone), "datetime")
        if column in out.columns:
            local = pd.Series(to_local_all(out[column], zone), index=out.index, dtype=object)
            out[column] = pd.to_datetime(local)
    return out, kinds


def _missing(v: object) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def displayable(frame: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """The frame as drawn: Streamlit prints a missing cell as `None`, so a column of the spec with missing values
    becomes text (numbers formatted as `pages.fmt` does, blanks as an em dash); returns the spec those columns now
    have ("text")."""
    out = frame
    kinds = dict(spec)
    for column, (label, kind) in spec.items():
        if column not in frame.columns or kind == "link":
            continue
        values = frame[column]
        if not any(_missing(v) for v in values):
            continue
        if out is frame:
            out = frame.copy()
        show = _TEXT_OF_KIND.get(kind, str)
        out[column] = [fmt.MISSING if _missing(v) else show(v) for v in values]
        kinds[column] = (label, "text")
    return out, kinds


def table(
    frame: pd.DataFrame,
    spec: Spec,
    *,
    order: list[str] | None = None,
    help: Mapping[str, str] | None = None,
    key: str | None = None,
    height: int | str = "auto",
    select_row: bool = False,
    tz: str | None = None,
) -> int | None:
    """Draw `frame` with the spec's labels and formats; missing values show as an em dash, never `None`; exact
    Decimal money is drawn from floats (the downloads keep the exact values). With `select_row` a person may pick
    one row (a `key` is then needed): its position in `frame`, or None. "instant" columns show in `tz` (default: the
    reporting time zone)."""
    local, spec = local_times(frame, spec, tz)
    shown, kinds = displayable(chart_frame(local), spec)
    event = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=height,
        column_order=order,
        column_config=column_config(kinds, help),
        key=key,
        on_select="rerun" if select_row else "ignore",
        selection_mode="single-row",
    )
    if not select_row:
        return None
    rows = event.selection.rows  # type: ignore[union-attr]
    return rows[0] if rows else None


def csv_frame(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """The frame with the spec's labels as headers (the same words as on screen), other columns unchanged; a label
    already taken by an earlier column leaves a later one its own name, so no two headers are alike."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for i, c in enumerate(frame.columns):
        name = spec[c][0] if c in spec else c
        if name in used:
            name = c if c not in used else f"{c} ({i})"
        names[c] = name
        used.add(name)
    return frame.rename(columns=names)


def csv_bytes(frame: pd.DataFrame, spec: Spec, tz: str | None = None) -> bytes:
    """The CSV of `frame` with the on-screen labels as headers, the spec's columns first; money as exact decimal
    strings (never `1.2E-7`); "instant" columns in `tz` (default: the reporting time zone), as on screen."""
    frame, spec = local_times(frame, spec, tz)
    first = [c for c in spec if c in frame.columns]
    ordered = frame[first + [c for c in frame.columns if c not in first]]
    return to_csv_bytes(csv_frame(whole_numbers(ordered), spec))


def whole_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns that hold whole numbers only (ids and counts with a gap, which pandas keeps as floats: a failed
    call's blank transaction made every id `188669.0`) as whole numbers, the gaps left blank."""
    out = frame
    for c in frame.columns:
        col = frame[c]
        known = col.dropna()
        if pd.api.types.is_float_dtype(col) and len(known) and (known % 1 == 0).all() and known.abs().max() < 2**53:
            out = out.assign(**{c: col.astype("Int64")}) if isinstance(c, str) else out
    return out


def downloads(name: str, frame: pd.DataFrame, spec: Spec, *, parquet: bool = True) -> None:
    """Download buttons for the whole of `frame` (every row, not only those a chart shows), side by side with labels
    that fit; written only when clicked, without rerunning the page. The Parquet file keeps the column names and
    exact decimal128 money."""
    row = st.container(horizontal=True)
    row.download_button(
        "Download CSV",
        lambda: csv_bytes(frame, spec),
        f"{name}.csv",
        "text/csv",
        key=f"csv-{name}",
        on_click="ignore",
        icon=":material/download:",
    )
    if parquet:
        row.download_button(
            "Download Parquet",
            lambda: to_parquet_bytes(frame),
            f"{name}.parquet",
            "application/octet-stream",
            key=f"pq-{name}",
            on_click="ignore",
            icon=":material/download:",
        )
