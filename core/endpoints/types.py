"""Frozen views of what the management API returns, detached from its JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

STATES = ("pending", "initializing", "updating", "updateFailed", "running", "paused", "failed", "scaledToZero")
# Local only: the endpoint no longer exists upstream. Never billed.
DELETED = "deleted"
# Replicas cost money in these states (the reference: "charged while initializing and running"). `updating` is
# included because the running replicas keep serving, and keep being billed, while a new revision rolls out.
BILLABLE_STATES = frozenset({"initializing", "running", "updating"})


def parse_api_time(value: Any) -> datetime | None:
    """An ISO-8601 time from the API as naive UTC (the database's convention); None when absent or unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def format_api_time(value: datetime) -> str:
    """Naive UTC -> the API's `2026-01-01T10:00:00.000Z` form."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass(frozen=True, kw_only=True)
class RemoteEndpoint:
    """One endpoint as the API describes it (`GET /endpoint/{namespace}/{name}`)."""

    name: str
    state: str
    url: str | None
    repository: str
    framework: str | None
    task: str | None
    revision: str | None
    accelerator: str
    instance_type: str
    instance_size: str
    min_replica: int
    max_replica: int
    scale_to_zero_timeout: int | None
    ready_replica: int
    target_replica: int
    vendor: str
    region: str
    type: str
    message: str | None
    created_at: datetime | None
    updated_at: datetime | None
    raw: dict[str, Any]

    @property
    def billed_replicas(self) -> int:
        """Replicas being paid for now: the target while starting or running (at least one), else none."""
        if self.state not in BILLABLE_STATES:
            return 0
        return max(self.target_replica, self.ready_replica, 1)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> RemoteEndpoint:
        compute = raw.get("compute") or {}
        scaling = compute.get("scaling") or {}
        model = raw.get("model") or {}
        status = raw.get("status") or {}
        provider = raw.get("provider") or {}
        timeout = scaling.get("scaleToZeroTimeout")
        return cls(
            name=str(raw.get("name", "")),
            state=str(status.get("state", "")),
            url=status.get("url") or None,
            repository=str(model.get("repository", "")),
            framework=model.get("framework"),
            task=model.get("task"),
            revision=model.get("revision"),
            accelerator=str(compute.get("accelerator", "")),
            instance_type=str(compute.get("instanceType", "")),
            instance_size=str(compute.get("instanceSize", "")),
            min_replica=int(scaling.get("minReplica") or 0),
            max_replica=int(scaling.get("maxReplica") or 0),
            scale_to_zero_timeout=int(timeout) if timeout is not None else None,
            ready_replica=int(status.get("readyReplica") or 0),
            target_replica=int(status.get("targetReplica") or 0),
            vendor=str(provider.get("vendor", "")),
            region=str(provider.get("region", "")),
            type=str(raw.get("type", "")),
            message=status.get("message") or None,
            created_at=parse_api_time(status.get("createdAt")),
            updated_at=parse_api_time(status.get("updatedAt")),
            raw=raw,
        )


@dataclass(frozen=True, kw_only=True)
class ComputeOffer:
    """One hardware option from `GET /provider/{namespace}` with its live list price."""

    id: str  # e.g. aws-us-east-1-nvidia-l4-x1
    vendor: str
    region: str
    accelerator: str
    instance_type: str
    instance_size: str
    num_accelerators: int
    memory_gb: int | None
    gpu_memory_gb: int | None
    price_per_hour: Decimal | None
    status: str

    @classmethod
    def from_raw(cls, raw: dict[str, Any], vendor: str, region: str) -> ComputeOffer:
        price = raw.get("pricePerHour")
        try:
            # str() first: the API sends JSON numbers, and Decimal(float) would carry binary noise.
            hourly = Decimal(str(price)) if price is not None else None
        except InvalidOperation:
            hourly = None

        def opt_int(key: str) -> int | None:
            value = raw.get(key)
            return int(value) if isinstance(value, int | float) else None

        return cls(
            id=str(raw.get("id", "")),
            vendor=vendor,
            region=region,
            accelerator=str(raw.get("accelerator", "")),
            instance_type=str(raw.get("instanceType", "")),
            instance_size=str(raw.get("instanceSize", "")),
            num_accelerators=int(raw.get("numAccelerators") or 0),
            memory_gb=opt_int("memoryGb"),
            gpu_memory_gb=opt_int("gpuMemoryGb"),
            price_per_hour=hourly,
            status=str(raw.get("status", "")),
        )


# The Hub's pipeline tag (an endpoint's task) of each catalog category.
TASK_BY_CATEGORY = {
    "chat": "text-generation",
    "tts": "text-to-speech",
    "speech_to_text": "automatic-speech-recognition",
    "image": "text-to-image",
}


@dataclass(frozen=True, kw_only=True)
class HubModel:
    """What the Hub's model info (`GET https://huggingface.co/api/models/{repo}`) says about a repository."""

    id: str  # the canonical name, e.g. meta-llama/Llama-3.1-8B-Instruct
    pipeline_tag: str | None  # text-generation, text-to-speech, ...
    private: bool
    gated: bool  # access must be requested on the Hub ("auto" or "manual"); false when open
    simulated: bool = False  # answered by the offline stand-in, not the Hub

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> HubModel:
        tag = raw.get("pipeline_tag")
        return cls(
            id=str(raw.get("id") or raw.get("modelId") or ""),
            pipeline_tag=str(tag) if tag else None,
            private=bool(raw.get("private", False)),
            gated=raw.get("gated") not in (None, False, "false"),
            simulated=bool(raw.get("simulated", False)),
        )
