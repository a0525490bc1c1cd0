"""Webhooks: where alerts are POSTed as JSON, each signed with the webhook's own secret.

The signature is HMAC-SHA256 of the exact body bytes, hex, in the `X-AI-Credits-Signature` header as `sha256=<hex>`;
a receiver recomputes it with its copy of the secret (`verify_signature`) and compares in constant time. The body
carries `sent_at` and the delivery id (also in `X-AI-Credits-Delivery`), so a receiver can refuse replays and
de-duplicate retries. A secret is shown once, when the webhook is added; lists show its first characters only, and a
webhook's URL is shown by its host alone (chat services put their token in the path).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.alerts.records import AttemptResult, url_host
from core.billing.ledger_sql import read_transaction, write_engine, write_transaction
from core.db.limits import check_line
from core.db.models import ALERT_KINDS, AlertWebhook, utcnow
from core.errors import InvalidInputError, NotFoundError
from core.providers.retry import RETRY_STATUSES, RETRYABLE_TRANSPORT_ERRORS
from core.redaction import mask, redact, register

webhooks = AlertWebhook.__table__

SIGNATURE_HEADER = "X-AI-Credits-Signature"
DELIVERY_HEADER = "X-AI-Credits-Delivery"
EVENT_HEADER = "X-AI-Credits-Event"
TIMEOUT_SECONDS = 10.0
MAX_ERROR_CHARS = 300


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver runs: does `header` sign exactly `body` with `secret`?"""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, kw_only=True)
class WebhookView:
    id: int
    name: str
    host: str  # the URL's host only
    kinds: tuple[str, ...]  # alert kinds sent; empty: every kind
    active: bool
    secret_hint: str  # the secret's first and last characters
    created_at: datetime


class WebhookRegistry:
    """Add, list and remove the webhooks alerts are sent to."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.engine: Engine = session_factory.kw["bind"]

    def add(
        self, name: str, url: str, *, secret: str | None = None, kinds: tuple[str, ...] = ()
    ) -> tuple[WebhookView, str]:
        """Add a webhook; returns it and its secret (shown this once; generated unless given)."""
        # an escape sequence would recolour the terminal listing webhooks; a newline is refused, not made a space
        clean = " ".join(check_line(name or "", "A webhook's name").split())
        if not clean or len(clean) > 100:
            raise InvalidInputError("A webhook needs a name of 1 to 100 characters, e.g. 'finance-slack'.")
        check_webhook_url(url)
        bad = [k for k in kinds if k not in ALERT_KINDS]
        if bad:
            raise InvalidInputError(f"Unknown alert kind {bad[0]!r}; choose from {', '.join(ALERT_KINDS)}.")
        key = secret or new_secret()
        if len(key) < 16:
            raise InvalidInputError("A webhook secret has at least 16 characters; leave it out to get a random one.")
        register_url(key, url)
        with write_transaction(write_engine(self.engine)) as conn:
            if conn.execute(select(webhooks.c.id).where(webhooks.c.name == clean)).first():
                raise InvalidInputError(f"A webhook named {clean!r} exists; remove it first or pick another name.")
            hook_id = conn.execute(
                insert(webhooks)
                .values(name=clean, url=url, secret=key, kinds=list(kinds) or None, active=True, created_at=utcnow())
                .returning(webhooks.c.id)
            ).scalar_one()
        return self._get(hook_id), key

    def list_webhooks(self) -> list[WebhookView]:
        with read_transaction(self.engine) as conn:
            return [_view(r) for r in conn.execute(select(webhooks).order_by(webhooks.c.name))]

    def remove(self, webhook: int | str) -> None:
        """Stop sending to a webhook (queued notifications to it fail; the delivery log stays)."""
        ref = str(webhook)
        cond = webhooks.c.id == int(ref) if ref.isdigit() else webhooks.c.name == ref
        with write_transaction(write_engine(self.engine)) as conn:
            if not conn.execute(
                update(webhooks).where(cond, webhooks.c.active.is_(True)).values(active=False)
            ).rowcount:
                raise NotFoundError(f"No active webhook {webhook!r}; `python -m core alerts webhooks list` shows them.")

    def _get(self, hook_id: int) -> WebhookView:
        with read_transaction(self.engine) as conn:
            return _view(conn.execute(select(webhooks).where(webhooks.c.id == hook_id)).one())


def register_url(secret: str, url: str) -> None:
    """Mask a webhook's secret, URL and URL path (where chat services put their token) wherever text is redacted."""
    register(secret)
    register(url)
    register(urlsplit(url).path)


