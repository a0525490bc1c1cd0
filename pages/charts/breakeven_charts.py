"""Charts of the Break-even page (drawing only: every figure comes from core.services.breakeven).

Kept out of the top level of pages/, where Streamlit would list it as a page of its own.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.services.breakeven import BreakevenResult, timeline

PALETTE = {"T4": "#1f77b4", "L4": "#2ca02c", "A10G": "#9467bd", "A100": "#d62728"}


def _style(option: str) -> dict[str, object]:
    if option == "serverless":
        return {"color": "#111111", "width": 3}
    gpu = option.split(" ")[0]
    return {"color": PALETTE.get(gpu, "#7f7f7f"), "width": 2, "dash": "dot" if "scale-to-zero" in option else "solid"}


def cost_curves(result: BreakevenResult) -> go.Figure:
    """Monthly cost of every option against the mean requests/hour (log-log), crossovers marked, today's traffic."""
    sweep = result.sweep
    fig = go.Figure()
    for option, cost in sweep.costs.items():
        fig.add_trace(
            go.Scatter(
                x=sweep.rates,
                y=np.where(cost > 0, cost, np.nan),
                name=option,
                mode="lines",
                line=_style(option),
                hovertemplate="%{x:,.1f} requests/hour<br>$%{y:,.2f} a month<extra>" + option + "</extra>",
            )
        )
    against_serverless = [c for c in sweep.crossovers if "serverless" in (c.option, c.other)]
    if against_serverless:
        fig.add_trace(
            go.Scatter(
                x=[c.requests_per_hour for c in against_serverless],
                y=[c.monthly_cost_usd for c in against_serverless],
                mode="markers",
                name="crossover with serverless",
                marker={"symbol": "x", "size": 10, "color": "#ff7f0e"},
                text=[f"{c.option} overtakes {c.other}" for c in against_serverless],
                hovertemplate="%{text}<br>%{x:,.1f} requests/hour, $%{y:,.2f} a month<extra></extra>",
            )
        )
    current = result.evaluation.mean_requests_per_hour
    finite = np.concatenate([c[np.isfinite(c) & (c > 0)] for c in sweep.costs.values()] or [np.zeros(0)])
    if finite.size:
        # a trace, not a layout shape: shapes on log axes take log10 positions and would stretch the axis
        fig.add_trace(
            go.Scatter(
                x=[current, current],
                y=[finite.min(), finite.max()],
                mode="lines+text",
                name=f"your traffic ({current:,.1f}/h)",
                line={"color": "#444", "dash": "dash", "width": 1},
                text=["", f"your traffic: {current:,.1f}/h"],
                textposition="top right",
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title="Monthly cost against average traffic (dotted: scale-to-zero; x: crossover with serverless)",
        xaxis={"title": "requests/hour (average)", "type": "log"},
        yaxis={"title": "USD per month", "type": "log"},
        height=480,
        legend={"orientation": "v"},
        margin={"t": 60, "b": 40},
    )
    return fig


def replicas_over_time(result: BreakevenResult, gpu_id: str, hours: int, bin_minutes: int) -> go.Figure:
    """Requests and the scale-to-zero replicas of one GPU over the first `hours` of the simulated trace."""
    t = timeline(result, gpu_id, hours=hours, bin_minutes=bin_minutes)
    x = t["minute"] / 60.0
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    per = "minute" if bin_minutes == 1 else f"{bin_minutes} minutes"
    fig.add_trace(
        go.Bar(x=x, y=t["requests"], name=f"requests per {per}", marker_color="#9ecae1", opacity=0.8),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=t["replicas"],
            name=f"{gpu_id} replicas running",
            mode="lines",
            line={"shape": "hv", "color": "#d62728"},
        ),
        secondary_y=True,
    )
    h = result.history  # its start is the first day's local midnight, named with the reporting time zone
    origin = f"from {h['start']}" if h else f"from Monday 00:00 ({result.tz}) of the simulated month"
    fig.update_layout(
        title=f"First {hours} hours {origin}: traffic and {gpu_id} replicas under scale-to-zero",
        height=340,
        bargap=0,
        margin={"t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(title_text="hours since start")
    fig.update_yaxes(title_text="requests", secondary_y=False)
    top = max(int(t["replicas"].max()) if t["replicas"].size else 1, 1)
    fig.update_yaxes(title_text="replicas", secondary_y=True, range=[0, top + 0.5], dtick=1)
    return fig
