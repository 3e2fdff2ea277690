//! Outside parties behind one type each, with a real network implementation and, for the
//! embedded default, a simulator speaking the same protocol (`spec/providers.md`). The
//! payment providers: [`wechatpay`], [`alipay`], their [`simulator`]s, and the pair the
//! service uses ([`payments`]); RSA keys in [`keys`].

pub mod alipay;
pub mod bills;
pub mod face;
pub mod keys;
pub mod payments;
pub mod simulator;
pub mod sms;
pub mod wechatpay;

use std::path::Path;
use std::time::Duration;

/// Why a call to a payment provider failed: `Transient` is retried (timeouts, 5xx),
/// `Refused` is not (the provider said no, or its answer was not what the protocol says),
/// `NotFound` is the provider's "no such order".
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("provider unreachable or failing: {0}")]
    Transient(String),
    #[error("provider refused: {0}")]
    Refused(String),
    #[error("no such order at the provider")]
    NotFound,
}

/// The machine's real time in seconds: providers sign with it, and notification freshness
/// is checked against it whatever the test clock says (`spec/api.md`, Test clock).
pub fn real_now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `n` random letters and digits (nonces).
pub fn nonce(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The RSA key in `path`, generated (and written, readable by the owner only) if missing.
pub fn load_or_generate_key(path: &Path) -> anyhow::Result<keys::SigningKey> {
    if !path.exists() {
        write_private(path, &keys::generate_rsa_pem()?)?;
    }
    keys::SigningKey::from_file(path)
}

/// A random secret of `len` characters in `path`, made if missing.
pub fn load_or_generate_secret(path: &Path, len: usize) -> anyhow::Result<String> {
    if !path.exists() {
        write_private(path, &nonce(len))?;
    }
    let secret = std::fs::read_to_string(path)?.trim().to_string();
    if secret.len() != len {
        anyhow::bail!("{}: expected {len} characters", path.display());
    }
    Ok(secret)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The HTTP client for outside calls: short timeouts, so a slow party is a retry, never a
/// stuck worker.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?)
}
