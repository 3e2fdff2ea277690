//! The outbox relay: takes due, unpublished jobs in batches, publishes them with confirms
//! as messages of several jobs of one queue, and commits their `published` mark only when
//! the broker confirmed every message (otherwise the batch is sent again).

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use tokio::sync::watch;

use super::{back_off, connect, declare, exchange};
use crate::queue::{BrokerStatus, Runtime, Settings};
use crate::store::jobs;

const PUBLISH_BATCH: i64 = 500;

/// The outbox relay: runs until shutdown, reconnecting after any broker error. Anything not
/// confirmed stays unpublished in the database and is sent again.
pub async fn run_relay<C: Send + Sync + 'static>(
    runtime: Arc<Runtime<C>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_millis(200);
    let mut logged_down = false;
    while !*shutdown.borrow() {
        match relay_session(&runtime, &mut shutdown).await {
            Ok(()) => break,
            Err(e) => {
                runtime.queue().set_broker_status(BrokerStatus::Down);
                if !logged_down {
                    tracing::warn!(error = %e, "broker unreachable; accepted jobs wait in the outbox");
                    logged_down = true;
                }
                back_off(&mut delay, &mut shutdown).await;
            }
        }
    }
}

async fn relay_session<C: Send + Sync + 'static>(
    runtime: &Arc<Runtime<C>>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let config = runtime.settings();
    let connection = connect(config, "beian-relay").await?;
    let channel = connection.create_channel().await?;
    // Every queue a published job can name: the application's, and those of its job kinds.
    let mut queues: Vec<String> = config.queues().map(String::from).collect();
    for (_, queue) in runtime.registry().kinds() {
        if !queues.iter().any(|q| q == queue) {
            queues.push(queue.to_string());
        }
    }
    declare(config, &channel, &queues).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    runtime.queue().set_broker_status(BrokerStatus::Up);
    tracing::info!("broker connected: relaying the outbox");
    let poll = Duration::from_millis(config.queue.poll_interval_ms.clamp(10, 250));
    let mut last_rescue = std::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            let _ = connection.close(200, "shutdown".into()).await;
            return Ok(());
        }
        let ready = runtime.queue().jobs_ready().notified();
        tokio::pin!(ready);
        ready.as_mut().enable();
        if !connection.status().connected() {
            anyhow::bail!("broker connection lost");
        }
        if last_rescue.elapsed() > Duration::from_secs(5) {
            last_rescue = std::time::Instant::now();
            crate::queue::rescue_crashed(runtime.db(), runtime.clock()).await;
        }
        let published = match publish_due(runtime, &channel).await {
            Ok(n) => n,
            // The database, not the broker, failed: keep the connection and try again soon.
            Err(e) if e.downcast_ref::<sqlx::Error>().is_some() => {
                tracing::debug!(error = %e, "the relay cannot read the outbox now");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if published as i64 >= PUBLISH_BATCH {
            continue;
        }
        tokio::select! {
            _ = &mut ready => {}
            _ = tokio::time::sleep(poll) => {}
            _ = runtime.clock().moved() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Publishes one batch of due rows: takes them (marked published in a transaction), sends
/// them as messages of up to `amqp_jobs_per_message` job ids of one queue, and commits once
/// the broker confirmed every message. A refusal or a lost link rolls the batch back, so
/// all of it is sent again (consumers skip jobs already done). Returns how many jobs.
async fn publish_due<C: Send + Sync + 'static>(
    runtime: &Arc<Runtime<C>>,
    channel: &Channel,
) -> anyhow::Result<usize> {
    let config = runtime.settings();
    let mut tx = runtime.db().begin().await?;
    let due = jobs::take_unpublished(
        &mut tx,
        runtime.db().backend(),
        runtime.clock().now_ms(),
        PUBLISH_BATCH,
    )
    .await?;
    if due.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("text/plain".into());
    let exchange = exchange(config);
    let mut by_queue: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for job in &due {
        by_queue
            .entry(job.queue.as_str())
            .or_default()
            .push(serde_json::to_string(job)?);
    }
    let mut pending = Vec::new();
    for (queue, lines) in by_queue {
        for message in lines.chunks(jobs_per_message(config, queue)) {
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    queue.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    message.join("\n").as_bytes(),
                    properties.clone(),
                )
                .await?;
            pending.push(confirm);
        }
    }
    for confirm in pending {
        match confirm.await? {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            Confirmation::Ack(Some(returned)) => {
                tx.rollback().await?;
                anyhow::bail!(
                    "a message came back unroutable ({}); the batch will be sent again",
                    returned.reply_text
                );
            }
            Confirmation::Nack(_) => {
                tx.rollback().await?;
                anyhow::bail!("the broker refused a message; the batch will be sent again");
            }
        }
    }
    tx.commit().await?;
    Ok(due.len())
}

/// How many job ids one message of `queue` carries: never more than the queue runs at once,
/// so a consumer claims a message's jobs only when it can start them all.
fn jobs_per_message(config: &Settings, queue: &str) -> usize {
    // A quarter of the concurrency, so a consumer has a few messages going at once and
    // starts the next while the last jobs of one finish.
    let concurrency = config.queue_settings(queue).concurrency as usize;
    (config.queue.amqp_jobs_per_message as usize)
        .min(concurrency.div_ceil(4))
        .max(1)
}
