"""A shorter way through FastAPI for the JSON routes (`JsonRoute`, the routers' route class): a well-formed request
(`Content-Type: application/json`, a body that parses and validates, valid headers) is validated with FastAPI's own
functions and handed to the route; anything else goes through FastAPI's whole request handler, which answers it as it
always did (the same validation errors, the same 400 for a body that is not JSON). FastAPI's handler spent about 50 µs
of CPU (135k instructions) per chat completion beyond this (its generic dependency solving, content-type parsing,
telemetry hooks; measured in-process with the engine stubbed), some 2% of a call. Routes and the OpenAPI schema are
FastAPI's: only the handler of a request that passes is shorter. The same short way (`Lane`) is what the gateway's
front door (`app.Gateway`) calls for the chat routes, without FastAPI's middleware stack in front of it."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import routing
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.params import Form
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from starlette.requests import Request
from starlette.responses import Response


class JsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        full = super().get_route_handler()
        route: Any = self  # or, as FastAPI's own handler takes it, the route as an including router sees it
        effective = routing._effective_route_context_var.get()
        if effective is not None and effective.original_route is self:
            route = effective
        lane = Lane.of(route)
        if lane is None:
            return full

        async def handler(request: Request) -> Response:
            if request.headers.get("content-type") != "application/json" or get_telemetry_data() is not None:
                return await full(request)
            values = await lane.arguments(await request.body(), request.headers)
            if values is None:
                return await full(request)  # FastAPI states the errors as it always has
            return await lane.answer(values, request)

        return handler

    def lane(self) -> Lane | None:
        """The short way to this route for the gateway's front door (`app.Gateway`), or None where it has none: the
        route as declared (the gateway includes its routers with no prefix or dependencies of their own)."""
        return Lane.of(self)


class Lane:
    """How a plain JSON route is called without FastAPI's request handler: one body model, header parameters, the
    request, and nothing else (no path or query parameters, no dependencies, a coroutine function)."""

    def __init__(self, route: Any) -> None:
        d = route.dependant
        self.call = d.call
        self.body_fields = d.body_params
        self.headers_wanted = d.header_params
        self.request_name = d.request_param_name
        self.embed = route._embed_body_fields
        # the header names that can carry a header parameter: with none of them in a request, every such parameter
        # takes its default and FastAPI's generic reading of them is skipped (a quarter of this handler's samples in a
        # py-spy profile under 16 clients, for the one optional Idempotency-Key header)
        self.header_names = {n.lower() for f in d.header_params for n in (f.alias, f.name, f.name.replace("_", "-"))}
        self.defaults = {f.name: f.get_default() for f in d.header_params}

    @classmethod
    def of(cls, route: Any) -> Lane | None:
        d = route.dependant
        body_fields = d.body_params
        plain = (
            d.call is not None
            and len(body_fields) == 1
            and not isinstance(body_fields[0].field_info, Form)
            and not (d.path_params or d.query_params or d.cookie_params or d.dependencies)
            and not (d.websocket_param_name or d.http_connection_param_name or d.response_param_name)
            and not (d.background_tasks_param_name or d.security_scopes_param_name)
            and d.request_param_name is not None
            and inspect.iscoroutinefunction(d.call)
            and all(not f.field_info.is_required() for f in d.header_params)
        )
        return cls(route) if plain else None

    async def arguments(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
        """The route's arguments from a JSON body and the request's headers, validated with FastAPI's own functions
        (so exactly as its handler validates them); None when anything is wrong, for FastAPI's handler to answer."""
        try:
            data = json.loads(body) if body else None
            if data is None:
                return None
            if any(name in self.header_names for name in headers):
                values, errors = request_params_to_args(self.headers_wanted, headers)
            else:
                values, errors = dict(self.defaults), []
            body_values, body_errors = await request_body_to_args(self.body_fields, data, self.embed)
        except Exception:  # FastAPI's handler answers it (400 for a body that does not parse)
            return None
        if errors or body_errors:
            return None
        values.update(body_values)
        return values

    async def answer(self, values: dict[str, Any], request: Request) -> Response:
        values[self.request_name] = request
        response = await self.call(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{self.call.__name__} must return a Response")  # every gateway route does
        return response
