-- opswb schema, version 3: short columns that health and filters scan keep a dictionary.
--
-- Every column is written with zstd (store.py forces it: the big raw text compresses
-- best and fastest that way), but zstd makes scans of short repeated values slow: health
-- counted the states of 5M keys in 75 ms. A column's own compression wins over the
-- forced one, so these tables are rebuilt once with dict_fsst on such columns.
DROP VIEW outbox;
CREATE TABLE raw_events_v3 (
    raw_id          BIGINT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    text            VARCHAR NOT NULL,
    tenant_id       VARCHAR USING COMPRESSION dict_fsst,
    idempotency_key VARCHAR,
    event_type      VARCHAR USING COMPRESSION dict_fsst,
    source          VARCHAR USING COMPRESSION dict_fsst,
    occurred_at     VARCHAR,
    payload         VARCHAR,
    fingerprint     VARCHAR,
    valid           BOOLEAN NOT NULL,
    error           VARCHAR,
    outcome         VARCHAR NOT NULL USING COMPRESSION dict_fsst,
    exception_id    BIGINT,
    origin          VARCHAR USING COMPRESSION dict_fsst,
    replay_of       BIGINT
);
INSERT INTO raw_events_v3 SELECT * FROM raw_events ORDER BY raw_id;
DROP TABLE raw_events;
ALTER TABLE raw_events_v3 RENAME TO raw_events;
CREATE VIEW outbox AS
SELECT d.delivery_id, d.tenant_id, d.idempotency_key, d.raw_id,
       coalesce(d.event_type, r.event_type) AS event_type,
       coalesce(d.payload, r.payload, CASE WHEN r.valid THEN
                try(json_extract(r.text, '$.payload'))::VARCHAR END) AS payload,
       coalesce(d.fingerprint, r.fingerprint) AS fingerprint,
       d.is_replay, d.exception_id, d.delivered_at
FROM deliveries d JOIN raw_events r ON r.raw_id = d.raw_id;

DROP VIEW key_records;
CREATE TABLE idempotency_keys_v3 (
    tenant_id                VARCHAR NOT NULL USING COMPRESSION dict_fsst,
    idempotency_key          VARCHAR NOT NULL,
    state                    VARCHAR NOT NULL USING COMPRESSION dict_fsst,
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
INSERT INTO idempotency_keys_v3 SELECT * FROM idempotency_keys ORDER BY first_raw_id;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_v3 RENAME TO idempotency_keys;
CREATE VIEW key_records AS
SELECT k.tenant_id, k.idempotency_key, k.state, k.first_raw_id,
       greatest(k.last_raw_id, coalesce(a.last_raw_id, 0)) AS last_raw_id,
       k.canonical_raw_id, k.canonical_fingerprint, k.override_patch,
       k.arrival_count + coalesce(a.arrivals, 0) AS arrival_count, k.delivery_count,
       k.adjudicated_fingerprints, k.open_exception_id, k.first_exception_raw_id
FROM idempotency_keys k
LEFT JOIN key_activity a
  ON a.tenant_id = k.tenant_id AND a.idempotency_key = k.idempotency_key;
