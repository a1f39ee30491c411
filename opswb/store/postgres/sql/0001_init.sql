-- opswb on PostgreSQL, schema version 1 (SPEC §14).
--
-- Ready to distribute by tenant (Citus, docs/scale-out.md): every primary key and unique
-- constraint of a tenant table leads with tenant_id, no foreign key crosses tenants, and
-- ids come from sequences (unique on their own, so a lookup by id alone stays correct).
-- tenant_id is NOT NULL everywhere: an arrival without one (an invalid arrival) is
-- stored under tenant '' and shown as null (a distribution column holds no NULL).
-- The allowlist, the ingest ledger, HTTP batches and health snapshots are not tenant
-- data: reference tables (small, written rarely, read everywhere).

CREATE SEQUENCE raw_id_seq;
CREATE SEQUENCE exception_id_seq;
CREATE SEQUENCE delivery_id_seq;
CREATE SEQUENCE audit_id_seq;

-- Every arrival, append-only: never updated, never deleted.
CREATE TABLE raw_events (
    tenant_id       text NOT NULL,
    raw_id          bigint NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    text            text NOT NULL,    -- NUL and unpaired surrogates as U+FFFD, then:
    text_bytes      bytea,            -- the exact text (UTF-8) when text could not hold it
    idempotency_key text,
    event_type      text,
    source          text,
    occurred_at     text,
    payload         text,             -- JSON text; NULL when it is inside text (bulk)
    fingerprint     text,             -- SPEC §4, NULL for invalid arrivals
    valid           boolean NOT NULL,
    error           text,
    outcome         text NOT NULL,    -- processed|duplicates|exceptions_opened|attached
    exception_id    bigint,
    origin          text,
    replay_of       bigint,
    PRIMARY KEY (tenant_id, raw_id)
);
CREATE INDEX raw_events_by_id ON raw_events (raw_id);
CREATE INDEX raw_events_by_key ON raw_events (tenant_id, idempotency_key, raw_id) WHERE valid;
CREATE INDEX raw_events_by_exception ON raw_events (exception_id) WHERE exception_id IS NOT NULL;
CREATE INDEX raw_events_by_origin ON raw_events (origin, raw_id);

-- One record per (tenant_id, idempotency_key): the SPEC's events_processed. The primary
-- key is what keeps one record per key when several writers store the same key.
CREATE TABLE idempotency_keys (
    tenant_id                text NOT NULL,
    idempotency_key          text NOT NULL,
    state                    text NOT NULL,
    first_raw_id             bigint NOT NULL,
    last_raw_id              bigint NOT NULL,
    canonical_raw_id         bigint,
    canonical_fingerprint    text,
    override_patch           text,
    arrival_count            bigint NOT NULL,
    delivery_count           bigint NOT NULL,
    adjudicated_fingerprints text[] NOT NULL DEFAULT '{}',
    open_exception_id        bigint,
    first_exception_raw_id   bigint,
    PRIMARY KEY (tenant_id, idempotency_key)
);

CREATE TABLE exceptions (
    tenant_id        text NOT NULL,
    exception_id     bigint NOT NULL,
    idempotency_key  text,
    source           text,
    reason_code      text NOT NULL,
    details          text NOT NULL,
    raw_id           bigint NOT NULL,
    status           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    replay_attempts  integer NOT NULL DEFAULT 0,
    action           text,
    actor            text,
    resolution_notes text,
    canonical_raw_id bigint,
    override_patch   text,
    resolved_at      timestamptz,
    replay_outcome   text,
    PRIMARY KEY (tenant_id, exception_id)
);
CREATE INDEX exceptions_by_id ON exceptions (exception_id);
CREATE INDEX exceptions_by_status ON exceptions (status, raw_id);
-- SPEC §5: at most one open conflict or unknown-type exception per key, enforced here.
CREATE UNIQUE INDEX exceptions_one_open_per_key ON exceptions (tenant_id, idempotency_key)
    WHERE status = 'open' AND reason_code <> 'INVALID_EVENT';

-- The outbox downstream consumers read; a replay appends, consumers upsert by key.
CREATE TABLE deliveries (
    tenant_id       text NOT NULL,
    delivery_id     bigint NOT NULL,
    idempotency_key text NOT NULL,
    raw_id          bigint NOT NULL,
    event_type      text,             -- NULL: as the raw's (set for replays)
    payload         text,             -- NULL: as the raw's (set for replays)
    fingerprint     text,
    is_replay       boolean NOT NULL,
    exception_id    bigint,
    delivered_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, delivery_id)
);
CREATE INDEX deliveries_by_key ON deliveries (tenant_id, idempotency_key, delivery_id);

-- Append-only trail of every decision. A global allowlist change is tenant ''.
CREATE TABLE audit_log (
    tenant_id        text NOT NULL,
    audit_id         bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    actor            text NOT NULL,
    action           text NOT NULL,
    exception_id     bigint,
    idempotency_key  text,
    state_before     text,
    state_after      text,
    notes            text,
    canonical_raw_id bigint,
    override_patch   text,
    details          text,
    PRIMARY KEY (tenant_id, audit_id)
);
CREATE INDEX audit_log_by_id ON audit_log (audit_id);
CREATE INDEX audit_log_by_exception ON audit_log (exception_id);

-- Reference tables (not distributed) ------------------------------------------------------

-- The allowlist: tenant_id '' is a global entry.
CREATE TABLE event_types (
    tenant_id  text NOT NULL,
    event_type text NOT NULL,
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_type)
);

-- Files already ingested; a row per chunk makes a killed ingest resumable.
CREATE TABLE ingest_ledger (
    origin       text NOT NULL,
    name         text,
    chunk_no     bigint NOT NULL,     -- -1 marks the whole origin complete
    rows_done    bigint NOT NULL,
    byte_offset  bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_ledger_by_origin ON ingest_ledger (origin);

-- HTTP batches by their Opswb-Batch-Id (SPEC §9): a retry answers the first answer.
CREATE TABLE ingest_batches (
    batch_id     text NOT NULL PRIMARY KEY,
    body_sha256  text,
    first_raw_id bigint,
    arrivals     bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE health_snapshots (
    taken_at        timestamptz NOT NULL DEFAULT now(),
    exceptions_open bigint NOT NULL,
    raw_events      bigint NOT NULL,
    processed       bigint NOT NULL,
    quarantined     bigint NOT NULL,
    ignored         bigint NOT NULL,
    body            text NOT NULL
);
