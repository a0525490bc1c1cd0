"""What the service hands to pages and the command line: frozen values, detached from the database session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.endpoints.types import BILLABLE_STATES

CENT = Decimal("0.01")


@dataclass(frozen=True, kw_only=True)
class EndpointView:
    id: int
    name: str
    owner_id: int
    owner_email: str
    model_repo: str
    hardware_id: str  # T4, L4, A10G, A100
    instance_type: str  # nvidia-t4, ...
    hourly_usd: Decimal  # per replica, from the hardware catalog: what uptime is billed at
    min_replicas: int
    max_replicas: int
    scale_to_zero_minutes: int | None
    state: str
    replicas: int  # replicas being paid for now (0 unless initializing/running/updating)
    url: str | None
    vendor: str
    region: str
    created_at: datetime
    deleted_at: datetime | None
    observed_at: datetime | None
    metered_until: datetime | None

    @property
    def billing_now(self) -> bool:
        return self.state in BILLABLE_STATES

    # The specification's names for the same fields (`endpoint.endpoint_name`, `.status`, `.endpoint_url`,
    # `.hourly_cost_usd`), so code written from it reads this view unchanged.
    @property
    def endpoint_name(self) -> str:
        return self.name

    @property
    def status(self) -> str:
        return self.state

    @property
    def endpoint_url(self) -> str | None:
        return self.url

    @property
    def hourly_cost_usd(self) -> Decimal:
        """The hourly rate per replica in dollars and cents, more digits only when the rate has them: 0.60, 0.033."""
        cents = self.hourly_usd.quantize(CENT)
        return cents if cents == self.hourly_usd else self.hourly_usd.normalize()

    @property
    def cost_per_hour_now_usd(self) -> Decimal:
        """What the endpoint costs per hour in its current state (hourly rate x billed replicas)."""
        return self.hourly_usd * self.replicas if self.billing_now else Decimal(0)


@dataclass(frozen=True, kw_only=True)
class EventView:
    endpoint_id: int
    at: datetime
    state: str
    replicas: int
    note: str | None


@dataclass(frozen=True, kw_only=True)
class HardwareOption:
    id: str
    instance_type: str
    gpu_memory_gb: int
    hourly_usd: Decimal  # what the product bills per replica-hour (catalog)
    list_hourly_usd: Decimal | None  # Hugging Face's published list price (catalog)
    live_hourly_usd: Decimal | None  # today's price from the management API, when it answered
    available: bool | None  # None when the live list could not be read

    @property
    def label(self) -> str:
        live = f", HF live ${self.live_hourly_usd:.2f}/h" if self.live_hourly_usd is not None else ""
        names = f"{self.id} · {self.instance_type}"
        return f"{names} ({self.gpu_memory_gb} GB) - ${self.hourly_usd:.2f}/h per replica{live}"


@dataclass(frozen=True, kw_only=True)
class RefreshReport:
    endpoints: list[EndpointView]
    errors: dict[str, str]  # endpoint name -> why it could not be refreshed
