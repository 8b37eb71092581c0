//! Proxy mode: 1C keeps talking to the store's own exchange endpoint (1C-Bitrix `1c_exchange.php`) through
//! paysync. Every call is relayed with its method, query string, credentials, cookies and body; the answer comes
//! back byte for byte. Uploads the store accepted are tapped: assembled on our side and, once the store answered
//! `success` to the import, applied to the ledger. A tap failure never changes what 1C is told.

use std::collections::BTreeMap;

use lambda_http::http::{header, HeaderMap, HeaderName, StatusCode};
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use std::collections::HashMap;

use super::{failure, file_name, import_upload, ExchangeDeps, Imported};
use crate::domain::money::format_minor;
use crate::domain::OrderId;
use crate::formats::commerceml::enrich::{enrich, order_numbers, Enrichment};
use crate::formats::commerceml::text::decode;
use crate::formats::commerceml::write::{payment_doc, site_datetime};
use crate::formats::commerceml::SchemaVersion;
use crate::platform::clock::now_ms;
use crate::ports::store_api::{ExchangeUpstream, Relayed, UpstreamCall, UpstreamError};

/// A Lambda response (base64) must stay under 6 MB.
pub const MAX_RELAYED_BYTES: usize = 4 * 1024 * 1024;
/// Budget for applying a tapped upload inside one call; the rest continues on the next `import`.
const TAP_BUDGET_MS: u64 = 8_000;

pub const UPSTREAM_DOWN: &str =
    "Сайт недоступен: не удалось связаться с обменом магазина, повторите обмен позже.";
pub const UPSTREAM_TIMEOUT: &str = "Сайт не ответил вовремя, повторите обмен позже.";
pub const TOO_LARGE_REPLY: &str = "Ответ сайта слишком большой для передачи через прокси.";

/// Request headers 1C's exchange depends on; the rest (hop-by-hop, encodings) is not relayed.
const FORWARDED: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::CONTENT_TYPE,
    header::USER_AGENT,
];
/// Response headers that matter to 1C.
const RETURNED: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::SET_COOKIE,
    header::CONTENT_DISPOSITION,
];

/// Where the tap keeps an upload: per upstream session (the cookie 1C sends), never the cookie itself.
fn tap_key(req: &Request) -> String {
    let cookies: Vec<&str> = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    format!(
        "tap-{}",
        &hex::encode(Sha256::digest(cookies.join(";").as_bytes()))[..32]
    )
}

fn first_line(body: &[u8]) -> &[u8] {
    body.split(|b| *b == b'\n').next().unwrap_or_default()
}

