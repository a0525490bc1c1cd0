"""The gateway benchmark's lean upstream answers as the test suite's loopback does (the same OpenAI bodies), plain
and streamed, on kept-alive connections, so the benchmark measures the gateway against a faithful upstream."""

from __future__ import annotations

import json

import httpx

from benchmarks.upstream import lean_upstream_process
from tests.support.loopback import CHAT_COMPLETION, STREAM_EVENTS


def test_the_lean_upstream_answers_plain_and_streamed_chat_like_openai() -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    with lean_upstream_process() as base, httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(3):  # one kept-alive connection, several requests
            plain = client.post("/chat/completions", json=body)
            assert plain.status_code == 200 and plain.json() == CHAT_COMPLETION
        streamed = client.post("/chat/completions", json={**body, "stream": True})
        assert streamed.headers["content-type"] == "text/event-stream"
        events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
        assert [json.loads(e) for e in events[:-1]] == STREAM_EVENTS and events[-1] == "[DONE]"
        assert client.post("/embeddings", json=body).status_code == 404
        assert client.post("/chat/completions", content=b"not json").status_code == 400


def test_the_load_generator_keeps_its_connection_alive_between_requests() -> None:
    from benchmarks.loadgen import Connection
    from tests.support.aio import run

    async def three(base: str) -> tuple[int, int, list[int]]:
        conn = Connection(base)
        statuses = []
        await conn.post_json("/chat/completions", {"model": "m", "messages": []}, {})
        first = id(conn._writer)
        for stream in (False, True):
            reply = await conn.post_json("/chat/completions", {"model": "m", "stream": stream}, {}, stream=stream)
            statuses.append(reply.status)
        same = int(id(conn._writer) == first)
        await conn.close()
        return conn.reopened, same, statuses

    with lean_upstream_process() as base:
        reopened, same, statuses = run(three(base))
    assert statuses == [200, 200] and reopened == 0 and same == 1


def test_the_benchmark_reads_a_process_trees_cpu_time() -> None:
    import os
    import subprocess
    import sys
    import time

    from tests.support.gateway import cpu_seconds

    before = cpu_seconds([os.getpid()])
    assert before is not None and before > 0
    busy = time.process_time() + 0.3
    while time.process_time() < busy:  # burn 0.3 s of CPU here
        pass
    assert cpu_seconds([os.getpid()]) >= before + 0.2  # type: ignore[operator]
    # a child's CPU counts too (uvicorn's workers are children of the gateway's process)
    burn = "import time\nt = time.process_time() + 0.5\nwhile time.process_time() < t:\n    pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 20
        while (cpu_seconds([child.pid]) or 0) < 0.45 and time.monotonic() < deadline:
            time.sleep(0.05)
        own = cpu_seconds([child.pid])
        assert own is not None and own >= 0.45
        assert cpu_seconds([os.getpid()]) >= before + own  # type: ignore[operator]
    finally:
        child.kill()
        child.wait()
