//! Lists (`spec/api.md`, Conventions): `limit` (default 50, at most 500) and `cursor` in,
//! `{"items", "next_cursor"}` out. A cursor is the id of the last item of the page before.

use serde::Deserialize;
use utoipa::IntoParams;

use super::problem::{ApiError, ApiResult};

/// The paging query of a list.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct Page {
    /// Default 50, at most 500.
    pub limit: Option<i64>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

impl Page {
    /// The checked limit (422 `invalid_limit` out of range).
    pub fn limit(&self) -> ApiResult<i64> {
        page_limit(self.limit)
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

pub fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(50);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_field(
            "invalid_limit",
            "limit",
            "limit: between 1 and 500",
        ))
    }
}

/// The cursor after a page of `rows` read with `limit`: the last id when the page is full.
pub fn next_cursor<T>(rows: &[T], limit: i64, id: impl Fn(&T) -> &str) -> Option<String> {
    (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| id(row).to_string()))
        .flatten()
}
