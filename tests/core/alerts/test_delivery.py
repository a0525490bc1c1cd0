"""Delivering alerts: signed webhooks to a local HTTP server (the signature verifies; failures retry with backoff
and every attempt is logged; a refusal is final; a long outage is requeued until it gives up), two deliverers never
send one notification twice, webhook URLs and secrets stay out of lists and logs, and email reaches a local SMTP
server started by the test (with a login; a wrong password fails without leaking it)."""

from __future__ import annotations

import json
import random
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select, text

from core.alerts import SIGNATURE_HEADER, AlertDelivery, AlertLog, NewAlert, WebhookRegistry, sign, verify_signature
from core.alerts.delivery import MAX_ATTEMPTS
from core.billing import BillingService
from core.config import Secret
from core.db import Database
from core.db.models import AlertNotification, utcnow
from core.errors import InvalidInputError
from tests.core.budgets.conftest import funded


@dataclass
class Receiver:
    """A local webhook receiver: answers each POST with the next scripted status (then 200) and keeps what came."""

    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def reply(self) -> int:
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver([])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rec.received.append((dict(self.headers.items()), body))
            status = rec.reply()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else f"no hook at {self.path}".encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/token-in-path-0123456789"
    yield rec
    server.shutdown()
    server.server_close()


def alert(n: int = 1, kind: str = "threshold", user_id: int | None = None) -> NewAlert:
    return NewAlert(
        key=f"test:{n}",
        kind=kind,
        severity="warning",
        message=f"Budget 'x' has reached {n}%.",
        user_id=user_id,
        details={"pct": n},
    )


def delivery(runtime: Database, sleeps: list[float], settings: Any = None) -> AlertDelivery:
    return AlertDelivery(
        runtime.session_factory,
        settings or runtime.settings,
        http=httpx.Client(),
        sleep=sleeps.append,
        rng=random.Random(1),
    )


def test_a_webhook_gets_signed_json_retried_with_backoff(runtime: Database, receiver: Receiver) -> None:
    receiver.statuses = [503, 503]
    hook, secret = WebhookRegistry(runtime.session_factory).add("finance", receiver.url)
    log = AlertLog(runtime.session_factory, runtime.settings)
    (alert_id,) = log.record([alert()])
    sleeps: list[float] = []
    report = delivery(runtime, sleeps).deliver_pending()
    assert (report.delivered, report.failed, report.requeued) == (1, 0, 0)
    assert len(receiver.received) == 3
    for i, (headers, body) in enumerate(receiver.received, start=1):
        assert verify_signature(secret, body, headers[SIGNATURE_HEADER])
        payload = json.loads(body)
        assert payload["id"] == alert_id and payload["kind"] == "threshold" and payload["delivery"]["attempt"] == i
        assert payload["message"] == "Budget 'x' has reached 1%." and headers["X-AI-Credits-Event"] == "threshold"
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 0.75 and 1.0 <= sleeps[1] <= 1.5  # exponential, with jitter
    log_rows = sorted(log.deliveries(), key=lambda d: d.attempt)
    assert [(d.attempt, d.ok, d.status_code) for d in log_rows] == [(1, False, 503), (2, False, 503), (3, True, 200)]
    assert all(
        d.status == "delivered"
        and d.destination == "finance (127.0.0.1:" + receiver.url.split(":")[2].split("/")[0] + ")"
        for d in log_rows
    )
    assert delivery(runtime, sleeps).deliver_pending().delivered == 0  # delivered once, never again
    assert len(receiver.received) == 3
    assert hook.host.startswith("127.0.0.1:") and secret not in repr(hook) and "token" not in repr(hook)


