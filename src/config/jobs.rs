//! The job runtime's sections: `[queue]` (transport, broker, group commit), `[jobs.<queue>]`
//! (per-queue settings over `[jobs.default]`) and `[cron.<name>]` (schedules). Only the
//! syntax is checked here: which queue and schedule names exist is the job runtime's to
//! say, at the start of every process.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Embedded,
    Amqp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub transport: Transport,
    pub amqp_url: Secret,
    pub quorum_queues: bool,
    pub poll_interval_ms: u64,
    pub lease_seconds: u64,
    /// Names of the exchanges and queues on the broker: `{prefix}.jobs`, `{prefix}.{queue}`.
    pub amqp_prefix: String,
    /// Group commit of job effects (`queue::effects`): how many lanes (open transactions)
    /// take effects at once; 0 picks one on SQLite and four on PostgreSQL.
    pub effect_lanes: u32,
    /// The most effects one group commit holds.
    pub effect_batch_max: u32,
    /// The most jobs one AMQP message carries (never more than the queue's concurrency).
    pub amqp_jobs_per_message: u32,
    /// A job handed to the broker and not finished this long after is published again from
    /// the outbox (a message the broker lost after confirming it: a purge, a TTL or
    /// max-length policy, a lost node, a quorum queue's delivery limit).
    pub amqp_republish_after_seconds: u64,
    /// How long the relay waits for the broker to confirm a batch before it gives the
    /// batch back to the outbox and reconnects.
    pub amqp_confirm_timeout_seconds: u64,
    /// If set, the broker deletes a queue unused for this long (`x-expires`; for tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp_queue_expires_ms: Option<u64>,
}

impl QueueConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        let prefix_ok = !self.amqp_prefix.is_empty()
            && self.amqp_prefix.len() <= 64
            && self
                .amqp_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !prefix_ok {
            return Err("queue.amqp_prefix: 1-64 letters, digits, '-', '_' or '.'".into());
        }
        if self.effect_lanes > 64 {
            return Err("queue.effect_lanes: 0 (automatic) to 64".into());
        }
        if !(1..=1000).contains(&self.effect_batch_max) {
            return Err("queue.effect_batch_max: 1 to 1000".into());
        }
        if !(1..=1000).contains(&self.amqp_jobs_per_message) {
            return Err("queue.amqp_jobs_per_message: 1 to 1000".into());
        }
        if self.amqp_republish_after_seconds == 0 {
            return Err("queue.amqp_republish_after_seconds: at least 1".into());
        }
        if !(1..=600).contains(&self.amqp_confirm_timeout_seconds) {
            return Err("queue.amqp_confirm_timeout_seconds: 1 to 600".into());
        }
        Ok(())
    }
}

/// `jobs.<queue>`: every key optional, falling back to `jobs.default`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobQueueOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_cap_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<u16>,
}

/// The settings one queue runs with, after `jobs.<queue>` is laid over `jobs.default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub concurrency: u32,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub prefetch: u16,
}

/// `jobs.<queue>` laid over `jobs.default` (a queue not listed gets the default's).
pub(super) fn queue_settings(
    jobs: &BTreeMap<String, JobQueueOverrides>,
    queue: &str,
) -> QueueSettings {
    let base = jobs.get("default").cloned().unwrap_or_default();
    let over = jobs.get(queue).cloned().unwrap_or_default();
    QueueSettings {
        concurrency: over.concurrency.or(base.concurrency).unwrap_or(4),
        max_attempts: over.max_attempts.or(base.max_attempts).unwrap_or(10),
        backoff_base_ms: over
            .backoff_base_ms
            .or(base.backoff_base_ms)
            .unwrap_or(2000),
        backoff_cap_ms: over
            .backoff_cap_ms
            .or(base.backoff_cap_ms)
            .unwrap_or(3_600_000),
        prefetch: over.prefetch.or(base.prefetch).unwrap_or(32),
    }
}

/// Every `jobs.<queue>` entry, as the queue would run with it, is usable. Whether `<queue>`
/// names a queue is checked at start by the job runtime.
pub(super) fn check_jobs(jobs: &BTreeMap<String, JobQueueOverrides>) -> Result<(), String> {
    if !jobs.contains_key("default") {
        return Err("jobs.default: missing".into());
    }
    for queue in jobs.keys() {
        let s = queue_settings(jobs, queue);
        if s.concurrency == 0 || s.max_attempts == 0 || s.prefetch == 0 {
            return Err(format!(
                "jobs.{queue}: concurrency, max_attempts and prefetch must be at least 1"
            ));
        }
        if s.backoff_base_ms > s.backoff_cap_ms {
            return Err(format!(
                "jobs.{queue}: backoff_base_ms is above backoff_cap_ms"
            ));
        }
    }
    Ok(())
}

/// `cron.<name>`: either `"30 10 * * *"` or `{ schedule = "...", catch_up = false }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum CronEntry {
    Schedule(String),
    Table {
        schedule: String,
        #[serde(default = "default_true")]
        catch_up: bool,
    },
}

fn default_true() -> bool {
    true
}

impl CronEntry {
    pub fn schedule(&self) -> &str {
        match self {
            CronEntry::Schedule(s) => s,
            CronEntry::Table { schedule, .. } => schedule,
        }
    }
    pub fn catch_up(&self) -> bool {
        match self {
            CronEntry::Schedule(_) => true,
            CronEntry::Table { catch_up, .. } => *catch_up,
        }
    }
}

/// Every `cron.<name>` expression parses. Whether `<name>` is a schedule this binary knows
/// is checked at start by the job runtime.
pub(super) fn check_cron(cron: &BTreeMap<String, CronEntry>) -> Result<(), String> {
    for (name, entry) in cron {
        if let Err(e) = entry.schedule().parse::<croner::Cron>() {
            return Err(format!("cron.{name}: {e}"));
        }
    }
    Ok(())
}
