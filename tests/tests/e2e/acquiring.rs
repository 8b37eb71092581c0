//! acquiring-callback end to end: real handler, real SDK clients, moto, fake provider APIs.

use paysync_e2e::*;
use serde_json::json;
use shared::domain::{FactKind, OrderState, RefundAmount};
use shared::platform::config::YooKassaVerify;
use shared::testing::function_url_request;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_deliveries_record_one_fact_and_one_message() {
    let env = std::sync::Arc::new(spawn_env().await);
    env.register_order("7001", 985_500).await;
    let note = tbank_note("7001", "8742591", "CONFIRMED", 985_500);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (env, note) = (env.clone(), note.clone());
        tasks.push(tokio::spawn(async move { env.post_tbank(&note).await }));
    }
    for t in tasks {
        let reply = t.await.expect("task");
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    }
    let facts = env.facts("7001").await;
    assert_eq!(facts.len(), 1);
    let order = env.order("7001").await.expect("order");
    assert_eq!(order.totals().paid, 985_500, "counted once");
    assert_eq!(order.state(), OrderState::Paid);
    assert_eq!(order.version, 2, "registered, then one fact");
    let events = env.drain_queue().await;
    let caused: Vec<_> = events.iter().filter(|e| e.cause.is_some()).collect();
    assert_eq!(caused.len(), 1, "one announcement for the fact: {events:?}");
    assert_eq!(caused[0].state, OrderState::Paid);
    assert!(env.outbox().await.is_empty());
}

#[tokio::test]
async fn partial_payments_run_from_thirty_percent_to_paid() {
    let env = spawn_env().await;
    env.register_order("7002", 500_000).await;
    assert_eq!(
        env.post_tbank(&tbank_note("7002", "1", "CONFIRMED", 150_000))
            .await
            .status,
        200
    );
    let order = env.order("7002").await.expect("order");
    assert_eq!(order.state(), OrderState::PartiallyPaid);
    assert_eq!(
        (order.totals().paid, order.paid_percent()),
        (150_000, Some(30))
    );
    assert_eq!(
        env.post_tbank(&tbank_note("7002", "2", "CONFIRMED", 350_000))
            .await
            .status,
        200
    );
    let order = env.order("7002").await.expect("order");
    assert_eq!(order.state(), OrderState::Paid);
    assert_eq!(order.totals().paid, 500_000);
    let states: Vec<_> = env
        .drain_queue()
        .await
        .into_iter()
        .map(|e| (e.state, e.paid, e.paid_percent))
        .collect();
    assert_eq!(
        states,
        vec![
            (OrderState::Unpaid, 0, Some(0)),
            (OrderState::PartiallyPaid, 150_000, Some(30)),
            (OrderState::Paid, 500_000, Some(100)),
        ]
    );
}

#[tokio::test]
async fn queue_down_after_commit_gives_5xx_and_the_redelivery_announces_once() {
    let switch = Switch::start(&moto_endpoint()).await;
    let env = spawn_env_with(Endpoints::sqs(&switch.url), YooKassaVerify::Api).await;
    env.register_order("7003", 10_000).await;
    env.drain_queue().await;
    let note = tbank_note("7003", "31", "CONFIRMED", 10_000);
    switch.set_up(false);
    let reply = env.post_tbank(&note).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(env.facts("7003").await.len(), 1, "committed");
    assert_eq!(env.outbox().await.len(), 1, "owed to the queue");
    assert!(env.drain_queue().await.is_empty());
    switch.set_up(true);
    let reply = env.post_tbank(&note).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    assert_eq!(env.facts("7003").await.len(), 1, "no second fact");
    let events = env.drain_queue().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, "tbank#31#CONFIRMED");
    assert!(env.outbox().await.is_empty());
}

#[tokio::test]
async fn aws_down_gives_5xx_with_no_partial_state_and_the_retry_succeeds() {
    let switch = Switch::start(&moto_endpoint()).await;
    let env = spawn_env_with(Endpoints::all(&switch.url), YooKassaVerify::Api).await;
    env.register_order("7004", 10_000).await;
    let before = env.order("7004").await;
    let note = tbank_note("7004", "41", "CONFIRMED", 10_000);
    switch.set_up(false);
    let reply = env.post_tbank(&note).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(!reply.body.contains(TBANK_PASSWORD));
    assert!(env.facts("7004").await.is_empty());
    assert_eq!(env.order("7004").await, before);
    assert!(env.outbox().await.iter().all(|e| e.cause.is_none()));
    switch.set_up(true);
    assert_eq!(env.post_tbank(&note).await.status, 200);
    assert_eq!(env.facts("7004").await.len(), 1);
    assert_eq!(
        env.order("7004").await.expect("order").state(),
        OrderState::Paid
    );
}

