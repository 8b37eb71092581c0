//! `statement-pull`: on a schedule, take new bank operations from every configured source, match incoming
//! payments to open orders and record them in the ledger. Re-reading overlapping windows changes nothing (facts
//! are keyed by the payment itself); a watermark per source keeps each run short.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::config::ConfigError;
use crate::domain::OrderId;
use crate::formats::purpose::PurposePatterns;
use crate::formats::{client_bank_exchange, tbank_statement};
use crate::ledger::{now_ms, Ledger, LedgerError, Recorded};
use crate::ports::{EventPublisher, LedgerStore};
use crate::reconcile::{match_credit, Credit, Matched, OpenOrder};
use crate::statement::{facts, from_file, from_tbank, BankOperation};

/// One configured source (`STATEMENT_SOURCES` is a JSON list of these).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// T-Bank Business API `GET /api/v1/statement` with a Bearer token.
    TbankApi { account: String, token: String },
    /// A 1CClientBankExchange file at a URL (an export endpoint or an object-storage link).
    ClientbankUrl { account: String, url: String },
}

impl SourceConfig {
    pub fn id(&self) -> String {
        match self {
            SourceConfig::TbankApi { account, .. } => format!("tbank-api:{account}"),
            SourceConfig::ClientbankUrl { account, .. } => format!("clientbank-url:{account}"),
        }
    }
}

pub fn parse_sources(json: &str) -> Result<Vec<SourceConfig>, ConfigError> {
    serde_json::from_str(json).map_err(|e| ConfigError::Invalid {
        name: "STATEMENT_SOURCES",
        reason: e.to_string(),
    })
}

/// INNs of acquirers whose credits are card-takings settlements, never order payments.
pub const ACQUIRER_INNS: &[&str] = &["7710140679", "7707083893", "7750005725"];

pub struct PullDeps {
    pub store: Arc<dyn LedgerStore>,
    pub events: Arc<dyn EventPublisher>,
    pub http: reqwest::Client,
    pub sources: Vec<SourceConfig>,
    /// `BANK_API_URL`: T-Bank Business API base (default `https://business.tbank.ru/openapi`).
    pub bank_api_url: String,
    pub patterns: PurposePatterns,
    /// Days re-read before the watermark on every run.
    pub overlap_days: i64,
}

/// What one source's run did (the function's JSON answer lists one per source).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    pub source: String,
    pub fetched: usize,
    pub new: usize,
    pub duplicates: usize,
    pub matched: usize,
    pub partial: usize,
    pub overpaid: usize,
    pub unmatched: usize,
    /// Acquirer payouts: recognised, never counted as order payments.
    pub settlements: usize,
    /// Outgoing or not yet final.
    pub skipped: usize,
    pub errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
}

fn date_days_ago(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::days(days);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

async fn get_with_retry(req: impl Fn() -> reqwest::RequestBuilder) -> Result<Vec<u8>, FetchError> {
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
        }
        match req().send().await {
            Ok(r) if r.status().is_success() => {
                return r
                    .bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|e| FetchError::Unavailable(e.to_string()))
            }
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                last = format!("HTTP {}", r.status().as_u16());
            }
            Ok(r) => {
                return Err(FetchError::Refused(format!(
                    "HTTP {} (check the token or URL)",
                    r.status().as_u16()
                )))
            }
            Err(e) => {
                last = if e.is_timeout() {
                    "timeout".into()
                } else {
                    "connection failed".into()
                }
            }
        }
    }
    Err(FetchError::Unavailable(last))
}

async fn fetch(
    deps: &PullDeps,
    source: &SourceConfig,
    from: &str,
) -> Result<Vec<BankOperation>, FetchError> {
    match source {
        SourceConfig::TbankApi { account, token } => {
            let mut out = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..1000 {
                let url = format!("{}/api/v1/statement", deps.bank_api_url);
                let mut query = vec![
                    ("accountNumber", account.clone()),
                    ("from", format!("{from}T00:00:00Z")),
                    ("operationStatus", "Transaction".to_owned()),
                ];
                if let Some(c) = &cursor {
                    query.push(("cursor", c.clone()));
                }
                let body =
                    get_with_retry(|| deps.http.get(&url).bearer_auth(token).query(&query)).await?;
                let page = tbank_statement::parse_page(&body)
                    .map_err(|e| FetchError::Refused(e.to_string()))?;
                out.extend(page.operations.iter().filter_map(from_tbank));
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return Ok(out),
                }
            }
            Err(FetchError::Unavailable("too many pages".into()))
        }
        SourceConfig::ClientbankUrl { url, .. } => {
            let body = get_with_retry(|| deps.http.get(url)).await?;
            let st = client_bank_exchange::parse(&body)
                .map_err(|e| FetchError::Refused(e.to_string()))?;
            Ok(st.documents.iter().filter_map(from_file).collect())
        }
    }
}