/// Relay one call to the store and tap it.
pub async fn relay(
    deps: &ExchangeDeps,
    upstream: &dyn ExchangeUpstream,
    req: &Request,
) -> Response<Body> {
    let mut forwarded = HeaderMap::new();
    for name in FORWARDED {
        for value in req.headers().get_all(&name) {
            forwarded.append(name.clone(), value.clone());
        }
    }
    let body = req.body().as_ref().to_vec();
    let answer = upstream
        .relay(UpstreamCall {
            method: req.method(),
            query: req.uri().query(),
            headers: &forwarded,
            body: &body,
            max_body: MAX_RELAYED_BYTES,
        })
        .await;
    let Relayed {
        status,
        headers,
        body: bytes,
    } = match answer {
        Ok(a) => a,
        Err(e @ UpstreamError::TooLarge) => {
            error!(error.message = %e, limit = MAX_RELAYED_BYTES, "store's answer not relayed");
            return failure(TOO_LARGE_REPLY);
        }
        Err(e) => {
            warn!(error.message = %e, "store's exchange endpoint failed");
            return failure(if e == UpstreamError::Timeout {
                UPSTREAM_TIMEOUT
            } else {
                UPSTREAM_DOWN
            });
        }
    };
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let mut bytes = bytes;
    if status == StatusCode::OK && params.get("type").map(String::as_str) == Some("sale") {
        tap(deps, req, &params, &body, &bytes).await;
        if deps.config.enrich_query && params.get("mode").map(String::as_str) == Some("query") {
            if let Some(enriched) = enrich_query(deps, &bytes).await {
                bytes = enriched;
            }
        }
    }
    let mut out = Response::new(Body::Binary(bytes));
    *out.status_mut() = status;
    for name in RETURNED {
        for value in headers.get_all(&name) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// Where a tap keeps the `file_limit` of an old-protocol session (see `tap`); no file name can contain `/`.
const OLD_PROTOCOL: &str = "paysync/old-protocol";

/// How long a tap the ledger owes is retried.
const TAP_RETRY_SECS: i64 = 7 * 24 * 3600;

/// The store imported `name`: the ledger owes it until applied (recorded first, so the schedule retries what
/// fails here), then it is applied.
async fn owe_and_apply(deps: &ExchangeDeps, key: &str, name: &str) {
    let expires_at = now_ms() / 1000 + TAP_RETRY_SECS;
    if let Err(e) = deps
        .sessions
        .set_tap_pending(key, name, true, expires_at)
        .await
    {
        error!(file = %name, error.message = %e, "1C tap failed: could not record the pending tap");
    }
    apply_tap(&deps.importer(), key, name).await;
}

/// Apply a tapped upload; on success it is no longer owed. Returns whether it is done.
async fn apply_tap(ctx: &super::Importer<'_>, key: &str, name: &str) -> bool {
    match import_upload(ctx, key, name, TAP_BUDGET_MS).await {
        Ok(Imported::Done(errors)) => {
            info!(file = %name, notes = errors.len(), "1C upload tapped into the ledger");
            if let Err(e) = ctx.uploads.set_tap_pending(key, name, false, 0).await {
                warn!(file = %name, error.message = %e, "tap applied, pending mark not cleared");
            }
            true
        }
        Ok(Imported::Progress) => {
            info!(file = %name, "1C tap continues on the next retry");
            false
        }
        Ok(Imported::Empty) => {
            // The store imported a file we never saw (nor inside an archive we saw): a payment 1C sent may be
            // missing from the ledger. Kept pending and logged as an error on every retry, so it alarms.
            error!(file = %name, "1C tap failed: the store imported a file the tap does not have");
            false
        }
        Ok(Imported::Refused(reason)) => {
            // The store accepted what we cannot read: nothing to retry, but people must look.
            error!(file = %name, reason, "1C tap failed: upload unreadable");
            let _ = ctx.uploads.set_tap_pending(key, name, false, 0).await;
            true
        }
        Err(e) => {
            error!(file = %name, error.message = %e, "1C tap failed: ledger unavailable, retried on schedule");
            false
        }
    }
}

/// Scheduled retry of taps the ledger still owes. Returns (found, applied).
pub async fn retry_pending_taps(
    ctx: &super::Importer<'_>,
    limit: usize,
) -> Result<(usize, usize), crate::ports::StoreError> {
    let pending = ctx.uploads.pending_taps(limit).await?;
    let mut applied = 0;
    for (key, name) in &pending {
        if apply_tap(ctx, key, name).await {
            applied += 1;
        }
    }
    Ok((pending.len(), applied))
}

/// The ledger's payment requisites (and, for 2.10+, payment documents) for one order.
fn enrichment_for(order: &crate::domain::Order, with_documents: bool, offset: i32) -> Enrichment {
    let q = super::query::query_order(order, offset, now_ms());
    let mut requisites = vec![
        (
            "Заказ оплачен".to_owned(),
            if q.paid { "true" } else { "false" }.to_owned(),
        ),
        ("Сумма оплаты".to_owned(), format_minor(q.paid_amount)),
    ];
    if let Some(at) = &q.paid_at {
        requisites.push(("Дата оплаты".to_owned(), site_datetime(at)));
    }
    if let Some(doc) = &q.payment_document {
        requisites.push(("Номер платежного документа".to_owned(), doc.clone()));
    }
    let payments = if with_documents {
        q.payments
            .iter()
            .map(|p| {
                let mut xml = String::new();
                payment_doc(&mut xml, 0, "ПодчиненныйДокумент", p, &q);
                (p.id.clone(), xml)
            })
            .collect()
    } else {
        Vec::new()
    };
    Enrichment {
        requisites,
        payments,
    }
}

/// The store's `query` answer with the ledger's payment truth for the orders the ledger holds money for; `None`
/// (relay unchanged) when there is nothing to add or the ledger cannot be read.
async fn enrich_query(deps: &ExchangeDeps, bytes: &[u8]) -> Option<Vec<u8>> {
    let (text, encoding) = decode(bytes).ok()?;
    let version = text
        .get(..text.len().min(2048))
        .and_then(|head| head.split("ВерсияСхемы=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .map(|v| SchemaVersion::parse(Some(v)));
    let with_documents = matches!(version, Some(SchemaVersion::V210 | SchemaVersion::V31));
    let mut known = HashMap::new();
    for number in order_numbers(&text) {
        let Ok(id) = OrderId::parse(number.clone()) else {
            continue;
        };
        match deps.store.load_order(&id).await {
            Ok(Some(order)) if !order.lines.is_empty() => {
                known.insert(
                    number,
                    enrichment_for(&order, with_documents, deps.config.utc_offset_minutes),
                );
            }
            Ok(_) => {}
            Err(e) => {
                error!(error.message = %e, "1C query not enriched: ledger unavailable");
                return None;
            }
        }
    }
    if known.is_empty() {
        return None;
    }
    let enriched = enrich(&text, |n| known.get(n).cloned());
    info!(
        orders = known.len(),
        "1C query enriched with the ledger's payment state"
    );
    let (out, _, _) = encoding.encode(&enriched);
    Some(out.into_owned())
}

/// Keep what the store accepted and apply it once the store imported it. Failures are logged for the alarm
/// and left for the next `import` call; 1C's answer is the store's either way.
async fn tap(
    deps: &ExchangeDeps,
    req: &Request,
    params: &BTreeMap<String, String>,
    sent: &[u8],
    answer: &[u8],
) {
    let accepted = first_line(answer) == b"success";
    let key = tap_key(req);
    // The old protocol (no `version` at `init`): the store imports during `file` and `import` never comes. Keep
    // the `file_limit` the store told 1C, to know a file's last piece (the first one shorter than it).
    if params.get("mode").map(String::as_str) == Some("init")
        && params.get("version").is_none_or(|v| v.trim().is_empty())
    {
        let limit = String::from_utf8_lossy(answer)
            .lines()
            .find_map(|l| l.trim().strip_prefix("file_limit=").map(str::to_owned));
        if let Some(limit) = limit {
            let expires_at = now_ms() / 1000 + deps.config.session_ttl_secs;
            let line = format!("{limit}\n");
            if let Err(e) = deps
                .sessions
                .append_chunk(&key, OLD_PROTOCOL, line.as_bytes(), expires_at)
                .await
            {
                error!(error.message = %e, "1C tap: old-protocol session not recorded");
            }
        }
        return;
    }
    let (Some(mode), Some(name)) = (params.get("mode"), file_name(params)) else {
        return;
    };
    match mode.as_str() {
        "file" if accepted && !sent.is_empty() => {
            let expires_at = now_ms() / 1000 + deps.config.session_ttl_secs;
            if let Err(e) =
                super::store_upload_piece(deps.sessions.as_ref(), &key, &name, sent, expires_at)
                    .await
            {
                error!(file = %name, error.message = %e, "1C tap failed: upload chunk not stored");
                return;
            }
            let old_protocol_limit = match deps.sessions.uploaded(&key, OLD_PROTOCOL).await {
                Ok(Some(bytes)) => String::from_utf8_lossy(&bytes)
                    .lines()
                    .filter_map(|l| l.trim().parse::<usize>().ok())
                    .next_back(),
                _ => None,
            };
            if old_protocol_limit.is_some_and(|limit| sent.len() < limit) {
                // The store imported this file during this call: the ledger owes it now.
                owe_and_apply(deps, &key, &name).await;
            }
        }
        "import" if accepted => owe_and_apply(deps, &key, &name).await,
        _ => {}
    }
}
