-- passerelle store, PostgreSQL schema version 2: an item is inserted
-- before the sequencer's lock and given its acceptance index under it,
-- with the log's entries, in the same transaction (see postgres/bulk.rs),
-- so that instances wait for each other's index, not for each other's
-- items. Between the two statements, and only inside that uncommitted
-- transaction, the index is NULL: no committed row lacks it.
ALTER TABLE items ALTER COLUMN audit_index DROP NOT NULL;
