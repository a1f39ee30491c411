-- opswb schema, version 2: fingerprints computed where they decide something.
--
-- A bulk load computes the SPEC §4 fingerprint only for arrivals whose key arrives more
-- than once (in the chunk, or already stored). A key's only arrival keeps a NULL
-- fingerprint in raw_events and deliveries, and its key record a NULL
-- canonical_fingerprint and empty adjudicated list, meaning: "the fingerprint of the
-- canonical raw". Readers (storage.py) and the next arrival of the key compute it then.
ALTER TABLE deliveries ALTER COLUMN fingerprint DROP NOT NULL;

-- Fingerprints computed after their raw was stored (raws are never updated): the
-- delivered raw of a key whose second version arrived later, the raws of an exception
-- being resolved. Append-only; a raw may appear more than once, always with one value.
CREATE TABLE raw_fingerprints (
    raw_id      BIGINT NOT NULL,
    fingerprint VARCHAR NOT NULL
);

-- A bulk-loaded arrival (JSON Lines) stores its payload once, inside `text`: the payload
-- column is NULL and readers take json_extract(text, '$.payload') (storage.RAW_PAYLOAD).
CREATE OR REPLACE VIEW outbox AS
SELECT d.delivery_id, d.tenant_id, d.idempotency_key, d.raw_id,
       coalesce(d.event_type, r.event_type) AS event_type,
       coalesce(d.payload, r.payload, CASE WHEN r.valid THEN
                try(json_extract(r.text, '$.payload'))::VARCHAR END) AS payload,
       coalesce(d.fingerprint, r.fingerprint) AS fingerprint,
       d.is_replay, d.exception_id, d.delivered_at
FROM deliveries d JOIN raw_events r ON r.raw_id = d.raw_id;
