"""Charts show user text (emails, names, notes, model and endpoint names) as text. Plotly reads a few HTML tags in
every label, legend, title and hover (`<a href>`, `<b>`, `<br>`, `<span style>`), so a name like
`<a href="https://evil.example">x</a>` would become a live link. `show(fig)` escapes every string the figure carries
(plotly decodes the entities back to the characters for display) and draws it."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

# The trace attributes that hold data (categories, names, labels, hover text); formatting strings are left alone.
TEXT_ATTRIBUTES = (
    "x",
    "y",
    "z",
    "text",
    "hovertext",
    "customdata",
    "name",
    "legendgroup",
    "labels",
    "parents",
    "ids",
    "base",
)


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return html.escape(value, quote=False)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OUS":
            return np.vectorize(_escape, otypes=[object])(value) if value.size else value
        return value
    if isinstance(value, tuple | list):
        return type(value)(_escape(v) for v in value)
    return value


def escape_figure(fig: go.Figure) -> go.Figure:
    """The same figure with every data string escaped, and its titles too (in place; returned for chaining)."""
    for trace in fig.data:
        for attr in TEXT_ATTRIBUTES:
            if attr in trace and trace[attr] is not None:
                trace[attr] = _escape(trace[attr])
    layout = fig.layout
    if layout.title and layout.title.text:
        layout.title.text = _escape(layout.title.text)
    for axis in ("xaxis", "yaxis"):
        ax = layout[axis]
        if ax and ax.title and ax.title.text:
            ax.title.text = _escape(ax.title.text)
        if ax and ax.ticktext is not None:
            ax.ticktext = _escape(list(ax.ticktext))
    if layout.legend and layout.legend.title and layout.legend.title.text:
        layout.legend.title.text = _escape(layout.legend.title.text)
    for annotation in layout.annotations or ():
        if annotation.text:
            annotation.text = _escape(annotation.text)
    return fig


def show(fig: go.Figure, **kwargs: Any) -> Any:
    """`st.plotly_chart` for a figure that may carry user text: escaped first, then drawn (returns the selection
    event when `on_select` is given)."""
    return st.plotly_chart(escape_figure(fig), **kwargs)
