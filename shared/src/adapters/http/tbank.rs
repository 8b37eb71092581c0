//! T-Bank's acquiring API (`/v2`, EACQ protocol v1.8): payment status through `GetState` (§2.11), refunds through
//! `Cancel` (§2.10). Every request is Token-signed like a notification.

use async_trait::async_trait;

use super::{json_answer, refund_answer, refund_error, refund_transport, transport};
use crate::domain::PayMethod;
use crate::formats::tbank::{self, StateResponse};
use crate::platform::config::Secret;
use crate::ports::acquirers::{
    idempotency_key, ProviderError, RefundCall, RefundError, RefundGateway, RefundOutcome, TbankApi,
};

/// T-Bank `POST /v2/GetState`.
pub struct HttpTbank {
    client: reqwest::Client,
    api_url: String,
    terminal_key: String,
    password: Secret,
}

impl HttpTbank {
    pub fn new(
        client: reqwest::Client,
        api_url: &str,
        terminal_key: &str,
        password: Secret,
    ) -> Self {
        HttpTbank {
            client,
            api_url: api_url.trim_end_matches('/').to_owned(),
            terminal_key: terminal_key.to_owned(),
            password,
        }
    }
}

impl HttpTbank {
    /// A signed `POST /v2/<operation>` naming one payment (`GetState`, `GetQrState`: the same body and Token).
    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        payment_id: &str,
    ) -> Result<T, ProviderError> {
        const P: &str = "T-Bank";
        let resp = self
            .client
            .post(format!("{}/{operation}", self.api_url))
            .json(&tbank::get_state_request(
                &self.terminal_key,
                self.password.expose(),
                payment_id,
            ))
            .send()
            .await
            .map_err(|e| transport(P, &e))?;
        json_answer(P, resp).await
    }
}

#[async_trait]
impl TbankApi for HttpTbank {
    async fn get_state(&self, payment_id: &str) -> Result<StateResponse, ProviderError> {
        self.ask("GetState", payment_id).await
    }

    async fn get_qr_state(
        &self,
        payment_id: &str,
    ) -> Result<tbank::QrStateResponse, ProviderError> {
        self.ask("GetQrState", payment_id).await
    }
}

/// T-Bank `POST /v2/Cancel`, Token-signed, `ExternalRequestId` = the idempotency key.
///
/// An SBP payment's refund is different (T-Bank EACQ OpenAPI v1.80, `Cancel`: "`ExternalRequestId` … Параметр не
/// работает для операций по СБП"; SBP refunds go through `ASYNC_REFUNDING`, "Обработка возврата денежных средств по
/// QR", a non-final status, before `REFUNDED`/`PARTIAL_REFUNDED`). So before an SBP `Cancel` the payment's state
/// is asked (`GetState`), and a `Cancel` is sent only when it shows the refund was not made:
/// * a refund still being processed (`ASYNC_REFUNDING`, `REFUNDING`): this one waits — pending when it is this
///   request's own earlier attempt (its notification, or status-sync's `GetState`, completes it), retried later
///   otherwise (another refund of the payment is in flight);
/// * an earlier attempt of this request that T-Bank executed (`REFUNDED`/`PARTIAL_REFUNDED` with the payment's
///   current `Amount` at most what this refund leaves): done, the same fact its notification brings.
pub struct TbankRefunds {
    pub client: reqwest::Client,
    pub api_url: String,
    pub terminal_key: String,
    pub password: Secret,
    /// `GetState`, asked before an SBP refund.
    pub state: std::sync::Arc<dyn TbankApi>,
}

