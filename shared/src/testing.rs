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

/// PHP's `parse_str`, which the 1C-Bitrix rest module runs on every `batch` command's query
/// (`CRestUtil::ParseBatchQuery`): pairs split at `&`, names and values decoded (`+` is a space), `a[b][]=v` nested
/// (`[]` appends), spaces and dots of the base name turned into `_`, a later pair overwriting an earlier one.
/// Arrays keyed `0..n` become JSON lists. The fakes read store-sync's commands with this, not with the library
/// store-sync writes them with, so an encoding the store would read differently fails the tests.
pub fn php_parse_str(query: &str) -> serde_json::Value {
    use serde_json::{Map, Value};
    fn slot<'a>(v: &'a mut Value, key: Option<&str>) -> &'a mut Value {
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        let Value::Object(map) = v else {
            unreachable!("made an object above")
        };
        let key = match key {
            Some(k) => k.to_owned(),
            None => map
                .keys()
                .filter_map(|k| k.parse::<i64>().ok())
                .max()
                .map_or(0, |m| m + 1)
                .to_string(),
        };
        map.entry(key).or_insert(Value::Null)
    }
    fn lists(v: Value) -> Value {
        match v {
            Value::Object(map) => {
                let n = map.len();
                let sequential = (0..n).all(|i| map.contains_key(&i.to_string()));
                if sequential && n > 0 {
                    let mut map = map;
                    Value::Array(
                        (0..n)
                            .map(|i| lists(map.remove(&i.to_string()).unwrap_or(Value::Null)))
                            .collect(),
                    )
                } else {
                    Value::Object(map.into_iter().map(|(k, v)| (k, lists(v))).collect())
                }
            }
            other => other,
        }
    }
    let mut root = Value::Object(Map::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let name = name.trim_start_matches(' ');
        let (base, mut rest) = match name.find('[') {
            Some(i) if name[i..].contains(']') => (&name[..i], &name[i..]),
            _ => (name, ""),
        };
        let base: String = base
            .chars()
            .map(|c| {
                if c == ' ' || c == '.' || c == '[' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        if base.is_empty() {
            continue;
        }
        let mut at = slot(&mut root, Some(&base));
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = inner.find(']') else { break };
            let key = &inner[..close];
            at = slot(at, (!key.is_empty()).then_some(key));
            rest = &inner[close + 1..];
        }
        *at = Value::String(value.into_owned());
    }
    lists(root)
}

/// `batch` as the 1C-Bitrix rest module runs it (`CRestProvider::methodsBatch`): each command of `cmd` (an object
/// or a list) is split at its `?`, its query read by [`php_parse_str`] and answered by `call` (status and JSON body,
/// as the method alone would answer); commands past 50 get `ERROR_BATCH_LENGTH_EXCEEDED`, a nested `batch` gets
/// `ERROR_BATCH_METHOD_NOT_ALLOWED`, `halt` stops at the first error. The body is PHP-shaped: an empty set of
/// results or errors is `[]`.
pub fn bitrix_batch(
    params: &serde_json::Value,
    mut call: impl FnMut(&str, &serde_json::Value) -> (u16, serde_json::Value),
) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let commands: Vec<(String, String)> = match &params["cmd"] {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v.as_str().unwrap_or("").to_owned()))
            .collect(),
        _ => Vec::new(),
    };
    let halt = matches!(&params["halt"], Value::Bool(true))
        || params["halt"].as_u64() == Some(1)
        || params["halt"].as_str() == Some("1");
    let (mut results, mut errors, mut totals) = (Map::new(), Map::new(), Map::new());
    for (n, (key, command)) in commands.into_iter().enumerate() {
        let (method, query) = command.split_once('?').unwrap_or((command.as_str(), ""));
        let (status, body) = if n >= 50 {
            (
                400,
                json!({"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}),
            )
        } else if method == "batch" {
            (
                405,
                json!({"error": "ERROR_BATCH_METHOD_NOT_ALLOWED", "error_description": "Method is not allowed for batch usage"}),
            )
        } else {
            call(method, &php_parse_str(query))
        };
        if body.get("error").is_some() || !(200..300).contains(&status) {
            errors.insert(
                key,
                json!({"error": body["error"], "error_description": body["error_description"]}),
            );
            if halt {
                break;
            }
        } else {
            if let Some(t) = body.get("total") {
                totals.insert(key.clone(), t.clone());
            }
            results.insert(key, body["result"].clone());
        }
    }
    let php = |m: Map<String, Value>| {
        if m.is_empty() {
            json!([])
        } else {
            Value::Object(m)
        }
    };
    json!({"result": {"result": php(results), "result_error": php(errors), "result_total": php(totals),
        "result_next": [], "result_time": []}, "time": {"start": 0}})
}
