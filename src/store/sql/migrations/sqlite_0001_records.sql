-- cx-sso records (SQLite). Keys, namespaces and indexes are stored as their UTF-8 bytes (BLOB):
-- any string round-trips exactly and `ORDER BY key` is byte order, as the Store contract says.
-- Times are Unix microseconds.
CREATE TABLE cx_sso_records (
    namespace  BLOB    NOT NULL,
    key        BLOB    NOT NULL,
    value      BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    expires_at INTEGER,
    index_key  BLOB,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

-- `list`: the records of one namespace with one index value, in key order.
CREATE INDEX cx_sso_records_by_index
    ON cx_sso_records (namespace, index_key, key) WHERE index_key IS NOT NULL;

-- `sweep_expired`.
CREATE INDEX cx_sso_records_by_expiry
    ON cx_sso_records (expires_at) WHERE expires_at IS NOT NULL;

-- The store-wide version counter: every write takes `last + 1` in the same statement, and these
-- triggers move `last` forward in that statement's transaction, so a version never repeats for
-- a key, across delete and re-create.
CREATE TABLE cx_sso_version_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT INTO cx_sso_version_counter (id, last) VALUES (1, 0);

CREATE TRIGGER cx_sso_records_version_on_insert AFTER INSERT ON cx_sso_records
BEGIN
    UPDATE cx_sso_version_counter SET last = NEW.version WHERE id = 1 AND last < NEW.version;
END;

CREATE TRIGGER cx_sso_records_version_on_update AFTER UPDATE OF version ON cx_sso_records
BEGIN
    UPDATE cx_sso_version_counter SET last = NEW.version WHERE id = 1 AND last < NEW.version;
END;
