//! The web console's delivery: `/ui/` and its assets come from the binary without a token,
//! under a self-only content security policy, and stay out of the OpenAPI document. What the
//! console does in a browser is tested in tests/browser/ (Chromium, `npm test`).

mod common;

use common::{Backend, spawn_app};

#[tokio::test]
async fn the_console_is_served_without_a_token_under_a_self_only_policy() {
    let app = spawn_app(Backend::Sqlite).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, kind, needle) in [
        ("/ui/", "text/html", "/ui/app.js"),
        ("/ui/app.js", "text/javascript", "sessionStorage"),
        ("/ui/i18n.js", "text/javascript", "审核台"),
        ("/ui/app.css", "text/css", "@media"),
        ("/ui/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("http"),
            "{csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = response.text().await.unwrap();
        assert!(body.contains(needle), "{path}");
    }
    let redirect = http.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/ui/");
    let unknown = http.get(app.url("/ui/nothing.js")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    let openapi: serde_json::Value = http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = openapi["paths"].as_object().unwrap();
    assert!(
        paths.keys().all(|p| !p.starts_with("/ui")),
        "/ui/ is not an API operation"
    );
    assert!(paths.contains_key("/v1/admin/queues"));
    app.stop().await;
}
