"""`JsonRoute` answers every request exactly as FastAPI's own route does: the same result for a well-formed call, and
the same status and error body for one that is not (bad JSON, wrong types, a header too long, another content type,
no body), which it leaves to FastAPI's handler."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from core.gateway.json_route import JsonRoute
from core.gateway.threads import in_thread


class Body(BaseModel):
    model: str = Field(min_length=1)
    n: int = Field(1, ge=1)
    tags: list[str] | None = None


@in_thread
def echo(
    body: Body, request: Request, key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=5)] = None
) -> Response:
    return JSONResponse({"body": body.model_dump(), "key": key, "path": request.url.path})


def client(route_class: type[APIRoute]) -> TestClient:
    router = APIRouter(prefix="/v1", route_class=route_class)
    router.add_api_route("/echo", echo, methods=["POST"])
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


JSON = {"content-type": "application/json"}
CASES: list[tuple[str, dict[str, str], bytes]] = [
    ("well formed", JSON, b'{"model": "m", "n": 2, "tags": ["a"]}'),
    ("idempotency key", {**JSON, "Idempotency-Key": "abc"}, b'{"model": "m"}'),
    ("key too long", {**JSON, "Idempotency-Key": "abcdefgh"}, b'{"model": "m"}'),
    ("not JSON", JSON, b'{"model": '),
    ("not UTF-8", JSON, b'{"model": "\xff"}'),
    ("a list", JSON, b'[{"model": "m"}]'),
    ("null", JSON, b"null"),
    ("out of range", JSON, b'{"model": "m", "n": 0}'),
    ("missing field", JSON, b'{"n": 3}'),
    ("no body", JSON, b""),
    ("no content type", {}, b'{"model": "m"}'),
    ("charset", {"content-type": "application/json; charset=utf-8"}, b'{"model": "m"}'),
    ("+json", {"content-type": "application/vnd.api+json"}, b'{"model": "m"}'),
    ("text", {"content-type": "text/plain"}, b'{"model": "m"}'),
]


@pytest.mark.parametrize(("case", "headers", "body"), CASES, ids=[c[0] for c in CASES])
def test_json_route_answers_as_fastapi_does(case: str, headers: dict[str, str], body: bytes) -> None:
    answers: list[tuple[int, Any]] = []
    for route_class in (APIRoute, JsonRoute):
        with client(route_class) as c:
            r = c.post("/v1/echo", content=body, headers=headers)
            answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1]
    if case in ("well formed", "idempotency key"):
        assert answers[1][0] == 200
