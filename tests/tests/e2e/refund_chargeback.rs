//! refund-chargeback end to end: the ledger and queues on moto, each acquirer's refund API as a local fake that
//! counts the refunds it executed.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use paysync_e2e::*;
use serde_json::{json, Value};
use shared::adapters::sqs::SqsEventPublisher;
use shared::app::ledger::Ledger;
use shared::app::refund_chargeback::{execute_order, handle, RefundDeps};
use shared::domain::{
    Currency, FactId, FactKind, OrderId, PayMethod, PaymentFact, PaymentMethod, PaymentRef,
    RefundStatus, Source,
};
use shared::platform::config::{AcquirerApi, Receipts, RefundConfig, Secret};
use shared::wiring::{self, Clients};
use wiremock::matchers::{body_string_contains, header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn pay(source: Source, payment: &str, order: &str, amount: i64) -> PaymentFact {
    PaymentFact::new(
        FactId::new(source, &format!("{payment}#paid")).expect("id"),
        OrderId::parse(order).expect("order"),
        PaymentRef::new(source, payment).expect("ref"),
        PaymentMethod::Card,
        Currency::RUB,
        FactKind::Payment { amount },
        1_795_824_000_000,
    )
    .expect("fact")
}

fn ask(source: Source, payment: &str, order: &str, request: &str, amount: i64) -> PaymentFact {
    PaymentFact::new(
        FactId::new(Source::OneC, request).expect("id"),
        OrderId::parse(order).expect("order"),
        PaymentRef::new(source, payment).expect("ref"),
        PaymentMethod::Card,
        Currency::RUB,
        FactKind::RefundRequested {
            amount,
            reason: "Возврат по документу 1С".into(),
            method: PaymentMethod::Card,
            retries: None,
            to_bank: None,
        },
        1_795_824_100_000,
    )
    .expect("fact")
}

struct Refunds {
    env: TestEnv,
    deps: RefundDeps,
    tbank: MockServer,
}

async fn refunds_env(timeout: Duration) -> Refunds {
    refunds_env_with(timeout, Receipts::default()).await
}

async fn refunds_env_with(timeout: Duration, receipts: Receipts) -> Refunds {
    let env = spawn_env().await;
    let tbank = MockServer::start().await;
    // The shipped wiring, with an HTTP client that gives up after `timeout` (a refund whose answer is lost).
    let clients = Clients {
        http: reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("client"),
        ..env.clients.clone()
    };
    let api = |login: &str, secret: &str, api_url: String| AcquirerApi {
        login: login.into(),
        secret: Secret::new(secret),
        api_url,
    };
    let deps = wiring::refund_chargeback(
        RefundConfig {
            ledger: env.ledger_config(),
            tbank: Some(api(
                TBANK_TERMINAL,
                TBANK_PASSWORD,
                format!("{}/v2", tbank.uri()),
            )),
            sber: Some(api(
                "merchant-api",
                "merchant-pass",
                format!("{}/payment/rest", env.sber_api.uri()),
            )),
            yookassa: Some(api(
                YOOKASSA_SHOP,
                YOOKASSA_KEY,
                format!("{}/v3", env.yookassa_api.uri()),
            )),
            receipts,
        },
        &clients,
    )
    .expect("wiring");
    Refunds { env, deps, tbank }
}

impl Refunds {
    async fn record(&self, fact: &PaymentFact) {
        Ledger::new(self.deps.store.as_ref(), self.deps.events.as_ref())
            .record(fact)
            .await
            .expect("record");
    }

    async fn paid_then_asked(&self, source: Source, payment: &str, order: &str, amount: i64) {
        self.env.register_order(order, 100_000).await;
        self.record(&pay(source, payment, order, 100_000)).await;
        self.record(&ask(
            source,
            payment,
            order,
            &format!("ret-{order}"),
            amount,
        ))
        .await;
    }

    async fn status(&self, order: &str) -> RefundStatus {
        let o = self.env.order(order).await.expect("order");
        o.refund_requests[&format!("1c#ret-{order}")].status
    }

    async fn refunded(&self, order: &str) -> i64 {
        self.env
            .order(order)
            .await
            .expect("order")
            .totals()
            .refunded
    }

    async fn run(&self, order: &str) -> Result<shared::app::refund_chargeback::OrderRun, String> {
        execute_order(&self.deps, &OrderId::parse(order).expect("id"))
            .await
            .map_err(|e| e.to_string())
    }
}

fn tbank_ok(payment: &str, status: &str, new_amount: i64) -> Value {
    json!({"TerminalKey": TBANK_TERMINAL, "Success": true, "ErrorCode": "0", "Status": status,
           "PaymentId": payment, "OrderId": "x", "OriginalAmount": 100_000, "NewAmount": new_amount})
}

/// The T-Bank body must carry a valid Token over its scalars and the idempotency key.
fn tbank_signed(req: &Request) -> bool {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return false;
    };
    let fields: std::collections::BTreeMap<String, String> = body
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "Token")
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    body["ExternalRequestId"]
        .as_str()
        .is_some_and(|k| k.len() == 32)
        && body["Token"].as_str()
            == Some(shared::formats::tbank::token(&fields, TBANK_PASSWORD).as_str())
}

