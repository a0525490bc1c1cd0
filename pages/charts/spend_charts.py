"""The Spend page's charts: spend per bucket (the running day, week or month drawn as partial, not as a drop), ranked
bars of the top users or models, and lines over time. Plotly figures from float frames (`chart_frame`); colours from
`pages/charts/colors.py`, so a provider or model family has one colour on every chart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

PARTIAL_OPACITY = 0.45
FEW_BUCKETS = 8  # up to this many days, weeks or months on an axis, each gets its own tick (its date, no time)


TICK_FORMATS = {"day": "%b %-d, %Y", "week": "%b %-d, %Y", "month": "%b %Y"}


def _bucket_ticks(fig: go.Figure, values: pd.Series, grain: str) -> None:
    """One tick per bucket, written as its day (or month), when there are few: plotly otherwise fills a short date
    axis with times of day ("00:00:00" under today's only bar, "12:00" between two days), though a bucket has none."""
    buckets = sorted(set(pd.to_datetime(values).dt.normalize()))
    if 0 < len(buckets) <= FEW_BUCKETS:
        fig.update_xaxes(tickmode="array", tickvals=buckets, tickformat=TICK_FORMATS[grain])


def _mark_partial(fig: go.Figure, partial: date | None, y: float) -> None:
    if partial is None:
        return
    fig.add_annotation(
        x=partial, y=y, text="so far", showarrow=False, yshift=12, font={"size": 11}, hovertext="not complete yet"
    )


def stacked_bars(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    colors: Mapping[str, str],
    partial: date | None,
    title: str,
    y_label: str = "USD",
    grain: str = "day",
) -> go.Figure:
    """Bars per bucket (a day, week or month: `grain`) stacked by `color`; the partial bucket's bars are faded and
    labelled "so far"."""
    fig = px.bar(
        frame,
        x=x,
        y=y,
        color=color,
        color_discrete_map=dict(colors),
        title=title,
        labels={x: "", y: y_label},
    )
    if partial is not None:
        for trace in fig.data:
            trace.marker.opacity = [PARTIAL_OPACITY if pd.Timestamp(v).date() == partial else 1.0 for v in trace.x]
        at = frame[pd.to_datetime(frame[x]).dt.date == partial][y].sum()
        _mark_partial(fig, partial, float(at))
    fig.update_layout(legend_title_text="", xaxis={"type": "date"})
    _bucket_ticks(fig, frame[x], grain)
    return fig


def ranked_bars(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    title: str,
    color: str | None = None,
    colors: Mapping[str, str] | None = None,
    top: int = 10,
    x_label: str = "USD",
) -> go.Figure:
    """Horizontal bars of the first `top` rows (the frame is sorted, biggest first), biggest on top whatever the
    colour grouping (plotly would otherwise group the bars by colour)."""
    head = frame.head(top)
    fig = px.bar(
        head,
        x=x,
        y=y,
        orientation="h",
        color=color,
        color_discrete_map=dict(colors or {}),
        title=title,
        labels={x: x_label, y: "", **({color: ""} if color else {})},
    )
    fig.update_yaxes(categoryorder="array", categoryarray=list(head[y])[::-1])
    fig.update_layout(legend_title_text="")
    return fig


def lines(
    long: pd.DataFrame,
    *,
    x: str,
    y: str,
    series: str,
    colors: Mapping[str, str],
    partial: date | None,
    title: str,
    y_label: str = "USD",
    grain: str = "day",
) -> go.Figure:
    """One line per series over buckets of `grain`; the segment into the partial bucket is dotted and its point
    hollow, so a day (week, month) still running reads as "so far" rather than as a plunge."""
    fig = go.Figure()
    for name, part in long.groupby(series, sort=False):
        part = part.sort_values(x)
        days = pd.to_datetime(part[x]).dt.date
        done = part[days != partial] if partial is not None else part
        fig.add_scatter(
            x=done[x],
            y=done[y],
            name=str(name),
            mode="lines+markers" if len(done) < 3 else "lines",
            line={"color": colors.get(str(name))},
            legendgroup=str(name),
        )
        if partial is not None and (days == partial).any():
            tail = part.iloc[-2:] if len(part) > 1 else part
            fig.add_scatter(
                x=tail[x],
                y=tail[y],
                name=f"{name} (so far)",
                mode="lines+markers",
                line={"color": colors.get(str(name)), "dash": "dot"},
                marker={"symbol": ["circle", "circle-open"][-len(tail) :], "size": 8},
                legendgroup=str(name),
                showlegend=False,
            )
    fig.update_layout(title=title, yaxis_title=y_label, legend_title_text="", xaxis={"type": "date"})
    _bucket_ticks(fig, long[x], grain)
    return fig
