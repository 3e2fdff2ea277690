//! The payloads of the jobs the review lifecycle enqueues, and their keys (the handlers are
//! in `workers/`): the SLA checkpoints, and the decision notifications (also enqueued by
//! the face check's automatic approval, through `filings::jobs`).

use serde::{Deserialize, Serialize};

/// `notify.decision`: tells the filer and the owner of a decision on a filing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifyDecision {
    pub filing_id: String,
    /// `approved`, `rejected`, `review_rejected`, ...
    pub decision: String,
}

impl NotifyDecision {
    pub fn dedup_key(&self) -> String {
        format!("{}:{}", self.filing_id, self.decision)
    }
}

/// Which SLA checkpoint of a review a `review.sla_check` timer stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "checkpoint")]
pub enum Checkpoint {
    /// `review.at_risk_ratio` of the SLA has passed.
    AtRisk,
    /// Escalation `level`: 1 at the deadline (the breach), one more each further working day.
    Escalation { level: i64 },
}

/// `review.sla_check` (timer): one checkpoint of one review. Each checkpoint is one timer
/// with a key of its own, and the job's key is the timer's, so it takes effect once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlaCheck {
    pub filing_id: String,
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// When the checkpoint fell due (service time, Unix ms): the next escalation counts
    /// one working day from here.
    pub due_ms: i64,
}

impl SlaCheck {
    pub fn dedup_key(&self) -> String {
        checkpoint_key(&self.filing_id, self.checkpoint)
    }
}

/// The timer (and job) key of a checkpoint.
pub fn checkpoint_key(filing_id: &str, checkpoint: Checkpoint) -> String {
    match checkpoint {
        Checkpoint::AtRisk => format!("review:{filing_id}:at_risk"),
        Checkpoint::Escalation { level } => format!("review:{filing_id}:escalation:{level}"),
    }
}

/// The `message_id` of the escalation SMS of `level` to one supervisor: stable per
/// (review, level, phone), with the phone as a short digest (ids show in logs and the admin
/// views; phone numbers must not).
pub fn escalation_message_id(filing_id: &str, level: i64, phone: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, phone.as_bytes());
    format!(
        "review:{filing_id}:escalation:{level}:{}",
        hex::encode(&digest.as_ref()[..6])
    )
}