def test_the_signature_covers_exactly_the_body() -> None:
    body = b'{"kind":"threshold"}'
    header = sign("whsec_secret-of-the-receiver", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("whsec_secret-of-the-receiver", body, header)
    assert not verify_signature("whsec_secret-of-the-receiver", body + b" ", header)
    assert not verify_signature("whsec_another-secret-entirely", body, header)
    assert not verify_signature("whsec_secret-of-the-receiver", body, None)


def test_a_refusal_is_final_and_its_log_keeps_no_token(runtime: Database, receiver: Receiver) -> None:
    receiver.statuses = [400]
    WebhookRegistry(runtime.session_factory).add("finance", receiver.url)
    log = AlertLog(runtime.session_factory, runtime.settings)
    log.record([alert()])
    sleeps: list[float] = []
    report = delivery(runtime, sleeps).deliver_pending()
    assert (report.delivered, report.failed) == (0, 1) and sleeps == [] and len(receiver.received) == 1
    (row,) = log.deliveries()
    assert row.status_code == 400 and row.status == "failed"
    assert row.error is not None and row.error.startswith("HTTP 400") and "token-in-path-0123456789" not in row.error


def test_an_outage_is_requeued_with_backoff_until_it_gives_up(runtime: Database) -> None:
    with socket.socket() as s:  # a port nobody listens on: every attempt is refused
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    WebhookRegistry(runtime.session_factory).add("down", closed)
    AlertLog(runtime.session_factory, runtime.settings).record([alert()])
    sleeps: list[float] = []
    deliverer = delivery(runtime, sleeps)
    now = utcnow()
    first = deliverer.deliver_pending(now)
    assert first.requeued == 1 and len(sleeps) == 2
    with runtime.session() as s:
        note = s.scalars(select(AlertNotification)).one()
        assert note.status == "pending" and note.attempts == 3 and note.next_attempt_at > now
        due = note.next_attempt_at
    assert deliverer.deliver_pending(now).requeued == 0  # not due yet: nothing tried
    deliverer.deliver_pending(due)
    last = deliverer.deliver_pending(due + timedelta(days=1))
    with runtime.session() as s:
        note = s.scalars(select(AlertNotification)).one()
        assert note.status == "failed" and note.attempts == MAX_ATTEMPTS and "ConnectError" in (note.last_error or "")
    assert last.failed == 1
    assert len(AlertLog(runtime.session_factory, runtime.settings).deliveries()) == MAX_ATTEMPTS


def test_two_deliverers_at_once_send_each_notification_once(runtime: Database, receiver: Receiver) -> None:
    WebhookRegistry(runtime.session_factory).add("finance", receiver.url)
    AlertLog(runtime.session_factory, runtime.settings).record([alert(n) for n in range(1, 21)])
    start = threading.Barrier(2)

    def run(_: int) -> int:
        start.wait()
        return delivery(runtime, []).deliver_pending().delivered

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(json.loads(body)["key"] for _, body in receiver.received) == sorted(f"test:{n}" for n in range(1, 21))


def test_a_webhook_gets_only_the_kinds_it_asked_for_and_a_removed_one_nothing(
    runtime: Database, receiver: Receiver
) -> None:
    hooks = WebhookRegistry(runtime.session_factory)
    hooks.add("anomalies only", receiver.url, kinds=("anomaly",))
    log = AlertLog(runtime.session_factory, runtime.settings)
    log.record([alert(1, kind="threshold"), alert(2, kind="anomaly")])
    delivery(runtime, []).deliver_pending()
    assert [json.loads(b)["kind"] for _, b in receiver.received] == ["anomaly"]
    hooks.remove("anomalies only")
    log.record([alert(3, kind="anomaly")])
    assert delivery(runtime, []).deliver_pending().delivered == 0 and len(receiver.received) == 1
    with pytest.raises(Exception, match="https://"):
        hooks.add("bad", "ftp://example.com/x")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://h.example.com:abc/x", "Invalid port"),  # was stored, then every delivery run stopped on it
        ("http://[::1", "cannot be used"),  # was an unexpected ValueError
        ("https://", "names no host"),
        ("https:///path", "names no host"),
        ("https://h.example.com:99999/x", "port 99999 does not exist"),
        ("ftp://x.example/x", "got ftp://"),
    ],
)
def test_a_webhook_url_that_cannot_be_posted_to_is_refused_with_what_is_wrong(
    runtime: Database, url: str, says: str
) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(says)):
        WebhookRegistry(runtime.session_factory).add("bad", url)


def test_a_stored_url_that_cannot_be_posted_to_fails_its_delivery_and_the_run_goes_on(
    runtime: Database, receiver: Receiver
) -> None:
    """A URL stored before the check (an older version): its delivery fails for good, the other webhooks still get
    theirs; the run stopped with InvalidURL at it, every time."""
    hooks = WebhookRegistry(runtime.session_factory)
    hooks.add("bad port", receiver.url)
    hooks.add("good", receiver.url)
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE alert_webhooks SET url = 'https://h.example.com:abc/x' WHERE name = 'bad port'"))
    AlertLog(runtime.session_factory, runtime.settings).record([alert()])
    report = delivery(runtime, []).deliver_pending()
    assert (report.delivered, report.failed) == (1, 1) and len(receiver.received) == 1


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    def login(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
        ok = isinstance(auth, LoginPassword) and auth.login == b"alerts" and auth.password == b"s3cret-smtp-pass"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=login, auth_require_tls=False)
    controller.start()
    yield box, port
    controller.stop()


def test_email_reaches_the_person_and_finance_through_smtp(
    runtime: Database, billing: BillingService, smtp_server: tuple[Mailbox, int]
) -> None:
    box, port = smtp_server
    settings = replace(
        runtime.settings,
        smtp_url=Secret(f"smtp://alerts:s3cret-smtp-pass@127.0.0.1:{port}"),
        alert_email_from="alerts@ai-credits.example",
        alert_email_to=("finance@example.com",),
    )
    ana = funded(runtime, billing, "ana@example.com")
    AlertLog(runtime.session_factory, settings).record([alert(80, user_id=ana.id)])
    report = delivery(runtime, [], settings).deliver_pending()
    assert report.delivered == 2
    assert sorted(rcpt for m in box.messages for rcpt in m.rcpt_tos) == ["ana@example.com", "finance@example.com"]
    text = box.messages[0].content.decode()
    assert "Subject: [AI credits] Budget 'x' has reached 80%." in text and "From: alerts@ai-credits.example" in text


def test_a_wrong_smtp_password_fails_without_leaking_it(
    runtime: Database, billing: BillingService, smtp_server: tuple[Mailbox, int]
) -> None:
    box, port = smtp_server
    settings = replace(runtime.settings, smtp_url=Secret(f"smtp://alerts:wrong-smtp-pass@127.0.0.1:{port}"))
    ana = funded(runtime, billing, "ana@example.com")
    AlertLog(runtime.session_factory, settings).record([alert(80, user_id=ana.id)])
    sleeps: list[float] = []
    report = delivery(runtime, sleeps, settings).deliver_pending()
    assert report.failed == 1 and sleeps == [] and box.messages == []  # a refused login is final
    (row,) = AlertLog(runtime.session_factory, settings).deliveries()
    assert row.status_code == 535 and "wrong-smtp-pass" not in (row.error or "")