#[tokio::test]
async fn sweeper_announces_a_change_nobody_redelivered() {
    let switch = Switch::start(&moto_endpoint()).await;
    let env = spawn_env_with(Endpoints::sqs(&switch.url), YooKassaVerify::Api).await;
    env.register_order("7005", 100).await;
    env.drain_queue().await;
    switch.set_up(false);
    assert_eq!(
        env.post_tbank(&tbank_note("7005", "51", "CONFIRMED", 100))
            .await
            .status,
        503
    );
    switch.set_up(true);
    // Least privilege, against what the code did: every call granted.
    let unused =
        paysync_e2e::iam::assert_granted("AcquiringCallbackFunction", &env.aws_calls.take());
    let _ = unused;
    let deps = env.sweeper_deps();
    let report = shared::app::outbox_sweeper::handle(&deps, 0)
        .await
        .expect("sweep");
    assert_eq!((report.outbox.found, report.outbox.announced), (1, 1));
    let events = env.drain_queue().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].order_id, "7005");
    assert_eq!(events[0].paid, 100);
    assert_eq!(
        shared::app::outbox_sweeper::handle(&deps, 0)
            .await
            .expect("sweep")
            .outbox
            .found,
        0
    );
    // Least privilege, against what the code did: every call granted.
    let unused = paysync_e2e::iam::assert_granted("OutboxSweeperFunction", &env.aws_calls.take());
    let _ = unused;
}

fn yk_payment(id: &str, status: &str, value: &str, order: &str) -> serde_json::Value {
    json!({
        "id": id, "status": status, "paid": status != "pending",
        "amount": {"value": value, "currency": "RUB"},
        "created_at": "2026-11-27T10:00:00.000Z", "captured_at": "2026-11-27T10:00:05.000Z",
        "metadata": {"order_id": order}, "test": true
    })
}

#[tokio::test]
async fn yookassa_refetch_wins_over_the_body_and_refunds_find_their_order() {
    let env = spawn_env().await;
    env.register_order("7006", 250_000).await;
    let basic = "Basic MTIzNDU2OnRlc3Rfc2VjcmV0X2tleQ=="; // 123456:test_secret_key
    Mock::given(method("GET"))
        .and(path("/v3/payments/2f0e-pay"))
        .and(header("authorization", basic))
        .respond_with(ResponseTemplate::new(200).set_body_json(yk_payment(
            "2f0e-pay",
            "succeeded",
            "2500.00",
            "7006",
        )))
        .expect(1)
        .mount(&env.yookassa_api)
        .await;
    // The body claims 1.00 RUB and another order: only the fetched object counts.
    let forged = json!({"type":"notification","event":"payment.succeeded",
        "object": yk_payment("2f0e-pay", "succeeded", "1.00", "9999")});
    let reply = env.post_json("yookassa", &forged, "185.71.76.1").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let facts = env.facts("7006").await;
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].kind, FactKind::Payment { amount: 250_000 });
    assert!(env.facts("9999").await.is_empty());

    Mock::given(method("GET"))
        .and(path("/v3/refunds/rf-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "rf-1", "payment_id": "2f0e-pay", "status": "succeeded",
            "amount": {"value": "1000.00", "currency": "RUB"}, "created_at": "2026-11-27T11:00:00.000Z"
        })))
        .mount(&env.yookassa_api)
        .await;
    let refund_note = json!({"type":"notification","event":"refund.succeeded",
        "object": {"id":"rf-1","payment_id":"2f0e-pay","status":"succeeded","amount":{"value":"1000.00","currency":"RUB"}}});
    assert_eq!(
        env.post_json("yookassa", &refund_note, "185.71.76.1")
            .await
            .status,
        200
    );
    let order = env.order("7006").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.totals().refunded),
        (250_000, 100_000)
    );
    assert_eq!(order.state(), OrderState::PartiallyPaid);
    let refund = env
        .facts("7006")
        .await
        .into_iter()
        .find(|f| f.id.as_str() == "yookassa#refund#rf-1");
    assert_eq!(
        refund.map(|f| f.kind),
        Some(FactKind::Refund {
            amount: RefundAmount::Delta(100_000)
        })
    );
    // Least privilege, against what the code did: every call granted, every grant used.
    let unused =
        paysync_e2e::iam::assert_granted("AcquiringCallbackFunction", &env.aws_calls.take());
    assert!(
        unused.is_empty(),
        "granted to AcquiringCallbackFunction but never used: {unused:?}"
    );
}

