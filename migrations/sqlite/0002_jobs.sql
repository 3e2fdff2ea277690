-- The job runtime: the jobs table (the outbox and, for the embedded transport, the queue
-- itself), the record of finished effects, durable timers and claimed cron slots.
-- States: queued -> running -> done | queued (retry) | dead; dead -> queued (replay).
CREATE TABLE jobs (
    id           TEXT    NOT NULL PRIMARY KEY,
    queue        TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    idem_key     TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    worker       TEXT,
    published    INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    history      TEXT    NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_kind_key ON jobs (kind, idem_key);
CREATE INDEX jobs_claim ON jobs (queue, state, run_at);
CREATE INDEX jobs_state ON jobs (state, updated_at);
CREATE INDEX jobs_unpublished ON jobs (published, state, run_at);

CREATE TABLE job_effects (
    kind     TEXT    NOT NULL,
    idem_key TEXT    NOT NULL,
    done_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, idem_key)
);

CREATE TABLE timers (
    key        TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    due_at     INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    fired_at   INTEGER
);
CREATE INDEX timers_due ON timers (state, due_at);

CREATE TABLE cron_slots (
    name       TEXT    NOT NULL,
    slot_at    INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (name, slot_at)
);
