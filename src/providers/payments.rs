//! The two payment providers as the service holds them: live clients built from
//! `[wechat]` and `[alipay]` (checked at start), or, with `payments.mode = "simulated"`, the
//! in-process simulators and clients pointed at them, made on first use (their keys are
//! generated once and kept in `data_dir/simulator/`).

use std::sync::{Arc, OnceLock};

use tokio::sync::OnceCell;

use super::alipay::{Alipay, simulator::AlipaySimulator};
use super::wechatpay::{WechatPay, simulator::WechatSimulator};
use crate::config::{Config, PaymentsMode};
use crate::queue::retry::RetryPolicy;

/// The providers in use.
pub struct Providers {
    pub wechat: WechatPay,
    pub alipay: Alipay,
    /// The simulators, when `payments.mode = "simulated"`.
    pub simulated: Option<(Arc<WechatSimulator>, Arc<AlipaySimulator>)>,
}

/// The payment providers of the service, made once.
pub struct Payments {
    config: Arc<Config>,
    providers: OnceCell<Arc<Providers>>,
    /// The service's own base URL (`http://127.0.0.1:PORT`), set once it listens: the
    /// simulators' pay links and notifications go there.
    self_url: OnceLock<String>,
    pub client: reqwest::Client,
}

impl Payments {
    /// Live clients are checked now (a bad key path stops the start); simulators are made
    /// on first use.
    pub fn from_config(config: Arc<Config>) -> anyhow::Result<Arc<Payments>> {
        let payments = Arc::new(Payments {
            providers: OnceCell::new(),
            self_url: OnceLock::new(),
            client: super::http_client()?,
            config,
        });
        if payments.config.payments.mode == PaymentsMode::Live {
            let providers = payments.live()?;
            let _ = payments.providers.set(Arc::new(providers));
        }
        Ok(payments)
    }

    pub fn is_simulated(&self) -> bool {
        self.config.payments.mode == PaymentsMode::Simulated
    }

    /// The policy of provider calls someone waits on: the `payment` queue's, at most three
    /// tries, no wait over a second.
    fn policy(&self) -> RetryPolicy {
        RetryPolicy::of(&self.config.queue_settings("payment")).bounded(3, 1_000)
    }

    fn live(&self) -> anyhow::Result<Providers> {
        let wechat = WechatPay::live(&self.config.wechat, self.client.clone(), self.policy())
            .map_err(|e| anyhow::anyhow!("payments.mode = \"live\": {e:#}"))?;
        let alipay = Alipay::live(&self.config.alipay, self.client.clone(), self.policy())
            .map_err(|e| anyhow::anyhow!("payments.mode = \"live\": {e:#}"))?;
        Ok(Providers {
            wechat,
            alipay,
            simulated: None,
        })
    }

    /// The providers (the simulators are made on the first call).
    pub async fn providers(&self) -> anyhow::Result<Arc<Providers>> {
        let dir = self.config.data_dir.join("simulator");
        let policy = self.policy();
        self.providers
            .get_or_try_init(|| async move {
                let made = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                    Ok((
                        WechatSimulator::load_or_create(&dir.join("wechat"))?,
                        AlipaySimulator::load_or_create(&dir.join("alipay"))?,
                    ))
                })
                .await??;
                let (wechat, alipay) = (Arc::new(made.0), Arc::new(made.1));
                Ok(Arc::new(Providers {
                    wechat: WechatPay::simulated(wechat.clone(), policy),
                    alipay: Alipay::simulated(alipay.clone(), policy),
                    simulated: Some((wechat, alipay)),
                }))
            })
            .await
            .cloned()
    }

    pub fn set_self_url(&self, url: String) {
        let _ = self.self_url.set(url);
    }

    pub fn self_url(&self) -> String {
        self.self_url
            .get()
            .cloned()
            .unwrap_or_else(|| format!("http://{}", self.config.http.addr))
    }
}
