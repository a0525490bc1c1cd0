"""Hugging Face Inference Endpoints: the management client, its local stand-in, the lifecycle service and uptime
metering into the credits ledger."""

from core.endpoints.client import EndpointSpec, HFEndpointsClient
from core.endpoints.clock import Clock, ManualClock, system_clock
from core.endpoints.errors import (
    EndpointAuthError,
    EndpointConflictError,
    EndpointError,
    EndpointFailedError,
    EndpointNotFoundError,
    EndpointPermissionError,
    EndpointRequestError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    InvalidEndpointNameError,
    OwnerOverdrawnError,
    RepositoryNotFoundError,
)
from core.endpoints.factory import configuration_problem, is_local, local_state_path, make_client, make_service
from core.endpoints.lifecycle import HuggingFaceEndpointService, UnknownEndpointError, validate_endpoint_name
from core.endpoints.local import LocalEndpointsTransport, LocalTimings
from core.endpoints.types import BILLABLE_STATES, STATES, ComputeOffer, HubModel, RemoteEndpoint
from core.endpoints.uptime import StateChange, UptimeBucket, hourly_buckets, replicas_per_minute, uptime_cost
from core.endpoints.views import EndpointView, EventView, HardwareOption, RefreshReport

__all__ = [
    "BILLABLE_STATES",
    "STATES",
    "Clock",
    "ComputeOffer",
    "EndpointAuthError",
    "EndpointConflictError",
    "EndpointError",
    "EndpointFailedError",
    "EndpointNotFoundError",
    "EndpointPermissionError",
    "EndpointRequestError",
    "EndpointSpec",
    "EndpointTimeoutError",
    "EndpointUnavailableError",
    "EndpointView",
    "EventView",
    "HFEndpointsClient",
    "HardwareOption",
    "HubModel",
    "HuggingFaceEndpointService",
    "InvalidEndpointNameError",
    "LocalEndpointsTransport",
    "LocalTimings",
    "ManualClock",
    "OwnerOverdrawnError",
    "RefreshReport",
    "RemoteEndpoint",
    "RepositoryNotFoundError",
    "StateChange",
    "UnknownEndpointError",
    "UptimeBucket",
    "configuration_problem",
    "hourly_buckets",
    "is_local",
    "local_state_path",
    "make_client",
    "make_service",
    "replicas_per_minute",
    "system_clock",
    "uptime_cost",
    "validate_endpoint_name",
]
