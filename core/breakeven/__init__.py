"""Break-even simulator: serverless against dedicated GPUs (always-on or scale-to-zero), as pure functions over numpy.

`traffic` builds per-minute traces, `capacity` sizes replicas and checks memory, `scale_to_zero` replays the trace
minute by minute, `queueing` gives the p95 latency (Erlang C), `costs`/`model` evaluate every option, `recommend`
picks the cheapest one that meets the latency target and `sweep` traces cost against requests/hour. Only `history`
(and `service`, which wires everything for the command line and the page) touch the database.
"""

from core.breakeven.errors import (
    BreakevenInputError,
    EmptyHistoryError,
    InvalidRateError,
    NoServerlessPriceError,
    SloBelowServiceTimeError,
)
from core.breakeven.model import Evaluation, OptionResult, always_on_break_even, evaluate
from core.breakeven.recommend import Recommendation, recommend
from core.breakeven.scenario import Gpu, Scenario
from core.breakeven.serverless import ServerlessPrice
from core.breakeven.sweep import Crossover, Sweep, sweep
from core.breakeven.traffic import PROFILES, Traffic, from_counts, make_traffic

__all__ = [
    "PROFILES",
    "BreakevenInputError",
    "Crossover",
    "EmptyHistoryError",
    "Evaluation",
    "Gpu",
    "InvalidRateError",
    "NoServerlessPriceError",
    "OptionResult",
    "Recommendation",
    "Scenario",
    "ServerlessPrice",
    "SloBelowServiceTimeError",
    "Sweep",
    "Traffic",
    "always_on_break_even",
    "evaluate",
    "from_counts",
    "make_traffic",
    "recommend",
    "sweep",
]