def _view(r: Any) -> WebhookView:
    return WebhookView(
        id=r.id,
        name=r.name,
        host=url_host(r.url),
        kinds=tuple(r.kinds or ()),
        active=bool(r.active),
        secret_hint=mask(r.secret),
        created_at=r.created_at,
    )


def check_webhook_url(url: Any) -> None:
    """A URL a webhook can be posted to: http(s), a host, a port that exists; else InvalidInputError naming what
    is wrong (a bad port used to be stored, then stopped every later delivery run)."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 1000:
        scheme = url.split("://", 1)[0] if isinstance(url, str) and "://" in url else None
        got = f"{scheme}://..." if scheme else repr(url_host(url) if isinstance(url, str) else url)
        raise InvalidInputError(
            f"A webhook URL starts with https:// (or http://), of at most 1,000 characters; got {got}."
        )
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidInputError(
            f"The webhook URL cannot be used: {str(exc).rstrip('.')} (host {url_host(url)!r})."
        ) from None
    if not parsed.host:
        raise InvalidInputError("The webhook URL names no host; give one such as https://hooks.example.com/....")
    if port is not None and not 0 < port < 65536:
        raise InvalidInputError(f"The webhook URL's port {port} does not exist (1 to 65535).")


def post_signed(client: httpx.Client, url: str, secret: str, payload: dict[str, Any], event: str) -> AttemptResult:
    """One signed POST. Retryable: no answer, a timeout, 408, 429 and 5xx; anything else not 2xx is final."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        DELIVERY_HEADER: str(payload.get("delivery", {}).get("id", "")),
        EVENT_HEADER: event,
        "User-Agent": "ai-credits-alerts/1",
    }
    t0 = time.perf_counter()
    try:
        resp = client.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except (*RETRYABLE_TRANSPORT_ERRORS, httpx.TimeoutException) as exc:
        return AttemptResult(ok=False, retryable=True, status_code=None, error=_error(exc, url), duration_ms=_ms(t0))
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # a URL stored before it was checked: final
        return AttemptResult(ok=False, retryable=False, status_code=None, error=_error(exc, url), duration_ms=_ms(t0))
    if 200 <= resp.status_code < 300:
        return AttemptResult(ok=True, retryable=False, status_code=resp.status_code, error=None, duration_ms=_ms(t0))
    retryable = resp.status_code in RETRY_STATUSES or resp.status_code in (408, 500)
    after = resp.headers.get("Retry-After", "")
    return AttemptResult(
        ok=False,
        retryable=retryable,
        status_code=resp.status_code,
        error=f"HTTP {resp.status_code}: " + _clip(resp.text, url),
        duration_ms=_ms(t0),
        retry_after=float(after) if after.replace(".", "", 1).isdigit() else None,
    )


def _ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)


def _clip(text: str, url: str) -> str:
    # The URL may carry a token: only its host goes into the delivery log; configured secrets are masked too.
    clean = redact(text.replace(url, url_host(url)))
    return clean if len(clean) <= MAX_ERROR_CHARS else clean[: MAX_ERROR_CHARS - 1] + "…"


def _error(exc: Exception, url: str) -> str:
    return _clip(f"{type(exc).__name__}: {exc}", url)
