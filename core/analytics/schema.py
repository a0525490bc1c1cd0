"""The analytics store's DuckDB schema: lean copies of the source tables and the `spend` view built on them.

Bump SCHEMA_VERSION whenever a table, a column or the derivation of `ledger_spend` changes: a store written with
another version is rebuilt in full on the next sync.

What counts as spend (the `spend` view), documented once here:
- every `ai_usage_log` row (successful, failed and sandbox calls; failed and sandbox rows carry 0 credits, sandbox rows
  the would-be base cost, so they are filtered out of money totals by default), with the API key it came through and
  its source (playground, cli, api);
- a response-cache hit (`cache_hit`) never reached a provider: its base cost (provider cost) is 0, as the source row
  stores it, and its catalog cost (what the call would have cost: its metadata `catalog_cost_usd`; a row written
  before migration 0012 kept it in `base_cost_usd`) is its `cache_saving_nano`. The credits it was charged stay
  revenue; `priced_nano` keeps the cost the credits were computed from (the catalog cost of a hit that was charged
  anything, 0 for a free one), which the rounding uplift and the pricing lab's replay are computed from;
- every `endpoint_uptime` ledger debit, as spend of its owner (the ledger row's user) and of the endpoint's model
  (metadata `ai_model_id`, else the endpoint's model, else a catalog model named by metadata `model_id`/`model`/
  `model_repo`), provider `huggingface_endpoint`, deployment `dedicated`; its base cost is metadata `base_cost_usd`;
  it is dated by the hour it covers (metadata `from`), not by when `meter` posted it: three days of uptime metered at
  once are spend on those three days;
- every `refund` ledger credit that gives back a usage or endpoint uptime debit (metadata `refund_of`), as negative
  credits on the refund's own day, attributed to the refunded call's model, provider, category and status; its base
  cost is 0 (the provider is not refunded, so a refund lowers revenue and margin). Refunds of an adjustment are not
  spend and are left out; a refund whose original debit is unknown counts against its user with no model.
Grants, top-ups and adjustments are not spend. Usage debits are not counted twice: their usage rows already are.

`daily_spend` is `spend` summed per calendar day in one time zone (the reporting time zone of the sync that built it)
and per every column a filter can name; questions in that time zone over whole days read it instead of the rows
(about 20x fewer at the demo's shape). It is rebuilt from the changed days on every sync, and stored sorted by user
then day (new days are appended in that order), so a question about one user reads few of its row groups.
"""

from __future__ import annotations

SCHEMA_VERSION = 11

