//! Configuration: compiled-in `config/default.toml`, then `--config FILE` (or `BEIAN_CONFIG`),
//! then `BEIAN__SECTION__KEY` environment variables. Unknown keys and bad values stop the
//! start with a message naming the key; secrets live in [`Secret`] so they never print.
//!
//! This module owns loading and checking; the section structs live by group in `server`,
//! `jobs`, `filing` and `providers`, each with the checks that concern it alone. It imports
//! nothing else of this crate: which queue and schedule names exist is checked at start by
//! the job runtime, not here.

mod filing;
mod jobs;
mod providers;
mod secret;
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use filing::{
    CalendarConfig, DEVELOPMENT_CODE_SECRET, FilingConfig, MIN_PRODUCTION_CODE_SECRET_BYTES,
    ReviewConfig,
};
pub use jobs::{CronEntry, JobQueueOverrides, QueueConfig, QueueSettings, Transport};
pub use providers::{
    AlipayConfig, FaceConfig, FaceProvider, PaymentsConfig, PaymentsMode, PlatformKey, SmsConfig,
    SmsProvider, WechatConfig,
};
pub use secret::Secret;
pub use server::{
    AuthConfig, ClockConfig, DEVELOPMENT_JWT_SECRET, DatabaseConfig, HttpConfig, LogConfig,
    LogFormat, ShutdownConfig,
};

pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Development,
    Test,
    Production,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub profile: Profile,
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub queue: QueueConfig,
    pub auth: AuthConfig,
    pub clock: ClockConfig,
    pub filing: FilingConfig,
    pub review: ReviewConfig,
    pub calendar: CalendarConfig,
    pub sms: SmsConfig,
    pub face: FaceConfig,
    pub payments: PaymentsConfig,
    pub wechat: WechatConfig,
    pub alipay: AlipayConfig,
    pub jobs: BTreeMap<String, JobQueueOverrides>,
    pub cron: BTreeMap<String, CronEntry>,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
}

/// Why a configuration was refused; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Keys whose values are lists; `BEIAN__REVIEW__ESCALATION_PHONES=a,b` splits on commas.
const LIST_KEYS: &[&str] = &["review.escalation_phones"];

/// Defaults, then `file` (if any), then the `BEIAN__*` variables of `env`: not yet checked.
fn layers(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<config::Config, ConfigError> {
    let mut builder = config::Config::builder().add_source(config::File::from_str(
        DEFAULT_TOML,
        config::FileFormat::Toml,
    ));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        builder = builder
            .add_source(config::File::from(path.to_path_buf()).format(config::FileFormat::Toml));
    }
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("BEIAN__"))
        .collect();
    let mut environment = config::Environment::with_prefix("BEIAN")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .source(Some(env));
    for key in LIST_KEYS {
        environment = environment.with_list_parse_key(key);
    }
    builder
        .add_source(environment)
        .build()
        .map_err(|e| ConfigError(e.to_string()))
}

/// The `[log]` settings to report a refused configuration with: what the layers say where
/// they can be read, else the defaults. (A start that fails on its configuration still
/// writes JSON when `log.format = "json"`.)
pub fn log_settings_for_errors(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> LogConfig {
    let env: Vec<(String, String)> = env.into_iter().collect();
    let merged = layers(file, env.clone()).or_else(|_| layers(None, env));
    let read = |key: &str| {
        merged
            .as_ref()
            .ok()
            .and_then(|m| m.get_string(key).ok())
            .map(|v| v.to_ascii_lowercase())
    };
    let format = match read("log.format").as_deref() {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Pretty,
    };
    let level = read("log.level")
        .filter(|l| tracing_subscriber::EnvFilter::try_new(l).is_ok())
        .unwrap_or_else(|| "info".into());
    LogConfig { format, level }
}

impl Config {
    /// Defaults, then `file` (if any), then `BEIAN__*` variables from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// As [`Config::load`] with an explicit environment (tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let config: Config = layers(file, env)?
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Each section's own checks, then the production profile's refusals (all of them in
    /// one message).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks = [
            self.database.check(),
            self.queue.check(),
            jobs::check_jobs(&self.jobs),
            jobs::check_cron(&self.cron),
            self.review.check(),
            self.filing.check(),
            self.sms.check(),
            self.face.check(),
            self.log.check(),
            self.auth.check(),
        ];
        for check in checks {
            check.map_err(ConfigError)?;
        }
        if self.profile == Profile::Production {
            let mut refused = Vec::new();
            self.clock.production_refusals(&mut refused);
            self.sms.production_refusals(&mut refused);
            self.face.production_refusals(&mut refused);
            self.payments.production_refusals(&mut refused);
            self.auth.production_refusals(&mut refused);
            self.filing.production_refusals(&mut refused);
            if !refused.is_empty() {
                return Err(ConfigError(format!(
                    "profile = \"production\" refuses: {}",
                    refused.join("; ")
                )));
            }
        }
        Ok(())
    }

    /// `jobs.<queue>` laid over `jobs.default`.
    pub fn queue_settings(&self, queue: &str) -> QueueSettings {
        jobs::queue_settings(&self.jobs, queue)
    }

    /// The effective configuration as TOML, secrets masked (`beian config`).
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    pub fn is_sqlite(&self) -> bool {
        self.database.url.expose().starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests;