/// One run over every source.
pub async fn handle(deps: &PullDeps) -> Result<Vec<SourceSummary>, LedgerError> {
    let mut summaries = Vec::new();
    for source in &deps.sources {
        let id = source.id();
        let mut s = SourceSummary {
            source: id.clone(),
            ..SourceSummary::default()
        };
        let from = match deps.store.watermark(&id).await? {
            // Re-read a safety overlap: late postings land with earlier dates.
            Some(w) => {
                let back =
                    time::Date::parse(&w, &time::format_description::well_known::Iso8601::DATE)
                        .map(|d| d - time::Duration::days(deps.overlap_days))
                        .map(|d| {
                            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
                        });
                back.unwrap_or_else(|_| date_days_ago(30))
            }
            None => date_days_ago(30),
        };
        let today = date_days_ago(0);
        let ops = match fetch(deps, source, &from).await {
            Ok(ops) => ops,
            Err(e) => {
                warn!(source = %id, error.message = %e, "statement source failed; watermark kept");
                s.errors.push(e.to_string());
                summaries.push(s);
                continue;
            }
        };
        s.fetched = ops.len();
        let mut open = deps.store.open_orders(10_000).await?;
        let ledger = Ledger::new(deps.store.as_ref(), deps.events.as_ref());
        for op in &ops {
            if !op.incoming || !op.is_final {
                s.skipped += 1;
                continue;
            }
            if op
                .counterparty_inn
                .as_deref()
                .is_some_and(|inn| ACQUIRER_INNS.contains(&inn))
            {
                s.settlements += 1;
                continue;
            }
            let refs = deps.patterns.references(&op.purpose);
            let credit = Credit {
                amount: op.amount,
                payer_inn: op.counterparty_inn.as_deref(),
            };
            let matched = match_credit(credit, &refs, &open);
            let mut all_new = true;
            for fact in facts(op, &matched, now_ms())? {
                match ledger.record(&fact).await? {
                    Recorded::Applied(_) => {}
                    Recorded::Duplicate => all_new = false,
                }
            }
            if !all_new {
                s.duplicates += 1;
                continue;
            }
            s.new += 1;
            // Later operations of the same run see what this one paid.
            let mut paid = |order: &OrderId, amount: i64| {
                if let Some(o) = open.iter_mut().find(|o| &o.id == order) {
                    o.open -= amount;
                }
                open.retain(|o: &OpenOrder| o.open > 0);
            };
            match &matched {
                Matched::Order {
                    order,
                    amount,
                    partial,
                    overpaid,
                    ..
                } => {
                    s.matched += 1;
                    s.partial += usize::from(*partial);
                    s.overpaid += usize::from(*overpaid);
                    paid(order, *amount);
                }
                Matched::Split(parts) => {
                    s.matched += 1;
                    for (order, amount) in parts {
                        paid(order, *amount);
                    }
                }
                Matched::Unmatched(reason) => {
                    s.unmatched += 1;
                    info!(source = %id, key = %op.key(), reason, "bank payment kept unmatched");
                }
            }
        }
        deps.store.set_watermark(&id, &today).await?;
        info!(source = %id, fetched = s.fetched, new = s.new, matched = s.matched, unmatched = s.unmatched, "statement pulled");
        summaries.push(s);
    }
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_configured_as_json() {
        let s = parse_sources(
            r#"[{"kind":"tbank-api","account":"40702810900000012345","token":"t"},
                {"kind":"clientbank-url","account":"40702810200000000001","url":"https://bank.example/kl_to_1c.txt"}]"#,
        )
        .unwrap();
        assert_eq!(s[0].id(), "tbank-api:40702810900000012345");
        assert_eq!(s[1].id(), "clientbank-url:40702810200000000001");
        assert!(parse_sources(r#"[{"kind":"ftp","account":"1"}]"#).is_err());
    }
}
