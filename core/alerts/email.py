"""Alert emails over SMTP, configured by one URL (`SMTP_URL`):

    smtp://user:password@mail.example.com:587?starttls=true   (plain connection upgraded with STARTTLS)
    smtps://user:password@mail.example.com:465                (TLS from the start)
    smtp://127.0.0.1:2525                                     (a local relay, no login)

The password never reaches a log line or the delivery log: it is registered for redaction when the URL is read, and
an SMTP error is stored as its code and server text.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from core.alerts.records import AttemptResult
from core.errors import ConfigError
from core.redaction import redact, register

TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    tls: str | None  # "ssl" (smtps), "starttls", or None

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("SMTP_URL must look like smtp://user:password@host:587?starttls=true or smtps://...")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        password = unquote(parts.password) if parts.password else None
        if password:
            register(password)
        try:
            port = parts.port
        except ValueError:
            raise ConfigError("SMTP_URL's port is not a number.") from None
        return cls(
            host=parts.hostname,
            port=port or (465 if parts.scheme == "smtps" else 587 if starttls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=password,
            tls="ssl" if parts.scheme == "smtps" else "starttls" if starttls else None,
        )


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = " ".join(subject.split())[:150]
    msg.set_content(body)
    return msg


def send_email(cfg: SmtpConfig, msg: EmailMessage) -> AttemptResult:
    """Send one message. Retryable: no connection, a timeout, a 4xx reply; a 5xx reply (refused address, failed
    login) is final."""
    t0 = time.perf_counter()
    try:
        if cfg.tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if cfg.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return _failed(t0, codes[0] if codes else None, f"recipient refused: {exc.recipients}", codes[0] < 500)
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return _failed(t0, exc.smtp_code, f"SMTP {exc.smtp_code}: {text}", exc.smtp_code < 500)
    except (OSError, smtplib.SMTPException) as exc:
        return _failed(t0, None, f"{type(exc).__name__}: {exc}", True)
    return AttemptResult(ok=True, retryable=False, status_code=250, error=None, duration_ms=_ms(t0))


def _failed(t0: float, code: int | None, error: str, retryable: bool) -> AttemptResult:
    return AttemptResult(
        ok=False, retryable=retryable, status_code=code, error=redact(error)[:300], duration_ms=_ms(t0)
    )


def _ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)
