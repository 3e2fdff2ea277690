//! Manual review for reviewers and supervisors: the pending queue (most urgent first), a
//! review with its filing, documents and audit trail, claiming (a lease) and deciding.
//! Every step goes through the review lifecycle (`crate::reviews`). The filer's and the
//! owner's phones, ID numbers and names are masked in every view here.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::filing_view::{FilingView, view_with_review};
use super::pagination::page_limit;
use super::problem::{ApiError, ApiResult, Json, Path, Problem, Query};
use crate::clock::rfc3339;
use crate::domain::masking::{mask_id_number, mask_name, mask_phone};
use crate::reviews::ReviewError;
use crate::reviews::decision::{self, MAX_REASON_CHARS, Verdict};
use crate::store::filings::{self, Filing};
use crate::store::registry;
use crate::store::reviews::{self, QueuePosition, Review};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_review))
        .routes(routes!(claim))
        .routes(routes!(decide))
}

const STAFF: &[Role] = &[Role::Reviewer, Role::Supervisor];

/// A person of a filing, as a reviewer sees them (everything masked).
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyView {
    name_masked: Option<String>,
    phone_masked: Option<String>,
    id_number_masked: Option<String>,
}

/// Where a review stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewState {
    opened_at: String,
    deadline: String,
    at_risk: bool,
    breached: bool,
    /// 0 before the breach, 1 at the breach, one more each further working day.
    escalation_level: i64,
    /// The reviewer holding the lease now (null when nobody does).
    claimed_by: Option<String>,
    claim_expires_at: Option<String>,
    /// `approved`, `rejected` or `withdrawn` (the filing ended while under review).
    decision: Option<String>,
    reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<String>,
}

fn state_of(r: &Review, now: i64) -> ReviewState {
    let holder = r.claim_holder(now).map(str::to_string);
    ReviewState {
        opened_at: rfc3339(r.opened_at),
        deadline: rfc3339(r.deadline_at),
        at_risk: r.at_risk,
        breached: r.breached,
        escalation_level: r.escalation_level,
        claim_expires_at: holder.as_ref().and(r.claim_expires_at).map(rfc3339),
        claimed_by: holder,
        decision: r.decision.clone(),
        reason: r.reason.clone(),
        decided_by: r.decided_by.clone(),
        decided_at: r.decided_at.map(rfc3339),
    }
}

/// One line of the pending queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewItem {
    filing_id: String,
    method: String,
    plate_type: String,
    plate_number: String,
    filer: PartyView,
    owner: PartyView,
    #[serde(flatten)]
    review: ReviewState,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewList {
    items: Vec<ReviewItem>,
    next_cursor: Option<String>,
}

/// A document of the filing, to look at (`GET /v1/documents/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentLink {
    id: String,
    /// `id_document` or `holding_photo`.
    kind: String,
    href: String,
}

/// One line of the audit trail: who did what, when, why.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    at: String,
    actor: String,
    action: String,
    detail: Option<String>,
}

/// A review: the filing, its people (masked), the review's state, documents and audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewDetail {
    filing: FilingView,
    relationship: String,
    filer: PartyView,
    owner: PartyView,
    review: ReviewState,
    documents: Vec<DocumentLink>,
    audit: Vec<AuditView>,
}

/// The filer and the owner of `filing`, masked.
async fn parties(state: &AppState, filing: &Filing) -> ApiResult<(PartyView, PartyView)> {
    let pool = state.db.pool();
    let filer = registry::find_driver(pool, &filing.filer_id).await?;
    let vehicle = registry::find_vehicle(pool, &filing.plate_type, &filing.plate_number).await?;
    let filer = PartyView {
        name_masked: filer.as_ref().map(|d| mask_name(&d.fields.name)),
        phone_masked: filer.as_ref().map(|d| mask_phone(&d.fields.phone)),
        id_number_masked: filer.as_ref().map(|d| mask_id_number(&d.fields.id_number)),
    };
    let owner = PartyView {
        name_masked: vehicle.as_ref().map(|v| mask_name(&v.fields.owner_name)),
        phone_masked: vehicle
            .as_ref()
            .map(|v| mask_phone(&v.fields.owner_phone))
            .or_else(|| filing.owner_phone.as_deref().map(mask_phone)),
        id_number_masked: vehicle
            .as_ref()
            .map(|v| mask_id_number(&v.fields.owner_id_number)),
    };
    Ok((filer, owner))
}