TABLES_DDL = """
CREATE TABLE sync_state (
    schema_version INTEGER NOT NULL,
    source TEXT NOT NULL,            -- fingerprint of the source database (no password)
    synced_at TIMESTAMP NOT NULL,    -- UTC: the store holds every source row committed before this instant
    usage_watermark BIGINT NOT NULL, -- highest ai_usage_log.id copied
    usage_anchor TEXT,               -- created_at of that row in the source, to detect a replaced history
    ledger_watermark BIGINT NOT NULL,
    ledger_anchor TEXT,
    usage_rows BIGINT NOT NULL,
    ledger_rows BIGINT NOT NULL,
    rollup_tz TEXT NOT NULL,         -- the time zone daily_spend's days are in
    rollup_credit_nano BIGINT NOT NULL  -- the credit price daily_spend's uplift_nano was computed with
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT,
    role TEXT,
    team_id INTEGER                  -- the user's team now (spend by team groups every row by its user's team now)
);
CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id INTEGER
);
CREATE TABLE ai_models (
    id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_name TEXT,
    deployment_type TEXT,
    category TEXT
);
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER,
    name TEXT,
    prefix TEXT
);
CREATE TABLE inference_endpoints (
    id INTEGER PRIMARY KEY,
    name TEXT,
    owner_id INTEGER,
    model_repo TEXT,
    ai_model_id INTEGER,
    hardware_id TEXT
);
CREATE TABLE ai_usage_log (
    id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,   -- naive UTC
    user_id INTEGER NOT NULL,
    ai_model_id INTEGER,
    provider TEXT NOT NULL,
    category TEXT NOT NULL,
    deployment_type TEXT NOT NULL,
    endpoint_id INTEGER,
    requests_count INTEGER NOT NULL,
    base_cost_usd DECIMAL(18, 9) NOT NULL,  -- provider cost: 0 for a cache hit (see the module docstring)
    base_nano BIGINT NOT NULL,       -- base_cost_usd in whole nano-dollars: exact integer arithmetic, fast sums
    priced_nano BIGINT NOT NULL,     -- the cost the credits were computed from (base_nano unless a cache hit)
    cache_saving_nano BIGINT NOT NULL, -- a cache hit's catalog cost, which no provider billed; 0 for other rows
    cost_credits BIGINT NOT NULL,
    status TEXT NOT NULL,
    cache_hit BOOLEAN NOT NULL,
    sandbox BOOLEAN NOT NULL,
    transaction_id BIGINT,
    markup_bp BIGINT NOT NULL,       -- the markup the call was billed at, in 1/10,000 of a percent (Numeric(9, 4))
    request_fp UBIGINT,              -- the first 64 bits of its request fingerprint (identical requests share it)
    accrued_nano BIGINT,             -- accrual rounding: the exact nano-credits it consumed (NULL: rounded per call)
    api_key_id INTEGER,              -- the API key a gateway call came through
    source TEXT                      -- playground | cli | api (NULL: written before the gateway)
);
CREATE TABLE credit_transactions (
    id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    user_id INTEGER NOT NULL,
    amount BIGINT NOT NULL,
    transaction_type TEXT NOT NULL,
    description TEXT,                -- kept for every type except `usage` (whose text only names the model)
    balance_after BIGINT NOT NULL,
    metadata TEXT                    -- JSON text, likewise kept for every type except `usage`
);
CREATE TABLE ledger_spend (          -- endpoint uptime debits and refunds, attributed (see the module docstring)
    ts TIMESTAMP NOT NULL,
    user_id INTEGER NOT NULL,
    ai_model_id INTEGER,
    provider TEXT NOT NULL,
    category TEXT NOT NULL,
    deployment_type TEXT NOT NULL,
    status TEXT NOT NULL,
    sandbox BOOLEAN NOT NULL,
    cache_hit BOOLEAN NOT NULL,
    kind TEXT NOT NULL,
    requests INTEGER NOT NULL,
    credits BIGINT NOT NULL,
    base_cost_usd DECIMAL(18, 9) NOT NULL,
    base_nano BIGINT NOT NULL,
    source_id BIGINT NOT NULL,       -- the ledger row
    transaction_id BIGINT NOT NULL,
    endpoint_id INTEGER,
    markup_bp BIGINT,                -- uptime debits: the owner's markup (metadata markup_pct) x 10,000
    api_key_id INTEGER,              -- refunds: the refunded call's key and source; uptime: none
    source TEXT
);
CREATE TABLE daily_spend (          -- the spend view summed per local day and every filterable column
    day DATE NOT NULL,
    user_id INTEGER NOT NULL,
    ai_model_id INTEGER,
    provider TEXT NOT NULL,
    category TEXT NOT NULL,
    deployment_type TEXT NOT NULL,
    status TEXT NOT NULL,
    sandbox BOOLEAN NOT NULL,
    cache_hit BOOLEAN NOT NULL,
    kind TEXT NOT NULL,
    api_key_id INTEGER,
    source TEXT,
    rows BIGINT NOT NULL,            -- spend rows summed here (to size a "newest N rows" scan)
    requests BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    credits BIGINT NOT NULL,
    base_nano BIGINT NOT NULL,
    uplift_nano BIGINT NOT NULL,     -- rounding uplift (see ROUNDING_UPLIFT_NANO), nano-dollars
    cache_hits BIGINT NOT NULL,
    cache_saving_nano BIGINT NOT NULL
);
CREATE VIEW spend AS
SELECT created_at AS ts, user_id, ai_model_id, provider, category, deployment_type, status, sandbox, cache_hit,
       'usage' AS kind, requests_count AS requests, cost_credits AS credits, base_cost_usd, base_nano,
       id AS source_id, transaction_id, endpoint_id, api_key_id, source, accrued_nano, priced_nano, cache_saving_nano
FROM ai_usage_log
UNION ALL
SELECT ts, user_id, ai_model_id, provider, category, deployment_type, status, sandbox, cache_hit, kind, requests,
       credits, base_cost_usd, base_nano, source_id, transaction_id, endpoint_id, api_key_id, source,
       CAST(NULL AS BIGINT) AS accrued_nano, base_nano AS priced_nano, CAST(0 AS BIGINT) AS cache_saving_nano
FROM ledger_spend;
"""

UNKNOWN = "(unknown)"  # the label of a missing model, provider or category (also spelled out in the SQL below)

