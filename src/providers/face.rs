//! Face verification. `http`: `POST {face.url}` with `{certify_id, user_id}`, answer
//! `{passed, score}`; a timeout or 5xx is an error to retry, never a failed person.
//! `simulated` (development default): passes unless the certify id starts with `fail`.

use serde::{Deserialize, Serialize};

use crate::config::{Config, FaceProvider as FaceKind};

#[derive(Clone)]
pub enum FaceProvider {
    Simulated,
    Http {
        url: String,
        client: reqwest::Client,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct FaceResult {
    pub passed: bool,
    #[serde(default)]
    pub score: f64,
}

#[derive(Serialize)]
struct FaceRequest<'a> {
    certify_id: &'a str,
    user_id: &'a str,
}

impl FaceProvider {
    pub fn from_config(config: &Config) -> anyhow::Result<FaceProvider> {
        Ok(match config.face.provider {
            FaceKind::Simulated => FaceProvider::Simulated,
            FaceKind::Http => FaceProvider::Http {
                url: config.face.url.clone(),
                client: super::http_client()?,
            },
        })
    }

    /// The provider's verdict; `Err` when it could not be had (retry).
    pub async fn verify(&self, certify_id: &str, user_id: &str) -> anyhow::Result<FaceResult> {
        match self {
            FaceProvider::Simulated => {
                let passed = !certify_id.starts_with("fail");
                Ok(FaceResult {
                    passed,
                    score: if passed { 0.98 } else { 0.10 },
                })
            }
            FaceProvider::Http { url, client } => {
                let response = client
                    .post(url)
                    .json(&FaceRequest {
                        certify_id,
                        user_id,
                    })
                    .send()
                    .await?;
                let status = response.status();
                if !status.is_success() {
                    anyhow::bail!("face provider answered {status}");
                }
                Ok(response.json::<FaceResult>().await?)
            }
        }
    }
}