fn not_found() -> ApiError {
    ApiError::not_found("review_not_found", "no review of this filing")
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::NotFound => not_found(),
            ReviewError::AlreadyClaimed { by, until } => ApiError::conflict(
                "already_claimed",
                format!(
                    "another reviewer holds this review until {}",
                    rfc3339(until)
                ),
            )
            .with("claimed_by", by)
            .with("claim_expires_at", rfc3339(until)),
            ReviewError::Decided => {
                ApiError::conflict("review_decided", "the review is already decided")
            }
            ReviewError::ReasonRequired => ApiError::invalid_field(
                "reason_required",
                "reason",
                "reason: a rejection needs a reason",
            ),
            ReviewError::Forbidden(forbidden) => ApiError::conflict(
                "filing_state_conflict",
                format!("the filing is {}", forbidden.from.as_str()),
            ),
            ReviewError::Db(e) => e.into(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReviewFilter {
    /// `pending` (the default): reviews not yet decided.
    state: Option<String>,
    /// Default 50, at most 500.
    limit: Option<i64>,
    /// `next_cursor` of the page before.
    cursor: Option<String>,
}

fn cursor_of(r: &Review) -> String {
    format!("{}.{}.{}", r.urgency(), r.deadline_at, r.filing_id)
}

fn position_of(cursor: &str) -> ApiResult<QueuePosition> {
    let bad = || ApiError::invalid_field("invalid_cursor", "cursor", "cursor: not one we gave");
    let mut parts = cursor.splitn(3, '.');
    let urgency = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let deadline_at = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let filing_id = parts.next().filter(|p| !p.is_empty()).ok_or_else(bad)?;
    Ok(QueuePosition {
        urgency,
        deadline_at,
        filing_id: filing_id.to_string(),
    })
}

/// Open reviews, most urgent first: breached, then at risk, then the nearest deadline.
#[utoipa::path(get, path = "/v1/reviews", tag = "reviews", security(("bearer" = [])), params(ReviewFilter),
    responses((status = 200, body = ReviewList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<ReviewFilter>,
) -> ApiResult<axum::Json<ReviewList>> {
    caller.require(STAFF)?;
    if filter.state.as_deref().is_some_and(|s| s != "pending") {
        return Err(ApiError::invalid_field(
            "invalid_state",
            "state",
            "state: only \"pending\" is listed",
        ));
    }
    let limit = page_limit(filter.limit)?;
    let after = filter.cursor.as_deref().map(position_of).transpose()?;
    let rows = reviews::pending(&state.db, after.as_ref(), limit).await?;
    let now = state.clock.now_ms();
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        let Some(filing) = filings::find(state.db.pool(), &r.filing_id).await? else {
            continue;
        };
        let (filer, owner) = parties(&state, &filing).await?;
        items.push(ReviewItem {
            filing_id: filing.id.clone(),
            method: filing.method.clone(),
            plate_type: filing.plate_type.clone(),
            plate_number: filing.plate_number.clone(),
            filer,
            owner,
            review: state_of(r, now),
        });
    }
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(cursor_of))
        .flatten();
    Ok(axum::Json(ReviewList { items, next_cursor }))
}

/// The review of a filing as it stands now.
async fn detail(state: &AppState, filing_id: &str) -> ApiResult<ReviewDetail> {
    let pool = state.db.pool();
    let review = reviews::find(pool, filing_id)
        .await?
        .ok_or_else(not_found)?;
    let filing = filings::find(pool, filing_id)
        .await?
        .ok_or_else(not_found)?;
    let history = filings::history(pool, filing_id).await?;
    let (filer, owner) = parties(state, &filing).await?;
    let documents = reviews::document_links(&state.db, filing_id)
        .await?
        .into_iter()
        .map(|(id, kind)| DocumentLink {
            href: format!("/v1/documents/{id}"),
            id,
            kind,
        })
        .collect();
    let audit = reviews::audit(pool, filing_id)
        .await?
        .into_iter()
        .map(|a| AuditView {
            at: rfc3339(a.at),
            actor: a.actor,
            action: a.action,
            detail: a.detail,
        })
        .collect();
    Ok(ReviewDetail {
        filing: view_with_review(&filing, &history, Some(&review)),
        relationship: filing.relationship.clone(),
        filer,
        owner,
        review: state_of(&review, state.clock.now_ms()),
        documents,
        audit,
    })
}

/// A review with its filing, people (masked), document links and audit trail.
#[utoipa::path(get, path = "/v1/reviews/{filing_id}", tag = "reviews", security(("bearer" = [])),
    params(("filing_id" = String, Path)),
    responses((status = 200, body = ReviewDetail), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_review(
    State(state): State<AppState>,
    caller: Caller,
    Path(filing_id): Path<String>,
) -> ApiResult<axum::Json<ReviewDetail>> {
    caller.require(STAFF)?;
    Ok(axum::Json(detail(&state, &filing_id).await?))
}

/// A reviewer's lease on a review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    filing_id: String,
    claimed_by: String,
    claim_expires_at: String,
}

/// Claims a review for `review.claim_lease_seconds` (15 minutes); claiming again renews.
#[utoipa::path(post, path = "/v1/reviews/{filing_id}/claim", tag = "reviews", security(("bearer" = [])),
    params(("filing_id" = String, Path)),
    responses((status = 200, body = ClaimView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    Path(filing_id): Path<String>,
) -> ApiResult<axum::Json<ClaimView>> {
    caller.require(STAFF)?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let review = decision::claim(&state.services, &mut tx, &filing_id, &caller.sub, now).await?;
    tx.commit().await?;
    Ok(axum::Json(ClaimView {
        filing_id,
        claimed_by: caller.sub,
        claim_expires_at: rfc3339(review.claim_expires_at.unwrap_or(now)),
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approve,
    Reject,
}

/// `POST /v1/reviews/{filing_id}/decision`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct DecisionBody {
    decision: DecisionKind,
    /// Why (required to reject; at most 500 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// Decides a review: the filing becomes `approved` or `review_rejected`, filer and owner are
/// told. 409 when it is decided already or claimed by another reviewer.
#[utoipa::path(post, path = "/v1/reviews/{filing_id}/decision", tag = "reviews", security(("bearer" = [])),
    params(("filing_id" = String, Path)), request_body = DecisionBody,
    responses((status = 200, body = ReviewDetail), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(filing_id): Path<String>,
    body: Result<Json<DecisionBody>, ApiError>,
) -> ApiResult<axum::Json<ReviewDetail>> {
    caller.require(STAFF)?;
    let Json(body) = body?;
    if body
        .reason
        .as_deref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ApiError::invalid_field(
            "invalid_reason",
            "reason",
            format!("reason: at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let verdict = match body.decision {
        DecisionKind::Approve => Verdict::Approve,
        DecisionKind::Reject => Verdict::Reject,
    };
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    decision::decide(
        &state.services,
        &mut tx,
        &filing_id,
        &caller.sub,
        verdict,
        body.reason.as_deref(),
        now,
    )
    .await?;
    tx.commit().await?;
    state.queue.wake();
    Ok(axum::Json(detail(&state, &filing_id).await?))
}
