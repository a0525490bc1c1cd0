"""Pick the management API the settings ask for: Hugging Face's, or the stand-in (`HF_ENDPOINTS_API_URL=local`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.config import DATA_DIR, Settings
from core.endpoints.client import HFEndpointsClient
from core.endpoints.clock import Clock, system_clock
from core.endpoints.lifecycle import HuggingFaceEndpointService
from core.endpoints.local import LOCAL_BASE_URL, LOCAL_HUB_URL, LocalEndpointsTransport
from core.errors import ConfigError

LOCAL = "local"
LOCAL_NAMESPACE = "local"
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
HOW_TO_CONFIGURE = (
    "Set HF_TOKEN (a Hugging Face token with write access to Inference Endpoints) and HF_NAMESPACE (your user or "
    "organization) in the environment or .streamlit/secrets.toml; or set HF_ENDPOINTS_API_URL=local to use the "
    "offline stand-in."
)


def is_local(settings: Settings) -> bool:
    return settings.hf_endpoints_api_url.strip().lower() == LOCAL


def local_state_path(settings: Settings) -> Path:
    """The stand-in's state file, one per database: its endpoints belong to that database's rows, so a second database
    in the same folder must not see (or collide with) the first one's endpoints.

    Beside a file-based SQLite database, named after it (`data/reports.endpoints_local.json` for `data/reports.db`;
    the default `data/app.db` keeps the name it always had, `data/endpoints_local.json`); for any other database,
    `data/endpoints_local-<hash of its URL>.json`."""
    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        return db.parent / ("endpoints_local.json" if db.name == "app.db" else f"{db.stem}.endpoints_local.json")
    where = url.render_as_string(hide_password=True)
    return DATA_DIR / f"endpoints_local-{hashlib.sha256(where.encode()).hexdigest()[:12]}.json"


def configuration_problem(settings: Settings) -> str | None:
    """Why endpoints cannot be managed with these settings (None when they can)."""
    if is_local(settings):
        return None
    needed = (("HF_TOKEN", settings.api_key("huggingface_endpoint")), ("HF_NAMESPACE", settings.hf_namespace))
    missing = [what for what, ok in needed if not ok]
    if missing:
        return f"Dedicated endpoints are not configured: {' and '.join(missing)} missing. {HOW_TO_CONFIGURE}"
    return None


def make_client(
    settings: Settings, *, http: httpx.Client | None = None, clock: Clock = system_clock
) -> HFEndpointsClient:
    """A client for the configured API; raises `ConfigError` (with how to fix it) when it is not configured."""
    token = settings.api_key("huggingface_endpoint")
    if is_local(settings):
        transport = LocalEndpointsTransport(local_state_path(settings), clock)
        return HFEndpointsClient(
            http or httpx.Client(transport=transport),
            LOCAL_BASE_URL,
            settings.hf_namespace or LOCAL_NAMESPACE,
            None,  # the stand-in needs no token, and a real one is never sent anywhere it is not needed
            hub_url=LOCAL_HUB_URL,
        )
    problem = configuration_problem(settings)
    if problem:
        raise ConfigError(problem)
    return HFEndpointsClient(
        http or httpx.Client(timeout=HTTP_TIMEOUT), settings.hf_endpoints_api_url, settings.hf_namespace, token
    )


def make_service(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    http: httpx.Client | None = None,
    clock: Clock = system_clock,
) -> HuggingFaceEndpointService:
    """The lifecycle service on a database and the configured API (`ConfigError` when unconfigured)."""
    client = make_client(settings, http=http, clock=clock)
    return HuggingFaceEndpointService(session_factory, client, settings, clock=clock)
