-- opswb schema, version 4: HTTP batches by their Opswb-Batch-Id (SPEC §9).
--
-- A retry of a stored batch with the same body answers the first answer's results with
-- zero counts; the same id with another body is refused (409) and stores nothing. So a
-- batch keeps the sha256 of its request body's exact bytes, and where its arrivals are:
-- one batch is stored in one statement, its raws are first_raw_id .. + arrivals - 1, and
-- raws are never updated, so each keeps the outcome and exception it was answered with.
CREATE TABLE ingest_batches (
    batch_id     VARCHAR NOT NULL PRIMARY KEY,  -- the Opswb-Batch-Id header
    body_sha256  VARCHAR,                       -- hex; NULL: stored before version 4
    first_raw_id BIGINT,                        -- NULL for an empty batch
    arrivals     BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL
);

-- Batches stored before: recorded in ingest_ledger as origin 'batch:<id>', complete
-- (chunk_no -1), their raws with that origin. Their body is not known: a retry of one
-- answers as a retry (as it always did), whatever its body.
INSERT INTO ingest_batches
SELECT substr(l.origin, 7), NULL, r.first_raw_id, coalesce(r.arrivals, 0), l.committed_at
FROM (SELECT origin, max(committed_at) AS committed_at FROM ingest_ledger
      WHERE origin LIKE 'batch:%' AND chunk_no = -1 GROUP BY origin) l
LEFT JOIN (SELECT origin, min(raw_id) AS first_raw_id, count(*) AS arrivals
           FROM raw_events WHERE origin LIKE 'batch:%' GROUP BY origin) r USING (origin);
