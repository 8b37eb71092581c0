//! HTTP response helpers shared by the HTTP functions. Error bodies are stable JSON and never echo internals.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
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

/// A response for a Function URL / HTTP API (payload 2.0) with the body passed through byte for byte.
///
/// `lambda_http` re-decodes `text/*` and `application/xml` bodies into UTF-8 using their `charset`, so a
/// windows-1251 answer would reach 1C as UTF-8 under a windows-1251 header. Here every body goes out base64-encoded
/// and the platform hands the exact bytes to the client.
pub fn to_function_url_response(resp: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = resp.into_parts();
    let mut headers = parts.headers;
    let cookies: Vec<String> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    // Payload 2.0 carries Set-Cookie in `cookies`.
    headers.remove(header::SET_COOKIE);
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.headers = headers;
    out.cookies = cookies;
    out.body = Some(Body::Binary(body.as_ref().to_vec()));
    out.is_base64_encoded = true;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_exact_response_keeps_windows_1251_bytes_and_moves_cookies() {
        let mut resp = Response::new(Body::Binary(vec![0xd3, 0xf1, 0xef, 0xe5, 0xf5])); // "Успех" in cp1251
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/html; charset=windows-1251"),
        );
        resp.headers_mut().insert(
            header::SET_COOKIE,
            header::HeaderValue::from_static("PAYSYNC1C=abc; Path=/"),
        );
        let out = to_function_url_response(resp);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["isBase64Encoded"], true);
        assert_eq!(json["body"], "0/Hv5fU=");
        assert_eq!(json["cookies"][0], "PAYSYNC1C=abc; Path=/");
        assert!(json["headers"].get("set-cookie").is_none());
        assert_eq!(
            json["headers"]["content-type"],
            "text/html; charset=windows-1251"
        );
    }
}
