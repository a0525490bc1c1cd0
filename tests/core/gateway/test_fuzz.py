"""The gateway's OpenAPI schema, fuzzed with schemathesis against the running gateway: no malformed request gets a
500 or a 2xx, and none writes anything (no hold, no usage row, no ledger row, no stored reply); well-formed requests
with random values get no 500 either."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from core.access import SYSTEM
from core.db.models import AIUsageLog, CreditHold, CreditTransaction, IdempotentReply
from core.services import Services
from core.users import add_user
from tests.conftest import make_runtime
from tests.core.gateway.conftest import upstream_settings
from tests.support.gateway import gateway_in_thread
from tests.support.loopback import loopback_openai

FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, str, str]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with loopback_openai() as (base, _state):
        db = make_runtime(f"sqlite:///{tmp / 'app.db'}", tmp, **upstream_settings(base))
        services = Services(db)
        with db.session() as s:
            user = add_user(s, email="fuzz@x.io", name="Fuzz", role="pm")
        services.ledger.grant(SYSTEM, user.id, 1_000_000, confirm_large=True)
        key = services.keys.create(SYSTEM, user.id, "fuzz").secret
        with gateway_in_thread(services) as url:
            yield services, url, key
        services.close()


def _schema(url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())


def _writes(services: Services) -> dict[str, int]:
    with services.db.session() as s:
        return {
            "holds": s.scalar(select(func.count()).select_from(CreditHold)) or 0,
            "usage rows": s.scalar(select(func.count()).select_from(AIUsageLog)) or 0,
            "ledger rows": s.scalar(select(func.count()).select_from(CreditTransaction)) or 0,
            "replies": s.scalar(select(func.count()).select_from(IdempotentReply)) or 0,
        }


def test_malformed_requests_get_4xx_and_write_nothing(fuzzed: tuple[Services, str, str]) -> None:
    services, url, key = fuzzed
    before = _writes(services)
    seen: dict[str, set[int]] = {}
    # GET /v1/models takes nothing that could be malformed (the key is always a valid one here)
    negative = _schema(url).exclude(path="/v1/models").as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)

    @FUZZ
    @given(case=negative)
    def malformed(case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
        response = case.call(base_url=url, timeout=30)
        seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
        assert 400 <= response.status_code < 500, (case.method, case.path, case.body, response.text[:300])

    malformed()
    assert len(seen) == 10, seen  # every route that takes input was fuzzed (GET /v1/models/{model_id} too)
    assert _writes(services) == before


def test_well_formed_requests_never_get_a_500(fuzzed: tuple[Services, str, str]) -> None:
    _services, url, key = fuzzed

    @FUZZ
    @given(case=_schema(url).as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    def well_formed(case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
        response = case.call(base_url=url, timeout=30)
        assert response.status_code != 500, (case.method, case.path, case.body, response.text[:300])
        assert "Traceback" not in response.text

    well_formed()
