-- Daily reconciliation of the providers' bills (issue 13): one row per run (its counts and
-- status), the items it found (not the matched lines), and the audit of each repair (a
-- payment a bill showed paid and this service had missed), once per provider transaction.
CREATE TABLE reconciliations (
    id              TEXT    NOT NULL PRIMARY KEY,
    channel         TEXT    NOT NULL,
    bill_date       TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    file_path       TEXT,
    lines           INTEGER NOT NULL DEFAULT 0,
    matched         INTEGER NOT NULL DEFAULT 0,
    repaired        INTEGER NOT NULL DEFAULT 0,
    missing_remote  INTEGER NOT NULL DEFAULT 0,
    amount_mismatch INTEGER NOT NULL DEFAULT 0,
    duplicates      INTEGER NOT NULL DEFAULT 0,
    refunds         INTEGER NOT NULL DEFAULT 0,
    unknown_orders  INTEGER NOT NULL DEFAULT 0,
    malformed       INTEGER NOT NULL DEFAULT 0,
    totals_ok       INTEGER NOT NULL DEFAULT 1,
    items_truncated INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
CREATE INDEX reconciliations_day ON reconciliations (channel, bill_date);

CREATE TABLE reconciliation_items (
    reconciliation_id TEXT    NOT NULL,
    seq               INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    line              INTEGER,
    out_trade_no      TEXT,
    transaction_id    TEXT,
    bill_amount_fen   INTEGER,
    order_amount_fen  INTEGER,
    detail            TEXT    NOT NULL,
    PRIMARY KEY (reconciliation_id, seq)
);

CREATE TABLE reconciliation_repairs (
    channel           TEXT    NOT NULL,
    transaction_id    TEXT    NOT NULL,
    out_trade_no      TEXT    NOT NULL,
    reconciliation_id TEXT    NOT NULL,
    amount_fen        INTEGER NOT NULL,
    repaired_at       INTEGER NOT NULL,
    PRIMARY KEY (channel, transaction_id)
);

CREATE INDEX payments_paid_day ON payments (channel, paid_at);
