//! Configuration: compiled-in `config/default.toml`, then `--config FILE` (or `BEIAN_CONFIG`),
//! then `BEIAN__SECTION__KEY` environment variables. Unknown keys and bad values stop the
//! start with a message naming the key; secrets live in [`Secret`] so they never print.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// The development JWT secret from `default.toml`; the production profile refuses it.
pub const DEVELOPMENT_JWT_SECRET: &str = "beian-development-secret-not-for-production";

/// The job queues (the list lives with the jobs, in `workers`).
// MERGE: helper C drops this and the name checks below (the app checks names at start).
pub use crate::workers::QUEUES;

/// A configuration value that must never be printed or logged.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"****\""
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "****" })
    }
}

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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub addr: SocketAddr,
    pub max_json_bytes: usize,
    pub max_upload_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
    pub migrate_on_start: bool,
    pub connect_timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Embedded,
    Amqp,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub transport: Transport,
    pub amqp_url: Secret,
    pub quorum_queues: bool,
    pub poll_interval_ms: u64,
    pub lease_seconds: u64,
    /// Names of the exchanges and queues on the broker: `{prefix}.jobs`, `{prefix}.{queue}`.
    pub amqp_prefix: String,
    /// Group commit of job effects (`queue::effects`): how many lanes (open transactions)
    /// take effects at once; 0 picks one on SQLite and four on PostgreSQL.
    pub effect_lanes: u32,
    /// The most effects one group commit holds.
    pub effect_batch_max: u32,
    /// The most jobs one AMQP message carries (never more than the queue's concurrency).
    pub amqp_jobs_per_message: u32,
    /// If set, the broker deletes a queue unused for this long (`x-expires`; for tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amqp_queue_expires_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_public_key_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    pub manual: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FilingConfig {
    pub code_ttl_seconds: u64,
    pub code_max_attempts: u32,
    pub resend_interval_seconds: u64,
    pub max_non_owned_per_user: u32,
    pub max_filers_per_vehicle: u32,
    pub max_applications_per_day: u32,
    pub max_applications_per_year: u32,
    pub qr_ttl_seconds: u64,
    pub abandon_after_seconds: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    pub sla_working_days: u32,
    pub at_risk_ratio: f64,
    pub claim_lease_seconds: u64,
    pub escalation_phones: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    pub dir: PathBuf,
    pub timezone: chrono_tz::Tz,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    Log,
    Webhook,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    pub provider: SmsProvider,
    pub webhook_url: String,
    pub webhook_secret: Secret,
    pub outbox_file: PathBuf,
    pub limit_per_minute: u32,
    pub limit_per_hour: u32,
    pub limit_per_day: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaceProvider {
    Simulated,
    Http,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaceConfig {
    pub provider: FaceProvider,
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentsMode {
    Simulated,
    Live,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    pub mode: PaymentsMode,
    pub due_days: u32,
    pub late_fee_per_day_permille: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformKey {
    pub serial: String,
    pub public_key_path: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    pub mchid: String,
    pub appid: String,
    pub apiv3_key: Secret,
    pub merchant_key_path: PathBuf,
    pub merchant_serial: String,
    pub platform_keys: Vec<PlatformKey>,
    pub base_url: String,
    pub notify_url: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlipayConfig {
    pub app_id: String,
    pub seller_id: String,
    pub app_private_key_path: PathBuf,
    pub alipay_public_key_path: PathBuf,
    pub gateway_url: String,
    pub notify_url: String,
}

/// `jobs.<queue>`: every key optional, falling back to `jobs.default`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobQueueOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_base_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff_cap_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<u16>,
}

/// The settings one queue runs with, after `jobs.<queue>` is laid over `jobs.default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub concurrency: u32,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub prefetch: u16,
}

/// `cron.<name>`: either `"30 10 * * *"` or `{ schedule = "...", catch_up = false }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum CronEntry {
    Schedule(String),
    Table {
        schedule: String,
        #[serde(default = "default_true")]
        catch_up: bool,
    },
}

fn default_true() -> bool {
    true
}

impl CronEntry {
    pub fn schedule(&self) -> &str {
        match self {
            CronEntry::Schedule(s) => s,
            CronEntry::Table { schedule, .. } => schedule,
        }
    }
    pub fn catch_up(&self) -> bool {
        match self {
            CronEntry::Schedule(_) => true,
            CronEntry::Table { catch_up, .. } => *catch_up,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    pub grace_seconds: u64,
}

/// Why a configuration was refused; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Keys whose values are lists; `BEIAN__REVIEW__ESCALATION_PHONES=a,b` splits on commas.
const LIST_KEYS: &[&str] = &["review.escalation_phones"];

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
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
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
        let merged = builder
            .add_source(environment)
            .build()
            .map_err(|e| ConfigError(e.to_string()))?;
        let config: Config = merged
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that cross keys, and the production profile's refusals.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |msg: String| Err(ConfigError(msg));
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return err("database.url: expected sqlite://FILE or postgres://...".into());
        }
        let prefix_ok = !self.queue.amqp_prefix.is_empty()
            && self.queue.amqp_prefix.len() <= 64
            && self
                .queue
                .amqp_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !prefix_ok {
            return err("queue.amqp_prefix: 1-64 letters, digits, '-', '_' or '.'".into());
        }
        if self.queue.effect_lanes > 64 {
            return err("queue.effect_lanes: 0 (automatic) to 64".into());
        }
        if !(1..=1000).contains(&self.queue.effect_batch_max) {
            return err("queue.effect_batch_max: 1 to 1000".into());
        }
        if !(1..=1000).contains(&self.queue.amqp_jobs_per_message) {
            return err("queue.amqp_jobs_per_message: 1 to 1000".into());
        }
        if self.database.max_connections == 0 {
            return err("database.max_connections: must be at least 1".into());
        }
        for name in self.jobs.keys() {
            if name != "default" && !QUEUES.contains(&name.as_str()) {
                return err(format!(
                    "jobs.{name}: unknown queue (queues are: default, {})",
                    QUEUES.join(", ")
                ));
            }
        }
        if !self.jobs.contains_key("default") {
            return err("jobs.default: missing".into());
        }
        for queue in QUEUES {
            let s = self.queue_settings(queue);
            if s.concurrency == 0 || s.max_attempts == 0 || s.prefetch == 0 {
                return err(format!(
                    "jobs.{queue}: concurrency, max_attempts and prefetch must be at least 1"
                ));
            }
            if s.backoff_base_ms > s.backoff_cap_ms {
                return err(format!(
                    "jobs.{queue}: backoff_base_ms is above backoff_cap_ms"
                ));
            }
        }
        for (name, entry) in &self.cron {
            if !crate::workers::CRON_NAMES.contains(&name.as_str()) {
                return err(format!(
                    "cron.{name}: no such schedule (known: {})",
                    crate::workers::CRON_NAMES.join(", ")
                ));
            }
            if let Err(e) = entry.schedule().parse::<croner::Cron>() {
                return err(format!("cron.{name}: {e}"));
            }
        }
        if !(0.0..=1.0).contains(&self.review.at_risk_ratio) {
            return err("review.at_risk_ratio: must be between 0 and 1".into());
        }
        if self.filing.code_max_attempts == 0 {
            return err("filing.code_max_attempts: must be at least 1".into());
        }
        if self.sms.provider == SmsProvider::Webhook && self.sms.webhook_url.is_empty() {
            return err("sms.webhook_url: required when sms.provider = \"webhook\"".into());
        }
        if self.face.provider == FaceProvider::Http && self.face.url.is_empty() {
            return err("face.url: required when face.provider = \"http\"".into());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return err(format!("log.level: {e}"));
        }
        if self.auth.jwt_secret.is_empty() && self.auth.jwt_public_key_path.is_none() {
            return err("auth.jwt_secret: empty (or set auth.jwt_public_key_path)".into());
        }
        if self.profile == Profile::Production {
            let mut refused = Vec::new();
            if self.clock.manual {
                refused.push("clock.manual = true (the test clock)");
            }
            if self.sms.provider == SmsProvider::Log {
                refused.push("sms.provider = \"log\"");
            }
            if self.face.provider == FaceProvider::Simulated {
                refused.push("face.provider = \"simulated\"");
            }
            if self.payments.mode == PaymentsMode::Simulated {
                refused.push("payments.mode = \"simulated\"");
            }
            if self.auth.jwt_secret.expose() == DEVELOPMENT_JWT_SECRET {
                refused.push("auth.jwt_secret is the development secret");
            }
            if !refused.is_empty() {
                return err(format!(
                    "profile = \"production\" refuses: {}",
                    refused.join("; ")
                ));
            }
        }
        Ok(())
    }

    /// `jobs.<queue>` laid over `jobs.default`.
    pub fn queue_settings(&self, queue: &str) -> QueueSettings {
        let base = self.jobs.get("default").cloned().unwrap_or_default();
        let over = self.jobs.get(queue).cloned().unwrap_or_default();
        QueueSettings {
            concurrency: over.concurrency.or(base.concurrency).unwrap_or(4),
            max_attempts: over.max_attempts.or(base.max_attempts).unwrap_or(10),
            backoff_base_ms: over
                .backoff_base_ms
                .or(base.backoff_base_ms)
                .unwrap_or(2000),
            backoff_cap_ms: over
                .backoff_cap_ms
                .or(base.backoff_cap_ms)
                .unwrap_or(3_600_000),
            prefetch: over.prefetch.or(base.prefetch).unwrap_or(32),
        }
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
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("beian.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_run_embedded() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.profile, Profile::Development);
        assert_eq!(c.queue.transport, Transport::Embedded);
        assert_eq!(c.sms.provider, SmsProvider::Log);
        assert_eq!(c.filing.code_ttl_seconds, 300);
        assert!(c.is_sqlite());
        assert_eq!(c.queue_settings("sms").concurrency, 8);
        assert_eq!(c.queue_settings("filing").max_attempts, 10);
    }

    #[test]
    fn file_then_env_later_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "[filing]\ncode_ttl_seconds = 120\nmax_filers_per_vehicle = 2\n[jobs.sms]\nmax_attempts = 3\n",
        );
        let c = Config::load_from(
            Some(&path),
            env(&[
                ("BEIAN__FILING__CODE_TTL_SECONDS", "90"),
                (
                    "BEIAN__REVIEW__ESCALATION_PHONES",
                    "13700000001,13700000002",
                ),
                ("OTHER__FILING__CODE_TTL_SECONDS", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.filing.code_ttl_seconds, 90, "env beats file");
        assert_eq!(c.filing.max_filers_per_vehicle, 2, "file beats default");
        assert_eq!(c.filing.max_applications_per_day, 1, "default kept");
        assert_eq!(c.review.escalation_phones.len(), 2);
        assert_eq!(c.queue_settings("sms").max_attempts, 3);
        assert_eq!(c.queue_settings("sms").concurrency, 8);
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[filing]\ncode_ttl_secs = 120\n");
        let e = Config::load_from(Some(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("code_ttl_secs"), "{e}");
        let e = Config::load_from(None, env(&[("BEIAN__SMS__PROVIDERR", "log")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("providerr"), "{e}");
        let e = Config::load_from(None, env(&[("BEIAN__JOBS__SMSS__CONCURRENCY", "2")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("jobs.smss"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::load_from(None, env(&[("BEIAN__FILING__CODE_TTL_SECONDS", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("code_ttl_seconds"), "{e}");
        let e = Config::load_from(None, env(&[("BEIAN__SMS__PROVIDER", "carrier-pigeon")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("carrier-pigeon") || e.contains("provider"),
            "{e}"
        );
        let e = Config::load_from(
            None,
            env(&[("BEIAN__CRON__MAINTENANCE_PRUNE", "61 * * * *")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cron.maintenance_prune"), "{e}");
        let e = Config::load_from(None, env(&[("BEIAN__CRON__NIGHTLY", "1 * * * *")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cron.nightly"), "{e}");
    }

    #[test]
    fn production_refuses_development_parts() {
        let e = Config::load_from(None, env(&[("BEIAN__PROFILE", "production")]))
            .unwrap_err()
            .to_string();
        for part in [
            "clock",
            "sms.provider",
            "face.provider",
            "payments.mode",
            "jwt_secret",
        ] {
            if part == "clock" {
                continue; // the default clock is real time
            }
            assert!(e.contains(part), "{part} missing from: {e}");
        }
        let e = Config::load_from(
            None,
            env(&[
                ("BEIAN__PROFILE", "production"),
                ("BEIAN__CLOCK__MANUAL", "true"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("test clock"), "{e}");
    }

    #[test]
    fn masked_output_hides_secrets() {
        let c = Config::load_from(
            None,
            env(&[
                ("BEIAN__AUTH__JWT_SECRET", "s3cr3t-value-xyz"),
                ("BEIAN__SMS__WEBHOOK_SECRET", "another-secret-abc"),
            ]),
        )
        .unwrap();
        let text = c.to_masked_toml();
        assert!(!text.contains("s3cr3t-value-xyz"));
        assert!(!text.contains("another-secret-abc"));
        assert!(text.contains("code_ttl_seconds"));
        assert!(format!("{c:?}").contains("****"));
    }
}
