//! Building a process's parts from configuration: the shared [`Services`] (database,
//! clock, providers), the job runtime's [`Settings`] and the [`Runtime`] itself.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::providers::{face::FaceProvider, sms::SmsGateway};
use crate::queue::{Queue, Registry, Runtime, Settings};
use crate::services::Services;
use crate::store::Db;

/// Connects, migrates or checks the schema, and sets up the clock and the services.
pub async fn build_services(config: Arc<Config>, migrate: bool) -> anyhow::Result<Arc<Services>> {
    let calendar = super::calendar::load(&config.calendar)?;
    let db = Db::connect(&config.database).await?;
    if migrate {
        db.migrate().await?;
    } else {
        db.check_schema().await?;
    }
    let clock = manual_or_system_clock(&config, &db).await?;
    let queue = Queue::new(Arc::new(runtime_settings(&config)), db.backend());
    let sms = SmsGateway::from_config(&config)?;
    let face = FaceProvider::from_config(&config)?;
    let code_key = config.filing.code_secret_bytes()?;
    let documents = crate::documents::from_config(&config);
    let payments = crate::providers::payments::Payments::from_config(config.clone())?;
    Ok(Arc::new(Services {
        config,
        db,
        clock,
        queue,
        sms,
        face,
        code_key,
        documents,
        calendar,
        payments,
    }))
}

/// The job runtime over `services`, running `registry`'s jobs.
pub fn build_runtime(
    services: &Arc<Services>,
    registry: Registry<Services>,
) -> Arc<Runtime<Services>> {
    Runtime::new(
        services.clone(),
        services.db.clone(),
        services.clock.clone(),
        services.queue.clone(),
        registry,
    )
}

/// What the job runtime reads of the configuration: `[queue]`, `[shutdown]`, and each
/// queue of `workers::QUEUES` with `[jobs.<queue>]` laid over `[jobs.default]`.
pub fn runtime_settings(config: &Config) -> Settings {
    let mut settings = Settings::new(
        config.queue.clone(),
        config.shutdown.clone(),
        config.queue_settings("default"),
    );
    for queue in crate::workers::QUEUES {
        settings = settings.with_queue(queue, config.queue_settings(queue));
    }
    settings
}

async fn manual_or_system_clock(config: &Config, db: &Db) -> anyhow::Result<Clock> {
    if !config.clock.manual {
        return Ok(Clock::system());
    }
    let stored = crate::store::clock::load_offset(db).await?;
    let offset = match (stored, config.clock.start) {
        (Some(offset), _) => offset,
        (None, Some(start)) => {
            let offset = start.timestamp_millis() - chrono::Utc::now().timestamp_millis();
            crate::store::clock::raise_offset(db, offset).await?
        }
        (None, None) => 0,
    };
    // One event (a JSON line with `log.format = "json"`), at warn so it shows in every
    // profile's default level.
    tracing::warn!(
        clock_manual = true,
        "!!! THE MANUAL TEST CLOCK IS ON (clock.manual = true): anyone with the admin role can \
         move time with PUT /v1/test/clock. Never run this in production. !!!"
    );
    Ok(Clock::manual(offset))
}