#[tokio::test]
async fn each_acquirer_refunds_through_its_own_api_exactly_once() {
    let r = refunds_env(Duration::from_secs(5)).await;
    // T-Bank: signed Cancel with the amount and an ExternalRequestId.
    Mock::given(method("POST"))
        .and(path("/v2/Cancel"))
        .and(body_string_contains("\"Amount\":40000"))
        .and(|req: &Request| tbank_signed(req))
        .respond_with(ResponseTemplate::new(200).set_body_json(tbank_ok(
            "701",
            "PARTIAL_REFUNDED",
            60_000,
        )))
        .expect(1)
        .mount(&r.tbank)
        .await;
    // YooKassa: Basic auth, Idempotence-Key, the amount as a decimal string.
    Mock::given(method("POST"))
        .and(path("/v3/refunds"))
        .and(header_exists("idempotence-key"))
        .and(header("authorization", "Basic MTIzNDU2OnRlc3Rfc2VjcmV0X2tleQ=="))
        .and(body_string_contains("\"value\":\"400.00\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "rf-702", "payment_id": "yk-702", "status": "succeeded",
            "amount": {"value": "400.00", "currency": "RUB"}, "created_at": "2026-11-28T10:00:00.000Z"})))
        .expect(1)
        .mount(&r.env.yookassa_api)
        .await;
    // Sber: refund.do with the API credentials, orderId = mdOrder and the amount in kopecks.
    Mock::given(method("POST"))
        .and(path("/payment/rest/refund.do"))
        .and(body_string_contains("orderId=md-703"))
        .and(body_string_contains("amount=40000"))
        .and(body_string_contains("userName=merchant-api"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"errorCode": "0", "errorMessage": "Успешно"})),
        )
        .expect(1)
        .mount(&r.env.sber_api)
        .await;
    r.paid_then_asked(Source::Tbank, "701", "o701", 40_000)
        .await;
    r.paid_then_asked(Source::Yookassa, "yk-702", "o702", 40_000)
        .await;
    r.paid_then_asked(Source::Sber, "md-703", "o703", 40_000)
        .await;
    for order in ["o701", "o702", "o703"] {
        let run = r.run(order).await.expect("run");
        assert_eq!(run.succeeded, 1, "{order}");
        assert_eq!(r.status(order).await, RefundStatus::Succeeded, "{order}");
        assert_eq!(r.refunded(order).await, 40_000, "{order}");
        // A second run finds nothing to do (the mocks' expect(1) checks the providers' side on drop).
        assert_eq!(r.run(order).await.expect("run").succeeded, 0);
    }
    // Each acquirer's own notification of the refund is the same fact: nothing is added.
    let tbank_note = PaymentFact::new(
        FactId::new(Source::Tbank, "701#PARTIAL_REFUNDED#60000").expect("id"),
        OrderId::parse("o701").expect("id"),
        PaymentRef::new(Source::Tbank, "701").expect("ref"),
        PaymentMethod::Card,
        Currency::RUB,
        FactKind::Refund {
            amount: shared::domain::RefundAmount::Remaining(60_000),
        },
        1,
    )
    .expect("fact");
    r.record(&tbank_note).await;
    assert_eq!(r.refunded("o701").await, 40_000);
    // Least privilege, against what the code did: every call granted, every grant used.
    let unused =
        paysync_e2e::iam::assert_granted("RefundChargebackFunction", &r.env.aws_calls.take());
    assert!(
        unused.is_empty(),
        "granted to RefundChargebackFunction but never used: {unused:?}"
    );
}

