"""Every `st.dataframe` goes through `table()`: one column spec (label and kind) gives the on-screen format and the
CSV headers, so a table and its download say the same thing. Kinds are those of `pages.fmt.COLUMN_FORMATS`."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

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
        else:
            config[column] = st.column_config.TextColumn(label, help=help.get(column))
    return config


def table(
    frame: pd.DataFrame,
    spec: Spec,
    *,
    order: list[str] | None = None,
    help: Mapping[str, str] | None = None,
    key: str | None = None,
    height: int | str = "auto",
    select_row: bool = False,
) -> int | None:
    """Draw `frame` with the spec's labels and formats; missing values show as blank cells, never `None`. With
    `select_row` a person may pick one row (a `key` is then needed): its position in `frame`, or None."""
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=height,
        column_order=order,
        column_config=column_config(spec, help),
        key=key,
        on_select="rerun" if select_row else "ignore",
        selection_mode="single-row",
    )
    if not select_row:
        return None
    rows = event.selection.rows  # type: ignore[union-attr]
    return rows[0] if rows else None


def csv_frame(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """The frame with the spec's labels as headers (the same words as on screen), other columns unchanged."""
    return frame.rename(columns={c: label for c, (label, _) in spec.items() if c in frame.columns})


def csv_bytes(frame: pd.DataFrame, spec: Spec) -> bytes:
    return csv_frame(frame, spec).to_csv(index=False).encode()
