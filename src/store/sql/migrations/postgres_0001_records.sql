-- cx-sso records (PostgreSQL). Keys, namespaces and indexes are stored as their UTF-8 bytes
-- (BYTEA): any string round-trips exactly (NUL included) and `ORDER BY key` is byte order, as
-- the Store contract says, whatever the database's collation. Read them with
-- `convert_from(key, 'UTF8')`. Times are Unix microseconds.
CREATE TABLE cx_sso_records (
    namespace  BYTEA  NOT NULL,
    key        BYTEA  NOT NULL,
    value      BYTEA  NOT NULL,
    version    BIGINT NOT NULL,
    expires_at BIGINT,
    index_key  BYTEA,
    PRIMARY KEY (namespace, key)
);

-- `list`: the records of one namespace with one index value, in key order.
CREATE INDEX cx_sso_records_by_index
    ON cx_sso_records (namespace, index_key, key) WHERE index_key IS NOT NULL;

-- `sweep_expired`.
CREATE INDEX cx_sso_records_by_expiry
    ON cx_sso_records (expires_at) WHERE expires_at IS NOT NULL;

-- The store-wide version counter: never rolled back, never reused, so a version never repeats
-- for a key, across delete and re-create.
CREATE SEQUENCE cx_sso_record_version AS BIGINT MINVALUE 1;
