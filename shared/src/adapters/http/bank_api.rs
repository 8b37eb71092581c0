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

#[cfg(test)]
mod tests {
    use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::testing::fixtures_dir;

    const ACCOUNT: &str = "40702810900000012345";

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(fixtures_dir().join("statements").join(name)).unwrap()
    }

    fn page(n: u8) -> Vec<u8> {
        fixture(&format!("tbank-api__synthetic__statement-page{n}.json"))
    }

    fn source(server: &MockServer) -> TbankBusinessStatement {
        TbankBusinessStatement {
            client: crate::adapters::http::client().unwrap(),
            api_url: format!("{}/openapi/", server.uri()),
            account: ACCOUNT.into(),
            token: Secret::new("t.bank-token"),
        }
    }

    /// The statement endpoint, as the bank checks a request: its token, account and start.
    fn statement() -> wiremock::MockBuilder {
        Mock::given(method("GET"))
            .and(path("/openapi/api/v1/statement"))
            .and(header("authorization", "Bearer t.bank-token"))
            .and(query_param("accountNumber", ACCOUNT))
            .and(query_param("from", "2024-03-05T00:00:00Z"))
            .and(query_param("operationStatus", "Transaction"))
    }

    fn numbers(f: &Fetched) -> Vec<(&str, i64, bool)> {
        f.operations
            .iter()
            .map(|o| (o.number.as_str(), o.amount, o.incoming))
            .collect()
    }

    #[tokio::test]
    async fn every_page_is_followed_through_its_cursor_with_the_token_and_account() {
        let server = MockServer::start().await;
        statement()
            .and(query_param_is_missing("cursor"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(page(1)))
            .expect(1)
            .mount(&server)
            .await;
        statement()
            .and(query_param("cursor", "c2"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(page(2)))
            .expect(1)
            .mount(&server)
            .await;
        let fetched = source(&server).fetch("2024-03-05").await.unwrap();
        assert_eq!(
            numbers(&fetched),
            [
                ("1001", 150_000, true),
                ("1002", 4_200_050, true),
                ("1003", 9_876_543, true),
                ("1004", 1_200_000, false),
                ("1005", 350_000, true),
                ("1006", 700_000, true),
                ("1007", 250_000, true),
            ]
        );
        assert_eq!(
            fetched
                .operations
                .iter()
                .filter(|o| !o.is_final)
                .map(|o| o.number.as_str())
                .collect::<Vec<_>>(),
            ["1007"],
            "the Authorization is kept, marked not final"
        );
        assert!(fetched.operations.iter().all(|o| o.account == ACCOUNT));
        assert_eq!((fetched.unusable.len(), fetched.other), (0, 0));
        server.verify().await;
    }

    #[tokio::test]
    async fn operations_that_move_no_money_or_cannot_be_read_are_counted_not_dropped() {
        let server = MockServer::start().await;
        statement()
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                r#"{"operations":[
                    {"operationId":"a","operationStatus":"Transaction","typeOfOperation":"Сredit","accountAmount":10.5,"docDate":"2024-03-05T00:00:00Z","documentNumber":"7"},
                    {"operationId":"b","operationStatus":"Transaction","typeOfOperation":"Other","accountAmount":1},
                    {"operationId":"c","operationStatus":"Transaction","typeOfOperation":"Debit","accountAmount":0.333,"docDate":"2024-03-05T00:00:00Z"}
                ]}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        let fetched = source(&server).fetch("2024-03-05").await.unwrap();
        assert_eq!(numbers(&fetched), [("7", 1_050, true)]);
        assert_eq!(fetched.other, 1);
        assert_eq!(fetched.unusable, [("c".to_owned(), "no readable amount")]);
    }

    #[tokio::test]
    async fn a_busy_bank_is_retried_and_the_statement_still_read() {
        let server = MockServer::start().await;
        statement()
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        statement()
            .respond_with(ResponseTemplate::new(200).set_body_bytes(page(2)))
            .with_priority(2)
            .mount(&server)
            .await;
        let fetched = source(&server).fetch("2024-03-05").await.unwrap();
        assert_eq!(fetched.operations.len(), 3);
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_refused_token_is_refused_at_once_without_retrying() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let err = source(&server).fetch("2024-03-05").await.unwrap_err();
        assert_eq!(
            err,
            StatementFetchError::Refused("HTTP 401 (check the token or URL)".into())
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_page_that_is_not_a_statement_is_refused() {
        let server = MockServer::start().await;
        statement()
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
            .mount(&server)
            .await;
        assert!(matches!(
            source(&server).fetch("2024-03-05").await,
            Err(StatementFetchError::Refused(_))
        ));
    }

    #[tokio::test]
    async fn a_client_bank_exchange_file_at_a_url_is_read_into_operations() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/exports/statement.txt"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_bytes(fixture("kilylabs__client-bank-exchange-php__one_day.txt")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let source = ClientBankUrl {
            client: crate::adapters::http::client().unwrap(),
            account: "40702810200000000001".into(),
            url: format!("{}/exports/statement.txt", server.uri()),
        };
        let fetched = source.fetch("2016-01-11").await.unwrap();
        assert_eq!(fetched.operations.len(), 13);
        let sum = |incoming: bool| -> (usize, i64) {
            let ops: Vec<_> = fetched
                .operations
                .iter()
                .filter(|o| o.incoming == incoming)
                .collect();
            (ops.len(), ops.iter().map(|o| o.amount).sum())
        };
        assert_eq!(sum(true), (3, 4_000_000));
        assert_eq!(sum(false), (10, 4_118_400));
        let first = &fetched.operations[0];
        assert_eq!(
            (first.number.as_str(), first.amount, first.date.as_str()),
            ("697162", 8_323, "2016-01-11")
        );
        assert_eq!((fetched.unusable.len(), fetched.other), (0, 0));
        server.verify().await;
    }

    #[tokio::test]
    async fn a_missing_or_broken_client_bank_exchange_file_is_refused() {
        let server = MockServer::start().await;
        Mock::given(path("/gone.txt"))
            .respond_with(ResponseTemplate::new(404))
            .mount(&server)
            .await;
        Mock::given(path("/html.txt"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html></html>"))
            .mount(&server)
            .await;
        for name in ["gone.txt", "html.txt"] {
            let source = ClientBankUrl {
                client: crate::adapters::http::client().unwrap(),
                account: "40702810200000000001".into(),
                url: format!("{}/{name}", server.uri()),
            };
            assert!(
                matches!(
                    source.fetch("2016-01-11").await,
                    Err(StatementFetchError::Refused(_))
                ),
                "{name}"
            );
        }
    }
}
