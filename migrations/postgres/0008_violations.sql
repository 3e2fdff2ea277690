-- Camera-recorded violations, penalty decisions and their payments (issue 12): the
-- violation (deduplicated by the camera feed's source_id), the payment order (its id is the
-- providers' out_trade_no), the per-day serial of decision numbers, the notifications
-- applied (one per provider transaction) and the discrepancies recorded instead.
CREATE TABLE violations (
    id              TEXT    NOT NULL PRIMARY KEY,
    source_id       TEXT    NOT NULL UNIQUE,
    plate_type      TEXT    NOT NULL,
    plate_number    TEXT    NOT NULL,
    occurred_at     BIGINT  NOT NULL,
    location        TEXT    NOT NULL,
    violation_code  TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    fine_fen        BIGINT  NOT NULL,
    points          BIGINT  NOT NULL,
    device_id       TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    handler_id      TEXT,
    decision_number TEXT    UNIQUE,
    payment_id      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX violations_vehicle ON violations (plate_type, plate_number, status);
CREATE INDEX violations_handler ON violations (handler_id, status);

CREATE TABLE decision_serials (
    local_date TEXT    NOT NULL PRIMARY KEY,
    last       BIGINT  NOT NULL
);

CREATE TABLE payments (
    id              TEXT    NOT NULL PRIMARY KEY,
    violation_id    TEXT    NOT NULL UNIQUE,
    handler_id      TEXT    NOT NULL,
    decision_number TEXT    NOT NULL,
    plate_number    TEXT    NOT NULL,
    occurred_at     BIGINT  NOT NULL,
    fine_fen        BIGINT  NOT NULL,
    points          BIGINT  NOT NULL,
    decided_at      BIGINT  NOT NULL,
    due_date        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    channel         TEXT,
    order_total_fen BIGINT,
    checkout_at     BIGINT,
    phone           TEXT    NOT NULL,
    code_number     BIGINT  NOT NULL DEFAULT 0,
    code_hash       TEXT,
    code_sent_at    BIGINT,
    code_expires_at BIGINT,
    code_attempts   BIGINT  NOT NULL DEFAULT 0,
    transaction_id  TEXT    UNIQUE,
    paid_total_fen  BIGINT,
    paid_at         BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX payments_handler ON payments (handler_id);
CREATE INDEX payments_pending ON payments (status, checkout_at);

CREATE TABLE payment_discrepancies (
    id             TEXT    NOT NULL PRIMARY KEY,
    channel        TEXT    NOT NULL,
    out_trade_no   TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    detail         TEXT    NOT NULL,
    amount_fen     BIGINT,
    created_at     BIGINT  NOT NULL
);
CREATE INDEX payment_discrepancies_order ON payment_discrepancies (out_trade_no);
