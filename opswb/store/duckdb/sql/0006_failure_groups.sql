-- opswb schema, version 6: failure groups (SPEC §9 GET /v1/exceptions/groups, issue 17).
--
-- An exception's group is its reason plus what it shares with others of that reason —
-- its signature: the unknown event type; the sorted JSON-Pointer paths that differed
-- between FIRST and the opening arrival (details' changed/added/removed paths, recorded
-- when it opened); the rule an invalid arrival broke (the part of details.error before
-- the first colon). group_id is "<unknown|conflict|invalid>-" + 16 hex digits of the
-- sha256 of reason and signature: stable, URL-safe. Both are written when the exception
-- opens (store/duckdb/groups.py has the same expressions: keep the two in step) and
-- never change, so grouping and the queue's group filter read two plain columns.
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS signature VARCHAR;
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS group_id VARCHAR;

UPDATE exceptions SET signature = CASE reason_code
    WHEN 'IDEMPOTENCY_CONFLICT' THEN to_json(list_sort(list_distinct(
        coalesce(CAST(json_extract(details, '$.changed_paths') AS VARCHAR[]), [])
        || coalesce(CAST(json_extract(details, '$.added_paths') AS VARCHAR[]), [])
        || coalesce(CAST(json_extract(details, '$.removed_paths') AS VARCHAR[]), []))))::VARCHAR
    WHEN 'UNKNOWN_EVENT_TYPE' THEN coalesce(json_extract_string(details, '$.event_type'), '')
    ELSE left(trim(split_part(coalesce(json_extract_string(details, '$.error'), ''), ':', 1)), 100)
    END
WHERE signature IS NULL;

UPDATE exceptions SET group_id = CASE reason_code
    WHEN 'IDEMPOTENCY_CONFLICT' THEN 'conflict' WHEN 'UNKNOWN_EVENT_TYPE' THEN 'unknown'
    ELSE 'invalid' END || '-' || left(sha256(reason_code || chr(10) || signature), 16)
WHERE group_id IS NULL;

-- Where the exception's key began (its record's first_raw_id), so that the detail and a
-- resolution find the key record by a range DuckDB prunes row groups with, instead of
-- reading the whole keys table (issue 17, "detail at scale"). NULL for INVALID_EVENT.
ALTER TABLE exceptions ADD COLUMN IF NOT EXISTS key_first_raw_id BIGINT;

UPDATE exceptions AS e SET key_first_raw_id = k.first_raw_id
FROM idempotency_keys k
WHERE e.key_first_raw_id IS NULL AND e.reason_code <> 'INVALID_EVENT'
  AND k.tenant_id = e.tenant_id AND k.idempotency_key = e.idempotency_key;
