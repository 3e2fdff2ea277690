//! Consumers: one channel per job queue with its prefetch; a delivery's jobs run under the
//! queue's concurrency, and the message is settled once every outcome is committed.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::{back_off, connect, dead_letters, declare, queue_name};
use crate::queue::Runtime;
use crate::queue::runner::{self, Finished};
use crate::store::jobs::{self, ClaimedJob};

/// Consumers for `queues`: runs until shutdown, reconnecting after any broker error; then
/// finishes or hands back the jobs in hand within `shutdown.grace_seconds`.
pub async fn run_consumers<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    queues: Vec<String>,
    worker: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let total: usize = queues
        .iter()
        .map(|q| runtime.settings().queue_settings(q).concurrency as usize)
        .sum();
    let permits = Arc::new(Semaphore::new(total.max(1)));
    let mut delay = Duration::from_millis(200);
    while !*shutdown.borrow() {
        let session = consume_session(&runtime, &queues, &worker, &permits, &mut shutdown).await;
        match session {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "consumers lost the broker; reconnecting");
                back_off(&mut delay, &mut shutdown).await;
            }
        }
    }
    let grace = Duration::from_secs(runtime.settings().shutdown.grace_seconds);
    if tokio::time::timeout(grace, permits.acquire_many(total.max(1) as u32))
        .await
        .is_err()
    {
        match jobs::release_held(runtime.db(), &worker, None, runtime.clock().now_ms()).await {
            Ok(n) => tracing::warn!(
                returned = n,
                "shutdown: jobs still running were handed back"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "shutdown: could not hand jobs back; their leases will expire")
            }
        }
    }
}

async fn consume_session<C: Send + Sync + 'static>(
    runtime: &Arc<Runtime<C>>,
    queues: &[String],
    worker: &str,
    permits: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let config = runtime.settings();
    let connection = connect(config, &format!("beian-worker-{worker}")).await?;
    let setup = connection.create_channel().await?;
    declare(config, &setup, queues).await?;
    let (lost_tx, mut lost_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(queues.len());
    // Every message in hand holds a clone of `in_hand`; the receiver ends when none is left.
    let (in_hand, mut all_settled) = tokio::sync::mpsc::channel::<()>(1);
    // Told to a message still running when the grace period is over: drop its jobs.
    let (abandon_tx, abandon) = watch::channel(false);
    let mut loops = Vec::new();
    for queue in queues {
        let settings = config.queue_settings(queue);
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(
                settings.prefetch.max(settings.concurrency as u16),
                BasicQosOptions::default(),
            )
            .await?;
        let consumer = channel
            .basic_consume(
                queue_name(config, queue).as_str().into(),
                format!("{worker}-{queue}").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let limit = Arc::new(Semaphore::new(settings.concurrency as usize));
        loops.push(tokio::spawn(consume_queue(
            runtime.clone(),
            worker.to_string(),
            channel,
            consumer,
            limit,
            permits.clone(),
            lost_tx.clone(),
            (in_hand.clone(), abandon.clone()),
        )));
    }
    drop(in_hand);
    tracing::info!(queues = ?queues, "broker connected: consuming");
    let outcome = tokio::select! {
        lost = lost_rx.recv() => Err(lost.unwrap_or_else(|| anyhow::anyhow!("consumers ended"))),
        _ = shutdown.wait_for(|stop| *stop) => Ok(()),
    };
    // Take no more deliveries, then let the messages in hand finish and be acked on this
    // connection (within the grace period) before closing it: closing first would return
    // messages whose jobs are still running here, and another worker would run them too.
    for handle in &loops {
        handle.abort();
    }
    for handle in loops {
        let _ = handle.await;
    }
    if outcome.is_ok() {
        let grace = Duration::from_secs(config.shutdown.grace_seconds);
        if tokio::time::timeout(grace, all_settled.recv())
            .await
            .is_err()
        {
            // Over time: stop the jobs still running, then hand their rows back. Their
            // messages return to the queue when the connection closes.
            let _ = abandon_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(2), all_settled.recv()).await;
            match jobs::release_held(runtime.db(), worker, None, runtime.clock().now_ms()).await {
                Ok(n) => tracing::warn!(
                    returned = n,
                    "shutdown: jobs still running after the grace period were handed back"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "shutdown: could not hand jobs back; their leases will expire"
                ),
            }
        }
    } else {
        // The link is gone: nothing can be acked any more, so stop what runs (its message
        // comes back from the broker and the redelivery claims the rows).
        let _ = abandon_tx.send(true);
    }
    let _ = connection.close(200, "bye".into()).await;
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn consume_queue<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    worker: String,
    channel: Channel,
    mut consumer: lapin::Consumer,
    limit: Arc<Semaphore>,
    permits: Arc<Semaphore>,
    lost: tokio::sync::mpsc::Sender<anyhow::Error>,
    (in_hand, abandon): (tokio::sync::mpsc::Sender<()>, watch::Receiver<bool>),
) {
    let concurrency = limit.available_permits().max(1);
    loop {
        let delivery = match consumer.next().await {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                let _ = lost.send(e.into()).await;
                return;
            }
            None => {
                let _ = lost.send(anyhow::anyhow!("consumer stream ended")).await;
                return;
            }
        };
        let jobs = carried_jobs(&delivery.data);
        // Room to run all of the message's jobs at once (the relay never puts more in a
        // message than the queue's concurrency; a larger one runs in turns).
        let room = jobs.len().clamp(1, concurrency);
        let (Ok(slots), Ok(held)) = (
            limit.clone().acquire_many_owned(room as u32).await,
            permits.clone().acquire_many_owned(room as u32).await,
        ) else {
            return;
        };
        let runtime = runtime.clone();
        let worker = worker.clone();
        let channel = channel.clone();
        let in_hand = in_hand.clone();
        let mut abandon = abandon.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = run_message(&runtime, &worker, &channel, delivery, jobs, (slots, held)) => {}
                // Dropping the run aborts its jobs (their JoinSet goes with it).
                _ = abandon.wait_for(|stop| *stop) => {}
            }
            drop(in_hand);
        });
    }
}

