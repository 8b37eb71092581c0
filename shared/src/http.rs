//! HTTP response helpers shared by the HTTP functions. Error bodies are stable JSON and never echo internals.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};

/// Largest request body any function accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("answer broke off")]
    Broken(#[source] reqwest::Error),
}

/// What went wrong with a request to a peer, in words safe for logs and errors (no URL, no credentials).
pub fn failure_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// Read a peer's answer, refusing one larger than `max` (announced or actual) before it is all in memory: a
/// misbehaving bank, store or acquirer cannot exhaust the function's memory.
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if resp
        .content_length()
        .is_some_and(|l| l > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(ReadError::TooLarge(max));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Broken)? {
        if out.len() + chunk.len() > max {
            return Err(ReadError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

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

use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::request::LambdaRequest;
use lambda_http::{lambda_runtime, LambdaEvent, Request};

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

/// Serve an HTTP handler whose bodies must stay byte-exact (see [`to_function_url_response`]).
pub async fn run_byte_exact<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Request) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Response<Body>> + Send,
{
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let req: Request = LambdaRequest::ApiGatewayV2(event.payload).into();
            Ok::<_, lambda_runtime::Error>(to_function_url_response(handler(req).await))
        },
    ))
    .await
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

#[cfg(test)]
mod capped_tests {
    use super::*;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn answers_beyond_the_cap_are_refused() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 2048]))
            .mount(&server)
            .await;
        let get = || async { reqwest::get(server.uri()).await.unwrap() };
        assert_eq!(read_capped(get().await, 4096).await.unwrap().len(), 2048);
        assert!(matches!(
            read_capped(get().await, 1024).await,
            Err(ReadError::TooLarge(1024))
        ));
    }
}
