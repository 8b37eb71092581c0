//! Statement sources over HTTP ([`StatementSource`]): the T-Bank Business API (`GET /api/v1/statement`, Bearer
//! token, cursor pages; `shared/reference/tbank-business-statement.md`) and a 1CClientBankExchange file at a URL.
//! A 429, a 5xx or a timeout is retried here with jitter; what is still failing is `Unavailable` for the next run.

use std::time::Duration;

use async_trait::async_trait;
use tracing::info;

use super::{classify, failure_kind, read_capped, ReadError, Verdict};
use crate::formats::client_bank_exchange::{self, from_file, Direction};
use crate::formats::tbank_statement::{self, from_tbank};
use crate::platform::config::Secret;
use crate::platform::retry::{retry, Backoff};
use crate::ports::bank::{Fetched, StatementFetchError, StatementSource};

/// A statement or API page larger than this is refused (a 100 000-operation file is about 57 MB).
const MAX_STATEMENT_BYTES: usize = 128 * 1024 * 1024;
/// A source that pages on for longer is broken, not busy.
const MAX_PAGES: usize = 1000;

const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(400),
    max: Duration::from_secs(4),
    attempts: 4,
};

/// One GET, retried while the source is busy; the body, capped.
async fn get(
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Vec<u8>, StatementFetchError> {
    retry(
        BACKOFF,
        || async {
            let resp = request()
                .send()
                .await
                .map_err(|e| StatementFetchError::Unavailable(failure_kind(&e).into()))?;
            let status = resp.status();
            match classify(status) {
                Verdict::Fine => {}
                Verdict::Transient => {
                    return Err(StatementFetchError::Unavailable(format!(
                        "HTTP {}",
                        status.as_u16()
                    )))
                }
                Verdict::Refused => {
                    return Err(StatementFetchError::Refused(format!(
                        "HTTP {} (check the token or URL)",
                        status.as_u16()
                    )))
                }
            }
            read_capped(resp, MAX_STATEMENT_BYTES)
                .await
                .map_err(|e| match e {
                    ReadError::TooLarge(_) => StatementFetchError::Refused(e.to_string()),
                    ReadError::Broken(_) => StatementFetchError::Unavailable(e.to_string()),
                })
        },
        |e| matches!(e, StatementFetchError::Unavailable(_)),
    )
    .await
}

/// The T-Bank Business API's statement of one account.
pub struct TbankBusinessStatement {
    pub client: reqwest::Client,
    /// `BANK_API_URL` (default `https://business.tbank.ru/openapi`).
    pub api_url: String,
    pub account: String,
    pub token: Secret,
}

#[async_trait]
impl StatementSource for TbankBusinessStatement {
    fn id(&self) -> String {
        format!("tbank-api:{}", self.account)
    }

    async fn fetch(&self, from: &str) -> Result<Fetched, StatementFetchError> {
        let mut out = Fetched::default();
        let mut cursor: Option<String> = None;
        let url = format!("{}/api/v1/statement", self.api_url.trim_end_matches('/'));
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("accountNumber", self.account.clone()),
                ("from", format!("{from}T00:00:00Z")),
                ("operationStatus", "Transaction".to_owned()),
            ];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let body = get(|| {
                self.client
                    .get(&url)
                    .bearer_auth(self.token.expose())
                    .query(&query)
            })
            .await?;
            let page = tbank_statement::parse_page(&body)
                .map_err(|e| StatementFetchError::Refused(e.to_string()))?;
            for op in &page.operations {
                if op.kind == tbank_statement::Kind::Other {
                    info!(operation = %op.id, "bank operation is neither a credit nor a debit; skipped");
                    out.other += 1;
                    continue;
                }
                match from_tbank(op, &self.account) {
                    Ok(o) => out.operations.push(o),
                    Err(reason) => out.unusable.push((op.id.clone(), reason)),
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
        Err(StatementFetchError::Unavailable("too many pages".into()))
    }
}

/// A 1CClientBankExchange file at a URL (an export endpoint or an object-storage link).
pub struct ClientBankUrl {
    pub client: reqwest::Client,
    pub account: String,
    pub url: String,
}

#[async_trait]
impl StatementSource for ClientBankUrl {
    fn id(&self) -> String {
        format!("clientbank-url:{}", self.account)
    }

    async fn fetch(&self, _from: &str) -> Result<Fetched, StatementFetchError> {
        let body = get(|| self.client.get(&self.url)).await?;
        let st = client_bank_exchange::parse(&body)
            .map_err(|e| StatementFetchError::Refused(e.to_string()))?;
        let mut out = Fetched::default();
        for doc in &st.documents {
            match from_file(doc) {
                Some(o) => out.operations.push(o),
                // Between our own accounts, or not ours at all: no money of an order moves.
                None if matches!(doc.direction, Direction::Internal | Direction::Unknown) => {
                    out.other += 1;
                }
                None => out.unusable.push((
                    doc.number.clone().unwrap_or_else(|| "?".into()),
                    "no readable number, date or amount",
                )),
            }
        }
        Ok(out)
    }
}
