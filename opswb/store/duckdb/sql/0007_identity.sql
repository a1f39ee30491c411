-- Who may do what (SPEC §15): named tokens, four-eyes policies, proposals, claims,
-- comments, and a hash chain over the audit trail.

-- Bearer tokens, stored only as the sha256 of the token (the token itself is shown once).
-- A revoked token keeps its row (and its name: names in the audit stay unambiguous).
CREATE TABLE api_tokens (
    name         VARCHAR NOT NULL PRIMARY KEY,
    role         VARCHAR NOT NULL,          -- viewer | operator | approver | admin
    token_sha256 VARCHAR NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   VARCHAR NOT NULL,
    last_used_at TIMESTAMPTZ,               -- written at most once a minute per token
    revoked_at   TIMESTAMPTZ,
    revoked_by   VARCHAR
);

-- Four-eyes policies: tenant_id '' is the global one.
CREATE TABLE approval_policies (
    tenant_id VARCHAR NOT NULL,
    action    VARCHAR NOT NULL,             -- override_and_replay
    set_by    VARCHAR NOT NULL,
    set_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, action)
);

-- An open exception's proposal (JSON: action, proposed_by, canonical_raw_id,
-- override_patch, resolution_notes, proposed_at) and who has claimed it.
ALTER TABLE exceptions ADD COLUMN pending VARCHAR;
ALTER TABLE exceptions ADD COLUMN assignee VARCHAR;

CREATE TABLE exception_comments (
    exception_id BIGINT NOT NULL,
    author       VARCHAR NOT NULL,
    text         VARCHAR NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

-- The audit hash chain: each entry's sha256 over its canonical form and the previous
-- entry's hash (opswb.core.auditchain). Entries written before this schema have none:
-- the chain starts after ``chain_start`` (the last audit id at migration time), and the
-- head holds the newest entry's hash, so a deleted last entry is seen too.
ALTER TABLE audit_log ADD COLUMN prev_hash VARCHAR;
ALTER TABLE audit_log ADD COLUMN entry_hash VARCHAR;
CREATE TABLE audit_chain (chain_start BIGINT NOT NULL, head_id BIGINT, head_hash VARCHAR);
INSERT INTO audit_chain SELECT value, NULL, NULL FROM counters WHERE name = 'audit';
