//! Cron: the application's [`CronTable`] (schedule name -> job) timed by `[cron]`, in
//! Asia/Shanghai time. Each slot is claimed with an insert into `cron_slots` in the same
//! transaction that enqueues its job, so it runs once however many schedulers run. A slot
//! missed while everything was down runs once at start when the schedule's `catch_up` is on
//! (the default).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use tokio::sync::watch;

use super::handle::payload_of;
use super::{Job, Runtime};
use crate::config::CronEntry;
use crate::store::{DbResult, cron as store};

type MakeJob = Arc<dyn Fn(i64) -> DbResult<String> + Send + Sync>;

/// What a schedule enqueues: the job's kind and queue, and its payload for a slot.
#[derive(Clone)]
struct CronJob {
    kind: &'static str,
    queue: &'static str,
    payload: MakeJob,
}

/// The schedules the application offers, by name (`[cron.<name>]` picks their times).
#[derive(Clone, Default)]
pub struct CronTable {
    jobs: BTreeMap<&'static str, CronJob>,
}

impl CronTable {
    /// Schedule `name` enqueues `job(slot_ms)` for each of its slots.
    pub fn add<J: Job>(&mut self, name: &'static str, job: fn(i64) -> J) -> &mut Self {
        let payload: MakeJob = Arc::new(move |slot_ms| payload_of(&job(slot_ms)));
        self.jobs.insert(
            name,
            CronJob {
                kind: J::NAME,
                queue: J::QUEUE,
                payload,
            },
        );
        self
    }

    pub fn contains(&self, name: &str) -> bool {
        self.jobs.contains_key(name)
    }

    /// The schedule names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.jobs.keys().copied()
    }
}

/// A configured schedule, parsed, with the job it enqueues.
pub struct Schedule {
    pub name: String,
    pub cron: Cron,
    pub catch_up: bool,
    job: CronJob,
}

/// Parses every `cron.<name>` against `table`; an unknown name or a bad expression names
/// the key.
pub fn schedules(
    entries: &BTreeMap<String, CronEntry>,
    table: &CronTable,
) -> anyhow::Result<Vec<Schedule>> {
    let mut out = Vec::new();
    for (name, entry) in entries {
        let Some(job) = table.jobs.get(name.as_str()) else {
            anyhow::bail!(
                "cron.{name}: no such schedule (known: {})",
                table.names().collect::<Vec<_>>().join(", ")
            );
        };
        let cron =
            Cron::from_str(entry.schedule()).map_err(|e| anyhow::anyhow!("cron.{name}: {e}"))?;
        out.push(Schedule {
            name: name.clone(),
            cron,
            catch_up: entry.catch_up(),
            job: job.clone(),
        });
    }
    Ok(out)
}

/// Slots are whole seconds: croner keeps the sub-second part of the time it starts from,
/// and a slot's identity must not depend on when it was computed.
fn whole_second(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

fn next_after(cron: &Cron, after_ms: i64) -> Option<i64> {
    let tz = chrono_tz::Asia::Shanghai;
    let from = DateTime::<Utc>::from_timestamp_millis(whole_second(after_ms))?.with_timezone(&tz);
    cron.find_next_occurrence(&from, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn latest_at_or_before(cron: &Cron, at_ms: i64) -> Option<i64> {
    let tz = chrono_tz::Asia::Shanghai;
    let at = DateTime::<Utc>::from_timestamp_millis(whole_second(at_ms))?.with_timezone(&tz);
    cron.find_previous_occurrence(&at, true)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Claims `slot_ms` of `schedule` and enqueues its job; false when another process had it.
pub async fn claim_slot<C: Send + Sync + 'static>(
    runtime: &Runtime<C>,
    schedule: &Schedule,
    slot_ms: i64,
) -> DbResult<bool> {
    let name = schedule.name.as_str();
    let now = runtime.clock().now_ms();
    let mut tx = runtime.db().begin().await?;
    let claimed = store::claim_slot(&mut tx, name, slot_ms, now).await?;
    if claimed {
        let job = &schedule.job;
        let new = (
            job.kind,
            job.queue,
            format!("{name}:{slot_ms}"),
            (job.payload)(slot_ms)?,
        );
        runtime.queue().enqueue_raw(&mut tx, &new, now, now).await?;
    }
    tx.commit().await?;
    if claimed {
        metrics::counter!("beian_cron_slots_total", "schedule" => name.to_string()).increment(1);
        runtime.queue().wake();
        tracing::info!(schedule = name, slot = %crate::clock::rfc3339(slot_ms), "cron slot enqueued");
    }
    Ok(claimed)
}

/// The scheduler's cron loop.
pub async fn run<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    schedules: Vec<Schedule>,
    mut shutdown: watch::Receiver<bool>,
) {
    let start = runtime.clock().now_ms();
    // Next slot to consider, per schedule.
    let mut next: Vec<Option<i64>> = Vec::new();
    for s in &schedules {
        let first = if s.catch_up {
            // The latest slot at or before now: claimed already (then nothing runs) or missed.
            latest_at_or_before(&s.cron, start).or_else(|| next_after(&s.cron, start))
        } else {
            next_after(&s.cron, start)
        };
        next.push(first);
    }
    while !*shutdown.borrow() {
        let now = runtime.clock().now_ms();
        let mut sleep_ms = 1000i64;
        for (i, s) in schedules.iter().enumerate() {
            let Some(slot) = next[i] else { continue };
            if slot <= now {
                match claim_slot(&runtime, s, slot).await {
                    Ok(_) => {
                        // Skip slots that passed meanwhile (a clock jump): run the latest once.
                        next[i] = next_after(&s.cron, now.max(slot));
                        if let Some(latest) = latest_at_or_before(&s.cron, now) {
                            if latest > slot {
                                next[i] = Some(latest);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(schedule = %s.name, error = %e, "cannot claim a cron slot; retrying")
                    }
                }
                sleep_ms = 0;
            } else {
                sleep_ms = sleep_ms.min(slot - now);
            }
        }
        if sleep_ms == 0 {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms.clamp(10, 1000) as u64)) => {}
            _ = runtime.clock().moved() => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_in_shanghai_time() {
        let cron = Cron::from_str("30 10 * * *").unwrap();
        // 2026-11-25T00:00:00Z is 08:00 in Shanghai: the next slot is 10:30 +08:00 = 02:30Z.
        let start = DateTime::parse_from_rfc3339("2026-11-25T00:00:00.594Z")
            .unwrap()
            .timestamp_millis();
        let slot = next_after(&cron, start).unwrap();
        assert_eq!(crate::clock::rfc3339(slot), "2026-11-25T10:30:00.000+08:00");
        assert_eq!(
            latest_at_or_before(&cron, slot + 743),
            Some(slot),
            "a slot is the same whenever it is computed"
        );
        assert_eq!(next_after(&cron, start + 149), Some(slot));
    }
}
