"""Latency from queueing: an M/M/c queue (Erlang C) plus the cold start for the requests that meet one.

A replica is one server that completes `throughput` requests per hour (its batching is folded into that figure); a
request's latency is its service time plus its wait in the queue. With c replicas, arrival rate L and service rate mu
per replica: P(wait > t) = C(c, a) e^(-(c mu - L) t), where a = L / mu and C is the Erlang C probability of waiting.
"""

from __future__ import annotations

import math

P95 = 0.95


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arriving request waits, for `servers` servers and `offered_load` = L / mu erlangs.

    Computed through the Erlang B recursion, which is stable for hundreds of servers; 1.0 when the queue is unstable.
    """
    if servers < 1:
        raise ValueError("an M/M/c queue needs at least one server")
    if offered_load <= 0:
        return 0.0
    if offered_load >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    rho = offered_load / servers
    return b / (1.0 - rho * (1.0 - b))


def wait_quantile(q: float, servers: int, arrival_rate: float, service_rate: float) -> float:
    """The q-quantile of the queueing wait (seconds when the rates are per second); inf when unstable."""
    if arrival_rate <= 0:
        return 0.0
    if arrival_rate >= servers * service_rate:
        return math.inf
    p_wait = erlang_c(servers, arrival_rate / service_rate)
    tail = 1.0 - q
    if tail <= 0:
        return math.inf if p_wait > 0 else 0.0
    if p_wait <= tail:
        return 0.0
    return math.log(p_wait / tail) / (servers * service_rate - arrival_rate)


def cold_starts_in_quantile(cold_fraction: float, q: float = P95) -> bool:
    """Whether the q-quantile of latency lies among the cold requests: more than 1 - q of them are cold (1 in 20 cold is
    5%, not 4.99..%, hence the tolerance)."""
    return cold_fraction > 0 and cold_fraction >= (1.0 - q) - 1e-9


def latency_quantile(
    *,
    service_time_s: float,
    servers: int,
    arrival_rate_per_s: float,
    service_rate_per_s: float,
    cold_fraction: float = 0.0,
    cold_start_s: float = 0.0,
    q: float = P95,
) -> float:
    """The q-quantile of latency = service time + queueing wait, plus the cold start for a `cold_fraction` of requests.

    Cold requests are the slowest (their start-up exceeds any warm wait), so they fill the top of the distribution:
    when more than 1 - q of requests are cold the quantile lies among them, otherwise among the warm ones.
    """
    tail = 1.0 - q
    if cold_start_s > 0 and cold_starts_in_quantile(cold_fraction, q):
        level = max(0.0, 1.0 - tail / cold_fraction)
        return service_time_s + cold_start_s + wait_quantile(level, servers, arrival_rate_per_s, service_rate_per_s)
    warm_tail = (tail - max(cold_fraction, 0.0)) / (1.0 - max(cold_fraction, 0.0)) if cold_start_s > 0 else tail
    return service_time_s + wait_quantile(1.0 - warm_tail, servers, arrival_rate_per_s, service_rate_per_s)
