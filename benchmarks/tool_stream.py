"""A streamed answer that says a few words and then calls a function, through the gateway: when its first text, its
call's first piece and its end reach the client, against the same upstream called directly.

The upstream (tests/support/loopback.py, in this process) paces its answer as a model does: `--words` words, then the
call's name and its arguments in two pieces, one event every `--delay-ms`. The gateway is a `python -m core serve`
process on a fresh SQLite database. Before tool calls were streamed, an answer offered tools was made whole first:
its first text and its call reached the client only at the end.

    .venv/bin/python benchmarks/tool_stream.py [--requests 10] [--words 8] [--delay-ms 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.access import SYSTEM  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database  # noqa: E402
from core.services import Services  # noqa: E402
from core.users import add_user  # noqa: E402
from tests.support.gateway import gateway_processes  # noqa: E402
from tests.support.loopback import loopback_openai  # noqa: E402

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
    "tools": TOOLS,
    "stream": True,
    "max_tokens": 200,
}
UPSTREAM_KEY = "sk-benchmark-upstream-key"


def timings(url: str, key: str) -> tuple[float, float, float]:
    """Seconds from sending to the first text, to the call's first piece, to the end of the stream."""
    first_text = first_call = None
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("POST", url, json=BODY, headers=headers, timeout=60) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices: list[dict[str, Any]] = json.loads(line.removeprefix("data: "))["choices"]
            delta = choices[0].get("delta") or {} if choices else {}
            now = time.perf_counter() - started
            if delta.get("content") and first_text is None:
                first_text = now
            if delta.get("tool_calls") and first_call is None:
                first_call = now
    end = time.perf_counter() - started
    if first_text is None or first_call is None:
        raise RuntimeError("the answer came without its text or its call")
    return first_text, first_call, end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--words", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name, loopback_openai() as (base, state):
        tmp = Path(tmp_name)
        url = f"sqlite:///{tmp / 'gateway.db'}"
        db = Database(Settings(database_url=url, analytics_path=tmp / "a.duckdb"))
        db.init()
        services = Services(db)
        with db.session() as s:
            user = add_user(s, email="tools@example.com", name="Tools", role="engineer")
        services.ledger.grant(SYSTEM, user.id, 1_000_000, confirm_large=True)
        key = services.keys.create(SYSTEM, user.id, "benchmark").secret
        env = {"DATABASE_URL": url, "ANALYTICS_PATH": str(tmp / "a.duckdb"), "OPENAI_API_KEY": UPSTREAM_KEY}
        env["OPENAI_BASE_URL"] = base
        state.record = False
        state.slow_stream_words, state.word_delay = args.words, args.delay_ms / 1000
        with gateway_processes(env) as (gateway,):
            timings(f"{gateway}/v1/chat/completions", key)  # warm up
            direct = [timings(f"{base}/chat/completions", UPSTREAM_KEY) for _ in range(args.requests)]
            via = [timings(f"{gateway}/v1/chat/completions", key) for _ in range(args.requests)]
        violations = services.ledger.check(SYSTEM)
        services.close()
        db.dispose()
    events = args.words + 4  # the role, the words, the call's two pieces, the finish
    print(f"{args.requests} streamed answers offered a tool: {args.words} words, then a call in two pieces, one event")
    print(f"every {args.delay_ms:g} ms ({events} events); medians, in ms:")
    print(f"  {'':<26}{'first text':>12}{'first call piece':>18}{'end':>10}")
    for label, runs in (("upstream, directly", direct), ("through the gateway", via)):
        text, call, end = (statistics.median(r[i] for r in runs) * 1000 for i in range(3))
        print(f"  {label:<26}{text:>12.1f}{call:>18.1f}{end:>10.1f}")
    added = [statistics.median(v[i] - d[i] for v, d in zip(via, direct, strict=True)) * 1000 for i in range(3)]
    print(f"  {'added by the gateway':<26}{added[0]:>12.1f}{added[1]:>18.1f}{added[2]:>10.1f}")
    end_via = statistics.median(r[2] for r in via) * 1000
    first_via = statistics.median(r[0] for r in via) * 1000
    print(f"made whole first (before): the first text would come at the end, {end_via:.0f} ms, not {first_via:.0f} ms")
    print(f"ledger check: {len(violations)} violations")
    return 0 if not violations else 1


if __name__ == "__main__":
    raise SystemExit(main())
