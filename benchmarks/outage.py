"""A real database outage in the middle of a billed call, and what the ledger makes of it.

The gateway (a `python -m core serve` process) reaches PostgreSQL through a TCP proxy run here. A streamed chat call
starts through the official `openai` SDK; right after its first chunk the proxy is cut (every connection closed, new
ones refused) and restored `--down` seconds later. Prints when the stream ended and what its last event said, where
the charge waited, how long after the database came back it was posted, what a retry with the call's Idempotency-Key
gets then, the balance and `ledger check`.

    .venv/bin/python benchmarks/outage.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432] [--down 45]

It creates (and drops first) the database `outage_bench` on that server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402

from tests.support.loopback import loopback_openai  # noqa: E402

PROXY_PORT = 15432
GATEWAY_PORT = 8123
DB = "outage_bench"


class Proxy:
    """A TCP proxy that can be cut (every connection closed, new ones refused) and restored."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self.conns: list[socket.socket] = []
        self.sock: socket.socket | None = None

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self.sock is not None
        with contextlib.suppress(OSError):  # wakes the accept (a close alone would leave it listening)
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.conns = []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432", help="the PostgreSQL server")
    ap.add_argument("--down", type=float, default=45.0, help="seconds the database stays unreachable")
    args = ap.parse_args()
    server = make_url(args.pg)
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {DB}"))
    proxy = Proxy(PROXY_PORT, (server.host or "127.0.0.1", server.port or 5432))
    proxy.start()
    spool = Path(tempfile.mkdtemp(prefix="outage-spool-"))
    py = sys.executable
    with loopback_openai() as (base, state):
        state.slow_stream_words, state.word_delay = 15, 0.2  # a 3 s stream
        url = server.set(host="127.0.0.1", port=PROXY_PORT, database=DB, query={"connect_timeout": "2"})
        env = {
            **os.environ,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "OPENAI_API_KEY": "sk-loopback",
            "OPENAI_BASE_URL": base,
            "SETTLE_SPOOL_DIR": str(spool),
        }

        def cli(*argv: str) -> str:
            done = subprocess.run([py, "-m", "core", *argv], env=env, cwd=ROOT, capture_output=True, text=True)
            if done.returncode not in (0, 1):
                raise SystemExit(f"core {' '.join(argv)} failed: {done.stderr.strip()}")
            return done.stdout.strip()

        cli("init")
        cli("users", "add", "--email", "ana@example.com", "--name", "Ana", "--role", "pm")
        cli("credits", "grant", "--user", "ana@example.com", "--credits", "1000")
        key = json.loads(cli("keys", "create", "--user", "ana@example.com", "--name", "outage", "--json"))["key"]
        log = tempfile.NamedTemporaryFile("w", prefix="outage-gateway-", suffix=".log", delete=False)  # noqa: SIM115
        gateway = subprocess.Popen(
            [py, "-m", "core", "serve", "--port", str(GATEWAY_PORT)], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        try:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{GATEWAY_PORT}/v1", api_key=key, max_retries=0)
            for _ in range(100):
                try:
                    client.models.list()
                    break
                except openai.APIConnectionError:
                    time.sleep(0.1)
            ask = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
                "stream_options": {"include_usage": True},
                "extra_headers": {"Idempotency-Key": "outage-1"},  # a retry below, once posted, gets this answer
            }
            t0 = time.monotonic()
            stream = client.chat.completions.create(**ask)
            chunks = [next(iter(stream))]
            proxy.cut()
            cut_at = time.monotonic()
            print(f"database cut {cut_at - t0:.2f} s into the stream, after its first chunk")
            chunks += list(stream)
            words = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).split()
            print(f"stream ended {time.monotonic() - t0:.1f} s in: {len(words)} words; last event's credits:")
            print(f"  {chunks[-1].model_extra.get('credits')}")
            waiting = sorted(p.name for p in (spool / "pending").glob("*.json"))
            print(f"waiting in the spool: {waiting}")
            time.sleep(max(0.0, args.down - (time.monotonic() - cut_at)))
            proxy.start()
            back = time.monotonic()
            print(f"database back after {back - cut_at:.0f} s")
            while any((spool / d).is_dir() and any((spool / d).iterdir()) for d in ("pending", "claimed")):
                if time.monotonic() - back > 120:
                    print("not posted within 120 s")
                    break
                time.sleep(0.25)
            else:
                print(f"posted {time.monotonic() - back:.1f} s after the database came back")
            upstream_calls = len(state.requests)
            again = list(client.chat.completions.create(**ask))
            same = "".join(c.choices[0].delta.content or "" for c in again if c.choices).split() == words
            print(
                f"a retry with the same Idempotency-Key: {'the first answer' if same else 'ANOTHER ANSWER'}, "
                f"{len(state.requests) - upstream_calls} upstream calls; credits {again[-1].model_extra.get('credits')}"
            )
        finally:
            gateway.terminate()
            gateway.wait(10)
        print(cli("credits", "balance", "--user", "ana@example.com"))
        print(cli("ledger", "check"))
        print(cli("ledger", "spool"))
    shutil.rmtree(spool, ignore_errors=True)
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
