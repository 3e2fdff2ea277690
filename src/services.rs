//! The application's shared services: what API handlers and jobs share (configuration,
//! database, clock, the queue handle, the providers, the code key). `app` builds them;
//! jobs reach them through `JobContext::app()` (the job runtime's context is [`Services`]).

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::calendar::WorkingCalendar;
use crate::providers::{face::FaceProvider, sms::SmsGateway};
use crate::queue::{JobContext, Queue};
use crate::store::Db;

/// Everything handlers and jobs share.
pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Clock,
    pub queue: Queue,
    pub sms: SmsGateway,
    pub face: FaceProvider,
    /// The secret owner codes are derived from (`filing.code_secret`; never in the database;
    /// see `domain::filing::code`).
    pub code_key: Vec<u8>,
    /// Where uploaded photos are kept (`data_dir/documents/` by default).
    pub documents: Arc<dyn crate::documents::DocumentStore>,
    /// The working calendar the review SLA counts in (`calendar.dir`; see `app::calendar`).
    pub calendar: WorkingCalendar,
    /// The payment providers (WeChat Pay, Alipay; live or simulated).
    pub payments: std::sync::Arc<crate::providers::payments::Payments>,
}

impl JobContext<Services> {
    /// The whole configuration (the runtime's own part is [`JobContext::settings`]).
    pub fn config(&self) -> &Config {
        &self.app().config
    }
}