# New endpoint uptime debits (ledger ids above the previous watermark), attributed to a model. Parameter: watermark.
DERIVE_UPTIME = """
INSERT INTO ledger_spend
WITH t AS (
    SELECT id, coalesce(TRY_CAST(json_extract_string(metadata, '$.from') AS TIMESTAMP), created_at) AS created_at,
           user_id, amount,
           TRY_CAST(json_extract_string(metadata, '$.endpoint_id') AS INTEGER) AS endpoint_id,
           TRY_CAST(json_extract_string(metadata, '$.ai_model_id') AS INTEGER) AS meta_model,
           coalesce(json_extract_string(metadata, '$.model_id'), json_extract_string(metadata, '$.model'),
                    json_extract_string(metadata, '$.model_repo')) AS meta_model_name,
           coalesce(TRY_CAST(json_extract_string(metadata, '$.base_cost_usd') AS DECIMAL(18, 9)), 0) AS base_cost,
           CAST(TRY_CAST(json_extract_string(metadata, '$.markup_pct') AS DECIMAL(18, 4)) * 10000 AS BIGINT)
               AS markup_bp
    FROM credit_transactions
    WHERE id > $1 AND transaction_type = 'endpoint_uptime'
      AND id NOT IN (SELECT source_id FROM ledger_spend WHERE source_id > $1)
), named AS (
    SELECT model_id, arg_min(id, CASE WHEN provider = 'huggingface_endpoint' THEN 0 ELSE 1 END) AS id
    FROM ai_models GROUP BY model_id
), resolved AS (
    SELECT t.*, coalesce(t.meta_model, e.ai_model_id, n1.id, n2.id) AS model
    FROM t
    LEFT JOIN inference_endpoints e ON e.id = t.endpoint_id
    LEFT JOIN named n1 ON n1.model_id = t.meta_model_name
    LEFT JOIN named n2 ON n2.model_id = e.model_repo
)
SELECT r.created_at, r.user_id, r.model, 'huggingface_endpoint', coalesce(m.category, '(unknown)'), 'dedicated',
       'success', false, false, 'endpoint_uptime', 0, -r.amount, r.base_cost,
       CAST(CAST(r.base_cost AS DECIMAL(38, 9)) * 1000000000 AS BIGINT), r.id, r.id, r.endpoint_id, r.markup_bp,
       NULL, NULL
FROM resolved r LEFT JOIN ai_models m ON m.id = r.model
ORDER BY r.id
"""

# New refunds (ledger ids above the previous watermark) of usage or uptime debits. Parameter: watermark.
DERIVE_REFUNDS = """
INSERT INTO ledger_spend
WITH r AS (
    SELECT id, created_at, user_id, amount,
           TRY_CAST(json_extract_string(metadata, '$.refund_of') AS BIGINT) AS refund_of
    FROM credit_transactions
    WHERE id > $1 AND transaction_type = 'refund'
      AND id NOT IN (SELECT source_id FROM ledger_spend WHERE source_id > $1)
), o AS (
    SELECT r.*, c.transaction_type AS orig_type FROM r LEFT JOIN credit_transactions c ON c.id = r.refund_of
)
SELECT o.created_at, o.user_id,
       coalesce(u.ai_model_id, s.ai_model_id),
       coalesce(u.provider, s.provider, '(unknown)'),
       coalesce(u.category, s.category, '(unknown)'),
       coalesce(u.deployment_type, s.deployment_type, '(unknown)'),
       coalesce(u.status, s.status, 'success'),
       coalesce(u.sandbox, s.sandbox, false),
       false, 'refund', 0, -o.amount, 0, 0, o.id, o.id,
       coalesce(u.endpoint_id, s.endpoint_id), NULL, u.api_key_id, u.source
FROM o
LEFT JOIN ai_usage_log u ON o.orig_type = 'usage' AND u.transaction_id = o.refund_of
LEFT JOIN ledger_spend s
    ON o.orig_type = 'endpoint_uptime' AND s.kind = 'endpoint_uptime' AND s.source_id = o.refund_of
WHERE o.orig_type IS NULL OR o.orig_type IN ('usage', 'endpoint_uptime')
ORDER BY o.id
"""

# (Re)build daily_spend for the rows from $3 on (a local midnight, naive UTC; NULL: every row).
# Parameters: $1 time zone, $2 credit price in nano-dollars, $3 first instant.
# What rounding a spend row up to whole credits earns, in nano-dollars, given the credit price in nano-dollars as {c}:
# ceil(priced / credit price) x credit price - priced for a call rounded on its own (the specification's rule), and 0
# for a call billed by accrual (`accrued_nano` set, core/billing/accrual.py), which is never rounded up on its own:
# there the whole credits debited cover the exact marked-up cost of the account's calls, so the per-call figure (up to
# a credit per call) would exceed the margin it claims to be part of. `priced` is the cost the credits were computed
# from: the provider cost, except for a cache hit, whose charge rounds its catalog cost (0 when hits are free, which
# were not rounded at all); the rest of a charged hit's revenue is margin on a cost no provider billed.
# A sandbox call is never charged, so its rounding earns nothing (its priced cost is only what it would have cost).
ROUNDING_UPLIFT_NANO = (
    "CASE WHEN accrued_nano IS NULL AND NOT sandbox THEN (priced_nano + {c} - 1) // {c} * {c} - priced_nano ELSE 0 END"
)

ROLLUP = """
INSERT INTO daily_spend
SELECT CAST(timezone($1, ts AT TIME ZONE 'UTC') AS DATE) AS day, user_id, ai_model_id, provider, category,
       deployment_type, status, sandbox, cache_hit, kind, api_key_id, source, count(*),
       sum(requests), count(*) FILTER (WHERE status = 'failed' AND kind = 'usage'), sum(credits), sum(base_nano),
       sum({uplift}), count(*) FILTER (WHERE cache_hit), sum(cache_saving_nano)
FROM spend
WHERE $3 IS NULL OR ts >= $3
GROUP BY ALL
ORDER BY user_id, day
""".replace("{uplift}", ROUNDING_UPLIFT_NANO.format(c="$2"))
