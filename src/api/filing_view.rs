//! How a filing shows over HTTP (the filing object of `spec/api.md`), and how the filing
//! lifecycle's refusals answer: the view types and the time formatting of filings live
//! here, not in the store.

use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::problem::{ApiError, ApiResult};
use crate::clock::rfc3339;
use crate::domain::filing::FilingStatus;
use crate::domain::filing::code::{EntryRefused, ResendRefused};
use crate::domain::masking::mask_phone;
use crate::filings::FilingError;
use crate::store::filings::{self, Filing, HistoryEntry};
use crate::store::reviews::{self, Review};

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    deadline: Option<String>,
    at_risk: bool,
    breached: bool,
    decided_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    status: FilingStatus,
    at: String,
    cause: String,
}

/// A filing as its filer (or, removing it, the owner) sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilingView {
    pub id: String,
    method: String,
    pub status: FilingStatus,
    reason: Option<String>,
    plate_type: String,
    plate_number: String,
    own_vehicle: bool,
    owner_phone_masked: Option<String>,
    code_expires_at: Option<String>,
    review: ReviewView,
    created_at: String,
    updated_at: String,
    history: Vec<HistoryView>,
}

pub fn view_of(f: &Filing, history: &[HistoryEntry]) -> FilingView {
    view_with_review(f, history, None)
}

/// The filing's `review` object, from its review row (empty before review).
fn review_of(review: Option<&Review>) -> ReviewView {
    ReviewView {
        deadline: review.map(|r| rfc3339(r.deadline_at)),
        at_risk: review.is_some_and(|r| r.at_risk),
        breached: review.is_some_and(|r| r.breached),
        decided_at: review.and_then(|r| r.decided_at).map(rfc3339),
    }
}

/// As [`view_of`], with the review row of the filing, if it went to review.
pub fn view_with_review(
    f: &Filing,
    history: &[HistoryEntry],
    review: Option<&Review>,
) -> FilingView {
    let code_pending = matches!(f.status, FilingStatus::CodeSent | FilingStatus::CodeExpired);
    FilingView {
        id: f.id.clone(),
        method: f.method.clone(),
        status: f.status,
        reason: f.reason.clone(),
        plate_type: f.plate_type.clone(),
        plate_number: f.plate_number.clone(),
        own_vehicle: f.own_vehicle,
        owner_phone_masked: f.owner_phone.as_deref().map(mask_phone),
        code_expires_at: f.code_expires_at.filter(|_| code_pending).map(rfc3339),
        review: review_of(review),
        created_at: rfc3339(f.created_at),
        updated_at: rfc3339(f.updated_at),
        history: history
            .iter()
            .map(|h| HistoryView {
                status: h.status,
                at: rfc3339(h.at),
                cause: h.cause.clone(),
            })
            .collect(),
    }
}

/// The filing `id` as it stands now, with its whole history.
pub async fn current_view(state: &AppState, id: &str) -> ApiResult<FilingView> {
    let filing = filings::find(state.db.pool(), id)
        .await?
        .ok_or_else(not_found)?;
    let history = filings::history(state.db.pool(), id).await?;
    let review = reviews::find(state.db.pool(), id).await?;
    Ok(view_with_review(&filing, &history, review.as_ref()))
}

pub fn not_found() -> ApiError {
    ApiError::not_found("filing_not_found", "no such filing")
}

fn too_many(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, detail)
}

impl From<FilingError> for ApiError {
    fn from(e: FilingError) -> Self {
        match e {
            FilingError::NotFound => not_found(),
            FilingError::AlreadyEnded(status) => ApiError::conflict(
                "filing_ended",
                format!("the filing is already {}", status.as_str()),
            ),
            FilingError::Forbidden(forbidden) => ApiError::conflict(
                "filing_state_conflict",
                format!("the filing is {}", forbidden.from.as_str()),
            ),
            FilingError::Entry(EntryRefused::Expired) => ApiError::new(
                StatusCode::GONE,
                "code_expired",
                "the code expired; ask for a new one",
            ),
            FilingError::Entry(EntryRefused::Locked) => {
                too_many("code_locked", "too many wrong entries; ask for a new code")
            }
            FilingError::Entry(EntryRefused::NoCodePending(status)) => ApiError::conflict(
                "no_code_pending",
                format!("the filing is {}", status.as_str()),
            ),
            FilingError::Resend(ResendRefused::NoCode(status)) => ApiError::conflict(
                "no_code_to_resend",
                format!("the filing is {}", status.as_str()),
            ),
            FilingError::Resend(ResendRefused::TooSoon {
                retry_after_s,
                interval_s,
            }) => {
                let mut e = too_many(
                    "resend_too_soon",
                    format!("a new code can be asked for {interval_s} s after the last"),
                );
                e.retry_after = Some(retry_after_s);
                e
            }
            FilingError::SmsRateLimited => too_many(
                "sms_rate_limited",
                "the owner's phone is over its SMS flow control; try later",
            ),
            FilingError::VehicleGone => {
                ApiError::conflict("vehicle_not_found", "the vehicle left the registry")
            }
            FilingError::FaceNotExpected(status) => ApiError::conflict(
                "face_check_not_expected",
                format!("the filing is {}", status.as_str()),
            ),
            FilingError::Db(e) => e.into(),
        }
    }
}
