//! Daily reconciliation of the providers' trade bills (`spec/domain.md`, "Payment callbacks
//! and reconciliation"): the one lifecycle that the API, the `reconcile.bill` job (cron and
//! on demand) and the CLI call. A run is requested ([`request`]), its bill fetched from the
//! provider ([`fetch`]; a bill not published yet is asked for again later) or taken from an
//! upload, streamed and matched against the orders paid here that Asia/Shanghai day
//! ([`matcher`]), lost notifications repaired through `payments::settle` exactly as a
//! callback would be ([`repair`]), and the report kept (`store::reconciliations`).

pub mod cli;
pub mod jobs;
pub mod matcher;
pub mod repair;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;

use crate::providers::bills::{BillFormat, Progress, read_bill};
use crate::providers::wechatpay::bill::Fetched;
use crate::services::Services;
use crate::store::reconciliations::{self as store, Counts, Item, Run};
use crate::store::{DbResult, payments};
pub use jobs::ReconcileBill;
use matcher::{Matcher, OrderIndex};

pub const QUEUED: &str = "queued";
pub const WAITING_FOR_BILL: &str = "waiting_for_bill";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// The providers, as reconciliation names them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Wechat,
    Alipay,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Wechat => "wechat",
            Channel::Alipay => "alipay",
        }
    }
    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "wechat" => Some(Channel::Wechat),
            "alipay" => Some(Channel::Alipay),
            _ => None,
        }
    }
    fn format(self) -> BillFormat {
        match self {
            Channel::Wechat => BillFormat::Wechat,
            Channel::Alipay => BillFormat::Alipay,
        }
    }
}

/// `[from, to)` in Unix ms of the Asia/Shanghai day `date`.
pub fn day_bounds(date: NaiveDate) -> (i64, i64) {
    let start = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(crate::clock::shanghai()).single())
            .map(|t| t.timestamp_millis())
            .unwrap_or_default()
    };
    (start(date), start(date.succ_opt().unwrap_or(date)))
}

/// Where a run's bill file is kept.
pub fn bill_path(services: &Services, run_id: &str) -> PathBuf {
    services
        .config
        .data_dir
        .join("reconcile")
        .join(format!("{run_id}.bill"))
}

/// Records a run and enqueues its job, in one transaction; answers the run's id.
pub async fn request(
    services: &Services,
    channel: Channel,
    bill_date: NaiveDate,
    source: &str,
    file_path: Option<String>,
) -> DbResult<String> {
    let id = format!("rc_{}", uuid::Uuid::now_v7().simple());
    let now = services.clock.now_ms();
    let run = Run {
        id: id.clone(),
        channel: channel.as_str().into(),
        bill_date: bill_date.to_string(),
        source: source.into(),
        status: QUEUED.into(),
        file_path,
        created_at: now,
        ..Run::default()
    };
    let mut tx = services.db.begin().await?;
    store::insert(&mut tx, services.db.backend(), &run).await?;
    let job = ReconcileBill {
        run_id: id.clone(),
        channel: run.channel.clone(),
        bill_date: run.bill_date.clone(),
        source: source.into(),
        attempt: 0,
    };
    services.queue.enqueue(&mut tx, &job, now).await?;
    tx.commit().await?;
    services.queue.wake();
    Ok(id)
}

/// Fetches the run's bill from its provider into `dest`.
pub async fn fetch(services: &Services, run: &Run, dest: &Path) -> anyhow::Result<Fetched> {
    let providers = services.payments.providers().await?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(match Channel::parse(&run.channel) {
        Some(Channel::Wechat) => providers.wechat.trade_bill(&run.bill_date, dest).await?,
        _ => providers.alipay.trade_bill(&run.bill_date, dest).await?,
    })
}

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The file is not a bill of the channel at all: the run fails.
    #[error("{0}")]
    Bill(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Reconciles `bill` (None: no bill was published for the day) for `run` and keeps the
/// report; answers the counts.
pub async fn execute(
    services: &Services,
    run: &Run,
    bill: Option<&Path>,
    progress: Arc<Progress>,
) -> Result<Counts, RunError> {
    let channel =
        Channel::parse(&run.channel).ok_or_else(|| RunError::Bill("unknown channel".into()))?;
    let date = NaiveDate::parse_from_str(&run.bill_date, "%Y-%m-%d")
        .map_err(|e| RunError::Bill(e.to_string()))?;
    store::set_status(
        services.db.pool(),
        &run.id,
        RUNNING,
        services.clock.now_ms(),
    )
    .await?;
    let (from, to) = day_bounds(date);
    let mut index = OrderIndex::default();
    store::each_paid_order(&services.db, channel.as_str(), from, to, |o| {
        index.push(&o.id, &o.transaction_id, o.paid_total_fen)
    })
    .await?;
    index.seal();
    let mut matcher = Matcher::new(index);
    let mut problems = Vec::new();
    if let Some(path) = bill {
        let path = path.to_path_buf();
        let (m, p) = tokio::task::spawn_blocking(move || {
            let read = read_bill(channel.format(), &path, &progress, &mut |event| {
                matcher.on_event(event)
            });
            read.map(|problems| (matcher, problems))
        })
        .await
        .map_err(|e| anyhow::anyhow!("the bill reader stopped: {e}"))?
        .map_err(|e| RunError::Bill(format!("{e:#}")))?;
        matcher = m;
        problems = p;
    }
    let totals_ok = problems.is_empty();
    for detail in problems {
        matcher.add(Item {
            kind: "totals_mismatch".into(),
            detail,
            ..Item::default()
        });
    }
    repair::resolve(services, run, channel, &mut matcher, totals_ok).await?;
    if matcher.unseen() > 0 {
        let mut missed = Vec::new();
        store::each_paid_order(&services.db, channel.as_str(), from, to, |o| {
            if matcher.was_missed(&o.id) {
                missed.push(o);
            }
        })
        .await?;
        for o in missed {
            matcher.counts.missing_remote += 1;
            matcher.add(Item {
                kind: "missing_remote".into(),
                out_trade_no: Some(o.id),
                transaction_id: Some(o.transaction_id),
                order_amount_fen: Some(o.paid_total_fen),
                detail: "paid here, not on the provider's bill".into(),
                ..Item::default()
            });
        }
    }
    let mut tx = services.db.begin().await?;
    let now = services.clock.now_ms();
    store::finish(
        &mut tx,
        &run.id,
        &matcher.counts,
        totals_ok,
        &matcher.items,
        matcher.truncated,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(run = %run.id, channel = %run.channel, bill_date = %run.bill_date, counts = ?matcher.counts, "reconciled");
    Ok(matcher.counts)
}

/// Whether `payments::find` says the order is paid (or was, and refunded).
fn paid(p: &payments::Payment) -> bool {
    matches!(
        p.status,
        crate::domain::payment::PaymentStatus::Paid
            | crate::domain::payment::PaymentStatus::Refunded
    )
}
