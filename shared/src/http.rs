//! HTTP response helpers shared by the HTTP functions. Error bodies are stable JSON and never echo internals.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};

/// Largest request body any function accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn build(status: StatusCode, content_type: &str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub fn text(status: StatusCode, body: &str) -> Response<Body> {
    build(
        status,
        "text/plain; charset=utf-8",
        Body::Text(body.to_owned()),
    )
}

/// `{"error": "<code>", "message": "<text>"}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    build(status, "application/json", Body::Text(body))
}
