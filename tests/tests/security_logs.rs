//! No secret and no card data in the logs: a full run of every function's handler with the log capture at `debug`,
//! good and forged requests alike, then the captured lines are searched for every secret and card field involved.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use paysync_e2e::*;
use serde_json::json;
use shared::app::ledger::Ledger;
use shared::app::refund_chargeback::execute_order;
use shared::domain::{
    Currency, FactId, FactKind, OrderId, PaymentFact, PaymentMethod, PaymentRef, Source,
};
use shared::platform::config::Secret;
use shared::testing::function_url_request;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_run_logs_no_secret_and_no_card_data() {
    let capture = Capture::default();
    // The functions' own JSON format, at debug, for everything this test drives.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = spawn_env().await;
    env.register_order("9901", 500_000).await;
    // acquiring-callback, T-Bank: a signed notification with card fields, and a forged one.
    let note = tbank_note("9901", "990", "CONFIRMED", 500_000);
    let token = note["Token"].as_str().expect("token").to_owned();
    assert_eq!(env.post_tbank(&note).await.status, 200);
    let mut forged = note.clone();
    forged["Amount"] = json!(1);
    assert_eq!(env.post_tbank(&forged).await.status, 403);
    // Sber with a forged checksum.
    let forged_sber = function_url_request(
        "GET",
        "/sber",
        "mdOrder=1&operation=deposited&orderNumber=9901&status=1&checksum=ABCDEF0123456789",
        None,
        b"",
        "1.1.1.1",
    );
    assert_eq!(env.call(forged_sber).await.status, 403);
    // YooKassa: the object is re-read through the API with the shop's secret.
    Mock::given(method("GET"))
        .and(path("/v3/payments/yk-9901"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "yk-9901", "status": "succeeded", "amount": {"value": "10.00", "currency": "RUB"},
            "metadata": {"order_id": "9902"}, "payment_method": {"card": {"first6": "555555", "last4": "4444"}}})))
        .mount(&env.yookassa_api)
        .await;
    let yk = json!({"type": "notification", "event": "payment.succeeded",
                    "object": {"id": "yk-9901", "status": "succeeded", "amount": {"value": "10.00", "currency": "RUB"},
                               "metadata": {"order_id": "9902"}}});
    assert_eq!(
        env.post_json("yookassa", &yk, "185.71.76.1").await.status,
        200
    );

    // exchange-1c: Basic auth at checkauth, then a session cookie.
    let one_c = OneC::connect(&env).await;
    one_c.mode("init", "&version=2.10", b"").await;
    let _ = one_c.mode("query", "", b"").await;
    let wrong = one_c
        .call(
            "type=sale&mode=checkauth",
            &[("authorization", "Basic d3Jvbmc6c2VjcmV0LXBhc3N3b3Jk")],
            b"",
        )
        .await;
    assert!(wrong.starts_with("failure"));

    // refund-chargeback: a signed T-Bank Cancel that times out, then succeeds.
    let tbank = MockServer::start().await;
    Mock::given(path("/v2/Cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Success": true, "ErrorCode": "0", "Status": "PARTIAL_REFUNDED", "PaymentId": "990", "NewAmount": 400_000})))
        .mount(&tbank)
        .await;
    let deps = shared::wiring::refund_chargeback(
        shared::platform::config::RefundConfig {
            ledger: env.ledger_config(),
            tbank: Some(shared::platform::config::AcquirerApi {
                login: TBANK_TERMINAL.into(),
                secret: Secret::new(TBANK_PASSWORD),
                api_url: format!("{}/v2", tbank.uri()),
            }),
            sber: None,
            yookassa: None,
            receipts: Default::default(),
        },
        &env.clients,
    )
    .expect("wiring");
    let ask = PaymentFact::new(
        FactId::new(Source::OneC, "ret-9901").expect("id"),
        OrderId::parse("9901").expect("id"),
        PaymentRef::new(Source::Tbank, "990").expect("ref"),
        PaymentMethod::Card,
        Currency::RUB,
        FactKind::RefundRequested {
            amount: 100_000,
            reason: "Брак".into(),
            method: PaymentMethod::Card,
            retries: None,
            to_bank: None,
        },
        1,
    )
    .expect("fact");
    Ledger::new(deps.store.as_ref(), deps.events.as_ref())
        .record(&ask)
        .await
        .expect("ask");
    assert_eq!(
        execute_order(&deps, &OrderId::parse("9901").expect("id"))
            .await
            .expect("refund")
            .succeeded,
        1
    );

    let logs = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        logs.contains("fact applied"),
        "the capture saw the run:\n{logs}"
    );
    assert!(logs.lines().count() > 10);
    let basic = base64::engine::general_purpose::STANDARD.encode("1c:pw");
    for (what, secret) in [
        ("T-Bank password", TBANK_PASSWORD),
        ("T-Bank token", token.as_str()),
        ("card number", "430000******0777"),
        ("card expiry", "\"1130\""),
        ("card id", "322264"),
        ("YooKassa secret key", YOOKASSA_KEY),
        ("YooKassa card digits", "555555"),
        ("Sber callback key", SBER_TOKEN),
        ("Sber API password", "merchant-pass"),
        ("1C Basic credentials", basic.as_str()),
        ("a wrong 1C password", "secret-password"),
        ("a forged checksum", "ABCDEF0123456789"),
    ] {
        assert!(!logs.contains(secret), "{what} leaked into the logs");
    }
}