impl TbankRefunds {
    /// What T-Bank says of an SBP payment before a `Cancel`: `Some` outcome when no `Cancel` may be sent.
    async fn sbp_settled(
        &self,
        call: &RefundCall<'_>,
    ) -> Result<Option<RefundOutcome>, RefundError> {
        const P: &str = "T-Bank";
        let state = self
            .state
            .get_state(call.payment.external())
            .await
            .map_err(|e| refund_error(P, e))?;
        if !state.success {
            return Err(RefundError::Transient(format!(
                "{P}: GetState before an SBP refund refused: ErrorCode {} {}",
                state.error_code,
                state.message.as_deref().unwrap_or("")
            )));
        }
        let left = (call.captured - call.refunded_before - call.amount).max(0);
        match state.status.as_str() {
            "ASYNC_REFUNDING" | "REFUNDING" if call.retry => Ok(Some(RefundOutcome::Pending {
                provider_id: None,
                expect: self.expected_fact(call),
            })),
            "ASYNC_REFUNDING" | "REFUNDING" => Err(RefundError::Transient(format!(
                "{P}: another SBP refund of payment {} is still being processed",
                call.payment.external()
            ))),
            "REFUNDED" | "PARTIAL_REFUNDED"
                if call.retry && state.amount.is_some_and(|now| now <= left) =>
            {
                let fact = tbank::state_fact(
                    &state,
                    &self.terminal_key,
                    &[],
                    crate::platform::clock::now_ms(),
                )
                .map_err(|e| RefundError::Permanent(format!("{P}: {e}")))?
                .ok_or_else(|| RefundError::Permanent(format!("{P}: no refund in GetState")))?
                .on_order(call.order.clone());
                Ok(Some(RefundOutcome::Done {
                    fact: Box::new(fact),
                    provider_id: None,
                }))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl RefundGateway for TbankRefunds {
    fn expected_fact(&self, call: &RefundCall<'_>) -> Option<String> {
        let remaining = call.captured - call.refunded_before - call.amount;
        let status = if remaining <= 0 {
            "REFUNDED"
        } else {
            "PARTIAL_REFUNDED"
        };
        Some(format!(
            "tbank#{}",
            tbank::notification_key(call.payment.external(), status, remaining.max(0), true)
        ))
    }

    async fn refund(&self, call: &RefundCall<'_>) -> Result<RefundOutcome, RefundError> {
        const P: &str = "T-Bank";
        if call.pay_method.is_some_and(PayMethod::is_sbp) {
            if let Some(outcome) = self.sbp_settled(call).await? {
                return Ok(outcome);
            }
        }
        let mut body = tbank::cancel_request(
            &self.terminal_key,
            self.password.expose(),
            call.payment.external(),
            call.amount,
            &idempotency_key(call.request_id),
            call.to_bank,
        );
        if let Some(receipt) = call.receipt {
            // Nested, so outside the Token: adding it after signing signs the same.
            body["Receipt"] = tbank::cancel_receipt(receipt, call.taxation.unwrap_or("osn"));
        }
        let resp = self
            .client
            .post(format!("{}/Cancel", self.api_url.trim_end_matches('/')))
            .json(&body)
            .send()
            .await
            .map_err(|e| refund_transport(P, &e))?;
        let bytes = refund_answer(P, resp).await?;
        let r: tbank::CancelResponse = serde_json::from_slice(&bytes)
            .map_err(|e| RefundError::Transient(format!("{P}: unreadable answer: {e}")))?;
        if !r.success {
            return Err(RefundError::Permanent(format!(
                "{P}: {} {} (ErrorCode {})",
                r.message.as_deref().unwrap_or(""),
                r.details.as_deref().unwrap_or(""),
                r.error_code
            )));
        }
        match r.status.as_str() {
            "REFUNDED" | "PARTIAL_REFUNDED" if tbank::cancel_remaining(&r).is_some() => {
                let fact =
                    tbank::cancel_fact(&r, call.order.clone(), crate::platform::clock::now_ms())
                        .map_err(|e| RefundError::Permanent(format!("{P}: {e}")))?
                        .ok_or_else(|| {
                            RefundError::Permanent(format!("{P}: no refund in answer"))
                        })?;
                Ok(RefundOutcome::Done {
                    fact: Box::new(fact),
                    provider_id: None,
                })
            }
            // A partial refund whose answer does not say what is left is not counted as everything refunded:
            // it stays pending until T-Bank's notification says how much it was.
            "REFUNDED" | "PARTIAL_REFUNDED" | "REFUNDING" | "ASYNC_REFUNDING" => {
                let expect = tbank::cancel_remaining(&r).map(|remaining| {
                    let status = if remaining == 0 {
                        "REFUNDED"
                    } else {
                        "PARTIAL_REFUNDED"
                    };
                    format!(
                        "tbank#{}",
                        tbank::notification_key(&r.payment_id, status, remaining, true)
                    )
                });
                Ok(RefundOutcome::Pending {
                    provider_id: None,
                    expect,
                })
            }
            other => Err(RefundError::Permanent(format!(
                "{P}: Cancel answered status {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use sha2::{Digest, Sha256};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::domain::{Currency, FactKind, OrderId, PaymentRef, RefundAmount, Source};

    const TERMINAL: &str = "1700000000000DEMO";
    const PASSWORD: &str = "tbank-password";

    async fn gateway(answer: ResponseTemplate) -> (MockServer, TbankRefunds) {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/Cancel"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let gateway = TbankRefunds {
            client: crate::adapters::http::client().unwrap(),
            api_url: format!("{}/v2/", server.uri()),
            terminal_key: TERMINAL.into(),
            password: Secret::new(PASSWORD),
            state: std::sync::Arc::new(HttpTbank::new(
                crate::adapters::http::client().unwrap(),
                &format!("{}/v2/", server.uri()),
                TERMINAL,
                Secret::new(PASSWORD),
            )),
        };
        (server, gateway)
    }

    /// Refund `amount` of payment 13660 (captured 1 500,00, `refunded_before` already returned).
    async fn refund(
        answer: ResponseTemplate,
        amount: i64,
        refunded_before: i64,
    ) -> (
        Result<RefundOutcome, RefundError>,
        Option<String>,
        Vec<Value>,
    ) {
        let (server, gateway) = gateway(answer).await;
        let order = OrderId::parse("7001").unwrap();
        let payment = PaymentRef::new(Source::Tbank, "13660").unwrap();
        let call = RefundCall {
            order: &order,
            request_id: "refund#7001#1",
            payment: &payment,
            amount,
            currency: Currency::RUB,
            refunded_before,
            captured: 150_000,
            reason: "returned goods",
            retry: false,
            pay_method: None,
            receipt: None,
            taxation: None,
            to_bank: None,
        };
        let out = gateway.refund(&call).await;
        let expected = gateway.expected_fact(&call);
        let bodies = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        (out, expected, bodies)
    }

    /// An SBP payment 13660 (captured 1 500,00, nothing refunded yet): refund 500,00 with GetState answering
    /// `state` (status, current amount); the outcome and the paths called, in order.
    async fn sbp_refund(
        state: (&str, i64),
        retry: bool,
    ) -> (Result<RefundOutcome, RefundError>, Vec<String>) {
        let (server, gateway) = gateway(cancel_answer("PARTIAL_REFUNDED", Some(100_000))).await;
        Mock::given(method("POST"))
            .and(path("/v2/GetState"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "Success": true, "ErrorCode": "0", "TerminalKey": TERMINAL, "Status": state.0,
                "PaymentId": "13660", "OrderId": "7001", "Amount": state.1,
                "Params": [{"Key": "Route", "Value": "ACQ"}, {"Key": "Source", "Value": "qrsbp"}]
            })))
            .mount(&server)
            .await;
        let order = OrderId::parse("7001").unwrap();
        let payment = PaymentRef::new(Source::Tbank, "13660").unwrap();
        let call = RefundCall {
            order: &order,
            request_id: "refund#7001#1",
            payment: &payment,
            amount: 50_000,
            currency: Currency::RUB,
            refunded_before: 0,
            captured: 150_000,
            reason: "returned goods",
            retry,
            pay_method: Some(&crate::domain::PayMethod::Sbp),
            receipt: None,
            taxation: None,
            to_bank: None,
        };
        let out = gateway.refund(&call).await;
        let paths = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| r.url.path().to_owned())
            .collect();
        (out, paths)
    }

    #[tokio::test]
    async fn an_sbp_refund_is_sent_again_only_when_get_state_shows_it_was_not_made() {
        // Executed by the first attempt (whose answer was lost): done, no second Cancel.
        let (out, paths) = sbp_refund(("PARTIAL_REFUNDED", 100_000), true).await;
        assert_eq!(paths, ["/v2/GetState"]);
        let Ok(RefundOutcome::Done { fact, .. }) = out else {
            panic!("{out:?}");
        };
        assert_eq!(fact.id.as_str(), "tbank#13660#PARTIAL_REFUNDED#100000");
        assert_eq!(fact.order_id.as_str(), "7001");
        // Still being processed at the SBP: pending, completed by the notification (or status-sync).
        let (out, paths) = sbp_refund(("ASYNC_REFUNDING", 150_000), true).await;
        assert_eq!(paths, ["/v2/GetState"]);
        assert_eq!(
            out,
            Ok(RefundOutcome::Pending {
                provider_id: None,
                expect: Some("tbank#13660#PARTIAL_REFUNDED#100000".into())
            })
        );
        // Another refund in flight when this one has not been sent: later.
        let (out, paths) = sbp_refund(("ASYNC_REFUNDING", 150_000), false).await;
        assert_eq!(paths, ["/v2/GetState"]);
        assert!(matches!(out, Err(RefundError::Transient(_))), "{out:?}");
        // Not made: sent (once).
        let (out, paths) = sbp_refund(("CONFIRMED", 150_000), true).await;
        assert_eq!(paths, ["/v2/GetState", "/v2/Cancel"]);
        assert!(matches!(out, Ok(RefundOutcome::Done { .. })), "{out:?}");
        // A first attempt of a payment already partly refunded elsewhere is sent: T-Bank judges what is left.
        let (_, paths) = sbp_refund(("PARTIAL_REFUNDED", 100_000), false).await;
        assert_eq!(paths, ["/v2/GetState", "/v2/Cancel"]);
    }

    fn cancel_answer(status: &str, new_amount: Option<i64>) -> ResponseTemplate {
        let mut body = json!({
            "Success": true, "ErrorCode": "0", "TerminalKey": TERMINAL, "Status": status,
            "PaymentId": "13660", "OrderId": "7001", "OriginalAmount": 150_000,
        });
        if let Some(n) = new_amount {
            body["NewAmount"] = json!(n);
        }
        ResponseTemplate::new(200).set_body_json(body)
    }

    #[tokio::test]
    async fn the_cancel_request_carries_the_terminal_payment_kopecks_idempotency_key_and_a_valid_token(
    ) {
        let (_, _, bodies) = refund(cancel_answer("REFUNDED", Some(0)), 150_000, 0).await;
        assert_eq!(bodies.len(), 1, "one Cancel");
        let body = &bodies[0];
        let key = idempotency_key("refund#7001#1");
        assert_eq!(key.len(), 32);
        assert_eq!(body["TerminalKey"], TERMINAL);
        assert_eq!(body["PaymentId"], "13660");
        assert_eq!(body["Amount"], json!(150_000), "kopecks, as a number");
        assert_eq!(body["ExternalRequestId"], json!(key));
        // The Token, computed by hand as T-Bank does: the values of the root fields and Password, sorted by key
        // (Amount, ExternalRequestId, Password, PaymentId, TerminalKey), concatenated, SHA-256 in lowercase hex.
        let by_hand = hex::encode(Sha256::digest(
            format!("150000{key}{PASSWORD}13660{TERMINAL}").as_bytes(),
        ));
        assert_eq!(body["Token"], json!(by_hand));
        // And the bank's own check of the request as sent accepts it.
        let fields = tbank::canonical_fields(body.to_string().as_bytes()).unwrap();
        assert_eq!(tbank::token(&fields, PASSWORD), by_hand);
        assert_ne!(tbank::token(&fields, "another-password"), by_hand);
    }

    #[tokio::test]
    async fn a_full_refund_is_done_with_the_fact_the_notification_will_also_produce() {
        let (out, expected, _) = refund(cancel_answer("REFUNDED", Some(0)), 150_000, 0).await;
        let RefundOutcome::Done { fact, provider_id } = out.unwrap() else {
            panic!("not done")
        };
        assert_eq!(provider_id, None);
        assert_eq!(fact.id.as_str(), "tbank#13660#REFUNDED");
        assert_eq!(expected.as_deref(), Some(fact.id.as_str()));
        assert_eq!(fact.order_id.as_str(), "7001");
        assert_eq!(fact.payment.to_string(), "tbank:13660");
        assert_eq!(
            fact.kind,
            FactKind::Refund {
                amount: RefundAmount::Remaining(0)
            }
        );
    }

    #[tokio::test]
    async fn a_partial_refund_is_done_with_what_is_left_of_the_payment() {
        let (out, expected, _) =
            refund(cancel_answer("PARTIAL_REFUNDED", Some(100_000)), 50_000, 0).await;
        let RefundOutcome::Done { fact, .. } = out.unwrap() else {
            panic!("not done")
        };
        assert_eq!(fact.id.as_str(), "tbank#13660#PARTIAL_REFUNDED#100000");
        assert_eq!(expected.as_deref(), Some(fact.id.as_str()));
        assert_eq!(
            fact.kind,
            FactKind::Refund {
                amount: RefundAmount::Remaining(100_000)
            }
        );
    }

    #[tokio::test]
    async fn a_partial_refund_whose_answer_does_not_say_what_is_left_stays_pending() {
        let (out, _, _) = refund(cancel_answer("PARTIAL_REFUNDED", None), 50_000, 0).await;
        assert_eq!(
            out.unwrap(),
            RefundOutcome::Pending {
                provider_id: None,
                expect: None
            }
        );
        let (out, _, _) = refund(cancel_answer("ASYNC_REFUNDING", Some(100_000)), 50_000, 0).await;
        assert_eq!(
            out.unwrap(),
            RefundOutcome::Pending {
                provider_id: None,
                expect: Some("tbank#13660#PARTIAL_REFUNDED#100000".into())
            }
        );
    }

    #[tokio::test]
    async fn a_busy_or_failing_bank_is_transient() {
        for status in [500, 502, 503, 429] {
            let (out, _, bodies) = refund(
                ResponseTemplate::new(status).set_body_string("try later"),
                50_000,
                0,
            )
            .await;
            match out {
                Err(RefundError::Transient(reason)) => {
                    assert!(reason.contains(&format!("HTTP {status}")), "{reason}")
                }
                other => panic!("HTTP {status}: {other:?}"),
            }
            assert_eq!(bodies.len(), 1, "no retry inside the adapter");
        }
    }

    #[tokio::test]
    async fn a_refusal_or_an_unsuccessful_answer_is_permanent() {
        let (out, _, _) = refund(
            ResponseTemplate::new(400).set_body_string("bad request"),
            50_000,
            0,
        )
        .await;
        match out {
            Err(RefundError::Permanent(reason)) => {
                assert!(reason.contains("HTTP 400 bad request"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let (out, _, _) = refund(
            ResponseTemplate::new(200).set_body_json(json!({
                "Success": false, "ErrorCode": "9999", "Message": "Неверные параметры",
                "Details": "Сумма возврата больше суммы платежа", "Status": "CONFIRMED", "PaymentId": "13660"
            })),
            500_000,
            0,
        )
        .await;
        match out {
            Err(RefundError::Permanent(reason)) => {
                assert!(reason.contains("ErrorCode 9999"), "{reason}");
                assert!(reason.contains("Сумма возврата больше"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let (out, _, _) = refund(cancel_answer("CONFIRMED", None), 50_000, 0).await;
        assert!(
            matches!(&out, Err(RefundError::Permanent(r)) if r.contains("status CONFIRMED")),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn get_state_is_signed_and_the_answer_read_as_t_bank_gave_it() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/GetState"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "TerminalKey": TERMINAL, "OrderId": "21057", "Success": true, "Status": "CONFIRMED",
                "PaymentId": 10063, "ErrorCode": "0", "Amount": 1000})))
            .mount(&server)
            .await;
        let api = HttpTbank::new(
            crate::adapters::http::client().unwrap(),
            &format!("{}/v2/", server.uri()),
            TERMINAL,
            Secret::new(PASSWORD),
        );
        let state = api.get_state("10063").await.unwrap();
        assert_eq!(
            (
                state.status.as_str(),
                state.payment_id.as_str(),
                state.order_id.as_str(),
                state.amount
            ),
            ("CONFIRMED", "10063", "21057", Some(1000))
        );
        let sent: Value =
            serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
        let fields = tbank::canonical_fields(sent.to_string().as_bytes()).unwrap();
        assert_eq!(sent["Token"], tbank::token(&fields, PASSWORD));
        assert_eq!(
            (sent["TerminalKey"].as_str(), sent["PaymentId"].as_str()),
            (Some(TERMINAL), Some("10063"))
        );
    }

    #[tokio::test]
    async fn a_busy_get_state_is_unavailable_and_a_refusal_refused() {
        for (status, busy) in [(503, true), (429, true), (403, false)] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(status))
                .mount(&server)
                .await;
            let api = HttpTbank::new(
                crate::adapters::http::client().unwrap(),
                &format!("{}/v2", server.uri()),
                TERMINAL,
                Secret::new(PASSWORD),
            );
            let e = api.get_state("10063").await.unwrap_err();
            assert_eq!(
                matches!(e, ProviderError::Unavailable { .. }),
                busy,
                "{status}: {e}"
            );
        }
    }
}
