//! The OpenAPI 3.1 document: info, the bearer scheme, the shared schemas, and the one shared
//! set of problem answers every operation declares. Paths come from each resource's
//! `#[utoipa::path]` through the router, which then calls [`declare_problem_responses`].

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, Ref, RefOr, Response, ResponseBuilder, Schema, Type,
    schema::{ObjectBuilder, SchemaType},
};
use utoipa::{Modify, OpenApi};

/// The content type of every problem answer (RFC 9457).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The problem answers any operation can give (`spec/api.md`: bad input, auth, limits and
/// outages all answer problem+json with a stable `code`): (status, shared response name,
/// description).
pub const PROBLEM_RESPONSES: &[(u16, &str, &str)] = &[
    (
        400,
        "BadRequest",
        "The request could not be read: malformed JSON, query or path.",
    ),
    (
        401,
        "Unauthorized",
        "No bearer token, or one that is invalid or expired.",
    ),
    (403, "Forbidden", "The token's role may not do this."),
    (404, "NotFound", "No such resource, or not one of yours."),
    (409, "Conflict", "The resource's state does not allow this."),
    (413, "PayloadTooLarge", "The body is over the size limit."),
    (
        422,
        "UnprocessableContent",
        "A value is invalid (`field` names it), or an Idempotency-Key was reused with another body.",
    ),
    (
        429,
        "TooManyRequests",
        "A limit was reached; `Retry-After` says when to try again.",
    ),
    (
        503,
        "ServiceUnavailable",
        "A dependency (the database, the broker) is unavailable; `Retry-After` says when to try again.",
    ),
];

#[derive(OpenApi)]
#[openapi(
    info(title = "beian", description = "Vehicle filing (备案), reviews, violations and fines: the HTTP interface any front end uses."),
    modifiers(&BearerAuth),
    components(schemas(super::problem::Problem)),
    tags(
        (name = "ops", description = "Health, readiness, metrics, the test clock"),
        (name = "registry", description = "Vehicle and driver registry copies (system, admin)"),
        (name = "admin", description = "Queues and jobs, for operators (admin)"),
        (name = "filings", description = "Filing a vehicle not in your name (filer, role user)"),
        (name = "owners", description = "The owner's side of filings (role user, the vehicle's owner)"),
        (name = "reviews", description = "Manual review of filings (reviewer, supervisor)"),
        (name = "violations", description = "Camera violations: ingestion (system), the caller's list, handling (user)"),
        (name = "payments", description = "Fines: confirmation, checkout with WeChat Pay or Alipay (user)"),
        (name = "callbacks", description = "Payment provider notifications (verified by signature, no bearer token)"),
        (name = "reconciliation", description = "Daily reconciliation of the providers' bills (admin)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Declares [`PROBLEM_RESPONSES`] on every operation of a finished document (run it after
/// the router has merged the paths).
pub fn declare_problem_responses(openapi: &mut utoipa::openapi::OpenApi) {
    ProblemResponses.modify(openapi);
}

/// The shared problem answers as `components.responses`, referenced from every operation
/// that does not declare the status itself; a status an operation declares itself gets the
/// problem+json content (a `Problem` body declared as `application/json` is moved there).
pub struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description) in PROBLEM_RESPONSES {
            components
                .responses
                .entry((*name).to_string())
                .or_insert_with(|| RefOr::T(shared_response(*status, description)));
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                declare_on(operation);
            }
        }
    }
}

fn problem_schema() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name("Problem"))
}

fn shared_response(status: u16, description: &str) -> Response {
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_CONTENT_TYPE, Content::new(Some(problem_schema())));
    if status == 429 || status == 503 {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer)))
                .description(Some("Seconds to wait before trying again."))
                .build(),
        );
    }
    response.build()
}

fn declare_on(operation: &mut Operation) {
    let responses = &mut operation.responses.responses;
    for (status, name, _) in PROBLEM_RESPONSES {
        let key = status.to_string();
        match responses.get_mut(&key) {
            None => {
                responses.insert(key, RefOr::Ref(Ref::from_response_name(*name)));
            }
            Some(RefOr::Ref(_)) => {}
            Some(RefOr::T(own)) => {
                // A `Problem` body declared under another content type is answered as
                // problem+json; any other body stays, with problem+json beside it.
                let moved: Vec<String> = own
                    .content
                    .iter()
                    .filter(|(ct, c)| {
                        ct.as_str() != PROBLEM_CONTENT_TYPE
                            && matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
                    })
                    .map(|(ct, _)| ct.clone())
                    .collect();
                for ct in moved {
                    own.content.shift_remove(&ct);
                }
                own.content
                    .entry(PROBLEM_CONTENT_TYPE.to_string())
                    .or_insert_with(|| Content::new(Some(problem_schema())));
            }
        }
    }
}
