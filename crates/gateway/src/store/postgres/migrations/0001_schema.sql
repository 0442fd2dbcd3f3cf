-- passerelle store, PostgreSQL schema version 1: the SQLite schema
-- (src/store/sqlite.rs) carried over, with 64-bit integers and bytea.
-- Applied once, inside the migration transaction (see postgres/migrate.rs);
-- every statement is also safe to run again.

CREATE TABLE IF NOT EXISTS items (
    seq          BIGSERIAL PRIMARY KEY,
    item_ref     TEXT NOT NULL UNIQUE,
    sender       TEXT NOT NULL,
    item_id      TEXT NOT NULL,
    digest       BYTEA NOT NULL,
    priority     BIGINT NOT NULL,
    accepted_at  BIGINT NOT NULL,
    expires_at   BIGINT,
    envelope     BYTEA NOT NULL,
    sender_cert  BYTEA NOT NULL,
    portions     BYTEA NOT NULL,
    receipt      BYTEA NOT NULL,
    purge_after  BIGINT,
    purged_at    BIGINT,
    -- Index of the item's acceptance entry (the first of its batch).
    audit_index  BIGINT NOT NULL,
    -- Idempotent resubmission is decided here, whichever instance
    -- receives the item (INSERT ... ON CONFLICT (sender, item_id)).
    UNIQUE (sender, item_id)
);

CREATE TABLE IF NOT EXISTS inbox (
    recipient    TEXT NOT NULL,
    item_seq     BIGINT NOT NULL REFERENCES items(seq),
    released     BYTEA NOT NULL,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    deliveries   BIGINT NOT NULL DEFAULT 0,
    acked_at     BIGINT,
    refused_at   BIGINT,
    expired_at   BIGINT,
    PRIMARY KEY (recipient, item_seq)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (recipient, acked_at, lease_until);
-- An item's recipients, without scanning the inbox.
CREATE INDEX IF NOT EXISTS inbox_item ON inbox (item_seq, recipient);

-- Gap-free indices from 0, assigned under the sequencer's advisory lock;
-- `leaf` is the entry's RFC 9162 leaf hash, written with it.
CREATE TABLE IF NOT EXISTS audit (
    idx          BIGINT PRIMARY KEY CHECK (idx >= 0),
    entry        BYTEA NOT NULL,
    leaf         BYTEA NOT NULL CHECK (length(leaf) = 32)
);

CREATE TABLE IF NOT EXISTS checkpoints (
    size         BIGINT PRIMARY KEY,
    note         TEXT NOT NULL,
    issued_at    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS requests (
    item_seq     BIGINT PRIMARY KEY REFERENCES items(seq),
    due          BIGINT NOT NULL,
    answered_at  BIGINT,
    answer_ref   TEXT
);
CREATE INDEX IF NOT EXISTS requests_open ON requests (answered_at, due);

-- The signed head of the log as the last appending transaction left it.
CREATE TABLE IF NOT EXISTS seal (
    id           SMALLINT PRIMARY KEY CHECK (id = 0),
    size         BIGINT NOT NULL,
    note         TEXT NOT NULL
);
