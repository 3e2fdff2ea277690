//! Cron: schedules from `[cron]` in Asia/Shanghai time. Each slot is claimed with an insert
//! into `cron_slots` in the same transaction that enqueues its job, so it runs once however
//! many schedulers run. A slot missed while everything was down runs once at start when the
//! schedule's `catch_up` is on (the default).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use tokio::sync::watch;

use crate::app::Services;
use crate::store::DbResult;

/// A configured schedule, parsed.
pub struct Schedule {
    pub name: String,
    pub cron: Cron,
    pub catch_up: bool,
}

/// Parses every `cron.<name>`; an unknown name or a bad expression names the key.
pub fn schedules(services: &Services) -> anyhow::Result<Vec<Schedule>> {
    let mut out = Vec::new();
    for (name, entry) in &services.config.cron {
        if crate::workers::cron_job(name, 0).is_none() {
            anyhow::bail!(
                "cron.{name}: no such schedule (known: {})",
                crate::workers::CRON_NAMES.join(", ")
            );
        }
        let cron =
            Cron::from_str(entry.schedule()).map_err(|e| anyhow::anyhow!("cron.{name}: {e}"))?;
        out.push(Schedule {
            name: name.clone(),
            cron,
            catch_up: entry.catch_up(),
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

/// Claims `slot_ms` of `name` and enqueues its job; false when another process had it.
pub async fn claim_slot(services: &Services, name: &str, slot_ms: i64) -> DbResult<bool> {
    let Some((job_kind, queue, payload)) = crate::workers::cron_job(name, slot_ms) else {
        return Ok(false);
    };
    let now = services.clock.now_ms();
    let mut tx = services.db.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO cron_slots (name, slot_at, claimed_at) VALUES ($1, $2, $3)
         ON CONFLICT (name, slot_at) DO NOTHING",
    )
    .bind(name)
    .bind(slot_ms)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        let key = format!("{name}:{slot_ms}");
        services
            .queue
            .enqueue_raw(&mut tx, job_kind, queue, &key, &payload, now, now)
            .await?;
    }
    tx.commit().await?;
    if claimed {
        metrics::counter!("beian_cron_slots_total", "schedule" => name.to_string()).increment(1);
        services.queue.wake();
        tracing::info!(schedule = name, slot = %crate::clock::rfc3339(slot_ms), "cron slot enqueued");
    }
    Ok(claimed)
}

/// The scheduler's cron loop.
pub async fn run(
    services: Arc<Services>,
    schedules: Vec<Schedule>,
    mut shutdown: watch::Receiver<bool>,
) {
    let start = services.clock.now_ms();
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
        let now = services.clock.now_ms();
        let mut sleep_ms = 1000i64;
        for (i, s) in schedules.iter().enumerate() {
            let Some(slot) = next[i] else { continue };
            if slot <= now {
                match claim_slot(&services, &s.name, slot).await {
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
            _ = services.clock.moved() => {}
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
