"""A call routed to a dedicated endpoint that is scaled to zero wakes it up, and its uptime is charged to the
endpoint's owner whatever their balance: while the owner is overdrawn the call is refused before it is sent, as a
create or a resume is (`OwnerOverdrawnError`), so no GPU starts on credits they do not have."""

from __future__ import annotations

from sqlalchemy import Connection, or_, select

from core.catalog.types import ModelPrice
from core.db.models import InferenceEndpoint, User
from core.endpoints.errors import OwnerOverdrawnError

SCALED_TO_ZERO = "scaledToZero"


def refuse_overdrawn_wake(conn: Connection, model: ModelPrice, url: str | None) -> None:
    """Raise `OwnerOverdrawnError` when the call of `model` at `url` would wake a scaled-to-zero endpoint whose owner
    is overdrawn. The endpoint is the live one at that URL; an endpoint that shows no URL while scaled to zero (as
    the local stand-in does) is found by the model it serves."""
    wanted = (url or "").rstrip("/")
    serves_model = or_(InferenceEndpoint.model_repo == model.model_id, InferenceEndpoint.ai_model_id == model.id)
    stmt = (
        select(InferenceEndpoint.name, InferenceEndpoint.state, InferenceEndpoint.url, User.email, User.credit_balance)
        .join(User, User.id == InferenceEndpoint.owner_id)
        .where(
            InferenceEndpoint.deleted_at.is_(None),
            or_(InferenceEndpoint.url == wanted, serves_model) if wanted else serves_model,
        )
    )
    rows = list(conn.execute(stmt))
    routed = [r for r in rows if wanted and (r.url or "").rstrip("/") == wanted] or [r for r in rows if not r.url]
    for r in routed:
        if r.state == SCALED_TO_ZERO and r.credit_balance < 0:
            raise OwnerOverdrawnError(r.email, r.credit_balance, f"woken up ({r.name})")
