//! The AMQP transport (RabbitMQ through lapin). The jobs table stays the outbox and the truth:
//! the relay ([`relay`]) publishes due, unpublished rows as persistent messages of several
//! jobs each to a durable direct exchange with publisher confirms, and keeps them marked
//! published only once the broker confirmed; consumers ([`consumer`]) run a message's jobs
//! and ack it after every outcome is committed (the ids of jobs that died are copied to the
//! dead-letter exchange). This file holds the names, the connection and the declarations.
//!
//! Connections recover with our own loop (drop everything, back off, reconnect, redeclare):
//! lapin's auto-recover was seen to hang for good when the link broke under load.

mod consumer;
mod relay;

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::watch;

use super::Settings;

pub use consumer::run_consumers;
pub use relay::run_relay;

fn exchange(config: &Settings) -> String {
    format!("{}.jobs", config.queue.amqp_prefix)
}

fn dead_letters(config: &Settings) -> String {
    format!("{}.dead", config.queue.amqp_prefix)
}

fn queue_name(config: &Settings, queue: &str) -> String {
    format!("{}.{queue}", config.queue.amqp_prefix)
}

async fn connect(config: &Settings, name: &str) -> lapin::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.to_string().into());
    Connection::connect(config.queue.amqp_url.expose(), properties).await
}

/// Declares the exchanges and, for `queues`, the durable queues (quorum if configured) with
/// the dead-letter exchange. Idempotent (tools and tests declare a queue before consuming).
pub async fn declare(config: &Settings, channel: &Channel, queues: &[String]) -> lapin::Result<()> {
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
