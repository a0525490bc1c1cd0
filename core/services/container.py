"""The container: everything the product's interfaces use, built once per process.

`Services(db)` owns the database handle, the analytics copy, the one `BillingService` (with the analytics engine
plugged in for the specification's usage questions), the providers with their shared HTTP client, the generation flow,
the API keys' rate limiter (Redis when REDIS_URL is set), the automatic alert evaluation (`auto_alerts`: pages call it,
long-running processes start its timer, the app's with the spend anomalies) and, on first use, the dedicated-endpoints
manager; and it exposes one service per product word. Pages (cached with `st.cache_resource`), the command line (one
per run), the gateway (one per worker) and tests each build one; nothing else constructs an engine part.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
from sqlalchemy.exc import DBAPIError

from core import event_loop
from core.alerts.auto import AutoAlerts
from core.alerts.delivery import AlertDelivery, BackgroundDelivery
from core.alerts.hook import AlertHook
from core.analytics.copy import AnalyticsCopy
from core.billing.ledger import BillingService
from core.catalog.loader import LoadReport
from core.config import Settings, load_settings
from core.db.database import Database
from core.db.engine import database_problem
from core.endpoints.clock import Clock, system_clock
from core.endpoints.factory import make_service
from core.endpoints.lifecycle import HuggingFaceEndpointService
from core.errors import DatabaseError
from core.generate import GenerationFlow
from core.keys import make_rate_limiter
from core.providers.registry import AIProviderFactory


class Services:
    def __init__(
        self,
        db: Database | None = None,
        *,
        settings: Settings | None = None,
        http: httpx.Client | None = None,
        providers: AIProviderFactory | None = None,
        endpoints_http: httpx.Client | None = None,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = event_loop.sleep,
    ) -> None:
        from core.services.breakeven import BreakevenService
        from core.services.budgets import BudgetService
        from core.services.demo import DemoService
        from core.services.endpoints import EndpointService
        from core.services.generation import GenerationService
        from core.services.keys import KeyService
        from core.services.ledger import LedgerService
        from core.services.models import ModelService
        from core.services.optimize import OptimizeService
        from core.services.overview import OverviewService
        from core.services.playground import PlaygroundService
        from core.services.spend import SpendService
        from core.services.users import UserService

        self.db = db if db is not None else Database(settings or load_settings())
        self.settings = self.db.settings
        self.analytics = AnalyticsCopy(self.db.engine, self.settings)
        self.billing = BillingService(
            self.db.session_factory, self.settings, usage=self.analytics, on_write=self.analytics.written
        )
        self.providers = providers or AIProviderFactory(self.settings, http)
        # budget and low-balance alerts checked after each settle; new ones delivered on a background thread
        delivery = BackgroundDelivery(AlertDelivery(self.db.session_factory, self.settings))
        alerts = AlertHook(self.db.session_factory, self.settings, on_new=delivery)
        self.flow = GenerationFlow(self.settings, self.db.session_factory, self.billing, self.providers, alerts)
        # and every ALERTS_EVERY_SECONDS without anyone running `alerts run` (never on a charge's path); the spend
        # anomalies only where the timer is started with them (the app), from the copy synced at the pages' age limit
        self.auto_alerts = AutoAlerts(
            self.db.session_factory,
            self.settings,
            self.billing,
            hand_off=delivery,
            spend_queries=self.analytics.background_queries,
        )
        self.rate_limiter = make_rate_limiter(self.settings.redis_url)
        self.clock = clock
        self.sleep = sleep
        self._endpoints_http = endpoints_http
        self._endpoint_manager: HuggingFaceEndpointService | None = None
        self._lock = threading.Lock()

        self.users = UserService(self)
        self.ledger = LedgerService(self)
        self.spend = SpendService(self)
        self.overview = OverviewService(self)
        self.generation = GenerationService(self)
        self.playground = PlaygroundService(self)
        self.models = ModelService(self)
        self.endpoints = EndpointService(self)
        self.breakeven = BreakevenService(self)
        self.demo = DemoService(self)
        self.optimize = OptimizeService(self)
        self.budgets = BudgetService(self)
        self.keys = KeyService(self)

    def init(self) -> LoadReport:
        """Migrate the schema, load the catalogs (idempotent) and mark holds a stopped process left open as expired,
        so stored hold statuses are true from the start."""
        report = self.db.init()
        self.billing.expire_holds()
        return report

    def event_loop_problem(self) -> str | None:
        """Why the engine's calls should not run on an event loop (core.event_loop, as the gateway runs them), or None
        when they may. On PostgreSQL every commit waits for the server (1.7-1.9 ms a hold or settlement on this
        machine's disk), which on the loop would hold up every other call; behind a proxy the providers' client is
        httpx's own, whose waits block the loop."""
        if self.db.engine.dialect.name != "sqlite":
            return f"the database is {self.db.engine.dialect.name}, whose commits wait for the server"
        if not self.providers.waits_hand_back_the_loop():
            return "the providers' HTTP client is httpx's own (a proxy is configured), whose waits block"
        return None

    def calls_run_on_loop(self, mode: str) -> bool:
        """Whether an interface that can run the engine's calls on its event loop does (GATEWAY_ROUTES `mode`): `loop`
        always, `threads` never, `auto` unless `event_loop_problem` says why not."""
        return mode == "loop" or (mode == "auto" and self.event_loop_problem() is None)

    def resume_spool(self) -> None:
        """Post in the background the charges an earlier process kept while the database was unavailable
        (core/billing/spool.py): the long-running processes (the gateway, the app) call it as they start."""
        self.billing.resume_spool()

    def endpoint_manager(self) -> HuggingFaceEndpointService:
        """The dedicated-endpoints manager on the configured API (`ConfigError`, saying how to configure, when none)."""
        with self._lock:
            if self._endpoint_manager is None:
                self._endpoint_manager = make_service(
                    self.db.session_factory, self.settings, http=self._endpoints_http, clock=self.clock
                )
                self._endpoint_manager.sleep = self.sleep
            return self._endpoint_manager

    def database_error(self, exc: DBAPIError) -> DatabaseError:
        """The typed, one-sentence error for a database failure (unreachable, busy past the wait, a refused value)."""
        return DatabaseError(database_problem(exc, self.db.engine))

    def close(self) -> None:
        self.auto_alerts.stop()
        self.providers.close()
        self.rate_limiter.close()
        self.billing.close()
        self.db.dispose()
