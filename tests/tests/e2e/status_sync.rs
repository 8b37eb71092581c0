//! status-sync end to end: the ledger on moto, T-Bank's `GetState` and Sber's `getOrderStatusExtended.do` as local
//! fakes that behave as their documentation says (the Token checked; a form with the API user), the notifications
//! lost or late, and the template's grants checked against the calls status-sync made.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use paysync_e2e::faults::{TbankPayment, TbankStates};
use paysync_e2e::*;
use serde_json::json;
use shared::app::status_sync::handle;
use shared::domain::{OrderState, Source};
use shared::ports::Watchlist;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A fake T-Bank whose payment `payment` of `order` is paid for `amount`.
async fn tbank_paid(payments: &[(&str, &str, i64)]) -> MockServer {
    let server = MockServer::start().await;
    let states: HashMap<String, TbankPayment> = payments
        .iter()
        .map(|(order, payment, amount)| {
            (
                (*payment).to_owned(),
                TbankPayment {
                    order: (*order).to_owned(),
                    payment: (*payment).to_owned(),
                    amount: *amount,
                },
            )
        })
        .collect();
    Mock::given(path("/v2/GetState"))
        .respond_with(TbankStates(states))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_payment_whose_notification_never_comes_is_paid_by_status_sync_within_one_run() {
    let env = spawn_env().await;
    env.register_started_at_tbank("9301", 150_000, &[("8801".into(), 150_000)])
        .await;
    env.drain_queue().await;
    // The buyer has not paid yet: T-Bank does not know the payment as paid (its GetState says so: `Success`
    // false for a payment it has not registered).
    let unpaid = tbank_paid(&[]).await;
    let deps = env.status_sync_deps(format!("{}/v2", unpaid.uri()));
    let first = handle(&deps).await.expect("run");
    assert_eq!(first.providers["tbank"].checked, 1);
    assert_eq!(
        env.order("9301").await.expect("order").state(),
        OrderState::Unpaid
    );
    let asked_again = env.store.due(i64::MAX, 10).await.expect("due");
    assert!(
        asked_again[0].due_ms > first_due_floor(),
        "asked again a minute later"
    );

    // Paid at T-Bank; the notification is lost. The question is due (a minute later): one run records it.
    let paid = tbank_paid(&[("IM-9301", "8801", 150_000)]).await;
    let deps = env.status_sync_deps(format!("{}/v2", paid.uri()));
    env.store
        .reschedule(&asked_again[0].key(), 0, 1)
        .await
        .expect("due now");
    let started = Instant::now();
    let run = handle(&deps).await.expect("run");
    let took = started.elapsed();
    assert_eq!(
        (
            run.providers["tbank"].checked,
            run.providers["tbank"].recorded
        ),
        (1, 1)
    );
    let order = env.order("9301").await.expect("order");
    assert_eq!(
        (order.state(), order.totals().paid),
        (OrderState::Paid, 150_000)
    );
    println!(
        "payment → paid with the notification lost: one run of {took:?} after the question was due"
    );
    assert!(
        took < Duration::from_secs(10),
        "one status call and one commit: {took:?}"
    );
    let announced = env.drain_queue().await;
    assert_eq!(
        announced
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["tbank#8801#CONFIRMED"]
    );
    assert!(env.store.due(i64::MAX, 10).await.expect("due").is_empty());

    // The notification arrives after all: acknowledged, a duplicate, nothing announced again.
    let late = env
        .post_tbank(&tbank_note("IM-9301", "8801", "CONFIRMED", 150_000))
        .await;
    assert_eq!((late.status, late.body.as_str()), (200, "OK"));
    assert_eq!(env.facts("9301").await.len(), 1);
    assert!(env.drain_queue().await.is_empty());

    // Least privilege, against what the code did: every call granted, every grant used (the callback's calls
    // are a subset of status-sync's here).
    let unused = paysync_e2e::iam::assert_granted("StatusSyncFunction", &env.aws_calls.take());
    assert!(
        unused.is_empty(),
        "granted to StatusSyncFunction but never used: {unused:?}"
    );
}

/// The earliest a rescheduled question can be due: now plus most of a minute.
fn first_due_floor() -> i64 {
    shared::platform::clock::now_ms() + 30_000
}

#[tokio::test]
async fn a_sber_callback_without_its_amount_is_acknowledged_and_status_sync_records_it() {
    let env = spawn_env().await;
    env.register_order("9302", 250_000).await;
    env.drain_queue().await;
    // Sber's callback carries no amount, and its gateway is down at that moment.
    Mock::given(method("POST"))
        .and(path("/payment/rest/getOrderStatusExtended.do"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&env.sber_api)
        .await;
    Mock::given(method("POST"))
        .and(path("/payment/rest/getOrderStatusExtended.do"))
        .and(body_string_contains("userName=merchant-api"))
        .and(body_string_contains("orderId=md-9302"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "errorCode": "0", "errorMessage": "Успешно", "orderNumber": "9302", "orderStatus": 2,
            "amount": 250_000, "currency": "643",
            "paymentAmountInfo": {"paymentState": "DEPOSITED", "approvedAmount": 250_000,
                                  "depositedAmount": 250_000, "refundedAmount": 0}
        })))
        .with_priority(2)
        .mount(&env.sber_api)
        .await;
    let params = "mdOrder=md-9302&orderNumber=9302&operation=deposited&status=1";
    let signed = shared::testing::sber_sign(params, SBER_TOKEN);
    let reply = env
        .call(shared::testing::function_url_request(
            "GET",
            "/lambda-url/acquiring-callback/sber",
            &signed,
            None,
            b"",
            "1.1.1.1",
        ))
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "acknowledged: the look-up is owed"
    );
    assert!(env.facts("9302").await.is_empty(), "no amount guessed");

    let mut deps = env.status_sync_deps("http://127.0.0.1:9/v2".into());
    deps.config.tbank = None;
    deps.config.sber = Some(shared::platform::config::AcquirerStatus {
        api: shared::platform::config::AcquirerApi {
            login: "merchant-api".into(),
            secret: shared::platform::config::Secret::new("merchant-pass"),
            api_url: format!("{}/payment/rest", env.sber_api.uri()),
        },
        reference: shared::domain::reference::parse_rules_or_default("order_number,order"),
        order_keys: Vec::new(),
    });
    deps.sber = env.deps.sber_gateway.clone();
    let run = handle(&deps).await.expect("run");
    assert_eq!(run.providers["sber"].recorded, 1, "{run:?}");
    let order = env.order("9302").await.expect("order");
    assert_eq!(
        (order.state(), order.totals().paid),
        (OrderState::Paid, 250_000)
    );
    assert!(order.lines.keys().all(|p| p.source() == Some(Source::Sber)));
}
