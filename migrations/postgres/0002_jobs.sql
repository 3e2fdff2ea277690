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
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_until  BIGINT,
    worker       TEXT,
    published    BOOLEAN NOT NULL DEFAULT FALSE,
    last_error   TEXT,
    history      TEXT    NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_kind_key ON jobs (kind, idem_key);
CREATE INDEX jobs_claim ON jobs (queue, state, run_at);
CREATE INDEX jobs_state ON jobs (state, updated_at);
CREATE INDEX jobs_unpublished ON jobs (published, state, run_at);

CREATE TABLE job_effects (
    kind     TEXT    NOT NULL,
    idem_key TEXT    NOT NULL,
    done_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, idem_key)
);

CREATE TABLE timers (
    key        TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    due_at     BIGINT NOT NULL,
    state      TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    fired_at   BIGINT
);
CREATE INDEX timers_due ON timers (state, due_at);

CREATE TABLE cron_slots (
    name       TEXT    NOT NULL,
    slot_at    BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (name, slot_at)
);
