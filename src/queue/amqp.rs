//! The AMQP transport (RabbitMQ through lapin): the outbox relay and the consumers.
//! Not built yet: configuration refuses `queue.transport = "amqp"` until it is, so nothing
//! pretends to run on a broker (see the README's status section).

use std::sync::Arc;

use tokio::sync::watch;

use super::Registry;
use crate::app::Services;

pub async fn run_relay(_services: Arc<Services>, _shutdown: watch::Receiver<bool>) {}

pub async fn run_consumers(
    _services: Arc<Services>,
    _registry: Arc<Registry>,
    _queues: Vec<String>,
    _worker: String,
    _shutdown: watch::Receiver<bool>,
) {
}
