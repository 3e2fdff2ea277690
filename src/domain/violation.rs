//! Camera-recorded violations (`spec/domain.md`, "Violations"): the record the camera feed
//! delivers and its checks, the states (`unprocessed` -> `handling` -> `processed`), who may
//! handle one (the eligibility rules with their refusal codes) and the penalty decision's
//! 16-digit number. Pure rules: the store reads and records, this module decides.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::registry::LicenceStatus;

/// The points a violation may carry.
pub const ALLOWED_POINTS: [i64; 6] = [0, 1, 3, 6, 9, 12];

/// A licence reaching this many points in its cycle is full: handling must stay below it.
pub const POINTS_LIMIT: i64 = 12;

/// Where a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ViolationStatus {
    /// Recorded, nobody has handled it yet.
    Unprocessed,
    /// A penalty decision is issued and its payment is not made yet.
    Handling,
    /// The fine is paid.
    Processed,
}

impl ViolationStatus {
    pub const ALL: [ViolationStatus; 3] = [
        ViolationStatus::Unprocessed,
        ViolationStatus::Handling,
        ViolationStatus::Processed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ViolationStatus::Unprocessed => "unprocessed",
            ViolationStatus::Handling => "handling",
            ViolationStatus::Processed => "processed",
        }
    }

    pub fn parse(s: &str) -> Option<ViolationStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Why a violation record from the camera feed is refused (a stable code and the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub code: &'static str,
    pub field: &'static str,
    pub detail: String,
}

impl RecordError {
    fn new(code: &'static str, field: &'static str, detail: impl Into<String>) -> Self {
        RecordError {
            code,
            field,
            detail: detail.into(),
        }
    }
}

/// The checks of a record's own fields (the plate is checked by `domain::plate`).
pub fn check_record(
    source_id: &str,
    fine_fen: i64,
    points: i64,
    text_fields: &[(&'static str, &str)],
) -> Result<(), RecordError> {
    let source = source_id.trim();
    if source.is_empty() || source.len() > 128 || !source.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RecordError::new(
            "invalid_source_id",
            "source_id",
            "source_id: 1-128 visible ASCII characters",
        ));
    }
    if !(1..=100_000_000).contains(&fine_fen) {
        return Err(RecordError::new(
            "invalid_fine",
            "fine_fen",
            "fine_fen: a positive number of fen (at most 1,000,000 yuan)",
        ));
    }
    if !ALLOWED_POINTS.contains(&points) {
        return Err(RecordError::new(
            "invalid_points",
            "points",
            "points: one of 0, 1, 3, 6, 9, 12",
        ));
    }
    for (field, value) in text_fields {
        if value.trim().is_empty() || value.chars().count() > 500 {
            return Err(RecordError::new(
                "invalid_field",
                field,
                format!("{field}: 1-500 characters"),
            ));
        }
    }
    Ok(())
}

/// Why someone may not handle a violation; the codes are the API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// A violation with points from before the filing's approval is the owner's to handle.
    PointsBeforeFiling,
    /// The handler's licence is not valid (or the handler is not a registered driver).
    LicenceInvalid,
    /// The handler's points after handling would reach 12.
    PointsLimit,
    /// A decision is already issued (or the fine paid).
    AlreadyHandled,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::PointsBeforeFiling => "points_before_filing",
            Refusal::LicenceInvalid => "licence_invalid",
            Refusal::PointsLimit => "points_limit",
            Refusal::AlreadyHandled => "already_handled",
        }
    }
}

/// How the caller stands to the violation's vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The registered owner.
    Owner,
    /// A filer whose filing of the vehicle was approved at this time (Unix ms).
    Filer { approved_at: i64 },
}

/// What eligibility needs to know of the handler's licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Licence {
    pub status: LicenceStatus,
    /// Points in the current cycle, plus those of decisions issued and not yet paid.
    pub points: i64,
}

/// Whether `standing` may handle a violation in `status`, recorded at `occurred_at` with
/// `points`. `licence` is `None` for someone who is not a registered driver.
pub fn may_handle(
    standing: Standing,
    status: ViolationStatus,
    occurred_at: i64,
    points: i64,
    licence: Option<Licence>,
) -> Result<(), Refusal> {
    if status != ViolationStatus::Unprocessed {
        return Err(Refusal::AlreadyHandled);
    }
    if let Standing::Filer { approved_at } = standing {
        if points > 0 && occurred_at < approved_at {
            return Err(Refusal::PointsBeforeFiling);
        }
    }
    let licence = licence.ok_or(Refusal::LicenceInvalid)?;
    if licence.status != LicenceStatus::Valid {
        return Err(Refusal::LicenceInvalid);
    }
    if licence.points + points >= POINTS_LIMIT {
        return Err(Refusal::PointsLimit);
    }
    Ok(())
}

