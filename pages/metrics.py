"""A figure with a note under it ("12,345 credits", "this month"): `st.metric` draws its delta as a change, with an
arrow and in green or red; a note is not a change, so it is drawn plain. Real changes ("+12% vs last month") stay
deltas."""

from __future__ import annotations

from typing import Any


def figure(where: Any, label: str, value: str, note: str | None = None, *, help: str | None = None) -> None:
    """A metric in `where` (a column, or `st`) whose note is a caption: no arrow, no colour."""
    where.metric(label, value, note, delta_color="off", delta_arrow="off", help=help)
