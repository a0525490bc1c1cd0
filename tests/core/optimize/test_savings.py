"""The savings list on synthetic histories whose right answers are known in closed form."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.db import Database
from core.optimize import Kind, find_savings
from core.users import UserView
from tests.core.optimize.history import DAYS, MINUTES, START, endpoint, model, steady, synced, user, write_usage

SINCE, UNTIL = START.date(), START.date() + timedelta(days=DAYS - 1)
MONTH = Decimal(730 * 60) / Decimal(MINUTES)  # the period's figures x this = a month's
CENT = Decimal("0.01")


def savings(rt: Database, since: date = SINCE, until: date = UNTIL, **kw: object):
    with rt.session() as s:
        return find_savings(synced(rt), s, since=since, until=until, **kw)


def test_steady_traffic_goes_onto_the_gpu_the_break_even_arithmetic_picks(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    write_usage(rt, user(rt), model(rt, "suno/bark"), steady(200), "0.01")  # 200 requests/hour at $0.01
    report = savings(rt)
    [opp] = report.opportunities
    # serverless 200 x $0.01 x 730 h = $1,460; one T4 always-on $0.60 x 730 h = $438 (1 replica: 200/h is far below
    # its 3,600/h); scale-to-zero never stops on steady traffic and pays a cold start on top
    assert opp.kind == Kind.DEDICATED and opp.subject == "suno/bark"
    assert opp.monthly_saving_usd == Decimal("1022.00")
    assert opp.evidence["serverless_monthly_usd"] == "1460.00" and opp.evidence["option_monthly_usd"] == "438.00"
    assert opp.evidence["option"] == "T4 always-on" and opp.evidence["replicas"] == 1
    assert opp.evidence["break_even_requests_per_hour"] == 60.0  # $0.60 / $0.01
    assert opp.evidence["p95_latency_s"] <= opp.evidence["p95_target_s"]
    assert opp.action.startswith("create an always-on T4 endpoint (1 replica) for suno/bark: saves about $1,022.00")
    form = opp.endpoint_form
    assert (form.name, form.model_repo, form.hardware, form.min_replicas, form.scale_to_zero_minutes) == (
        "bark-t4",
        "suno/bark",
        "T4",
        1,
        None,
    )


def test_traffic_below_break_even_stays_serverless(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    write_usage(rt, user(rt), model(rt, "suno/bark"), steady(40), "0.01")  # 40/h < 60/h: serverless is cheaper
    assert savings(rt).opportunities == []


def _idle_endpoint(rt: Database, owner: UserView | None = None) -> tuple[int, int]:
    """An always-on T4 endpoint for facebook/mms-tts-eng that served one request a minute from 10:00 to 12:24 each day:
    busy 144 of 1,440 minutes (idle 90% of the time)."""
    owner = owner or user(rt)
    eid = endpoint(rt, owner, repo="facebook/mms-tts-eng", hardware="T4", min_replicas=1, idle=None, hourly="0.60")
    dedicated = model(rt, "facebook/mms-tts-eng", "huggingface_endpoint")
    times = [START + timedelta(days=d, hours=10, minutes=m) for d in range(DAYS) for m in range(144)]
    write_usage(rt, owner, dedicated, times, "0", endpoint_id=eid)
    return eid, len(times)


def test_an_endpoint_idle_nine_tenths_of_the_time_goes_serverless(runtime: Database) -> None:
    rt = runtime
    _eid, served = _idle_endpoint(rt)
    [opp] = savings(rt).opportunities
    assert opp.kind == Kind.ENDPOINT and opp.subject == "tts-prod"
    assert opp.evidence["metered_monthly_usd"] == "438.00" and opp.evidence["idle_share_of_billed_minutes"] == 0.9
    # serverless at the catalog's $0.0001/s for the category's typical 12 s request: 2,016 x $0.0012 = $2.4192 in
    # 14 days, $5.26 a month
    serverless = (served * Decimal("0.0012") * MONTH).quantize(CENT)
    assert serverless == Decimal("5.26")
    assert opp.evidence["option"] == "serverless" and opp.monthly_saving_usd == Decimal("438.00") - serverless
    assert opp.action.startswith("move tts-prod's traffic to serverless facebook/mms-tts-eng and delete the endpoint")
    assert opp.endpoint_form is None


def test_an_idle_endpoint_scales_to_zero_when_serverless_costs_more(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    _eid, _served = _idle_endpoint(rt)
    serverless = model(rt, "facebook/mms-tts-eng", "huggingface")  # its serverless twin costs $0.05 a request here
    write_usage(rt, user(rt, "bo@example.com"), serverless, steady(1, minutes=60 * 24 * 2), "0.05")
    [opp] = savings(rt).opportunities
    # one request a minute 10:00-12:23, then 15 idle minutes up: 158 minutes a day, plus a 300 s cold start billed
    # as 5 minutes: 163 replica-minutes a day at $0.60/h
    s2z = (Decimal("0.60") * 163 * DAYS / 60 * MONTH).quantize(CENT)
    assert opp.evidence["option"] == "T4 scale-to-zero" and opp.evidence["idle_timeout_minutes"] == 15
    assert opp.evidence["option_monthly_usd"] == f"{s2z}" and opp.monthly_saving_usd == Decimal("438.00") - s2z
    assert opp.evidence["cold_start_fraction"] == round(1 / 144, 4)
    assert opp.action.startswith("set tts-prod to scale to zero after 15 idle minutes: saves about")
    form = opp.endpoint_form
    assert (form.hardware, form.min_replicas, form.max_replicas, form.scale_to_zero_minutes) == ("T4", 0, 1, 15)


def test_an_endpoint_that_served_nothing_is_named(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    endpoint(rt, user(rt), repo="facebook/mms-tts-eng", hardware="T4", min_replicas=1, idle=None, hourly="0.60")
    [opp] = savings(rt).opportunities
    assert opp.monthly_saving_usd == Decimal("438.00") and opp.action.startswith(
        "pause or delete tts-prod: no request to it is in the usage log"
    )


def _fp(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()  # the store keeps the first 64 bits of a real sha256


def test_repeated_requests_the_cache_would_have_served(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    ana = user(rt)
    tts, chat = model(rt, "tts-1"), model(rt, "gpt-4o-mini")
    for k in range(10):  # 10 texts, each asked 5 times: a miss, two cache hits, two sent with no_cache
        at = [START + timedelta(hours=k, minutes=m) for m in range(5)]
        write_usage(rt, ana, tts, at[:1] + at[3:], "0.048", request_fingerprint=_fp(k))
        write_usage(rt, ana, tts, at[1:3], "0.048", request_fingerprint=_fp(k), cache_hit=True)
    for k in range(100, 130):  # 30 prompts, each asked 3 times; chat is not cached
        at = [START + timedelta(days=1, minutes=k * 3 + m) for m in range(3)]
        write_usage(rt, ana, chat, at, "0.25", request_fingerprint=_fp(k))
    write_usage(rt, ana, chat, [START + timedelta(days=2)], "0.25", request_fingerprint=_fp(999))  # asked once
    write_usage(rt, ana, tts, [START + timedelta(days=2)] * 2, "9", request_fingerprint=_fp(5), status="failed")
    by_subject = {o.subject: o for o in savings(rt).opportunities}
    cached, uncached = by_subject["tts-1"], by_subject["gpt-4o-mini"]
    assert cached.kind == uncached.kind == Kind.CACHE
    assert cached.evidence["caching"] == "on" and cached.evidence["served_from_cache"] == 20
    assert cached.evidence["missed"] == 20
    assert cached.monthly_saving_usd == (20 * Decimal("0.048") * MONTH).quantize(CENT)
    assert uncached.evidence["caching"] == "off" and uncached.evidence["repeated_requests"] == 30
    assert uncached.evidence["missed"] == 60
    assert uncached.monthly_saving_usd == (60 * Decimal("0.25") * MONTH).quantize(CENT)
    assert uncached.action.startswith("cache gpt-4o-mini's answers to identical requests: 60 repeats of 30 distinct")


def test_substitution_is_a_hint_when_a_cheaper_model_carries_most_of_the_traffic(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    ana, bo = user(rt), user(rt, "bo@example.com")
    mini, big = model(rt, "gpt-4o-mini"), model(rt, "gpt-4o")
    write_usage(rt, ana, mini, steady(1, minutes=80 * 60), "0.001")  # 80 requests
    write_usage(rt, ana, big, steady(1, minutes=20 * 60), "0.10")  # 20 requests
    # and 30 answered by the response cache, charged at catalog price: no provider cost, not traffic to move
    write_usage(rt, ana, big, steady(1, minutes=30 * 60), "0.10", cache_hit=True)
    write_usage(rt, bo, mini, steady(1, minutes=50 * 60), "0.001")  # half and half: no model carries most
    write_usage(rt, bo, big, steady(1, minutes=50 * 60), "0.10")
    [hint] = savings(rt).opportunities
    assert hint.kind == Kind.SUBSTITUTION and hint.hint and hint.subject == "ana@example.com"
    assert hint.monthly_saving_usd == (20 * Decimal("0.099") * MONTH).quantize(CENT)
    assert hint.evidence["cheaper_share_of_requests"] == 0.8
    assert hint.evidence["cost_per_request_usd"] == "0.100000"
    assert hint.action.startswith("hint: ana@example.com already sends 80% of their chat requests to gpt-4o-mini")
    assert "quality is not measured" in hint.action


def _teams_with_one_hint(rt: Database) -> None:
    """Nobody's own mix has a hint except Gus's, but team research's has: Ana sends 40 chat requests to gpt-4o-mini
    ($0.001) and Bo 30 to gpt-4o-mini and 30 to gpt-4o ($0.10), so gpt-4o-mini carries 70 of the team's 100 and
    moving its 30 on gpt-4o saves 30 x $0.099 a period. Team ops is half and half (no hint); team solo has one member
    (Gus: his own hint says it); Dan is in no team. Everyone is an engineer."""
    from core.budgets import TeamDirectory

    mini, big = model(rt, "gpt-4o-mini"), model(rt, "gpt-4o")
    people = {name: user(rt, f"{name}@example.com") for name in ("ana", "bo", "dan", "eve", "fay", "gus")}
    hours = {
        ("ana", mini): 40,
        ("bo", mini): 30,
        ("bo", big): 30,
        ("dan", big): 100,
        ("eve", mini): 10,
        ("fay", big): 10,
        ("gus", mini): 80,
        ("gus", big): 20,
    }
    for (name, m), n in hours.items():
        write_usage(rt, people[name], m, steady(1, minutes=n * 60), "0.001" if m == mini else "0.10")
    teams = TeamDirectory(rt.session_factory)
    for team, members in (("research", ("ana", "bo")), ("ops", ("eve", "fay")), ("solo", ("gus",))):
        teams.add(team)
        for name in members:
            teams.add_member(team, people[name].id)


def test_a_team_hint_when_a_cheaper_model_carries_most_of_a_teams_traffic(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    _teams_with_one_hint(rt)
    team_hint, gus_hint = savings(rt).opportunities
    assert team_hint.kind == Kind.SUBSTITUTION and team_hint.hint and team_hint.subject == "team research"
    assert team_hint.monthly_saving_usd == (30 * Decimal("0.099") * MONTH).quantize(CENT)
    assert team_hint.evidence["team"] == "research" and "user" not in team_hint.evidence
    assert team_hint.evidence["cheaper_share_of_requests"] == 0.7 and team_hint.evidence["requests"] == 30
    assert team_hint.evidence["cost_per_request_usd"] == "0.100000"
    assert team_hint.evidence["cheaper_cost_per_request_usd"] == "0.001000"
    assert team_hint.action.startswith("hint: team research already sends 70% of its chat requests to gpt-4o-mini")
    assert "quality is not measured" in team_hint.action
    assert gus_hint.subject == "gus@example.com"  # and no "team solo" hint repeating it
    assert gus_hint.monthly_saving_usd == (20 * Decimal("0.099") * MONTH).quantize(CENT)


def test_team_hints_are_only_for_those_who_see_everyones_spend(sqlite_runtime: Database) -> None:
    from core.access import Principal
    from core.services import Services

    rt = sqlite_runtime
    _teams_with_one_hint(rt)
    finance = Principal.of(user(rt, "fin@example.com", role="finance"))
    engineer = Principal.of(user(rt, "eng@example.com", role="engineer"))
    services = Services(rt)
    try:
        seen = {
            who.role: services.optimize.savings(who, since=SINCE, until=UNTIL, sync_if_older_than=0)
            for who in (finance, engineer)
        }
    finally:
        services.close()
    assert [r.subject for r in seen["finance"].rows] == ["team research", "gus@example.com"]
    assert seen["finance"].rows[0].kind_label == "Cheaper model (hint)"
    assert ("team", "research") in seen["finance"].rows[0].evidence
    assert seen["engineer"].rows == ()  # an engineer finds savings, but hints name teams and people's spend


def test_opportunities_are_ranked_by_monthly_saving(sqlite_runtime: Database) -> None:
    rt = sqlite_runtime
    ana = user(rt)
    write_usage(rt, ana, model(rt, "suno/bark"), steady(200), "0.01")
    _idle_endpoint(rt, ana)
    write_usage(rt, ana, model(rt, "gpt-4o"), steady(1, minutes=20 * 60), "0.10", request_fingerprint=_fp(1))
    report = savings(rt)
    savings_list = [o.monthly_saving_usd for o in report.opportunities]
    assert [o.kind for o in report.opportunities] == [Kind.DEDICATED, Kind.ENDPOINT, Kind.CACHE]
    assert savings_list == sorted(savings_list, reverse=True)
    assert report.monthly_saving_usd == sum(savings_list)


def test_a_period_after_the_last_sync_is_refused(sqlite_runtime: Database) -> None:
    from core.errors import InvalidInputError

    rt = sqlite_runtime
    write_usage(rt, user(rt), model(rt, "suno/bark"), steady(1, minutes=60), "0.01")
    with pytest.raises(InvalidInputError, match="begins after the last sync"):
        savings(rt, since=date(2999, 1, 1), until=date(2999, 1, 2))


def test_one_repeat_is_said_in_the_singular(sqlite_runtime: Database) -> None:
    """'1 repeats of 1 distinct requests' (the demo's voice-clone line) reads '1 repeat of 1 distinct request'."""
    rt = sqlite_runtime
    ana = user(rt)
    tts, chat = model(rt, "tts-1"), model(rt, "gpt-4o-mini")
    write_usage(rt, ana, chat, [START, START + timedelta(hours=1)], "5", request_fingerprint=_fp(1))
    write_usage(rt, ana, tts, [START, START + timedelta(hours=2)], "5", request_fingerprint=_fp(2))
    by_subject = {o.subject: o for o in savings(rt).opportunities}
    assert by_subject["gpt-4o-mini"].action.startswith(
        "cache gpt-4o-mini's answers to identical requests: 1 repeat of 1 distinct request reached the provider"
    )
    assert by_subject["tts-1"].action.startswith(
        "1 repeated tts-1 request reached the provider although the response cache is on"
    )
    assert "serving it from the cache" in by_subject["tts-1"].action
