//! Reconciliation over HTTP (role `admin`; `spec/api.md`, "Reconciliation"): ask for a run
//! of a channel's bill of a date (the job fetches it from the provider), upload a bill file
//! as the provider publishes it, and read a run's report (counts and items). The lifecycle
//! is `crate::reconcile`'s.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::Write;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::problem::{ApiError, ApiResult, Json, Path, Problem, Query};
use crate::clock::rfc3339;
use crate::reconcile::{self, Channel};
use crate::store::reconciliations as store;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_run))
        .routes(routes!(upload))
        .routes(routes!(get_run))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RunRequest {
    channel: Channel,
    /// `YYYY-MM-DD`, Asia/Shanghai.
    bill_date: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadParams {
    channel: String,
    bill_date: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    id: String,
    status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    kind: String,
    line: Option<i64>,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    bill_amount_fen: Option<i64>,
    order_amount_fen: Option<i64>,
    detail: String,
}

/// A run's report.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    id: String,
    channel: String,
    bill_date: String,
    source: String,
    /// `queued`, `waiting_for_bill`, `running`, `done` or `failed`.
    status: String,
    lines: i64,
    matched: i64,
    repaired: i64,
    missing_remote: i64,
    amount_mismatch: i64,
    duplicates: i64,
    refunds: i64,
    unknown_orders: i64,
    malformed: i64,
    /// Whether the bill's own totals add up to its lines.
    totals_ok: bool,
    error: Option<String>,
    created_at: String,
    finished_at: Option<String>,
    items: Vec<ItemView>,
    /// More items were found than are kept (the counts are exact).
    items_truncated: bool,
}

fn date_of(text: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::unprocessable("invalid_bill_date", "bill_date is YYYY-MM-DD"))
}

fn accepted(id: String) -> Response {
    let location = format!("/v1/reconciliations/{id}");
    let body = Accepted {
        id,
        status: reconcile::QUEUED.into(),
    };
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response()
}

/// Reconciles a channel's bill of a date: the job fetches it from the provider.
#[utoipa::path(post, path = "/v1/reconciliations", tag = "reconciliation", security(("bearer" = [])),
    request_body = RunRequest,
    responses((status = 202, body = Accepted), (status = 422, body = Problem)))]
async fn request_run(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<RunRequest>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let date = date_of(&body.bill_date)?;
    let id = reconcile::request(&state.services, body.channel, date, "api", None).await?;
    Ok(accepted(id))
}

/// Reconciles an uploaded bill file, as the provider publishes it (WeChat Pay's CSV, or
/// Alipay's csv.zip).
#[utoipa::path(post, path = "/v1/reconciliations/upload", tag = "reconciliation", security(("bearer" = [])),
    params(UploadParams), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 202, body = Accepted), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<UploadParams>,
    body: Body,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let channel = Channel::parse(&params.channel)
        .ok_or_else(|| ApiError::unprocessable("invalid_channel", "channel is wechat or alipay"))?;
    let date = date_of(&params.bill_date)?;
    let dir = state.config.data_dir.join("reconcile").join("uploads");
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(format!("upload dir: {e}")))?;
    let path = dir.join(format!("{}.bill", uuid::Uuid::now_v7().simple()));
    let limit = state.config.http.max_upload_bytes;
    let written = save(body, &path, limit).await;
    let head = match written {
        Ok(head) => head,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let looks_right = match channel {
        Channel::Wechat => {
            head.starts_with("\u{feff}交易时间".as_bytes())
                || head.starts_with("交易时间".as_bytes())
        }
        Channel::Alipay => head.starts_with(b"PK"),
    };
    if !looks_right {
        let _ = std::fs::remove_file(&path);
        let what = match channel {
            Channel::Wechat => "a WeChat Pay trade bill (CSV starting with the 交易时间 header)",
            Channel::Alipay => "an Alipay bill (a csv.zip)",
        };
        return Err(ApiError::unprocessable(
            "not_a_bill",
            format!("the body is not {what}"),
        ));
    }
    let file = Some(path.display().to_string());
    let id = reconcile::request(&state.services, channel, date, "upload", file).await?;
    Ok(accepted(id))
}

/// Streams the body to `path` (at most `limit` bytes); answers its first bytes.
async fn save(body: Body, path: &std::path::Path, limit: usize) -> ApiResult<Vec<u8>> {
    let io = |e: std::io::Error| ApiError::internal(format!("upload: {e}"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let (mut size, mut head) = (0usize, Vec::new());
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::bad_request("body_unreadable", "the body could not be read"))?;
        size += chunk.len();
        if size > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the bill is over the upload limit",
            ));
        }
        if head.len() < 16 {
            head.extend_from_slice(&chunk[..chunk.len().min(16 - head.len())]);
        }
        file.write_all(&chunk).map_err(io)?;
    }
    file.flush().map_err(io)?;
    Ok(head)
}

/// A run's report: its status, counts and items.
#[utoipa::path(get, path = "/v1/reconciliations/{id}", tag = "reconciliation", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = RunView), (status = 404, body = Problem)))]
async fn get_run(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RunView>> {
    caller.require(&[Role::Admin])?;
    let Some(run) = store::find(state.db.pool(), &id).await? else {
        return Err(ApiError::not_found(
            "reconciliation_not_found",
            "no such reconciliation",
        ));
    };
    let items = store::items(&state.db, &id).await?;
    let c = run.counts;
    Ok(axum::Json(RunView {
        id: run.id,
        channel: run.channel,
        bill_date: run.bill_date,
        source: run.source,
        status: run.status,
        lines: c.lines,
        matched: c.matched,
        repaired: c.repaired,
        missing_remote: c.missing_remote,
        amount_mismatch: c.amount_mismatch,
        duplicates: c.duplicates,
        refunds: c.refunds,
        unknown_orders: c.unknown_orders,
        malformed: c.malformed,
        totals_ok: run.totals_ok,
        error: run.error,
        created_at: rfc3339(run.created_at),
        finished_at: run.finished_at.map(rfc3339),
        items: items
            .into_iter()
            .map(|i| ItemView {
                kind: i.kind,
                line: i.line,
                out_trade_no: i.out_trade_no,
                transaction_id: i.transaction_id,
                bill_amount_fen: i.bill_amount_fen,
                order_amount_fen: i.order_amount_fen,
                detail: i.detail,
            })
            .collect(),
        items_truncated: run.items_truncated,
    }))
}
