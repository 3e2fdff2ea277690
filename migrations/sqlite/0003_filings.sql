-- Filings (备案) with their history, in-app messages, the codes texted per phone (SMS flow
-- control), and the service's own secret keys (the filing-code key).
CREATE TABLE filings (
    id              TEXT    NOT NULL PRIMARY KEY,
    method          TEXT    NOT NULL,
    filer_id        TEXT    NOT NULL,
    plate_type      TEXT    NOT NULL,
    plate_number    TEXT    NOT NULL,
    engine_last6    TEXT    NOT NULL,
    relationship    TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    reason          TEXT,
    own_vehicle     INTEGER NOT NULL DEFAULT 0,
    live            INTEGER NOT NULL DEFAULT 1,
    owner_phone     TEXT,
    code_number     INTEGER NOT NULL DEFAULT 0,
    code_hash       TEXT,
    code_sent_at    INTEGER,
    code_expires_at INTEGER,
    code_attempts   INTEGER NOT NULL DEFAULT 0,
    local_date      TEXT    NOT NULL,
    local_year      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX filings_filer ON filings (filer_id, live);
CREATE INDEX filings_vehicle ON filings (plate_type, plate_number, live);
CREATE INDEX filings_filer_date ON filings (filer_id, local_date);

CREATE TABLE filing_history (
    filing_id TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    status    TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    cause     TEXT    NOT NULL,
    PRIMARY KEY (filing_id, seq)
);

CREATE TABLE messages (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    filing_id  TEXT,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX messages_user ON messages (user_id, id);

CREATE TABLE sms_codes_sent (
    phone      TEXT    NOT NULL,
    message_id TEXT    NOT NULL PRIMARY KEY,
    sent_at    INTEGER NOT NULL
);
CREATE INDEX sms_codes_sent_phone ON sms_codes_sent (phone, sent_at);

CREATE TABLE service_keys (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
