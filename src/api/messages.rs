//! `GET /v1/messages` (role `user`): the caller's in-app messages (decisions, payment
//! results), newest first, paged.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Role};
use super::pagination::{Page, next_cursor};
use super::problem::{ApiResult, Problem, Query};
use crate::clock::rfc3339;
use crate::store::messages::{self, Message};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// An in-app message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    id: String,
    kind: String,
    filing_id: Option<String>,
    title: String,
    body: String,
    created_at: String,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        MessageView {
            id: m.id,
            kind: m.kind,
            filing_id: m.filing_id,
            title: m.title,
            body: m.body,
            created_at: rfc3339(m.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessageList {
    items: Vec<MessageView>,
    next_cursor: Option<String>,
}

/// The caller's in-app messages (decisions, payment results), newest first.
#[utoipa::path(get, path = "/v1/messages", tag = "filings", security(("bearer" = [])), params(Page),
    responses((status = 200, body = MessageList), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<axum::Json<MessageList>> {
    caller.require(&[Role::User])?;
    let limit = page.limit()?;
    let rows = messages::list(&state.db, &caller.sub, page.cursor(), limit).await?;
    let next_cursor = next_cursor(&rows, limit, |m| &m.id);
    Ok(axum::Json(MessageList {
        items: rows.into_iter().map(MessageView::from).collect(),
        next_cursor,
    }))
}
