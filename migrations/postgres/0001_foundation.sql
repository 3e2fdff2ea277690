-- The registry copies, Idempotency-Key answers, and the shared manual test clock.
-- Times are Unix milliseconds (BIGINT); ids are text.
CREATE TABLE vehicles (
    plate_type      TEXT    NOT NULL,
    plate_number    TEXT    NOT NULL,
    owner_id_number TEXT    NOT NULL,
    owner_name      TEXT    NOT NULL,
    owner_phone     TEXT    NOT NULL,
    owner_kind      TEXT    NOT NULL,
    engine_number   TEXT    NOT NULL,
    usage           TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (plate_type, plate_number)
);
CREATE INDEX vehicles_owner ON vehicles (owner_id_number);

CREATE TABLE drivers (
    user_id        TEXT    NOT NULL PRIMARY KEY,
    name           TEXT    NOT NULL,
    id_number      TEXT    NOT NULL,
    phone          TEXT    NOT NULL,
    licence_number TEXT    NOT NULL,
    licence_status TEXT    NOT NULL,
    points         BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX drivers_id_number ON drivers (id_number);

CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       BIGINT NOT NULL,
    body         TEXT    NOT NULL,
    location     TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE test_clock (
    id        BIGINT NOT NULL PRIMARY KEY,
    offset_ms BIGINT NOT NULL
);
