//! Outside parties behind one type each, with a real network implementation and, for the
//! embedded default, a simulator speaking the same protocol (`spec/providers.md`).

pub mod face;
pub mod sms;

use std::time::Duration;

/// The HTTP client for outside calls: short timeouts, so a slow party is a retry, never a
/// stuck worker.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?)
}
