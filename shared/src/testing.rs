//! Test support shared by unit and end-to-end tests (feature `testing`): Function URL events and fixtures.

use std::path::PathBuf;

use base64::Engine;
use lambda_http::Request;

/// A request exactly as a Lambda Function URL (payload format 2.0) delivers it, through `lambda_http`'s own
/// decoding. Like Function URLs and `cargo lambda watch`, bodies of non-text types arrive base64-encoded.
pub fn function_url_request(
    method: &str,
    path: &str,
    query: &str,
    content_type: Option<&str>,
    body: &[u8],
    source_ip: &str,
) -> Request {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| ("content-type", c))
        .into_iter()
        .collect();
    request_with_headers(method, path, query, &headers, body, source_ip)
}

/// Like [`function_url_request`], with any headers (`authorization`, `cookie`, …).
pub fn request_with_headers(
    method: &str,
    path: &str,
    query: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    source_ip: &str,
) -> Request {
    let content_type = extra_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| *v);
    let textual = content_type.is_some_and(|c| c.starts_with("text/") || c.contains("json"));
    let (body, b64) = if body.is_empty() {
        (serde_json::Value::Null, false)
    } else if textual && std::str::from_utf8(body).is_ok() {
        (String::from_utf8_lossy(body).into_owned().into(), false)
    } else {
        (
            base64::engine::general_purpose::STANDARD
                .encode(body)
                .into(),
            true,
        )
    };
    let mut headers = serde_json::json!({ "host": "abc.lambda-url.eu-central-1.on.aws" });
    // Function URLs (payload 2.0) move the Cookie header into a `cookies` array.
    let mut cookies: Vec<String> = Vec::new();
    for (k, v) in extra_headers {
        if k.eq_ignore_ascii_case("cookie") {
            cookies.extend(v.split(';').map(|c| c.trim().to_owned()));
        } else {
            headers[k.to_ascii_lowercase()] = (*v).into();
        }
    }
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abc",
            "domainName": "abc.lambda-url.eu-central-1.on.aws",
            "domainPrefix": "abc",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": "test" },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_824_000_000_i64
        },
        "body": body,
        "isBase64Encoded": b64
    });
    let mut event = event;
    if !cookies.is_empty() {
        event["cookies"] = cookies.into();
    }
    lambda_http::request::from_str(&event.to_string())
        .unwrap_or_else(|e| panic!("test event does not parse: {e}"))
}

/// The handouts' fixtures folder (`../shared/fixtures` beside the repository), or `PAYSYNC_FIXTURES`.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("PAYSYNC_FIXTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
        PathBuf::from,
    )
}

/// One file of the handouts' real-world cases (`../shared/cases/<case>/<file>` beside the repository, or
/// `PAYSYNC_CASES`).
pub fn case_file(case: &str, file: &str) -> Vec<u8> {
    let dir = std::env::var_os("PAYSYNC_CASES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/cases"),
        PathBuf::from,
    );
    let path = dir.join(case).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("case input {}: {e}", path.display()))
}

/// One acquiring vector (`fixtures/acquiring/<name>.json`).
pub fn acquiring_vector(name: &str) -> serde_json::Value {
    let path = fixtures_dir()
        .join("acquiring")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// All acquiring vectors by file stem.
pub fn acquiring_vectors() -> Vec<(String, serde_json::Value)> {
    let dir = fixtures_dir().join("acquiring");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| (n.clone(), acquiring_vector(&n)))
        .collect()
}

/// T-Bank Token for a JSON body (what the bank would put in `Token`).
pub fn tbank_sign(body: &serde_json::Value, password: &str) -> serde_json::Value {
    crate::formats::tbank::signed(body.clone(), password)
}

/// A Sber callback's parameters with their `checksum` (symmetric scheme: uppercase hex HMAC-SHA256 of the signed
/// string under the callback token), as the gateway sends them.
pub fn sber_sign(params: &str, token: &str) -> String {
    use hmac::Mac;
    let signed = crate::formats::sber::Params::parse(params.as_bytes())
        .map(|p| p.signed_string())
        .unwrap_or_default();
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(signed.as_bytes());
    format!(
        "{params}&checksum={}",
        hex::encode_upper(mac.finalize().into_bytes())
    )
}
