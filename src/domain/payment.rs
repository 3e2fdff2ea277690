//! The payment of a fine (`spec/domain.md`, "Violations" and "Payment callbacks"): its
//! states and the moves between them, the due date (the decision's local date plus 15
//! calendar days, payable to the end of that day), the late surcharge (3% of the fine for
//! each calendar date after the due date, never more than the fine), and the money formats
//! the providers use. Integer fen throughout; time comes in as arguments.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::filing::code::CodePhase;

/// Where a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The handler has a confirmation code to enter.
    PendingConfirmation,
    /// Confirmed: the handler may check out with a provider.
    AwaitingPayment,
    Paid,
    /// Expired or cancelled.
    Closed,
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 5] = [
        PaymentStatus::PendingConfirmation,
        PaymentStatus::AwaitingPayment,
        PaymentStatus::Paid,
        PaymentStatus::Closed,
        PaymentStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::PendingConfirmation => "pending_confirmation",
            PaymentStatus::AwaitingPayment => "awaiting_payment",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Closed => "closed",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the move `self -> to` is allowed. A notification of a genuine payment may
    /// land on an order still waiting for its confirmation or already closed: the money
    /// was taken, so the order is paid (never twice: `paid` moves only to `refunded`).
    pub fn may_move_to(self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, to),
            (PendingConfirmation, AwaitingPayment)
                | (PendingConfirmation | AwaitingPayment | Closed, Paid)
                | (PendingConfirmation | AwaitingPayment, Closed)
                | (Paid, Refunded)
        )
    }
}

/// The confirmation code is pending while the payment waits for it; it expires by time
/// only (no timer state), which `CodeState::check_entry` checks against `expires_at`.
impl CodePhase for PaymentStatus {
    fn code_pending(self) -> bool {
        self == PaymentStatus::PendingConfirmation
    }
    fn code_expired(self) -> bool {
        false
    }
}

/// The last local date the fine is payable without surcharge.
pub fn due_date(decided_on: NaiveDate, due_days: u32) -> NaiveDate {
    decided_on + chrono::Duration::days(due_days as i64)
}

/// Calendar dates after `due` up to and including `today` (0 on or before the due date).
pub fn days_late(due: NaiveDate, today: NaiveDate) -> i64 {
    (today - due).num_days().max(0)
}

/// The late surcharge on `today`: `permille_per_day` of the fine for each date late, in
/// whole fen (rounded down), never more than the fine itself (Administrative Penalty Law,
/// art. 72).
pub fn late_fee(fine_fen: i64, due: NaiveDate, today: NaiveDate, permille_per_day: u32) -> i64 {
    let days = days_late(due, today) as i128;
    let fee = fine_fen as i128 * permille_per_day as i128 * days / 1000;
    fee.min(fine_fen as i128).max(0) as i64
}

/// Fen as the providers write yuan: `200.00`.
pub fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Yuan as Alipay writes them (`200`, `200.5`, `200.00`) in fen; `None` if malformed.
pub fn parse_yuan(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 12
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse::<i64>().ok()?,
    };
    Some(whole.parse::<i64>().ok()? * 100 + cents)
}

/// A payment id is the providers' `out_trade_no`: 6-32 characters of `[0-9A-Za-z_-]`.
pub fn is_out_trade_no(id: &str) -> bool {
    (6..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn the_example_of_the_rules() {
        // A decision on 1 November is due 16 November; paid on 21 November it carries 15%.
        let due = due_date(date(11, 1), 15);
        assert_eq!(due, date(11, 16));
        assert_eq!(late_fee(20_000, due, date(11, 16), 30), 0);
        assert_eq!(late_fee(20_000, due, date(11, 17), 30), 600);
        assert_eq!(late_fee(20_000, due, date(11, 21), 30), 3_000);
        assert_eq!(late_fee(20_000, due, date(12, 31), 30), 20_000);
    }

    #[test]
    fn money_formats() {
        assert_eq!(yuan(20_000), "200.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(parse_yuan("200.00"), Some(20_000));
        assert_eq!(parse_yuan("200.5"), Some(20_050));
        assert_eq!(parse_yuan("200"), Some(20_000));
        assert_eq!(parse_yuan("2.005"), None);
        assert_eq!(parse_yuan("-1.00"), None);
        assert_eq!(parse_yuan(""), None);
        assert!(is_out_trade_no("019a2b3c4d5e"));
        assert!(!is_out_trade_no("abc"));
        assert!(!is_out_trade_no("abc def 123"));
    }

    #[test]
    fn paid_is_reached_once() {
        use PaymentStatus::*;
        assert!(PendingConfirmation.may_move_to(AwaitingPayment));
        assert!(AwaitingPayment.may_move_to(Paid));
        assert!(!Paid.may_move_to(Paid));
        assert!(!AwaitingPayment.may_move_to(PendingConfirmation));
        assert!(Paid.may_move_to(Refunded));
    }

    proptest! {
        /// The surcharge: 3% a calendar date after the due date, capped at the fine, never
        /// negative, never falling as days pass, and `yuan` round-trips.
        #[test]
        fn late_fee_property(fine in 1i64..100_000_000, decided in 0i64..3_000, paid_after in 0i64..200) {
            let decided_on = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Duration::days(decided);
            let due = due_date(decided_on, 15);
            let today = decided_on + chrono::Duration::days(paid_after);
            let fee = late_fee(fine, due, today, 30);
            let late = (paid_after - 15).max(0);
            prop_assert_eq!(fee, (fine as i128 * 30 * late as i128 / 1000).min(fine as i128) as i64);
            prop_assert!((0..=fine).contains(&fee));
            if paid_after <= 15 { prop_assert_eq!(fee, 0); }
            let tomorrow = late_fee(fine, due, today + chrono::Duration::days(1), 30);
            prop_assert!(tomorrow >= fee);
            if late >= 34 { prop_assert_eq!(fee, fine); }
            prop_assert_eq!(parse_yuan(&yuan(fine + fee)), Some(fine + fee));
        }
    }
}