/// The jobs a message carries, one JSON line each (a bare id, as older versions sent,
/// is claimed from the table).
fn carried_jobs(body: &[u8]) -> Vec<Carried> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str::<ClaimedJob>(line) {
            Ok(job) => Carried::Whole(job),
            Err(_) => Carried::Id(line.trim().to_string()),
        })
        .collect()
}

enum Carried {
    Whole(ClaimedJob),
    Id(String),
}

/// Runs a message's jobs and acks the message once every outcome is committed; the ids of
/// jobs that died are copied to the dead-letter exchange.
///
/// A first delivery runs the jobs it carries without claiming their rows: the broker holds
/// the message until the ack, so a crash hands it to another consumer, which is the lease.
/// A redelivered message claims its rows in one statement, even from a live lease (the
/// channel that held them is gone), which counts the attempt. A job not claimable is done,
/// dead, or running elsewhere: nothing to do. On both paths the handler's effect checks
/// its key, so a job that ran already does nothing.
#[allow(clippy::too_many_arguments)]
async fn run_message<C: Send + Sync + 'static>(
    runtime: &Arc<Runtime<C>>,
    worker: &str,
    channel: &Channel,
    delivery: lapin::message::Delivery,
    carried: Vec<Carried>,
    (slots, held): (OwnedSemaphorePermit, OwnedSemaphorePermit),
) {
    let room = slots.num_permits();
    let mut unused = Some((slots, held));
    let mut ready = Vec::with_capacity(carried.len());
    let mut to_claim = Vec::new();
    for job in carried {
        match job {
            Carried::Whole(mut job) if !delivery.redelivered => {
                job.attempts += 1;
                ready.push(job);
            }
            Carried::Whole(job) => to_claim.push(job.id),
            Carried::Id(id) => to_claim.push(id),
        }
    }
    if !to_claim.is_empty() {
        let lease_ms = runtime.settings().queue.lease_seconds as i64 * 1000;
        match jobs::claim_many(
            runtime.db(),
            &to_claim,
            runtime.clock().now_ms(),
            chrono::Utc::now().timestamp_millis(),
            lease_ms,
            worker,
            delivery.redelivered,
        )
        .await
        {
            Ok(claimed) => ready.extend(claimed),
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim delivered jobs; the message goes back to the queue once the database answers");
                // Not at once: while the database is down, a message returned at once would
                // cycle through the queue (and a quorum queue dead-letters a message after
                // its delivery limit). Held unacked, it also fills the prefetch, so this
                // consumer takes no more deliveries until the database is back.
                wait_for_database(runtime.db()).await;
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await;
                return;
            }
        }
    }
    let mut running = tokio::task::JoinSet::new();
    let mut dead = Vec::new();
    let mut unrecorded = false;
    let mut settle =
        |finished: Option<Result<(String, Finished), tokio::task::JoinError>>| match finished {
            Some(Ok((id, Finished::Dead))) => dead.push(id),
            Some(Ok((_, Finished::Unrecorded))) | Some(Err(_)) => unrecorded = true,
            _ => {}
        };
    for job in ready {
        if running.len() >= room {
            settle(running.join_next().await);
        }
        // Each job holds its own share of the room and gives it back as soon as it ends,
        // so the next message can start.
        let room = match &mut unused {
            Some((slots, held)) if slots.num_permits() > 1 => slots.split(1).zip(held.split(1)),
            _ => unused.take(),
        };
        let runtime = runtime.clone();
        running.spawn(async move {
            let id = job.id.clone();
            let finished = runner::run(&runtime, job).await;
            drop(room);
            (id, finished)
        });
    }
    drop(unused);
    while let Some(finished) = running.join_next().await {
        settle(Some(finished));
    }
    // Every outcome is committed (or known not to be): only now is the message settled.
    if !dead.is_empty() {
        // The database row is the truth (state dead, every attempt kept); the broker's
        // dead-letter queue gets a copy for whoever watches it.
        let copy = channel
            .basic_publish(
                dead_letters(runtime.settings()).as_str().into(),
                delivery.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                dead.join("\n").as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await;
        if let Err(e) = copy {
            tracing::debug!(error = %e, "could not copy dead jobs to the dead-letter exchange");
        }
    }
    if unrecorded {
        // An outcome is not in the database (it is unreachable): the message must come
        // back, or a job run from it would stay queued and published for good. Jobs of the
        // message that did finish are found finished when it returns. It returns once the
        // database answers again, not in a loop while it is down.
        wait_for_database(runtime.db()).await;
        if let Err(e) = delivery
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await
        {
            tracing::debug!(error = %e, "could not return a message; the broker redelivers it when the channel closes");
        }
        return;
    }
    if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
        tracing::debug!(error = %e, "could not ack a message; it will be redelivered and its jobs found finished");
    }
}

/// Returns once the database answers, probing with a growing pause (at most 5 s).
async fn wait_for_database(db: &crate::store::Db) {
    let mut pause = Duration::from_millis(250);
    while !db.ping().await {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
