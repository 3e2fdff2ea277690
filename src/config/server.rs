//! The process's own sections: `[http]`, `[database]`, `[auth]`, `[clock]`, `[log]` and
//! `[shutdown]`, with the checks that concern each alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Secret;

/// The development JWT secret from `default.toml`; the production profile refuses it.
pub const DEVELOPMENT_JWT_SECRET: &str = "beian-development-secret-not-for-production";

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

impl DatabaseConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        let url = self.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err("database.url: expected sqlite://FILE or postgres://...".into());
        }
        if self.max_connections == 0 {
            return Err("database.max_connections: must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_public_key_path: Option<PathBuf>,
}

impl AuthConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.jwt_secret.is_empty() && self.jwt_public_key_path.is_none() {
            return Err("auth.jwt_secret: empty (or set auth.jwt_public_key_path)".into());
        }
        Ok(())
    }

    pub(super) fn production_refusals(&self, refused: &mut Vec<String>) {
        if self.jwt_secret.expose() == DEVELOPMENT_JWT_SECRET {
            refused.push("auth.jwt_secret is the development secret".into());
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    pub manual: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl ClockConfig {
    pub(super) fn production_refusals(&self, refused: &mut Vec<String>) {
        if self.manual {
            refused.push("clock.manual = true (the test clock)".into());
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

impl LogConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map(|_| ())
            .map_err(|e| format!("log.level: {e}"))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    pub grace_seconds: u64,
}