#[tokio::test]
async fn a_503_then_success_refunds_once_with_one_key() {
    let r = refunds_env(Duration::from_secs(5)).await;
    Mock::given(path("/v2/Cancel"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&r.tbank)
        .await;
    Mock::given(path("/v2/Cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(tbank_ok("801", "REFUNDED", 0)))
        .expect(1)
        .with_priority(2)
        .mount(&r.tbank)
        .await;
    r.paid_then_asked(Source::Tbank, "801", "o801", 100_000)
        .await;
    let first = r.run("o801").await;
    assert!(first.is_err(), "a 503 fails the message so SQS retries it");
    assert_eq!(r.status("o801").await, RefundStatus::Sent);
    assert_eq!(r.run("o801").await.expect("retry").succeeded, 1);
    let received = r.tbank.received_requests().await.expect("recorded");
    let bodies: Vec<Value> = received
        .iter()
        .map(|q| serde_json::from_slice(&q.body).unwrap_or_default())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0]["ExternalRequestId"], bodies[1]["ExternalRequestId"],
        "the retry carries the same idempotency key"
    );
    assert_eq!(r.refunded("o801").await, 100_000);
    assert_eq!(
        r.env.order("o801").await.expect("order").state(),
        shared::domain::OrderState::Refunded
    );
}

/// A T-Bank that executes each `ExternalRequestId` once and answers a repeat with the first result, like the real
/// one; its first answer comes too late for our client.
struct IdempotentTbank {
    executed: Arc<AtomicUsize>,
    answers: Mutex<HashMap<String, Value>>,
}

impl Respond for IdempotentTbank {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let key = body["ExternalRequestId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut answers = self.answers.lock().expect("lock");
        if let Some(previous) = answers.get(&key) {
            return ResponseTemplate::new(200).set_body_json(previous.clone());
        }
        self.executed.fetch_add(1, Ordering::SeqCst);
        let answer = tbank_ok("901", "PARTIAL_REFUNDED", 70_000);
        answers.insert(key, answer.clone());
        ResponseTemplate::new(200)
            .set_body_json(answer)
            .set_delay(Duration::from_millis(1500))
    }
}

#[tokio::test]
async fn a_timeout_after_the_acquirer_executed_does_not_refund_twice() {
    let r = refunds_env(Duration::from_millis(400)).await;
    let executed = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v2/Cancel"))
        .respond_with(IdempotentTbank {
            executed: executed.clone(),
            answers: Mutex::default(),
        })
        .mount(&r.tbank)
        .await;
    r.paid_then_asked(Source::Tbank, "901", "o901", 30_000)
        .await;
    assert!(r.run("o901").await.is_err(), "timed out");
    assert_eq!(r.run("o901").await.expect("retry").succeeded, 1);
    assert_eq!(
        executed.load(Ordering::SeqCst),
        1,
        "refunded at T-Bank once"
    );
    assert_eq!(r.refunded("o901").await, 30_000);
}

#[tokio::test]
async fn too_much_is_refused_and_of_two_concurrent_requests_one_is_refused() {
    let r = refunds_env(Duration::from_secs(5)).await;
    Mock::given(path("/v2/Cancel"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&r.tbank)
        .await;
    r.paid_then_asked(Source::Tbank, "a1", "oa1", 100_001).await;
    assert_eq!(r.status("oa1").await, RefundStatus::Refused);
    assert_eq!(r.run("oa1").await.expect("run").succeeded, 0);

    r.env.register_order("oa2", 100_000).await;
    r.record(&pay(Source::Tbank, "a2", "oa2", 100_000)).await;
    let (x, y) = (
        ask(Source::Tbank, "a2", "oa2", "c1", 60_000),
        ask(Source::Tbank, "a2", "oa2", "c2", 60_000),
    );
    tokio::join!(r.record(&x), r.record(&y));
    let order = r.env.order("oa2").await.expect("order");
    let mut statuses: Vec<RefundStatus> =
        order.refund_requests.values().map(|q| q.status).collect();
    statuses.sort();
    assert_eq!(statuses, [RefundStatus::Requested, RefundStatus::Refused]);
    assert_eq!(order.refund_claimed(), 60_000);
}

#[tokio::test]
async fn a_pending_yookassa_refund_is_completed_by_its_notification() {
    let r = refunds_env(Duration::from_secs(5)).await;
    let refund = |status: &str| {
        json!({"id": "rf-p1", "payment_id": "yk-p1", "status": status,
               "amount": {"value": "250.00", "currency": "RUB"}, "created_at": "2026-11-28T10:00:00.000Z"})
    };
    Mock::given(method("POST"))
        .and(path("/v3/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(refund("pending")))
        .expect(1)
        .mount(&r.env.yookassa_api)
        .await;
    // acquiring-callback re-reads the refund named by the notification.
    Mock::given(method("GET"))
        .and(path("/v3/refunds/rf-p1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(refund("succeeded")))
        .mount(&r.env.yookassa_api)
        .await;
    r.paid_then_asked(Source::Yookassa, "yk-p1", "op1", 25_000)
        .await;
    assert_eq!(r.run("op1").await.expect("run").pending, 1);
    assert_eq!(r.status("op1").await, RefundStatus::Pending);
    assert_eq!(r.refunded("op1").await, 0);
    let note =
        json!({"type": "notification", "event": "refund.succeeded", "object": refund("succeeded")});
    let reply = r.env.post_json("yookassa", &note, "185.71.76.1").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(r.status("op1").await, RefundStatus::Succeeded);
    assert_eq!(r.refunded("op1").await, 25_000);
    assert_eq!(r.run("op1").await.expect("run"), Default::default());
}

#[tokio::test]
async fn refund_work_reaches_the_refunds_queue_and_a_poison_message_ends_in_its_dlq() {
    let r = refunds_env(Duration::from_secs(5)).await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let sqs = &r.env.sqs;
    let dlq = sqs
        .create_queue()
        .queue_name(format!("refunds-dlq-{id}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("dlq")
        .queue_url
        .expect("url");
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attrs")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("arn");
    let queue = sqs
        .create_queue()
        .queue_name(format!("refunds-{id}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    // Only changes that leave refund work go to the refunds queue.
    let events = SqsEventPublisher::new(sqs.clone(), &r.env.queue_url)
        .with_refunds_queue(Some(queue.clone()));
    let ledger = Ledger::new(r.deps.store.as_ref(), &events);
    r.env.register_order("oq1", 100_000).await;
    ledger
        .record(&pay(Source::Tbank, "q1", "oq1", 100_000))
        .await
        .expect("pay");
    ledger
        .record(&ask(Source::Tbank, "q1", "oq1", "q-ret", 10_000))
        .await
        .expect("ask");
    let receive = || async {
        sqs.receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    };
    let work = receive().await;
    assert_eq!(work.len(), 1, "the payment alone is no refund work");
    let body: Value = serde_json::from_str(work[0].body().unwrap_or_default()).expect("json");
    assert_eq!(body["order_id"], "oq1");
    sqs.delete_message()
        .queue_url(&queue)
        .receipt_handle(work[0].receipt_handle().unwrap_or_default())
        .send()
        .await
        .expect("delete");

    // A message nobody can read fails every time; after maxReceiveCount receives SQS moves it to the DLQ.
    sqs.send_message()
        .queue_url(&queue)
        .message_body("not an order event")
        .message_group_id("poison")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .expect("send");
    for _ in 0..3 {
        let messages = receive().await;
        if messages.is_empty() {
            continue;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                       "attributes": {"MessageGroupId": "poison"}})
            })
            .collect();
        let event = serde_json::from_value(json!({ "Records": records })).expect("event");
        let response = handle(&r.deps, event).await;
        assert_eq!(response.batch_item_failures.len(), messages.len());
    }
    assert!(receive().await.is_empty());
    let dead = sqs
        .receive_message()
        .queue_url(&dlq)
        .send()
        .await
        .expect("receive dlq")
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("not an order event"));
}

#[tokio::test]
async fn a_return_started_in_1c_reaches_the_card_once_and_1c_sees_it_done() {
    use shared::formats::commerceml::read;
    use shared::formats::commerceml::text::to_windows_1251;
    let r = refunds_env(Duration::from_secs(5)).await;
    Mock::given(path("/v2/Cancel"))
        .and(body_string_contains("\"Amount\":120000"))
        .and(|req: &Request| tbank_signed(req))
        .respond_with(ResponseTemplate::new(200).set_body_json(tbank_ok(
            "5501",
            "PARTIAL_REFUNDED",
            380_000,
        )))
        .expect(1)
        .mount(&r.tbank)
        .await;
    // Paid 5 000.00 by card.
    r.env.register_order("9501", 500_000).await;
    r.record(&pay(Source::Tbank, "5501", "9501", 500_000)).await;
    // The refunds queue of this stack, and 1C talking to exchange-1c that announces on it.
    let refunds_queue = r
        .env
        .sqs
        .create_queue()
        .queue_name(format!("refunds-{}.fifo", uuid::Uuid::new_v4().simple()))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let ledger = shared::platform::config::LedgerConfig {
        refunds_queue_url: Some(refunds_queue.clone()),
        ..r.env.ledger_config()
    };
    let one_c = OneC::connect_with(&r.env, ledger).await;
    one_c.mode("init", "&version=2.10", b"").await;
    let doc = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.10" ДатаФормирования="2026-11-28T12:00:00">
<Документ><Ид>ret-9501</Ид><НомерВерсии>v1</НомерВерсии><Номер>ret-9501</Номер><Дата>2026-11-28</Дата>
<ХозОперация>Эквайринговая операция</ХозОперация><Роль>Продавец</Роль><Валюта>руб</Валюта><Курс>1</Курс>
<Сумма>1200.00</Сумма><Основание>9501</Основание>
<ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>ПризнакВозврата</Наименование><Значение>true</Значение></ЗначениеРеквизита>
<ЗначениеРеквизита><Наименование>Причина к Возврату</Наименование><Значение>Брак: {pad}</Значение></ЗначениеРеквизита></ЗначенияРеквизитов>
</Документ></КоммерческаяИнформация>"#,
        pad = "трещина ".repeat(2)
    );
    assert!(one_c
        .send_file("return.xml", doc.as_bytes())
        .await
        .starts_with("success"));
    // The refund work waits on the refunds queue; the function takes it from there (as Lambda's SQS trigger would).
    let messages = r
        .env
        .sqs
        .receive_message()
        .queue_url(&refunds_queue)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert_eq!(messages.len(), 1);
    let records: Vec<Value> = messages
        .iter()
        .map(|m| json!({"messageId": m.message_id(), "body": m.body(), "attributes": {"MessageGroupId": "9501"}}))
        .collect();
    let response = handle(
        &r.deps,
        serde_json::from_value(json!({ "Records": records })).expect("event"),
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let order = r.env.order("9501").await.expect("order");
    assert_eq!(
        (order.totals().refunded, order.totals().net()),
        (120_000, 380_000)
    );
    assert_eq!(
        order.refund_requests.values().next().map(|q| q.status),
        Some(RefundStatus::Succeeded)
    );
    // 1C's next query: the order with a done return document carrying 1C's reason.
    let x = read(&to_windows_1251(&one_c.mode("query", "", b"").await)).expect("query");
    let returns: Vec<_> = x
        .documents
        .iter()
        .flat_map(|d| d.subordinates.iter())
        .filter(|d| d.is_return())
        .collect();
    assert_eq!(returns.len(), 1, "{:?}", x.documents);
    assert_eq!(returns[0].amount, Some(120_000));
    assert!(returns[0]
        .return_reason()
        .is_some_and(|r| r.starts_with("Брак")));
}

/// T-Bank for SBP payments, as documented: `Cancel` ignores `ExternalRequestId` ("Параметр не работает для
/// операций по СБП", EACQ OpenAPI v1.80), so every `Cancel` refunds again; `GetState` tells the payment's status
/// and current amount. With `asynchronous`, a `Cancel` answers `ASYNC_REFUNDING` (processed at the SBP later);
/// otherwise it is executed at once and its answer comes too late for our client.
struct SbpTbank {
    left: Arc<Mutex<i64>>,
    status: Arc<Mutex<String>>,
    executed: Arc<AtomicUsize>,
    asynchronous: bool,
}

impl Respond for SbpTbank {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let payment = body["PaymentId"].as_str().unwrap_or_default().to_owned();
        let mut left = self.left.lock().expect("lock");
        let mut status = self.status.lock().expect("lock");
        if req.url.path().ends_with("/GetState") {
            return ResponseTemplate::new(200).set_body_json(json!({
                "TerminalKey": TBANK_TERMINAL, "Success": true, "ErrorCode": "0", "Status": *status,
                "PaymentId": payment, "OrderId": "x", "Amount": *left,
                "Params": [{"Key": "Route", "Value": "ACQ"}, {"Key": "Source", "Value": "qrsbp"}]
            }));
        }
        let amount = body["Amount"].as_i64().unwrap_or(*left);
        if amount > *left || *status == "ASYNC_REFUNDING" {
            return ResponseTemplate::new(200).set_body_json(json!({
                "TerminalKey": TBANK_TERMINAL, "Success": false, "ErrorCode": "9999",
                "Message": "Неверная сумма", "PaymentId": payment
            }));
        }
        self.executed.fetch_add(1, Ordering::SeqCst);
        *left -= amount;
        if self.asynchronous {
            *status = "ASYNC_REFUNDING".into();
            return ResponseTemplate::new(200).set_body_json(json!({
                "TerminalKey": TBANK_TERMINAL, "Success": true, "ErrorCode": "0", "Status": "ASYNC_REFUNDING",
                "PaymentId": payment, "OrderId": "x", "OriginalAmount": 100_000
            }));
        }
        *status = if *left == 0 {
            "REFUNDED"
        } else {
            "PARTIAL_REFUNDED"
        }
        .into();
        ResponseTemplate::new(200)
            .set_body_json(tbank_ok(&payment, &status, *left))
            .set_delay(Duration::from_millis(1500))
    }
}

impl SbpTbank {
    async fn mount(r: &Refunds, asynchronous: bool) -> SbpTbank {
        let fake = SbpTbank {
            left: Arc::new(Mutex::new(100_000)),
            status: Arc::new(Mutex::new("CONFIRMED".into())),
            executed: Arc::new(AtomicUsize::new(0)),
            asynchronous,
        };
        Mock::given(method("POST"))
            .respond_with(SbpTbank {
                left: fake.left.clone(),
                status: fake.status.clone(),
                executed: fake.executed.clone(),
                asynchronous,
            })
            .mount(&r.tbank)
            .await;
        fake
    }
}

/// T-Bank's notification about an SBP payment: the payer's masked phone in `Pan`, no card
/// (`tests/fixtures/acquiring/tbank__sbp-notification-confirmed.json`).
fn sbp_note(order: &str, payment: &str, status: &str, amount: i64) -> Value {
    shared::testing::tbank_sign(
        &json!({
            "TerminalKey": TBANK_TERMINAL, "OrderId": order, "Success": true, "Status": status,
            "PaymentId": payment, "ErrorCode": "0", "Amount": amount, "Pan": "+7 (916) ***-**-21"
        }),
        TBANK_PASSWORD,
    )
}

/// An SBP payment, as T-Bank's notification showed it.
async fn sbp_paid_then_asked(r: &Refunds, payment: &str, order: &str, amount: i64) {
    r.env.register_order(order, 100_000).await;
    r.record(&pay(Source::Tbank, payment, order, 100_000).paid_with(Some(PayMethod::Sbp)))
        .await;
    r.record(&ask(
        Source::Tbank,
        payment,
        order,
        &format!("ret-{order}"),
        amount,
    ))
    .await;
}

#[tokio::test]
async fn an_sbp_refund_that_timed_out_after_t_bank_made_it_is_not_made_again() {
    let r = refunds_env(Duration::from_millis(400)).await;
    let tbank = SbpTbank::mount(&r, false).await;
    sbp_paid_then_asked(&r, "902", "o902", 30_000).await;
    assert!(r.run("o902").await.is_err(), "timed out");
    assert_eq!(r.run("o902").await.expect("retry").succeeded, 1);
    assert_eq!(
        tbank.executed.load(Ordering::SeqCst),
        1,
        "refunded at T-Bank once, though it ignores ExternalRequestId for SBP"
    );
    assert_eq!(*tbank.left.lock().expect("lock"), 70_000);
    assert_eq!(r.refunded("o902").await, 30_000);
    assert_eq!(r.status("o902").await, RefundStatus::Succeeded);
    // The notification of that refund, when it comes, adds nothing.
    let note = sbp_note("o902", "902", "PARTIAL_REFUNDED", 70_000);
    assert_eq!(r.env.post_tbank(&note).await.status, 200);
    assert_eq!(r.refunded("o902").await, 30_000);
}

#[tokio::test]
async fn an_asynchronous_sbp_refund_stays_pending_until_t_bank_says_it_is_done() {
    let r = refunds_env(Duration::from_secs(5)).await;
    let tbank = SbpTbank::mount(&r, true).await;
    sbp_paid_then_asked(&r, "903", "o903", 30_000).await;
    let run = r.run("o903").await.expect("run");
    assert_eq!((run.succeeded, run.pending), (0, 1));
    assert_eq!(r.status("o903").await, RefundStatus::Pending);
    assert_eq!(
        r.refunded("o903").await,
        0,
        "not counted while the SBP processes it"
    );
    // Run again (a redelivered message): nothing is sent again.
    r.run("o903").await.expect("again");
    assert_eq!(tbank.executed.load(Ordering::SeqCst), 1);
    // The SBP finishes; T-Bank notifies.
    *tbank.status.lock().expect("lock") = "PARTIAL_REFUNDED".into();
    let note = sbp_note("o903", "903", "PARTIAL_REFUNDED", 70_000);
    assert_eq!(r.env.post_tbank(&note).await.status, 200);
    assert_eq!(r.status("o903").await, RefundStatus::Succeeded);
    assert_eq!(r.refunded("o903").await, 30_000);
    assert_eq!(tbank.executed.load(Ordering::SeqCst), 1);
}

/// YooKassa's refunds for a shop on "Чеки от ЮKassa": a partial refund without a `receipt` is refused (`400
/// invalid_request`, `parameter: receipt`); a receipt must have the documented shape
/// (`tests/fixtures/acquiring/yookassa__refund-with-receipt.json`), a customer contact, and items whose unit price ×
/// quantity add up to the refund.
struct ReceiptsYooKassa {
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl ReceiptsYooKassa {
    fn problem(body: &Value) -> Option<String> {
        let documented: Value = serde_json::from_str(include_str!(
            "../../fixtures/acquiring/yookassa__refund-with-receipt.json"
        ))
        .expect("fixture");
        let receipt = body.get("receipt")?;
        if receipt.is_null() {
            return None;
        }
        let Some(items) = receipt["items"].as_array().filter(|i| !i.is_empty()) else {
            return Some("items".into());
        };
        let model = documented["receipt"]["items"][0].as_object().expect("item");
        let mut sum = 0;
        for item in items {
            if model.keys().any(|k| item.get(k).is_none()) {
                return Some(format!("item lacks a documented field: {item}"));
            }
            let unit =
                shared::domain::money::parse_minor(item["amount"]["value"].as_str()?).ok()?;
            let quantity: i64 = item["quantity"].as_str()?.parse().ok()?;
            let code = item["vat_code"]
                .as_i64()
                .or_else(|| item["vat_code"].as_str()?.parse().ok())?;
            if !(1..=12).contains(&code) {
                return Some("vat_code".into());
            }
            sum += unit * quantity;
        }
        let customer = &receipt["customer"];
        if customer.get("email").is_none() && customer.get("phone").is_none() {
            return Some("customer".into());
        }
        let amount = shared::domain::money::parse_minor(body["amount"]["value"].as_str()?).ok()?;
        (sum != amount).then(|| format!("items add up to {sum}, the refund is {amount}"))
    }
}

impl Respond for ReceiptsYooKassa {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        self.bodies.lock().expect("lock").push(body.clone());
        let refused = |description: String| {
            ResponseTemplate::new(400).set_body_json(json!({
                "type": "error", "id": "e-1", "code": "invalid_request", "parameter": "receipt",
                "description": description
            }))
        };
        // Every payment of the test is 900,00; the whole of it back needs no receipt.
        let full = body["amount"]["value"] == "900.00";
        if body.get("receipt").is_none() && !full {
            return refused("Receipt is missing or illegal".into());
        }
        if let Some(problem) = Self::problem(&body) {
            return refused(problem);
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "id": format!("rf-{}", body["payment_id"].as_str().unwrap_or("")), "payment_id": body["payment_id"],
            "status": "succeeded", "amount": body["amount"], "created_at": "2026-11-28T10:00:00.000Z"
        }))
    }
}

/// An order the store described with its basket (2 packs of paper at 250,50 and a cable at 99,00, VAT 22%,
/// courier delivery 300,00) and the buyer's e-mail, paid 900,00 at YooKassa, and a refund of `amount` asked.
async fn basket_paid_then_asked(r: &Refunds, order: &str, payment: &str, amount: i64) {
    use shared::domain::order::{Buyer, OrderDetails, OrderLine};
    let line = |name: &str, price: i64, quantity: &str, amount: i64| OrderLine {
        id: None,
        name: name.into(),
        price,
        quantity: quantity.into(),
        amount,
        vat_rate: Some("0.22".into()),
        vat_included: Some(true),
    };
    let mut info = shared::domain::OrderInfo::new(Some(order.into()), 90_000, Currency::RUB);
    info.details = OrderDetails {
        lines: vec![
            line("Бумага A4", 25_050, "2", 50_100),
            line("Кабель", 9_900, "1", 9_900),
        ],
        delivery: Some(("Курьер".into(), 30_000)),
        buyer: Some(Buyer {
            email: Some("buyer@example.ru".into()),
            ..Buyer::default()
        }),
        ..OrderDetails::default()
    };
    Ledger::new(r.deps.store.as_ref(), r.deps.events.as_ref())
        .register_order(&OrderId::parse(order).expect("id"), info)
        .await
        .expect("register");
    let mut paid = pay(Source::Yookassa, payment, order, 90_000);
    paid.kind = FactKind::Payment { amount: 90_000 };
    r.record(&paid).await;
    r.record(&ask(
        Source::Yookassa,
        payment,
        order,
        &format!("ret-{order}"),
        amount,
    ))
    .await;
}

#[tokio::test]
async fn a_partial_refund_at_a_receipts_shop_carries_its_receipt_and_one_without_a_valid_receipt_is_refused_before_any_call(
) {
    let receipts = Receipts {
        by: vec![Source::Yookassa],
        taxation: None,
    };
    let r = refunds_env_with(Duration::from_secs(5), receipts).await;
    let yookassa = ReceiptsYooKassa {
        bodies: Arc::default(),
    };
    let bodies = yookassa.bodies.clone();
    Mock::given(method("POST"))
        .and(path("/v3/refunds"))
        .respond_with(yookassa)
        .mount(&r.env.yookassa_api)
        .await;
    // The cable comes back: 99,00 with its receipt.
    basket_paid_then_asked(&r, "o711", "yk-711", 9_900).await;
    let run = r.run("o711").await.expect("run");
    assert_eq!(run.succeeded, 1, "{:?}", bodies.lock().expect("lock"));
    assert_eq!(r.refunded("o711").await, 9_900);
    {
        let sent = bodies.lock().expect("lock");
        assert_eq!(sent.len(), 1);
        let items = sent[0]["receipt"]["items"]
            .as_array()
            .expect("items")
            .clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["description"], "Кабель");
        assert_eq!(items[0]["amount"]["value"], "99.00");
        assert_eq!(items[0]["vat_code"], 11, "22%");
        assert_eq!(sent[0]["receipt"]["customer"]["email"], "buyer@example.ru");
    }
    let order = r.env.order("o711").await.expect("order");
    assert!(order.refund_requests["1c#ret-o711"].receipt_sent);
    let events = r.env.drain_queue().await;
    let last = events
        .iter()
        .rev()
        .find(|e| e.order_id == "o711")
        .expect("event");
    assert!(last.refunds[0].receipt_sent && !last.refunds[0].receipt_owed);

    // 100,00 is no set of the order's goods: refused here, YooKassa never asked, the reason shown to 1C.
    basket_paid_then_asked(&r, "o712", "yk-712", 10_000).await;
    let run = r.run("o712").await.expect("run");
    assert_eq!((run.succeeded, run.failed), (0, 1));
    assert_eq!(bodies.lock().expect("lock").len(), 1, "no call for o712");
    let order = r.env.order("o712").await.expect("order");
    let request = &order.refund_requests["1c#ret-o712"];
    assert_eq!(request.status, RefundStatus::Failed);
    let detail = request.detail.clone().unwrap_or_default();
    assert!(detail.contains("не складывается"), "{detail}");
    let c = OneC::connect(&r.env).await;
    let xml = c.mode("query", "", b"").await;
    assert!(xml.contains("чек возврата не сформирован"), "{xml}");

    // The whole payment back: no receipt needed (YooKassa reverses the payment's own).
    basket_paid_then_asked(&r, "o713", "yk-713", 90_000).await;
    assert_eq!(r.run("o713").await.expect("run").succeeded, 1);
    let sent = bodies.lock().expect("lock");
    assert!(sent.last().expect("o713").get("receipt").is_none());
}

/// An SBP refund retried to another bank of the buyer (the SBP refused the one that paid): `Cancel` names it as
/// `QrMemberId`, inside the signed fields.
#[tokio::test]
async fn an_sbp_refund_to_another_bank_names_it_in_the_signed_cancel() {
    let r = refunds_env(Duration::from_millis(400)).await;
    let tbank = SbpTbank::mount(&r, false).await;
    r.env.register_order("o904", 100_000).await;
    r.record(&pay(Source::Tbank, "904", "o904", 100_000).paid_with(Some(PayMethod::Sbp)))
        .await;
    let mut again = ask(Source::Tbank, "904", "o904", "ret-o904", 30_000);
    if let FactKind::RefundRequested { to_bank, .. } = &mut again.kind {
        *to_bank = Some("100000000004".into());
    }
    r.record(&again).await;
    // The answer comes late (the fake executes at once): the retry's GetState finds it made.
    assert!(r.run("o904").await.is_err());
    assert_eq!(r.run("o904").await.expect("retry").succeeded, 1);
    assert_eq!(tbank.executed.load(Ordering::SeqCst), 1);
    let cancels: Vec<Request> = r
        .tbank
        .received_requests()
        .await
        .expect("requests")
        .into_iter()
        .filter(|q| q.url.path().ends_with("/Cancel"))
        .collect();
    assert_eq!(cancels.len(), 1);
    let body: Value = serde_json::from_slice(&cancels[0].body).expect("json");
    assert_eq!(body["QrMemberId"], "100000000004");
    let fields: std::collections::BTreeMap<String, String> = body
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| *k != "Token" && !v.is_object() && !v.is_array())
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        body["Token"].as_str(),
        Some(shared::formats::tbank::token(&fields, TBANK_PASSWORD).as_str())
    );
}
