"""PostgreSQL: a call's hold in one round trip, and its settlement's lock and read in one

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 19:40:00

On PostgreSQL every statement of the ledger is a round trip to the server and a wake-up of its process on both sides;
a gateway call took 19 of them. Two functions fold the ledger's hot statements into one call each. They are VOLATILE
plpgsql, so each statement inside takes a fresh snapshot (READ COMMITTED): the reads after the account's row lock see
every hold and debit committed before the lock was granted, as the two separate statements they replace did.

- `ledger_reserve(...)`: lock the account, then (when no budget covers the call and the API key, if any, is the
  account's and has no monthly limit) return the hold already under the key, or expire the account's stale holds and
  insert the new hold if the available balance covers it. Sent alone in autocommit, so the hold is one round trip.
  It writes nothing and answers 'checks' when a budget or a key limit must be checked; `core.billing.ledger` then
  takes its general path (the budgets' counters locked in order, the key's month summed), unchanged. Its rules are
  those of `BillingService.reserve`; tests run the two paths side by side.
- `ledger_settle_state(...)`: lock the hold's account, then read the hold, the account's held credits, any
  transaction already under the hold's key and whether the model is in the catalog (what `settle` decides on).

Both lock the account FOR NO KEY UPDATE, as the ledger's statements do (core/billing/accounts_sql.py): FOR UPDATE
also blocks the foreign-key checks of rows naming the user (a budget set for them, a team membership, a failed call's
usage row), which deadlocked with ledger writers waiting for those writers in turn.

SQLite is untouched: it has no round trips, and its BEGIN IMMEDIATE already serialises writers.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Output columns are prefixed (o_): plpgsql makes them variables, which would shadow the tables' own column names.
RESERVE = """
CREATE FUNCTION ledger_reserve(
    p_uid integer, p_key varchar, p_credits bigint, p_now timestamp, p_expires timestamp, p_api_key_id integer
) RETURNS TABLE (
    o_outcome text, o_email varchar, o_balance bigint, o_markup numeric, o_held bigint,
    o_hold_id bigint, o_hold_credits bigint, o_hold_status varchar, o_hold_created timestamp,
    o_hold_expires timestamp, o_hold_api_key_id integer
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    acct record;
    found_hold record;
    v_held bigint;
    v_id bigint;
BEGIN
    SELECT u.email, u.credit_balance, u.developer_markup_pct INTO acct FROM users u WHERE u.id = p_uid FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'no_user';
        RETURN NEXT;
        RETURN;
    END IF;
    o_email := acct.email;
    o_balance := acct.credit_balance;
    o_markup := acct.developer_markup_pct;
    -- the budgets in force that cover the call (core.billing.budget_sql.COVERS_USER), or a key to check
    IF EXISTS (
        SELECT 1 FROM budgets b
        WHERE b.removed_at IS NULL AND (b.period = 'monthly' OR b.starts_at <= p_now)
          AND (b.user_id = p_uid
               OR b.team_id = (SELECT m.team_id FROM team_members m WHERE m.user_id = p_uid)
               OR b.api_key_id = p_api_key_id)
    ) OR (p_api_key_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM api_keys k WHERE k.id = p_api_key_id AND k.user_id = p_uid AND k.monthly_credits IS NULL
    )) THEN
        o_outcome := 'checks';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT h.id, h.credits, h.status, h.created_at, h.expires_at, h.api_key_id INTO found_hold
    FROM credit_holds h WHERE h.user_id = p_uid AND h.idempotency_key = p_key;
    IF FOUND THEN
        o_outcome := 'existing';
        o_hold_id := found_hold.id;
        o_hold_credits := found_hold.credits;
        o_hold_status := found_hold.status;
        o_hold_created := found_hold.created_at;
        o_hold_expires := found_hold.expires_at;
        o_hold_api_key_id := found_hold.api_key_id;
        RETURN NEXT;
        RETURN;
    END IF;
    UPDATE credit_holds SET status = 'expired' WHERE user_id = p_uid AND status = 'held' AND expires_at <= p_now;
    SELECT COALESCE(SUM(o.credits), 0) INTO v_held
    FROM credit_holds o WHERE o.user_id = p_uid AND o.status = 'held' AND o.expires_at > p_now;
    o_held := v_held;
    IF p_credits > 0 AND p_credits > acct.credit_balance - v_held THEN
        o_outcome := 'insufficient';
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO credit_holds (user_id, credits, idempotency_key, status, created_at, expires_at, api_key_id)
    VALUES (p_uid, p_credits, p_key, 'held', p_now, p_expires, p_api_key_id) RETURNING id INTO v_id;
    o_outcome := 'held';
    o_hold_id := v_id;
    o_hold_credits := p_credits;
    o_hold_status := 'held';
    o_hold_created := p_now;
    o_hold_expires := p_expires;
    o_hold_api_key_id := p_api_key_id;
    RETURN NEXT;
END
$$
"""

SETTLE_STATE = """
CREATE FUNCTION ledger_settle_state(p_hold_id bigint, p_model_id integer, p_now timestamp)
RETURNS TABLE (
    o_id integer, o_email varchar, o_balance bigint, o_markup numeric, o_credits bigint, o_key varchar,
    o_status varchar, o_expires timestamp, o_open boolean, o_held bigint, o_existing bigint, o_model_known boolean
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM users u WHERE u.id = (SELECT h.user_id FROM credit_holds h WHERE h.id = p_hold_id) FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT u.id, u.email, u.credit_balance, u.developer_markup_pct, h.credits, h.idempotency_key, h.status,
           h.expires_at, h.expires_at > p_now,
           (SELECT COALESCE(SUM(o.credits), 0)::bigint FROM credit_holds o
            WHERE o.user_id = h.user_id AND o.status = 'held' AND o.expires_at > p_now),
           (SELECT t.id FROM credit_transactions t
            WHERE t.user_id = h.user_id AND t.idempotency_key = h.idempotency_key),
           EXISTS (SELECT 1 FROM ai_models m WHERE m.id = p_model_id)
    FROM credit_holds h JOIN users u ON u.id = h.user_id WHERE h.id = p_hold_id;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(RESERVE)
        op.execute(SETTLE_STATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ledger_settle_state(bigint, integer, timestamp)")
        op.execute("DROP FUNCTION IF EXISTS ledger_reserve(integer, varchar, bigint, timestamp, timestamp, integer)")