/// A penalty decision number: 16 digits, `YYMMDD` of the decision's local date, an 9-digit
/// serial of that day, and a Luhn check digit (so a mistyped number is caught).
pub fn decision_number(local_date: chrono::NaiveDate, serial: u64) -> String {
    let body = format!(
        "{}{:09}",
        local_date.format("%y%m%d"),
        serial % 1_000_000_000
    );
    format!("{body}{}", luhn_digit(&body))
}

/// Whether `number` is a well-formed decision number (16 digits, check digit right).
pub fn is_decision_number(number: &str) -> bool {
    number.len() == 16
        && number.bytes().all(|b| b.is_ascii_digit())
        && luhn_digit(&number[..15]) == (number.as_bytes()[15] - b'0')
}

fn luhn_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = (b - b'0') as u32;
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: Licence = Licence {
        status: LicenceStatus::Valid,
        points: 0,
    };

    #[test]
    fn each_refusal_has_its_rule() {
        let filer = Standing::Filer { approved_at: 1_000 };
        let unprocessed = ViolationStatus::Unprocessed;
        assert_eq!(
            may_handle(filer, unprocessed, 999, 3, Some(VALID)),
            Err(Refusal::PointsBeforeFiling)
        );
        assert_eq!(may_handle(filer, unprocessed, 999, 0, Some(VALID)), Ok(()));
        assert_eq!(
            may_handle(filer, unprocessed, 1_000, 3, Some(VALID)),
            Ok(())
        );
        assert_eq!(
            may_handle(Standing::Owner, unprocessed, 999, 3, Some(VALID)),
            Ok(())
        );
        let suspended = Licence {
            status: LicenceStatus::Suspended,
            ..VALID
        };
        assert_eq!(
            may_handle(Standing::Owner, unprocessed, 0, 0, Some(suspended)),
            Err(Refusal::LicenceInvalid)
        );
        assert_eq!(
            may_handle(Standing::Owner, unprocessed, 0, 0, None),
            Err(Refusal::LicenceInvalid)
        );
        let nine = Licence { points: 9, ..VALID };
        assert_eq!(
            may_handle(Standing::Owner, unprocessed, 0, 3, Some(nine)),
            Err(Refusal::PointsLimit)
        );
        assert_eq!(
            may_handle(Standing::Owner, unprocessed, 0, 1, Some(nine)),
            Ok(())
        );
        assert_eq!(
            may_handle(
                Standing::Owner,
                ViolationStatus::Handling,
                0,
                0,
                Some(VALID)
            ),
            Err(Refusal::AlreadyHandled)
        );
    }

    #[test]
    fn records_are_checked_field_by_field() {
        let text = [("location", "长安街"), ("description", "闯红灯")];
        assert!(check_record("CAM-1", 20_000, 3, &text).is_ok());
        assert_eq!(
            check_record("", 1, 0, &text).unwrap_err().field,
            "source_id"
        );
        assert_eq!(
            check_record("a", 0, 0, &text).unwrap_err().code,
            "invalid_fine"
        );
        assert_eq!(
            check_record("a", 1, 2, &text).unwrap_err().code,
            "invalid_points"
        );
        assert_eq!(
            check_record("a", 1, 0, &[("location", " ")])
                .unwrap_err()
                .field,
            "location"
        );
    }

    proptest! {
        #[test]
        fn decision_numbers_are_16_digits_and_checked(
            days in 0i64..20_000, serial in 0u64..1_000_000_000, flip in 0usize..16
        ) {
            let date = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Duration::days(days);
            let number = decision_number(date, serial);
            prop_assert_eq!(number.len(), 16);
            prop_assert!(is_decision_number(&number));
            let mut bytes = number.clone().into_bytes();
            bytes[flip] = b'0' + (bytes[flip] - b'0' + 1) % 10;
            prop_assert!(!is_decision_number(&String::from_utf8(bytes).unwrap()));
        }
    }
}
