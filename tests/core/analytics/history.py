"""A random but realistic source history for the analytics tests, and the pandas reference of what spend is.

`write_history` writes users, usage rows (successful, failed, sandbox, cache hits charged at catalog price and free
ones with their catalog cost in metadata), their usage debits, grants,
adjustments, endpoint uptime debits (with metadata naming the endpoint), refunds of usage and of uptime debits and a
refund of an adjustment, through SQLAlchemy like the app does (so SQLite stores money as REAL, PostgreSQL as NUMERIC).

`reference_spend` rebuilds the spend rows from the source tables with pandas, following the rules documented in
core/analytics/schema.py, independently of the DuckDB SQL.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pandas as pd
from sqlalchemy import func, insert, select

from core.db import Database
from core.db.models import AIModel, AIUsageLog, CreditTransaction, Hardware, InferenceEndpoint, User

NANO = Decimal("0.000000001")
CREDIT = Decimal("0.04")


@dataclass
class Written:
    usage: int
    ledger: int


def _users(rt: Database, n: int) -> list[int]:
    with rt.session() as s:
        have = list(s.scalars(select(User.id).order_by(User.id)))
        for i in range(len(have), n):
            u = User(email=f"User{i}@Example.test", name=f"User {i}", role="pm", credit_balance=0)
            s.add(u)
            s.flush()
            have.append(u.id)
    return have[:n]


def _endpoints(rt: Database, owners: list[int]) -> list[tuple[int, int | None, str]]:
    with rt.session() as s:
        existing = list(s.execute(select(InferenceEndpoint.id, InferenceEndpoint.ai_model_id, InferenceEndpoint.name)))
        if existing:
            return [tuple(r) for r in existing]
        hw = s.scalars(select(Hardware.id)).first()
        dedicated = list(s.scalars(select(AIModel.id).where(AIModel.deployment_type == "dedicated")))
        out = []
        for i, owner in enumerate(owners[:2]):
            e = InferenceEndpoint(
                name=f"ep-{i}",
                owner_id=owner,
                model_repo="meta-llama/Llama-3.1-8B-Instruct",
                ai_model_id=dedicated[i % len(dedicated)] if i == 0 else None,
                hardware_id=hw,
            )
            s.add(e)
            s.flush()
            out.append((e.id, e.ai_model_id, e.name))
    return out


def write_history(
    rt: Database,
    *,
    seed: int,
    rows: int,
    start: datetime,
    end: datetime,
    users: int = 6,
    extras: bool = True,
) -> Written:
    """Append `rows` usage events between `start` and `end` (naive UTC) and their ledger rows; with `extras`, also
    grants, adjustments, endpoint uptime debits and refunds."""
    rng = random.Random(seed)
    uids = _users(rt, users)
    with rt.session() as s:
        models = list(s.execute(select(AIModel.id, AIModel.provider, AIModel.category, AIModel.deployment_type)))
        next_tx = int(s.scalar(select(func.coalesce(func.max(CreditTransaction.id), 0)))) + 1
        next_usage = int(s.scalar(select(func.coalesce(func.max(AIUsageLog.id), 0)))) + 1
    eps = _endpoints(rt, uids) if extras else []
    span = (end - start).total_seconds()
    times = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(rows))
    usage_rows, tx_rows = [], []
    debits: list[tuple[int, int, int]] = []  # (tx id, user, amount) of refundable debits

    def tx(at: datetime, user: int, amount: int, kind: str, meta: dict | None, desc: str) -> int:
        nonlocal next_tx
        tx_rows.append(
            {
                "id": next_tx,
                "created_at": at,
                "user_id": user,
                "amount": amount,
                "transaction_type": kind,
                "description": desc,
                "balance_after": 0,
                "meta": meta,
            }
        )
        next_tx += 1
        return next_tx - 1

    if extras:
        for u in uids:
            tx(start, u, 10_000, "grant", None, "welcome grant")
    for at in times:
        mid, provider, category, deployment = rng.choice(models)
        user = rng.choice(uids)
        sandbox = provider == "sandbox"
        failed = rng.random() < 0.08
        nano = rng.choice([0, 1, 7, 39_999_999, 40_000_000, 40_000_001]) if rng.random() < 0.2 else 0
        nano = nano or int(rng.lognormvariate(16, 2))  # ~ $0.009 median, heavy tail
        base = Decimal(nano) * NANO
        markup = rng.choice([0, 50, 100, 100, 200])
        base_credits = -(-nano // 40_000_000)
        credits = -(-base_credits * (100 + markup) // 100)
        if failed:
            base, credits = Decimal(0), 0
        if sandbox:
            credits = 0
        cache_hit = (not failed) and rng.random() < 0.1
        usage_meta = None
        if (
            cache_hit and not sandbox and rng.random() < 0.5
        ):  # a free hit (CHARGE_CACHE_HITS=false), as generate logs it
            usage_meta = {"catalog_cost_usd": str(base)}
            base, credits = Decimal(0), 0
        tx_id = None
        if credits:
            tx_id = tx(at, user, -credits, "usage", {"usage_id": next_usage}, "usage")
            debits.append((tx_id, user, credits))
        usage_rows.append(
            {
                "id": next_usage,
                "created_at": at,
                "user_id": user,
                "ai_model_id": mid,
                "provider": provider,
                "category": category,
                "deployment_type": deployment,
                "base_cost_usd": base,
                "markup_pct": Decimal(markup),
                "cost_credits": credits,
                "charged_usd": Decimal(credits) * CREDIT,
                "status": "failed" if failed else "success",
                "error": "upstream 503" if failed else None,
                "cache_hit": cache_hit,
                "sandbox": sandbox,
                "requests_count": 1,
                "transaction_id": tx_id,
                "meta": usage_meta,
            }
        )
        next_usage += 1
    if extras:
        uptime: list[tuple[int, int, int]] = []
        for i in range(max(3, rows // 200)):
            ep_id, ep_model, ep_name = eps[i % len(eps)]
            owner = uids[i % 2]
            at = start + timedelta(seconds=rng.random() * span)
            nano = rng.randint(1, 5_000_000_000)
            base_credits = -(-nano // 40_000_000)
            amount = base_credits * 2
            meta = {"endpoint_id": ep_id, "endpoint_name": ep_name, "base_cost_usd": str(Decimal(nano) * NANO)}
            if ep_model is None:
                meta["model_id"] = "meta-llama/Llama-3.1-8B-Instruct"
            uptime.append((tx(at, owner, -amount, "endpoint_uptime", meta, f"uptime {ep_name}"), owner, amount))
        adj = tx(start + timedelta(seconds=span / 2), uids[0], -5, "adjustment", None, "correction")
        refundable = rng.sample(debits, min(len(debits), max(2, rows // 100))) + uptime[:2]
        for tx_id, user, amount in refundable:
            at = start + timedelta(seconds=rng.random() * span)
            part = amount if rng.random() < 0.7 else max(1, amount // 2)
            tx(at, user, part, "refund", {"refund_of": tx_id, "reason": "test"}, f"refund of {tx_id}")
        tx(end - timedelta(seconds=1), uids[0], 5, "refund", {"refund_of": adj}, "refund of an adjustment")
        tx(end - timedelta(seconds=2), uids[1], 3, "refund", {"reason": "no original"}, "refund without original")
    with rt.session() as s:
        if tx_rows:
            s.execute(insert(CreditTransaction), tx_rows)
        if usage_rows:
            s.execute(insert(AIUsageLog), usage_rows)
    return Written(len(usage_rows), len(tx_rows))


# ---- the reference ------------------------------------------------------------------------------------------------
def _frame(rt: Database, stmt: object) -> pd.DataFrame:
    with rt.session() as s:
        result = s.execute(stmt)  # type: ignore[call-overload]
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def reference_spend(rt: Database) -> pd.DataFrame:
    """The spend rows, from the source tables, with pandas. Money as Decimal quantized to 9 places."""
    u = _frame(rt, select(AIUsageLog.__table__))
    t = _frame(rt, select(CreditTransaction.__table__))
    models = _frame(rt, select(AIModel.id, AIModel.model_id, AIModel.provider, AIModel.category))
    eps = _frame(rt, select(InferenceEndpoint.id, InferenceEndpoint.ai_model_id, InferenceEndpoint.model_repo))

    def q(v: object) -> Decimal:
        return Decimal(str(v)).quantize(NANO)

    usage = pd.DataFrame(
        {
            "ts": pd.to_datetime(u["created_at"]),
            "user_id": u["user_id"].astype(int),
            "ai_model_id": u["ai_model_id"],
            "provider": u["provider"],
            "category": u["category"],
            "deployment_type": u["deployment_type"],
            "status": u["status"],
            "sandbox": u["sandbox"].astype(bool),
            "cache_hit": u["cache_hit"].astype(bool),
            "kind": "usage",
            "requests": u["requests_count"].astype(int),
            "credits": u["cost_credits"].astype(int),
            # a cache hit reached no provider: no provider cost; its catalog cost is the cache saving, and the cost
            # its credits were computed from (what rounding applies to) is the recorded one
            "base_cost_usd": [q(0 if h else v) for v, h in zip(u["base_cost_usd"], u["cache_hit"], strict=True)],
            "priced_usd": [q(v) for v in u["base_cost_usd"]],
            "cache_saving_usd": [
                q(((m if isinstance(m, dict) else json.loads(m or "{}")) or {}).get("catalog_cost_usd", v))
                if h
                else q(0)
                for v, h, m in zip(u["base_cost_usd"], u["cache_hit"], u["metadata"], strict=True)
            ],
        }
    )
    meta = [m if isinstance(m, dict) else (json.loads(m) if m else {}) for m in t["metadata"]]
    by_model_id = {}
    for r in models.itertuples():
        if r.model_id not in by_model_id or r.provider == "huggingface_endpoint":
            by_model_id[r.model_id] = r.id
    model_cat = dict(zip(models["id"], models["category"], strict=True))
    ep_model = dict(zip(eps["id"], eps["ai_model_id"], strict=True))
    ep_repo = dict(zip(eps["id"], eps["model_repo"], strict=True))
    usage_by_tx = {int(r.transaction_id): r for r in u.itertuples() if pd.notna(r.transaction_id)}
    tx_type = dict(zip(t["id"], t["transaction_type"], strict=True))
    rows: list[dict] = []
    uptime_rows: dict[int, dict] = {}
    for r, m in sorted(zip(t.itertuples(), meta, strict=True), key=lambda x: x[0].id):
        if r.transaction_type == "endpoint_uptime":
            ep = m.get("endpoint_id")
            model = m.get("ai_model_id")
            if model is None and ep in ep_model and pd.notna(ep_model[ep]):
                model = int(ep_model[ep])
            if model is None:
                model = by_model_id.get(m.get("model_id") or m.get("model") or m.get("model_repo"))
            if model is None and ep in ep_repo:
                model = by_model_id.get(ep_repo[ep])
            row = {
                "ts": pd.Timestamp(r.created_at),
                "user_id": int(r.user_id),
                "ai_model_id": model,
                "provider": "huggingface_endpoint",
                "category": model_cat.get(model, "(unknown)"),
                "deployment_type": "dedicated",
                "status": "success",
                "sandbox": False,
                "cache_hit": False,
                "kind": "endpoint_uptime",
                "requests": 0,
                "credits": -int(r.amount),
                "base_cost_usd": q(m.get("base_cost_usd", 0)),
                "priced_usd": q(m.get("base_cost_usd", 0)),
                "cache_saving_usd": q(0),
            }
            uptime_rows[int(r.id)] = row
            rows.append(row)
        elif r.transaction_type == "refund":
            orig = m.get("refund_of")
            otype = tx_type.get(orig)
            if otype not in (None, "usage", "endpoint_uptime"):
                continue
            src = None
            if otype == "usage" and orig in usage_by_tx:
                ur = usage_by_tx[orig]
                src = {
                    "ai_model_id": ur.ai_model_id,
                    "provider": ur.provider,
                    "category": ur.category,
                    "deployment_type": ur.deployment_type,
                    "status": ur.status,
                    "sandbox": bool(ur.sandbox),
                }
            elif otype == "endpoint_uptime":
                src = {k: uptime_rows[orig][k] for k in ("ai_model_id", "provider", "category", "deployment_type")}
                src.update(status="success", sandbox=False)
            src = src or {
                "ai_model_id": None,
                "provider": "(unknown)",
                "category": "(unknown)",
                "deployment_type": "(unknown)",
                "status": "success",
                "sandbox": False,
            }
            rows.append(
                {
                    "ts": pd.Timestamp(r.created_at),
                    "user_id": int(r.user_id),
                    **src,
                    "cache_hit": False,
                    "kind": "refund",
                    "requests": 0,
                    "credits": -int(r.amount),
                    "base_cost_usd": Decimal(0).quantize(NANO),
                    "priced_usd": Decimal(0).quantize(NANO),
                    "cache_saving_usd": Decimal(0).quantize(NANO),
                }
            )
    ledger = pd.DataFrame(rows, columns=list(usage.columns))
    out = pd.concat([usage, ledger], ignore_index=True)
    out["ai_model_id"] = out["ai_model_id"].astype("Int64")
    for col in ("sandbox", "cache_hit"):
        out[col] = out[col].astype(bool)
    for col in ("requests", "credits", "user_id"):
        out[col] = out[col].astype("int64")
    return out


def reference_measures(df: pd.DataFrame, credit: Decimal = CREDIT) -> dict:
    """The documented measures over a set of spend rows (Decimal money, exact)."""
    base = sum(df["base_cost_usd"], Decimal(0))
    credits = int(df["credits"].sum())
    revenue = Decimal(credits) * credit
    nano = int(credit / NANO)
    charged = df[~df["sandbox"]]  # a sandbox call is never charged: its rounding earns nothing
    priced = sum(charged["priced_usd"], Decimal(0))
    base_credits = sum(-(-int(b / NANO) // nano) for b in charged["priced_usd"])
    return {
        "requests": int(df["requests"].sum()),
        "failed": int(((df["status"] == "failed") & (df["kind"] == "usage")).sum()),
        "credits": credits,
        "base_cost_usd": base,
        "revenue_usd": revenue,
        "margin_usd": revenue - base,
        "rounding_uplift_usd": Decimal(base_credits) * credit - priced,
        "cache_hits": int(df["cache_hit"].sum()),
        "cache_saving_usd": sum(df["cache_saving_usd"], Decimal(0)),
    }
