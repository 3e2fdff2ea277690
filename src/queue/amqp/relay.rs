//! The outbox relay: takes due, unpublished jobs in batches (marking them published in a
//! short transaction of their own), publishes them with confirms as messages of several jobs
//! of one queue, and gives back to the outbox whatever the broker did not confirm in time.
//! No database lock is held while it waits for the broker, so a stalled broker never blocks
//! a writer. Jobs handed over long ago and still unfinished are published again.

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
            republish_lost(runtime).await;
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

/// Publishes one batch of due rows: takes them (marked published and committed at once),
/// sends them as messages of up to `amqp_jobs_per_message` jobs of one queue, and waits for
/// the broker's confirms, at most `amqp_confirm_timeout_seconds`. The jobs of a message that
/// was refused, came back unroutable or was not confirmed in time go back to the outbox and
/// are sent again (consumers skip jobs already done). Returns how many jobs were taken.
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
    tx.commit().await?;
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("text/plain".into());
    let exchange = exchange(config);
    let mut by_queue: std::collections::BTreeMap<&str, Vec<(&str, String)>> = Default::default();
    for job in &due {
        by_queue
            .entry(job.queue.as_str())
            .or_default()
            .push((job.id.as_str(), serde_json::to_string(job)?));
    }
    // Each message with the ids of its jobs, so the unconfirmed ones can be given back.
    let mut sent: Vec<(Vec<String>, lapin::PublisherConfirm)> = Vec::new();
    let mut unsent: Vec<String> = Vec::new();
    let mut failure: Option<anyhow::Error> = None;
    for (queue, lines) in by_queue {
        for message in lines.chunks(jobs_per_message(config, queue)) {
            let ids: Vec<String> = message.iter().map(|(id, _)| id.to_string()).collect();
            if failure.is_some() {
                unsent.extend(ids);
                continue;
            }
            let body: Vec<&str> = message.iter().map(|(_, line)| line.as_str()).collect();
            match channel
                .basic_publish(
                    exchange.as_str().into(),
                    queue.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    body.join("\n").as_bytes(),
                    properties.clone(),
                )
                .await
            {
                Ok(confirm) => sent.push((ids, confirm)),
                Err(e) => {
                    unsent.extend(ids);
                    failure = Some(e.into());
                }
            }
        }
    }
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(config.queue.amqp_confirm_timeout_seconds);
    for (ids, confirm) in sent {
        if failure.is_some() {
            // The link is in doubt: nothing after the first failure counts as confirmed.
            unsent.extend(ids);
            continue;
        }
        match tokio::time::timeout_at(deadline, confirm).await {
            Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => {}
            Ok(Ok(Confirmation::Ack(Some(returned)))) => {
                // Unroutable: a queue is missing on the broker. Reconnecting declares it.
                unsent.extend(ids);
                failure = Some(anyhow::anyhow!(
                    "a message came back unroutable ({}); its jobs go back to the outbox",
                    returned.reply_text
                ));
            }
            Ok(Ok(Confirmation::Nack(_))) => {
                tracing::warn!("the broker refused a message; its jobs go back to the outbox");
                unsent.extend(ids);
            }
            Ok(Err(e)) => {
                unsent.extend(ids);
                failure = Some(e.into());
            }
            Err(_) => {
                unsent.extend(ids);
                failure = Some(anyhow::anyhow!(
                    "the broker did not confirm within {} s",
                    config.queue.amqp_confirm_timeout_seconds
                ));
            }
        }
    }
    if !unsent.is_empty() {
        // If this fails too (the database is down), the jobs stay marked published and
        // unfinished, and `republish_lost` hands them over again later.
        if let Err(e) = jobs::unpublish(runtime.db(), &unsent).await {
            tracing::warn!(error = %e, jobs = unsent.len(), "could not give unconfirmed jobs back to the outbox now; they are published again later");
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(due.len()),
    }
}

/// Jobs handed to the broker more than `amqp_republish_after_seconds` ago and still not
/// finished go back to the outbox: the broker lost their message after confirming it.
async fn republish_lost<C: Send + Sync + 'static>(runtime: &Arc<Runtime<C>>) {
    let now = runtime.clock().now_ms();
    let after_ms = runtime.settings().queue.amqp_republish_after_seconds as i64 * 1000;
    match jobs::republish_stale(runtime.db(), now - after_ms, now).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            jobs = n,
            "jobs handed to the broker long ago and not finished are published again"
        ),
        Err(e) => tracing::debug!(error = %e, "cannot look for lost messages now"),
    }
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
