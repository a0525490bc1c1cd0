"""Settings from environment variables and `.streamlit/secrets.toml`.

Environment variables win over the secrets file. Secret values are wrapped in `Secret`, whose repr and str are masked,
so a settings object can be logged or shown without leaking a key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from core.errors import ConfigError
from core.redaction import mask, register

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DEFAULT_DATABASE_URL = "sqlite:///data/app.db"
# How usage calls are rounded to whole credits: each call up (the specification's rule), or accrued per account
# (core/billing/accrual.py).
ROUNDING_POLICIES = ("per_call", "accrual")


class Secret:
    """A secret string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)  # so that any error message echoing it is redacted

    def get(self) -> str:
        return self._value

    def masked(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    __str__ = masked

    def __bool__(self) -> bool:
        return bool(self._value)


# provider name -> (env names for the key, in priority order; env name for the base URL; default base URL)
PROVIDER_ENV: dict[str, tuple[tuple[str, ...], str, str]] = {
    "openai": (("OPENAI_API_KEY",), "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "anthropic": (("ANTHROPIC_API_KEY",), "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    "huggingface": (
        ("HUGGINGFACE_API_KEY", "HF_TOKEN", "HUGGINGFACE_TOKEN"),
        "HUGGINGFACE_BASE_URL",
        "https://router.huggingface.co",
    ),
    "huggingface_endpoint": (("HUGGINGFACE_API_KEY", "HF_TOKEN", "HUGGINGFACE_TOKEN"), "", ""),
    "minimax": (("MINIMAX_API_KEY",), "MINIMAX_API_BASE_URL", "https://api.minimax.io"),
    "together_ai": (("TOGETHER_API_KEY",), "TOGETHER_BASE_URL", "https://api.together.xyz/v1"),
}


MIN_HOLD_TTL_SECONDS = 600  # the longest a plain call may take: 3 tries x (10 s to connect + 120 s of silence) + waits


# Where the gateway runs its calls (GATEWAY_ROUTES): on the event loop (core.event_loop), in threads, or auto (the
# loop unless the engine's waits would block it: Services.event_loop_problem)
GATEWAY_ROUTE_MODES = ("auto", "loop", "threads")


def gateway_routes() -> str:
    """GATEWAY_ROUTES from the environment (auto when unset), checked."""
    mode = os.environ.get("GATEWAY_ROUTES", "").strip().lower() or "auto"
    if mode not in GATEWAY_ROUTE_MODES:
        raise ConfigError(f"GATEWAY_ROUTES is {mode!r}; set it to auto (the default), loop or threads, or unset it.")
    return mode


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    """The IANA time zones every part of the engine takes. Python's zoneinfo also opens `localtime`, `posixrules`,
    `posix/...` and `right/...` (files of the system's database, not zones), which DuckDB's analytics refuse: a name
    outside this set is refused where it is typed, with one sentence."""
    return frozenset(available_timezones()) - {"localtime", "posixrules"}


def _load_secrets_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file or remove it.") from exc


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    analytics_path: Path = DATA_DIR / "analytics.duckdb"
    credit_usd: Decimal = Decimal("0.04")
    default_markup_pct: Decimal = Decimal("100")
    reporting_tz: str = "UTC"
    charge_cache_hits: bool = True
    # The response cache: how long an entry is served, how much it holds (oldest dropped first; 0 turns it off), and
    # whether one user's cached output may answer another's identical request (off: each user has their own entries).
    response_cache_max_age_seconds: int = 7 * 86_400
    response_cache_max_mb: int = 500
    response_cache_shared: bool = False
    rounding_policy: str = "per_call"
    hold_ttl_seconds: int = 600
    max_call_seconds: int = 3600
    hf_endpoints_api_url: str = "https://api.endpoints.huggingface.cloud/v2"
    hf_namespace: str = ""
    hf_bill_to: str = ""
    minimax_group_id: str = ""
    auth_configured: bool = False
    # Alerts (core/alerts): email over SMTP when smtp_url is set; low-balance thresholds (0 turns each off).
    smtp_url: Secret | None = field(default=None, repr=False)
    alert_email_from: str = "ai-credits@localhost"
    alert_email_to: tuple[str, ...] = ()  # finance's addresses: every alert is mailed to them too
    low_balance_credits: int = 100
    grant_confirm_above_credits: int = 250_000  # a grant, top-up or adjustment past this needs a second confirmation
    low_balance_days: Decimal = Decimal("3")
    # Seconds between automatic alert evaluations in each process (pages, the app's and the gateway's timers; 0: only
    # `alerts run` and the check after each settle).
    alerts_every_seconds: int = 60
    # where a settlement waits while the database is unavailable (core/billing/spool.py); None: the default place
    settle_spool_dir: Path | None = None
    redis_url: str = ""  # the gateway's rate limits are shared through it when set (else kept per process)
    api_keys: dict[str, Secret] = field(default_factory=dict, repr=False)
    base_urls: dict[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.reporting_tz)

    def api_key(self, provider: str) -> Secret | None:
        key = self.api_keys.get(provider)
        return key if key else None

    def base_url(self, provider: str) -> str:
        return self.base_urls.get(provider) or PROVIDER_ENV.get(provider, ((), "", ""))[2]

    def resolved_database_url(self) -> str:
        """The database URL with a relative SQLite path anchored at the repository root."""
        url = self.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            rel = url[len(prefix) :]
            if rel and not rel.startswith(":"):
                return prefix + str((REPO_ROOT / rel).resolve())
        return url

    def sqlite_file(self) -> Path | None:
        """The SQLite database's file (None for PostgreSQL or an in-memory database)."""
        url = self.resolved_database_url()
        if not url.startswith("sqlite:///") or url.startswith("sqlite:///:"):
            return None
        path = url[len("sqlite:///") :].split("?", 1)[0]
        return Path(path) if path else None


def load_settings(env: dict[str, str] | None = None, secrets_path: Path | None = None) -> Settings:
    """Read settings: environment first, then `.streamlit/secrets.toml` (flat keys), then defaults."""
    env = dict(os.environ) if env is None else env
    secrets = _load_secrets_file(secrets_path or REPO_ROOT / ".streamlit" / "secrets.toml")

    def get(name: str, default: str = "") -> str:
        value = env.get(name)
        if value is None or value == "":
            raw = secrets.get(name)
            value = str(raw) if raw is not None and not isinstance(raw, dict) else ""
        return value or default

    keys: dict[str, Secret] = {}
    urls: dict[str, str] = {}
    for provider, (key_names, url_name, _default) in PROVIDER_ENV.items():
        for key_name in key_names:
            if get(key_name):
                keys[provider] = Secret(get(key_name))
                break
        if url_name and get(url_name):
            urls[provider] = get(url_name).rstrip("/")

    def decimal_setting(name: str, default: str) -> Decimal:
        raw = get(name, default)
        try:
            value = Decimal(raw)
        except InvalidOperation as exc:
            raise ConfigError(f"{name}={raw!r} is not a number; set it to a decimal such as {default}.") from exc
        if not value.is_finite() or value < 0 or (value == 0 and name == "CREDIT_USD"):
            raise ConfigError(f"{name}={raw!r} must be a positive finite number.")
        return value

    tz = get("REPORTING_TZ", "UTC")
    if tz not in time_zone_names():
        raise ConfigError(f"REPORTING_TZ={tz!r} is not a known time zone; use a name such as Europe/Paris.")

    hold_ttl = get("HOLD_TTL_SECONDS", "600")
    # A plain call's hold is not renewed while it waits for its answer (a stream's is, as chunks come), and one call
    # may take three tries of up to 120 s without a byte each: a shorter hold expired under a running call, and
    # calls taken after it passed a key's limit, a hard budget and the balance (a review's 2 s hold did).
    if not hold_ttl.isdigit() or not MIN_HOLD_TTL_SECONDS <= int(hold_ttl) <= 86_400:
        raise ConfigError(
            f"HOLD_TTL_SECONDS={hold_ttl!r} must be a whole number of seconds from {MIN_HOLD_TTL_SECONDS} to 86400 "
            "(default 600): how long a call's credit hold lasts before it stops counting; it must outlast the longest "
            "call."
        )

    max_call = get("MAX_CALL_SECONDS", "3600")
    if not max_call.isdigit() or not 1 <= int(max_call) <= 86_400:
        raise ConfigError(
            f"MAX_CALL_SECONDS={max_call!r} must be a whole number of seconds from 1 to 86400 (default 3600): the "
            "longest a streamed call may run (its hold is extended until then; it is then stopped and billed for what "
            "it delivered)."
        )

    rounding = get("ROUNDING_POLICY", "per_call").strip().lower().replace("-", "_")
    if rounding not in ROUNDING_POLICIES:
        raise ConfigError(
            f"ROUNDING_POLICY={rounding!r} is not a rounding policy; use per_call (each call rounded up to whole "
            "credits, the default) or accrual (fractions of a credit kept per account)."
        )

    low_credits = get("LOW_BALANCE_CREDITS", "100")
    if not low_credits.isdigit():
        raise ConfigError(
            f"LOW_BALANCE_CREDITS={low_credits!r} must be a whole number of credits (0 turns the alert off); "
            "a user under it gets a low-balance alert."
        )
    confirm_above = get("GRANT_CONFIRM_ABOVE_CREDITS", "250000").replace("_", "").replace(",", "")
    if not confirm_above.isdigit():
        raise ConfigError(
            f"GRANT_CONFIRM_ABOVE_CREDITS={confirm_above!r} must be a whole number of credits (default 250000, "
            "$10,000 at $0.04): a grant past it needs a second confirmation (--yes-large on the command line)."
        )
    every = get("ALERTS_EVERY_SECONDS", "60")
    if not (every.isascii() and every.isdigit()) or int(every) > 86_400:
        raise ConfigError(
            f"ALERTS_EVERY_SECONDS={every!r} must be a whole number of seconds from 0 to 86400 (default 60): how often "
            "each process evaluates budget and low-balance alerts on its own (0 leaves it to `alerts run`)."
        )
    emails = tuple(e.strip() for e in get("ALERT_EMAIL_TO").split(",") if e.strip())
    bad = [e for e in (*emails, get("ALERT_EMAIL_FROM", "ai-credits@localhost")) if "@" not in e]
    if bad:
        raise ConfigError(f"{bad[0]!r} is not an email address; ALERT_EMAIL_TO is a comma-separated list of them.")
    smtp = get("SMTP_URL")
    if smtp and not smtp.startswith(("smtp://", "smtps://")):
        raise ConfigError(
            "SMTP_URL must look like smtp://user:password@host:587?starttls=true or smtps://user:password@host:465."
        )

    cache_age = get("RESPONSE_CACHE_MAX_AGE_SECONDS", str(7 * 86_400))
    if not cache_age.isdigit() or not 1 <= int(cache_age) <= 366 * 86_400:
        raise ConfigError(
            f"RESPONSE_CACHE_MAX_AGE_SECONDS={cache_age!r} must be a whole number of seconds from 1 to 31622400 "
            "(default 604800, a week): how long a cached text-to-speech or transcription answer is served again."
        )
    cache_mb = get("RESPONSE_CACHE_MAX_MB", "500")
    if not cache_mb.isdigit() or int(cache_mb) > 1_000_000:
        raise ConfigError(
            f"RESPONSE_CACHE_MAX_MB={cache_mb!r} must be a whole number of megabytes up to 1000000 (default 500; "
            "0 turns the response cache off): the oldest entries are dropped past it."
        )

    analytics = get("ANALYTICS_PATH")
    spool = Path(get("SETTLE_SPOOL_DIR")) if get("SETTLE_SPOOL_DIR") else None
    if spool is not None and spool.exists() and not spool.is_dir():
        raise ConfigError(
            f"SETTLE_SPOOL_DIR={str(spool)!r} is a file, not a folder: point it at a folder (made if missing) on a "
            "persistent disk, where charges wait while the database is unavailable, or unset it for the default."
        )
    return Settings(
        database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL),
        analytics_path=Path(analytics) if analytics else DATA_DIR / "analytics.duckdb",
        credit_usd=decimal_setting("CREDIT_USD", "0.04"),
        default_markup_pct=decimal_setting("DEFAULT_MARKUP_PCT", "100"),
        reporting_tz=tz,
        charge_cache_hits=get("CHARGE_CACHE_HITS", "true").lower() not in {"0", "false", "no"},
        response_cache_max_age_seconds=int(cache_age),
        response_cache_max_mb=int(cache_mb),
        response_cache_shared=get("RESPONSE_CACHE_SHARED", "false").lower() in {"1", "true", "yes"},
        rounding_policy=rounding,
        hold_ttl_seconds=int(hold_ttl),
        max_call_seconds=int(max_call),
        hf_endpoints_api_url=get("HF_ENDPOINTS_API_URL", "https://api.endpoints.huggingface.cloud/v2").rstrip("/"),
        hf_namespace=get("HF_NAMESPACE"),
        hf_bill_to=get("HF_BILL_TO"),
        minimax_group_id=get("MINIMAX_GROUP_ID"),
        auth_configured=isinstance(secrets.get("auth"), dict),
        smtp_url=Secret(smtp) if smtp else None,
        alert_email_from=get("ALERT_EMAIL_FROM", "ai-credits@localhost"),
        alert_email_to=emails,
        low_balance_credits=int(low_credits),
        grant_confirm_above_credits=int(confirm_above),
        low_balance_days=decimal_setting("LOW_BALANCE_DAYS", "3"),
        alerts_every_seconds=int(every),
        settle_spool_dir=spool,
        redis_url=get("REDIS_URL"),
        api_keys=keys,
        base_urls=urls,
    )
