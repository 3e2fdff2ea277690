//! The payment lifecycle of a penalty decision: the one place that moves a payment. The
//! HTTP handlers and the jobs call it to issue and enter the confirmation code ([`code`]),
//! check out with a provider ([`checkout`]) and apply what a provider says was paid
//! ([`settle`]). Rules come from `domain::payment`, rows from `store::payments`.

pub mod checkout;
pub mod code;
pub mod jobs;
pub mod settle;

use crate::domain::filing::code::{EntryRefused, ResendRefused};
use crate::domain::payment::{PaymentStatus, late_fee};
use crate::services::Services;
use crate::store::payments::Payment;

pub use jobs::{PaidNotice, PaymentCallback, PaymentQuery, PaymentQuerySweep};

/// Why the lifecycle refused a step.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no such payment")]
    NotFound,
    #[error("the payment is {}", .0.as_str())]
    State(PaymentStatus),
    #[error("the code cannot be entered")]
    Entry(EntryRefused<PaymentStatus>),
    #[error("no new code now")]
    Resend(ResendRefused<PaymentStatus>),
    #[error("the handler's phone is over its SMS flow control")]
    SmsRateLimited,
    #[error("the payment provider is not available: {0}")]
    Provider(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type PaymentResult<T> = Result<T, PaymentError>;

/// The local (Asia/Shanghai) date of `ms`.
pub fn local_date(ms: i64) -> chrono::NaiveDate {
    crate::clock::from_ms(ms)
        .with_timezone(&crate::clock::shanghai())
        .date_naive()
}

/// The late surcharge of `payment` at `now` (frozen once paid).
pub fn late_fee_at(services: &Services, payment: &Payment, now: i64) -> i64 {
    if let Some(paid) = payment.paid_total_fen {
        return (paid - payment.fine_fen).max(0);
    }
    let due = chrono::NaiveDate::parse_from_str(&payment.due_date, "%Y-%m-%d")
        .unwrap_or_else(|_| local_date(payment.decided_at));
    late_fee(
        payment.fine_fen,
        due,
        local_date(now),
        services.config.payments.late_fee_per_day_permille,
    )
}

/// Fine plus surcharge at `now`.
pub fn total_at(services: &Services, payment: &Payment, now: i64) -> i64 {
    payment.fine_fen + late_fee_at(services, payment, now)
}