#[tokio::test]
async fn yookassa_api_down_is_retryable_and_unknown_objects_are_refused() {
    let env = spawn_env().await;
    Mock::given(method("GET"))
        .and(path("/v3/payments/down-1"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&env.yookassa_api)
        .await;
    let note = |id: &str| json!({"type":"notification","event":"payment.succeeded","object": yk_payment(id, "succeeded", "5.00", "7007")});
    assert_eq!(
        env.post_json("yookassa", &note("down-1"), "185.71.76.1")
            .await
            .status,
        503
    );
    // wiremock answers 404 for anything not mounted: YooKassa does not know the object.
    assert_eq!(
        env.post_json("yookassa", &note("forged-2"), "185.71.76.1")
            .await
            .status,
        403
    );
    assert!(env.facts("7007").await.is_empty());
}

#[tokio::test]
async fn sber_asks_the_gateway_when_the_callback_has_no_amount() {
    let env = spawn_env().await;
    env.register_order("7008", 35_000_099).await;
    Mock::given(method("POST"))
        .and(path("/payment/rest/getOrderStatusExtended.do"))
        .and(body_string_contains("orderId=12b59da8-f68f-7c8d-12b5-9da8000826ea"))
        .and(body_string_contains("userName=merchant-api"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "errorCode": "0", "orderNumber": "7008", "orderStatus": 2, "amount": 35000099, "currency": "643",
            "paymentAmountInfo": {"paymentState": "DEPOSITED", "approvedAmount": 35000099,
                                  "depositedAmount": 35000099, "refundedAmount": 0}
        })))
        .expect(1)
        .mount(&env.sber_api)
        .await;
    let params = "mdOrder=12b59da8-f68f-7c8d-12b5-9da8000826ea&operation=deposited&orderNumber=7008&status=1";
    let req = function_url_request(
        "GET",
        "/sber",
        &shared::testing::sber_sign(params, SBER_TOKEN),
        None,
        b"",
        "194.54.14.1",
    );
    let reply = env.call(req).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let order = env.order("7008").await.expect("order");
    assert_eq!(order.state(), OrderState::Paid);
    // Forged checksum: refused, nothing written.
    let forged = function_url_request(
        "GET",
        "/sber",
        &format!("{params}&checksum={}", "0".repeat(64)),
        None,
        b"",
        "1.1.1.1",
    );
    assert_eq!(env.call(forged).await.status, 403);
    assert_eq!(env.facts("7008").await.len(), 1);
}

#[tokio::test]
async fn moto_stopped_gives_5xx_and_after_restart_the_retry_succeeds() {
    let mut moto = OwnMoto::start(None).await;
    let env = spawn_env_with(Endpoints::all(&moto.url()), YooKassaVerify::Api).await;
    let queue_name = env
        .queue_url
        .rsplit('/')
        .next()
        .expect("queue name")
        .to_owned();
    create_resources(&moto.url(), &env.table, &queue_name).await;
    env.register_order_via_handler("7010", 1_200).await;
    assert_eq!(
        env.post_tbank(&tbank_note("7010", "61", "CONFIRMED", 500))
            .await
            .status,
        200
    );

    moto.stop();
    let note = tbank_note("7010", "62", "CONFIRMED", 700);
    let reply = env.post_tbank(&note).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.body.contains("retry later"));

    // moto keeps state in memory only: the restarted one is empty, so the resources are created again.
    let moto = OwnMoto::start(Some(moto.port)).await;
    create_resources(&moto.url(), &env.table, &queue_name).await;
    env.register_order_via_handler("7010", 1_200).await;
    let reply = env.post_tbank(&note).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let store = store_at(&moto.url(), &env.table).await;
    let facts = store
        .facts(&shared::domain::OrderId::parse("7010").expect("id"))
        .await
        .expect("facts");
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].kind, FactKind::Payment { amount: 700 });
}
