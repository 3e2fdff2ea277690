-- Manual review (人工审核): one review per filing that went to `under_review`, with its SLA
-- (deadline and at-risk moment in working time), its flags and escalation level (set by the
-- `review.sla_check` timers), the reviewer's lease, and the decision; and the audit trail of
-- everything done to a review (who, when, why).
CREATE TABLE reviews (
    filing_id        TEXT    NOT NULL PRIMARY KEY,
    opened_at        INTEGER NOT NULL,
    deadline_at      INTEGER NOT NULL,
    at_risk_at       INTEGER NOT NULL,
    at_risk          INTEGER NOT NULL DEFAULT 0,
    breached         INTEGER NOT NULL DEFAULT 0,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    claimed_by       TEXT,
    claim_expires_at INTEGER,
    decision         TEXT,
    reason           TEXT,
    decided_by       TEXT,
    decided_at       INTEGER
);
CREATE INDEX reviews_open ON reviews (decided_at, breached, at_risk, deadline_at);

CREATE TABLE review_audit (
    filing_id TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT,
    PRIMARY KEY (filing_id, seq)
);
