//! The owner's SMS code: issuing one (flow control per phone, the hash, the `sms.send` job,
//! the expiry timer), and the `filing.code_expire` and `filing.abandon` timers' jobs.
//! Intake and the resend endpoint both issue codes through [`issue_code`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::sms_send::{CodeRef, SmsSend};
use crate::domain::filing::{FilingStatus, code_hash, owner_code};
use crate::domain::masking::mask_name;
use crate::providers::sms::{SmsMessage, template};
use crate::queue::{Job, JobContext, JobError, Outcome};
use crate::services::Services;
use crate::store::Tx;
use crate::store::filings::{self, Filing};

/// Why no code was issued.
#[derive(Debug)]
pub enum IssueError {
    /// The phone is over its flow control (per minute, hour or day).
    RateLimited,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for IssueError {
    fn from(e: sqlx::Error) -> Self {
        IssueError::Db(e)
    }
}

pub fn message_id(filing_id: &str, n: i64) -> String {
    format!("filing:{filing_id}:code:{n}")
}

fn expire_key(filing_id: &str, n: i64) -> String {
    format!("filing:{filing_id}:code:{n}:expire")
}

fn abandon_key(filing_id: &str, n: i64) -> String {
    format!("filing:{filing_id}:code:{n}:abandon")
}

/// Issues the next code of `filing` to `phone` inside the caller's transaction (which holds
/// the filing). The caller moves the filing to `code_sent`; after the commit it wakes the
/// queue and the scheduler.
pub async fn issue_code(
    services: &Services,
    tx: &mut Tx,
    filing: &Filing,
    phone: &str,
    filer_name: &str,
    now: i64,
) -> Result<i64, IssueError> {
    let cfg = &services.config;
    filings::lock_subject(&services.db, tx, &format!("phone:{phone}")).await?;
    let windows = [
        (60_000, cfg.sms.limit_per_minute),
        (3_600_000, cfg.sms.limit_per_hour),
        (86_400_000, cfg.sms.limit_per_day),
    ];
    for (window, limit) in windows {
        if filings::codes_sent_since(tx, phone, now - window).await? >= limit as i64 {
            return Err(IssueError::RateLimited);
        }
    }
    let n = filing.code_number + 1;
    let code = owner_code(&services.code_key, &filing.id, n);
    let ttl_ms = cfg.filing.code_ttl_seconds as i64 * 1000;
    filings::set_code(
        tx,
        &filing.id,
        n,
        &code_hash(&filing.id, n, &code),
        phone,
        now,
        now + ttl_ms,
    )
    .await?;
    let id = message_id(&filing.id, n);
    filings::record_code_sent(tx, phone, &id, now).await?;
    let minutes = cfg.filing.code_ttl_seconds.div_ceil(60).to_string();
    let params = BTreeMap::from([
        ("plate_number".to_string(), filing.plate_number.clone()),
        ("minutes".to_string(), minutes),
        ("filer_name".to_string(), mask_name(filer_name)),
    ]);
    let send = SmsSend {
        message: SmsMessage {
            message_id: id,
            phone: phone.to_string(),
            template: template::FILING_CODE.into(),
            params,
        },
        code: Some(CodeRef {
            filing_id: filing.id.clone(),
            code_number: n,
        }),
    };
    services.queue.enqueue(tx, &send, now).await?;
    if filing.code_number > 0 {
        services
            .queue
            .cancel_timer(tx, &expire_key(&filing.id, filing.code_number))
            .await?;
        services
            .queue
            .cancel_timer(tx, &abandon_key(&filing.id, filing.code_number))
            .await?;
    }
    let expire = CodeExpire {
        filing_id: filing.id.clone(),
        code_number: n,
    };
    services
        .queue
        .schedule_timer(tx, &expire.key(), &expire, now + ttl_ms, now)
        .await?;
    Ok(n)
}

/// Cancels the timers of the filing's current code (it was used, or the filing ended).
pub async fn cancel_code_timers(
    services: &Services,
    tx: &mut Tx,
    filing: &Filing,
) -> sqlx::Result<()> {
    if filing.code_number > 0 {
        services
            .queue
            .cancel_timer(tx, &expire_key(&filing.id, filing.code_number))
            .await?;
        services
            .queue
            .cancel_timer(tx, &abandon_key(&filing.id, filing.code_number))
            .await?;
    }
    Ok(())
}

/// `filing.code_expire` (timer): an unused code expires; the filing keeps its place and is
/// abandoned 24 hours later unless a new code is asked for.
#[derive(Debug, Serialize, Deserialize)]
pub struct CodeExpire {
    pub filing_id: String,
    pub code_number: i64,
}

impl Job for CodeExpire {
    type Context = Services;
    const NAME: &'static str = "filing.code_expire";
    const QUEUE: &'static str = "filing";

    fn key(&self) -> String {
        expire_key(&self.filing_id, self.code_number)
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let now = ctx.clock().now_ms();
        let filing = filings::load_for_update(ctx.db(), &mut tx, &self.filing_id).await?;
        if let Some(f) = filing
            .filter(|f| f.status == FilingStatus::CodeSent && f.code_number == self.code_number)
        {
            filings::transition(&mut tx, &f, FilingStatus::CodeExpired, now, "code_expired")
                .await?;
            let abandon = Abandon {
                filing_id: f.id.clone(),
                code_number: f.code_number,
            };
            let due = now + ctx.config().filing.abandon_after_seconds as i64 * 1000;
            ctx.queue()
                .schedule_timer(&mut tx, &abandon.key(), &abandon, due, now)
                .await?;
        }
        tx.commit().await?;
        ctx.queue().timers_changed();
        Ok(Outcome::Done)
    }
}

/// `filing.abandon` (timer): a filing left in `code_expired` for 24 hours is cancelled.
#[derive(Debug, Serialize, Deserialize)]
pub struct Abandon {
    pub filing_id: String,
    pub code_number: i64,
}

impl Job for Abandon {
    type Context = Services;
    const NAME: &'static str = "filing.abandon";
    const QUEUE: &'static str = "filing";

    fn key(&self) -> String {
        abandon_key(&self.filing_id, self.code_number)
    }

    async fn run(self, ctx: JobContext<Services>) -> Result<Outcome, JobError> {
        let Some(mut tx) = ctx.begin_effect(Self::NAME, &self.key()).await? else {
            return Ok(Outcome::Duplicate);
        };
        let filing = filings::load_for_update(ctx.db(), &mut tx, &self.filing_id).await?;
        if let Some(f) = filing
            .filter(|f| f.status == FilingStatus::CodeExpired && f.code_number == self.code_number)
        {
            filings::transition(
                &mut tx,
                &f,
                FilingStatus::Cancelled,
                ctx.clock().now_ms(),
                "abandoned",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Outcome::Done)
    }
}
