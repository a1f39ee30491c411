-- opswb on PostgreSQL, schema version 2: what the seam gained since version 1, as on
-- DuckDB (store/duckdb/sql/0006_failure_groups.sql, 0007_identity.sql).
--
-- Failure groups (SPEC §9 GET /v1/exceptions/groups): each exception's signature and
-- group_id, written when it opens (store/postgres/groups.py computes them; the
-- expressions below fill them in for exceptions stored before this version and must
-- give the same text), and where its key began (key_first_raw_id).
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS signature text;
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS group_id text;
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS key_first_raw_id bigint;
-- Who may do what (SPEC §15): an open exception's proposal (JSON) and who claimed it.
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS pending text;
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS assignee text;

UPDATE exceptions SET signature = CASE reason_code
    WHEN 'IDEMPOTENCY_CONFLICT' THEN (
        SELECT '[' || coalesce(string_agg(to_json(p)::text, ',' ORDER BY p COLLATE "C"), '')
               || ']'
        FROM (SELECT DISTINCT p FROM (
            SELECT json_array_elements_text(coalesce(details::json -> 'changed_paths', '[]'))
            UNION ALL
            SELECT json_array_elements_text(coalesce(details::json -> 'added_paths', '[]'))
            UNION ALL
            SELECT json_array_elements_text(coalesce(details::json -> 'removed_paths', '[]'))
        ) a (p)) d)
    WHEN 'UNKNOWN_EVENT_TYPE' THEN coalesce(details::json ->> 'event_type', '')
    ELSE left(btrim(split_part(coalesce(details::json ->> 'error', ''), ':', 1), ' '), 100)
    END
WHERE signature IS NULL;

UPDATE exceptions SET group_id = CASE reason_code
    WHEN 'IDEMPOTENCY_CONFLICT' THEN 'conflict' WHEN 'UNKNOWN_EVENT_TYPE' THEN 'unknown'
    ELSE 'invalid' END || '-'
    || left(encode(sha256(convert_to(reason_code || chr(10) || signature, 'UTF8')), 'hex'), 16)
WHERE group_id IS NULL;

UPDATE exceptions AS e SET key_first_raw_id = k.first_raw_id
FROM idempotency_keys k
WHERE e.key_first_raw_id IS NULL AND e.reason_code <> 'INVALID_EVENT'
  AND k.tenant_id = e.tenant_id AND k.idempotency_key = e.idempotency_key;

CREATE INDEX exceptions_by_group ON exceptions (group_id, raw_id);
CREATE INDEX exceptions_by_assignee ON exceptions (assignee, raw_id) WHERE assignee IS NOT NULL;

-- An exception's comments: tenant data, keyed by tenant first.
CREATE TABLE exception_comments (
    tenant_id    text NOT NULL,
    exception_id bigint NOT NULL,
    comment_id   bigserial,
    author       text NOT NULL,
    text         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, exception_id, comment_id)
);
CREATE INDEX exception_comments_by_exception ON exception_comments (exception_id, comment_id);

-- Reference tables (not distributed) ------------------------------------------------------

-- Bearer tokens, stored only as the sha256 of the token; a revoked one keeps its row.
CREATE TABLE api_tokens (
    name         text NOT NULL PRIMARY KEY,
    role         text NOT NULL,          -- viewer | operator | approver | admin
    token_sha256 text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    revoked_by   text
);

-- Four-eyes policies: tenant_id '' is the global one.
CREATE TABLE approval_policies (
    tenant_id text NOT NULL,
    action    text NOT NULL,
    set_by    text NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, action)
);

-- The audit hash chain (opswb.core.auditchain): entries written before this version
-- have none; the chain starts after chain_start, and the head holds the newest entry's
-- hash (a deleted last entry is seen too). One row; writers lock it (queries.write_audit).
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS prev_hash text;
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS entry_hash text;
CREATE TABLE audit_chain (chain_start bigint NOT NULL, head_id bigint, head_hash text);
INSERT INTO audit_chain SELECT coalesce(max(audit_id), 0), NULL, NULL FROM audit_log;

-- The deliveries feed reads ranges of delivery ids.
CREATE INDEX deliveries_by_id ON deliveries (delivery_id);
