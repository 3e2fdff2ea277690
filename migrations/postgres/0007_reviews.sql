-- Manual review (人工审核): one review per filing that went to `under_review`, with its SLA
-- (deadline and at-risk moment in working time), its flags and escalation level (set by the
-- `review.sla_check` timers), the reviewer's lease, and the decision; and the audit trail of
-- everything done to a review (who, when, why).
CREATE TABLE reviews (
    filing_id        TEXT    NOT NULL PRIMARY KEY,
    opened_at        BIGINT  NOT NULL,
    deadline_at      BIGINT  NOT NULL,
    at_risk_at       BIGINT  NOT NULL,
    at_risk          BOOLEAN NOT NULL DEFAULT FALSE,
    breached         BOOLEAN NOT NULL DEFAULT FALSE,
    escalation_level BIGINT  NOT NULL DEFAULT 0,
    claimed_by       TEXT,
    claim_expires_at BIGINT,
    decision         TEXT,
    reason           TEXT,
    decided_by       TEXT,
    decided_at       BIGINT
);
CREATE INDEX reviews_open ON reviews (decided_at, breached, at_risk, deadline_at);

CREATE TABLE review_audit (
    filing_id TEXT    NOT NULL,
    seq       BIGINT  NOT NULL,
    at        BIGINT  NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT,
    PRIMARY KEY (filing_id, seq)
);
