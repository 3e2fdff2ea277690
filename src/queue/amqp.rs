//! The AMQP transport (RabbitMQ through lapin). The jobs table stays the outbox and the truth:
//! the relay publishes due, unpublished rows as persistent messages (the job id) to a
//! durable direct exchange with publisher confirms, and marks them published only once the
//! broker confirmed; consumers claim the row named by a delivery, run it, and ack after the
//! outcome is committed (a dead job is nacked into the dead-letter exchange).
//!
//! Connections recover with our own loop (drop everything, back off, reconnect, redeclare):
//! lapin's auto-recover was seen to hang for good when the link broke under load.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::{Semaphore, watch};

use super::runner::{self, Finished};
use super::{BrokerStatus, Registry};
use crate::app::Services;
use crate::config::Config;
use crate::store::jobs;

const PUBLISH_BATCH: i64 = 500;

fn exchange(config: &Config) -> String {
    format!("{}.jobs", config.queue.amqp_prefix)
}

fn dead_letters(config: &Config) -> String {
    format!("{}.dead", config.queue.amqp_prefix)
}

fn queue_name(config: &Config, queue: &str) -> String {
    format!("{}.{queue}", config.queue.amqp_prefix)
}

async fn connect(config: &Config, name: &str) -> lapin::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.to_string().into());
    Connection::connect(config.queue.amqp_url.expose(), properties).await
}

