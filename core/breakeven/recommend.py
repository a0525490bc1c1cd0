"""The recommendation: the cheapest option that meets the latency target, with one sentence saying why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core.breakeven.queueing import cold_starts_in_quantile
from core.money import dollars, rate_text

if TYPE_CHECKING:
    from core.breakeven.model import OptionResult


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    option: str | None  # None when no option meets the target
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"option": self.option, "reason": self.reason}


def _serverless_cold(o: OptionResult, cold_start_s: float) -> str:
    """Why a serverless p95 is what it is, when its cold starts are part of it; empty otherwise."""
    share = o.cold_start_fraction or 0.0
    if o.hardware is not None or cold_start_s <= 0 or not cold_starts_in_quantile(share):
        return ""
    return f"a {cold_start_s:g} s cold start for {share:.0%} of its requests"


def recommend(
    options: Sequence[OptionResult],
    *,
    slo_s: float,
    requests_per_hour: float,
    break_even: dict[str, float | None],
    serverless_cold_start_s: float = 0.0,
) -> Recommendation:
    """The cheapest option meeting `slo_s`, and one sentence of why. Serverless cold starts are named wherever they
    decide the outcome: serverless recommended with them in its p95, cheaper but too slow because of them, or the
    fastest option still too slow."""
    priced = [o for o in options if o.available and o.monthly_cost_usd is not None]
    eligible = [o for o in priced if o.meets_slo]
    at = f"at {rate_text(requests_per_hour)} requests/hour"
    if not eligible:
        timed = [o for o in priced if o.p95_latency_s is not None]
        if not timed:
            return Recommendation(
                option=None, reason=f"No option can serve this traffic {at}; see each option's reason."
            )
        fastest = min(timed, key=lambda o: o.p95_latency_s or 0.0)
        p95 = f"{fastest.p95_latency_s:.1f} s"
        if cold := _serverless_cold(fastest, serverless_cold_start_s):
            p95 += f" ({cold})"
        return Recommendation(
            option=None,
            reason=(
                f"No option meets the {slo_s:g} s p95 target {at}: the fastest, {fastest.option}, has a p95 of {p95}; "
                "raise the target, shorten the cold start or allow more replicas."
            ),
        )
    order = {o.option: i for i, o in enumerate(options)}
    best = min(eligible, key=lambda o: (o.monthly_cost_usd, o.p95_latency_s or 0.0, order[o.option]))
    cheaper_missing = [
        o
        for o in priced
        if not o.meets_slo and o.monthly_cost_usd is not None and o.monthly_cost_usd < best.monthly_cost_usd
    ]
    caveat = ""
    if cheaper_missing:
        c = min(cheaper_missing, key=lambda o: o.monthly_cost_usd or Decimal(0))
        p95 = "cannot keep up" if c.p95_latency_s is None else f"has a p95 of {c.p95_latency_s:.1f} s"
        if cold := _serverless_cold(c, serverless_cold_start_s):
            p95 += f", {cold} included"
        caveat = f"; {c.option} would cost less ({dollars(c.monthly_cost_usd)}) but {p95}"
    if best.hardware is None:
        runner_up = [o for o in eligible if o is not best]
        if runner_up:
            rival = min(runner_up, key=lambda o: o.monthly_cost_usd or Decimal(0))
            than = "less than" if (rival.monthly_cost_usd or 0) > (best.monthly_cost_usd or 0) else "the same as"
            alternative = (
                f", {than} the cheapest dedicated option that meets the {slo_s:g} s p95 target "
                f"({rival.option} at {dollars(rival.monthly_cost_usd)}), with no endpoint to run"
            )
        else:
            alternative = f", and no dedicated option meets the {slo_s:g} s p95 target"
        payoff = [(gpu, r) for gpu, r in break_even.items() if r is not None]
        tail = ""
        if payoff:
            gpu, r = min(payoff, key=lambda x: x[1])
            tail = f"; a dedicated {gpu} always-on breaks even with it at {rate_text(r)} requests/hour"
        cold = _serverless_cold(best, serverless_cold_start_s)
        latency = f"; its p95 of {best.p95_latency_s:.1f} s includes {cold}" if cold else ""
        return Recommendation(
            option=best.option,
            reason=(
                f"Serverless costs {dollars(best.monthly_cost_usd)} a month {at}{alternative}{tail}{latency}{caveat}."
            ),
        )
    serverless = next((o for o in priced if o.hardware is None), None)
    versus = (
        f", {dollars(serverless.monthly_cost_usd - best.monthly_cost_usd)} less than serverless "
        f"({dollars(serverless.monthly_cost_usd)})"
        if serverless is not None
        and serverless.monthly_cost_usd is not None
        and serverless.monthly_cost_usd >= best.monthly_cost_usd  # a cheaper serverless is the caveat's to name
        else ""
    )
    how = (
        f"up {best.billed_hours:,.0f} replica-hours a month with {best.cold_start_fraction:.1%} of requests "
        "meeting a cold start"
        if best.scale_to_zero
        else f"{best.replicas} replica(s) running all month"
    )
    return Recommendation(
        option=best.option,
        reason=(
            f"{best.option} costs {dollars(best.monthly_cost_usd)} a month {at} ({how}){versus}, and its p95 of "
            f"{best.p95_latency_s:.1f} s meets the {slo_s:g} s target{caveat}."
        ),
    )
