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
    lines           BIGINT  NOT NULL DEFAULT 0,
    matched         BIGINT  NOT NULL DEFAULT 0,
    repaired        BIGINT  NOT NULL DEFAULT 0,
    missing_remote  BIGINT  NOT NULL DEFAULT 0,
    amount_mismatch BIGINT  NOT NULL DEFAULT 0,
    duplicates      BIGINT  NOT NULL DEFAULT 0,
    refunds         BIGINT  NOT NULL DEFAULT 0,
    unknown_orders  BIGINT  NOT NULL DEFAULT 0,
    malformed       BIGINT  NOT NULL DEFAULT 0,
    totals_ok       BIGINT  NOT NULL DEFAULT 1,
    items_truncated BIGINT  NOT NULL DEFAULT 0,
    error           TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX reconciliations_day ON reconciliations (channel, bill_date);

CREATE TABLE reconciliation_items (
    reconciliation_id TEXT    NOT NULL,
    seq               BIGINT  NOT NULL,
    kind              TEXT    NOT NULL,
    line              BIGINT,
    out_trade_no      TEXT,
    transaction_id    TEXT,
    bill_amount_fen   BIGINT,
    order_amount_fen  BIGINT,
    detail            TEXT    NOT NULL,
    PRIMARY KEY (reconciliation_id, seq)
);

CREATE TABLE reconciliation_repairs (
    channel           TEXT    NOT NULL,
    transaction_id    TEXT    NOT NULL,
    out_trade_no      TEXT    NOT NULL,
    reconciliation_id TEXT    NOT NULL,
    amount_fen        BIGINT  NOT NULL,
    repaired_at       BIGINT  NOT NULL,
    PRIMARY KEY (channel, transaction_id)
);

CREATE INDEX payments_paid_day ON payments (channel, paid_at);
