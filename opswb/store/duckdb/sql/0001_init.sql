-- opswb schema, version 1. Ids are BIGINT inside and strings at every API boundary.

CREATE TABLE counters (name VARCHAR PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters VALUES ('raw', 0), ('exception', 0), ('delivery', 0), ('audit', 0);

-- Every arrival, append-only: never updated, never deleted.
CREATE TABLE raw_events (
    raw_id          BIGINT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    text            VARCHAR NOT NULL,
    tenant_id       VARCHAR,
    idempotency_key VARCHAR,
    event_type      VARCHAR,
    source          VARCHAR,
    occurred_at     VARCHAR,
    payload         VARCHAR,           -- JSON text of the payload, NULL when it did not parse
    fingerprint     VARCHAR,           -- SPEC §4, NULL for invalid arrivals
    valid           BOOLEAN NOT NULL,
    error           VARCHAR,           -- why an invalid arrival is invalid
    outcome         VARCHAR NOT NULL,  -- summary bucket: processed|duplicates|exceptions_opened|attached
    exception_id    BIGINT,            -- exception opened by or attached to this arrival
    origin          VARCHAR,           -- file hash, batch id or 'api'/'replay'
    replay_of       BIGINT             -- exception whose fixed envelope this raw is
);

-- One record per (tenant_id, idempotency_key), the SPEC's events_processed.
CREATE TABLE idempotency_keys (
    tenant_id                VARCHAR NOT NULL,
    idempotency_key          VARCHAR NOT NULL,
    state                    VARCHAR NOT NULL,
    first_raw_id             BIGINT NOT NULL,
    last_raw_id              BIGINT NOT NULL,
    canonical_raw_id         BIGINT,
    canonical_fingerprint    VARCHAR,
    override_patch           VARCHAR,
    arrival_count            BIGINT NOT NULL,
    delivery_count           BIGINT NOT NULL,
    adjudicated_fingerprints VARCHAR[] NOT NULL,
    open_exception_id        BIGINT,
    first_exception_raw_id   BIGINT
);

-- Arrivals after a key's record was written (duplicates, attachments). Kept apart so a
-- duplicate never rewrites the large key table: its count and last raw are added here.
CREATE TABLE key_activity (
    tenant_id       VARCHAR NOT NULL,
    idempotency_key VARCHAR NOT NULL,
    arrivals        BIGINT NOT NULL,
    last_raw_id     BIGINT NOT NULL
);

CREATE TABLE exceptions (
    exception_id     BIGINT NOT NULL PRIMARY KEY,
    tenant_id        VARCHAR,
    idempotency_key  VARCHAR,
    source           VARCHAR,
    reason_code      VARCHAR NOT NULL,
    details          VARCHAR NOT NULL,
    raw_id           BIGINT NOT NULL,
    status           VARCHAR NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    replay_attempts  INTEGER NOT NULL DEFAULT 0,
    action           VARCHAR,
    actor            VARCHAR,
    resolution_notes VARCHAR,
    canonical_raw_id BIGINT,
    override_patch   VARCHAR,
    resolved_at      TIMESTAMPTZ,
    replay_outcome   VARCHAR
);

-- The outbox downstream consumers read; a replay appends, consumers upsert by key.
CREATE TABLE deliveries (
    delivery_id     BIGINT NOT NULL,
    tenant_id       VARCHAR NOT NULL,
    idempotency_key VARCHAR NOT NULL,
    raw_id          BIGINT NOT NULL,
    event_type      VARCHAR,           -- NULL: as the raw's (set for replays)
    payload         VARCHAR,           -- NULL: as the raw's (set for replays)
    fingerprint     VARCHAR NOT NULL,
    is_replay       BOOLEAN NOT NULL,
    exception_id    BIGINT,
    delivered_at    TIMESTAMPTZ NOT NULL
);

-- A key record as the API shows it: the stored record plus its later activity.
CREATE VIEW key_records AS
SELECT k.tenant_id, k.idempotency_key, k.state, k.first_raw_id,
       greatest(k.last_raw_id, coalesce(a.last_raw_id, 0)) AS last_raw_id,
       k.canonical_raw_id, k.canonical_fingerprint, k.override_patch,
       k.arrival_count + coalesce(a.arrivals, 0) AS arrival_count, k.delivery_count,
       k.adjudicated_fingerprints, k.open_exception_id, k.first_exception_raw_id
FROM idempotency_keys k
LEFT JOIN key_activity a
  ON a.tenant_id = k.tenant_id AND a.idempotency_key = k.idempotency_key;

-- The outbox as consumers read it: every delivery with its event.
CREATE VIEW outbox AS
SELECT d.delivery_id, d.tenant_id, d.idempotency_key, d.raw_id,
       coalesce(d.event_type, r.event_type) AS event_type,
       coalesce(d.payload, r.payload) AS payload,
       d.fingerprint, d.is_replay, d.exception_id, d.delivered_at
FROM deliveries d JOIN raw_events r ON r.raw_id = d.raw_id;

-- Append-only trail of every decision: resolutions, reopens, allowlist changes.
CREATE TABLE audit_log (
    audit_id         BIGINT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    actor            VARCHAR NOT NULL,
    action           VARCHAR NOT NULL,
    exception_id     BIGINT,
    tenant_id        VARCHAR,
    idempotency_key  VARCHAR,
    state_before     VARCHAR,
    state_after      VARCHAR,
    notes            VARCHAR,
    canonical_raw_id BIGINT,
    override_patch   VARCHAR,
    details          VARCHAR
);

-- The allowlist: tenant_id '' is a global entry.
CREATE TABLE event_types (
    tenant_id  VARCHAR NOT NULL,
    event_type VARCHAR NOT NULL,
    added_by   VARCHAR NOT NULL,
    added_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, event_type)
);

-- Files and HTTP batches already ingested; a row per chunk makes a killed ingest resumable.
CREATE TABLE ingest_ledger (
    origin       VARCHAR NOT NULL,   -- file content hash or Opswb-Batch-Id
    name         VARCHAR,
    chunk_no     BIGINT NOT NULL,    -- -1 marks the whole origin complete
    rows_done    BIGINT NOT NULL,
    byte_offset  BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE health_snapshots (
    taken_at        TIMESTAMPTZ NOT NULL,
    exceptions_open BIGINT NOT NULL,
    raw_events      BIGINT NOT NULL,
    processed       BIGINT NOT NULL,
    quarantined     BIGINT NOT NULL,
    ignored         BIGINT NOT NULL,
    body            VARCHAR NOT NULL
);