/// Declares the exchanges and, for `queues`, the durable queues (quorum if configured) with
/// the dead-letter exchange. Idempotent.
async fn declare(config: &Config, channel: &Channel, queues: &[String]) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            exchange(config).as_str().into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            dead_letters(config).as_str().into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    let mut dead_args = FieldTable::default();
    if let Some(ms) = config.queue.amqp_queue_expires_ms {
        dead_args.insert("x-expires".into(), AMQPValue::LongLongInt(ms as i64));
    }
    channel
        .queue_declare(
            dead_letters(config).as_str().into(),
            QueueDeclareOptions::durable(),
            dead_args,
        )
        .await?;
    channel
        .queue_bind(
            dead_letters(config).as_str().into(),
            dead_letters(config).as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for queue in queues {
        let mut args = FieldTable::default();
        // RabbitMQ wants long strings ('S') in queue arguments.
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dead_letters(config).as_str().into()),
        );
        if config.queue.quorum_queues {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        if let Some(ms) = config.queue.amqp_queue_expires_ms {
            args.insert("x-expires".into(), AMQPValue::LongLongInt(ms as i64));
        }
        let name = queue_name(config, queue);
        channel
            .queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
            .await?;
        channel
            .queue_bind(
                name.as_str().into(),
                exchange(config).as_str().into(),
                queue.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Waits `delay` (or until shutdown); the next delay doubles up to 10 s.
async fn back_off(delay: &mut Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(*delay) => {}
        _ = shutdown.changed() => {}
    }
    *delay = (*delay * 2).min(Duration::from_secs(10));
}

/// The outbox relay: runs until shutdown, reconnecting after any broker error. Anything not
/// confirmed stays unpublished in the database and is sent again.
pub async fn run_relay(services: Arc<Services>, mut shutdown: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(200);
    let mut logged_down = false;
    while !*shutdown.borrow() {
        match relay_session(&services, &mut shutdown).await {
            Ok(()) => break,
            Err(e) => {
                services.queue.set_broker_status(BrokerStatus::Down);
                if !logged_down {
                    tracing::warn!(error = %e, "broker unreachable; accepted jobs wait in the outbox");
                    logged_down = true;
                }
                back_off(&mut delay, &mut shutdown).await;
            }
        }
    }
}

async fn relay_session(
    services: &Arc<Services>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let config = &services.config;
    let connection = connect(config, "beian-relay").await?;
    let channel = connection.create_channel().await?;
    declare(config, &channel, &crate::app::all_queues()).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    services.queue.set_broker_status(BrokerStatus::Up);
    tracing::info!("broker connected: relaying the outbox");
    let poll = Duration::from_millis(config.queue.poll_interval_ms.clamp(10, 250));
    let mut last_rescue = std::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            let _ = connection.close(200, "shutdown".into()).await;
            return Ok(());
        }
        let ready = services.queue.jobs_ready().notified();
        tokio::pin!(ready);
        ready.as_mut().enable();
        if !connection.status().connected() {
            anyhow::bail!("broker connection lost");
        }
        if last_rescue.elapsed() > Duration::from_secs(5) {
            last_rescue = std::time::Instant::now();
            let rescued = jobs::rescue_expired(
                &services.db,
                chrono::Utc::now().timestamp_millis(),
                services.clock.now_ms(),
            )
            .await?;
            if rescued > 0 {
                tracing::warn!(rescued, "jobs of workers that died went back to the queue");
            }
        }
        let published = publish_due(services, &channel).await?;
        if published as i64 >= PUBLISH_BATCH {
            continue;
        }
        tokio::select! {
            _ = &mut ready => {}
            _ = tokio::time::sleep(poll) => {}
            _ = services.clock.moved() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Publishes one batch of due rows and marks the confirmed ones; returns how many.
async fn publish_due(services: &Arc<Services>, channel: &Channel) -> anyhow::Result<usize> {
    let config = &services.config;
    let mut tx = services.db.begin().await?;
    let due = jobs::unpublished(
        &services.db,
        &mut tx,
        services.clock.now_ms(),
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
    let mut pending = Vec::with_capacity(due.len());
    for (id, queue) in &due {
        let confirm = channel
            .basic_publish(
                exchange.as_str().into(),
                queue.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                id.as_bytes(),
                properties.clone(),
            )
            .await?;
        pending.push((id.clone(), confirm));
    }
    let mut confirmed = Vec::with_capacity(pending.len());
    for (id, confirm) in pending {
        match confirm.await? {
            Confirmation::Ack(None) | Confirmation::NotRequested => confirmed.push(id),
            Confirmation::Ack(Some(returned)) => {
                tracing::warn!(job = %id, reply = %returned.reply_text, "message returned unroutable; will retry");
            }
            Confirmation::Nack(_) => {
                tracing::warn!(job = %id, "broker refused a message; will retry")
            }
        }
    }
    jobs::mark_published(&mut tx, &confirmed).await?;
    tx.commit().await?;
    Ok(confirmed.len())
}

/// Consumers for `queues`: runs until shutdown, reconnecting after any broker error; then
/// finishes or hands back the jobs in hand within `shutdown.grace_seconds`.
pub async fn run_consumers(
    services: Arc<Services>,
    registry: Arc<Registry>,
    queues: Vec<String>,
    worker: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let total: usize = queues
        .iter()
        .map(|q| services.config.queue_settings(q).concurrency as usize)
        .sum();
    let permits = Arc::new(Semaphore::new(total.max(1)));
    let mut delay = Duration::from_millis(200);
    while !*shutdown.borrow() {
        let session = consume_session(
            &services,
            &registry,
            &queues,
            &worker,
            &permits,
            &mut shutdown,
        )
        .await;
        match session {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "consumers lost the broker; reconnecting");
                back_off(&mut delay, &mut shutdown).await;
            }
        }
    }
    let grace = Duration::from_secs(services.config.shutdown.grace_seconds);
    if tokio::time::timeout(grace, permits.acquire_many(total.max(1) as u32))
        .await
        .is_err()
    {
        match jobs::release_held(&services.db, &worker, None, services.clock.now_ms()).await {
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

async fn consume_session(
    services: &Arc<Services>,
    registry: &Arc<Registry>,
    queues: &[String],
    worker: &str,
    permits: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let config = &services.config;
    let connection = connect(config, &format!("beian-worker-{worker}")).await?;
    let setup = connection.create_channel().await?;
    declare(config, &setup, queues).await?;
    let (lost_tx, mut lost_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(queues.len());
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
            services.clone(),
            registry.clone(),
            worker.to_string(),
            consumer,
            limit,
            permits.clone(),
            lost_tx.clone(),
        )));
    }
    tracing::info!(queues = ?queues, "broker connected: consuming");
    let outcome = tokio::select! {
        lost = lost_rx.recv() => Err(lost.unwrap_or_else(|| anyhow::anyhow!("consumers ended"))),
        _ = shutdown.wait_for(|stop| *stop) => Ok(()),
    };
    for handle in &loops {
        handle.abort();
    }
    let _ = connection.close(200, "bye".into()).await;
    outcome
}

/// One delivery with the two permits it holds (its queue's concurrency, the process total).
type Held = (
    lapin::message::Delivery,
    tokio::sync::OwnedSemaphorePermit,
    tokio::sync::OwnedSemaphorePermit,
);

/// Most deliveries claimed with one statement.
const CLAIM_BATCH: usize = 128;

async fn consume_queue(
    services: Arc<Services>,
    registry: Arc<Registry>,
    worker: String,
    mut consumer: lapin::Consumer,
    limit: Arc<Semaphore>,
    permits: Arc<Semaphore>,
    lost: tokio::sync::mpsc::Sender<anyhow::Error>,
) {
    loop {
        let first = match consumer.next().await {
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
        let (Ok(slot), Ok(held)) = (
            limit.clone().acquire_owned().await,
            permits.clone().acquire_owned().await,
        ) else {
            return;
        };
        let mut batch: Vec<Held> = vec![(first, slot, held)];
        // Take whatever else is already delivered, while there is room to run it.
        while batch.len() < CLAIM_BATCH {
            let (Ok(slot), Ok(held)) = (
                limit.clone().try_acquire_owned(),
                permits.clone().try_acquire_owned(),
            ) else {
                break;
            };
            match futures_lite::future::poll_once(consumer.next()).await {
                Some(Some(Ok(d))) => batch.push((d, slot, held)),
                Some(Some(Err(e))) => {
                    let _ = lost.send(e.into()).await;
                    return;
                }
                Some(None) => {
                    let _ = lost.send(anyhow::anyhow!("consumer stream ended")).await;
                    return;
                }
                None => break,
            }
        }
        claim_and_run(&services, &registry, &worker, batch).await;
    }
}

/// Claims a batch of deliveries in one statement (a redelivered one is taken even from a
/// live lease: its holder's channel is gone), runs the claimed jobs, and settles each
/// message once its outcome is committed.
async fn claim_and_run(
    services: &Arc<Services>,
    registry: &Arc<Registry>,
    worker: &str,
    batch: Vec<Held>,
) {
    let lease_ms = services.config.queue.lease_seconds as i64 * 1000;
    let now = services.clock.now_ms();
    let real_now = chrono::Utc::now().timestamp_millis();
    let ids: Vec<String> = batch
        .iter()
        .map(|(d, _, _)| String::from_utf8_lossy(&d.data).to_string())
        .collect();
    let fresh: Vec<String> = batch
        .iter()
        .zip(&ids)
        .filter(|((d, _, _), _)| !d.redelivered)
        .map(|(_, id)| id.clone())
        .collect();
    let mut claimed =
        match jobs::claim_many(&services.db, &fresh, now, real_now, lease_ms, worker).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim delivered jobs; requeued");
                for (delivery, _, _) in batch {
                    let _ = delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        })
                        .await;
                }
                return;
            }
        };
    for ((delivery, _, _), id) in batch.iter().zip(&ids) {
        if delivery.redelivered {
            match jobs::claim_one(&services.db, id, now, real_now, lease_ms, worker, true).await {
                Ok(Some(job)) => claimed.push(job),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "cannot claim a redelivered job; it will come back")
                }
            }
        }
    }
    for ((delivery, slot, held), id) in batch.into_iter().zip(ids) {
        let job = claimed
            .iter()
            .position(|j| j.id == id)
            .map(|i| claimed.swap_remove(i));
        let services = services.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            // No job claimed: done, dead, running elsewhere, or unknown; nothing to do.
            let finished = match job {
                Some(job) => runner::run(&services, &registry, job).await,
                None => Finished::Done,
            };
            // The outcome is committed: only now is the message settled.
            let settled = match finished {
                Finished::Dead => {
                    delivery
                        .nack(BasicNackOptions {
                            requeue: false,
                            multiple: false,
                        })
                        .await
                }
                Finished::Done | Finished::Retrying => {
                    delivery.ack(BasicAckOptions::default()).await
                }
            };
            if let Err(e) = settled {
                tracing::debug!(job = %id, error = %e, "could not settle a delivery; it will be redelivered and found finished");
            }
            drop((slot, held));
        });
    }
}
