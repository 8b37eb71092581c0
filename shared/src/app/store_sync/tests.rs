//! store-sync's use case with fakes of its ports: the ledger in memory and a 1C-Bitrix store that keeps its
//! payments, property values, status and comments, records every REST call, and answers through the real
//! `formats::bitrix::answer` parser.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::*;
use crate::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
use crate::app::ledger::Ledger;
use crate::domain::{
    Currency, FactId, FactKind, OrderInfo, OrderState, PaymentFact, PaymentMethod, PaymentRef,
    RefundAmount, Source,
};
use crate::platform::config::{Hook as HookConfig, Secret};
use crate::ports::store_api::Hook;

/// 2026-11-28T10:00:00+03:00.
const PAID_AT_MS: i64 = 1_795_849_200_000;
/// The REST methods that change the store.
const WRITES: &[&str] = &[
    "sale.payment.add",
    "sale.payment.update",
    "sale.propertyvalue.modify",
    "sale.order.update",
];

fn as_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// The store's side: what `sale.*` calls read and change.
#[derive(Default)]
struct Shop {
    /// What `sale.order.list` answers.
    orders: Vec<Value>,
    /// `sale.order.get`'s `result` by order id (answered inside `batch`).
    details: BTreeMap<String, Value>,
    /// Orders whose `sale.order.get` fails inside `batch` (in `result_error`, as Bitrix reports a failed command).
    refused_details: Vec<String>,
    payments: Vec<Value>,
    /// `(code, orderPropsId, value)` of the order's property values.
    properties: Vec<(String, String, Value)>,
    /// The order properties the store defines: `(code, id)`.
    definitions: Vec<(String, String)>,
    status: Option<String>,
    comments: Vec<String>,
    /// Every call: method and parameters (a `batch` once).
    calls: Vec<(String, Value)>,
    /// Every method run: each call's, and each command inside a `batch`.
    commands: Vec<(String, Value)>,
    /// Answer 503 `QUERY_LIMIT_EXCEEDED` to this many calls first.
    busy: u32,
    /// Refuse the webhook itself (401 `NO_AUTH_FOUND`) on every call.
    no_auth: bool,
    /// Do this many `batch` calls that write, then lose the answer (a timeout after the store did the work).
    lose_write_answers: u32,
    /// Payments (by id) whose update the store refuses, as it does while a manager edits the order.
    locked_payments: Vec<String>,
    /// Refuse every payment, property and status write with this `(error, error_description)`.
    refuse_writes: Option<(&'static str, &'static str)>,
    next_id: u64,
}

impl Shop {
    fn respond(&mut self, method: &str, params: &Value) -> (u16, Value) {
        let ok = |result: Value| (200, json!({"result": result, "time": {"start": 0}}));
        let refusal = |code: &str, description: &str| {
            (
                400,
                json!({"error": code, "error_description": description}),
            )
        };
        let writes_status =
            method == "sale.order.update" && params["fields"].get("comments").is_none();
        if let Some((code, description)) = self.refuse_writes {
            if matches!(
                method,
                "sale.payment.add" | "sale.payment.update" | "sale.propertyvalue.modify"
            ) || writes_status
            {
                return refusal(code, description);
            }
        }
        match method {
            "sale.order.list" => {
                let total = self.orders.len();
                (
                    200,
                    json!({"result": {"orders": self.orders}, "total": total, "time": {}}),
                )
            }
            "sale.order.get" => {
                let id = as_text(&params["id"]);
                if self.refused_details.contains(&id) {
                    return refusal("ERROR_ORDER_NOT_FOUND", "order not found");
                }
                let mut d = self
                    .details
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| json!({"order": {"id": id, "personTypeId": 1}}));
                if d["order"].get("payments").is_none() {
                    d["order"]["payments"] = self
                        .payments
                        .iter()
                        .filter(|p| as_text(&p["orderId"]) == id)
                        .cloned()
                        .collect();
                }
                if d["order"].get("propertyValues").is_none() {
                    d["order"]["propertyValues"] = self
                        .properties
                        .iter()
                        .map(|(code, pid, value)| json!({"orderPropsId": pid.parse::<u64>().unwrap(), "code": code, "value": value}))
                        .collect();
                }
                ok(d)
            }
            "sale.payment.list" => {
                let order = as_text(&params["filter"]["orderId"]);
                let mine: Vec<&Value> = self
                    .payments
                    .iter()
                    .filter(|p| as_text(&p["orderId"]) == order)
                    .collect();
                ok(json!({ "payments": mine }))
            }
            "sale.payment.add" => {
                self.next_id += 1;
                let mut p = params["fields"].clone();
                p["id"] = json!(1000 + self.next_id);
                self.payments.push(p.clone());
                ok(json!({ "payment": p }))
            }
            "sale.payment.update" => {
                let id = as_text(&params["id"]);
                let fields = params["fields"].as_object().cloned().unwrap_or_default();
                if !fields.contains_key("paySystemId") {
                    return refusal("ERROR_CORE", "paySystemId is required");
                }
                if self.locked_payments.contains(&id) {
                    return refusal("SALE_ORDER_LOCKED", "the order is being edited");
                }
                let Some(p) = self.payments.iter_mut().find(|p| as_text(&p["id"]) == id) else {
                    return refusal("ERROR_PAYMENT_NOT_FOUND", "payment does not exist");
                };
                let sum_changes = fields
                    .get("sum")
                    .is_some_and(|v| as_text(v) != as_text(&p["sum"]));
                if p["paid"] == "Y" && sum_changes {
                    return refusal("ERROR_CORE", "SALE_PAYMENT_NOT_ALLOWED_CHANGE_SUM");
                }
                for (k, v) in fields {
                    p[k] = v;
                }
                let p = p.clone();
                ok(json!({ "payment": p }))
            }
            "sale.propertyvalue.list" => ok(json!({"propertyValues": self
                .properties
                .iter()
                .map(|(code, id, value)| json!({"orderPropsId": id.parse::<u64>().unwrap(), "code": code, "value": value}))
                .collect::<Vec<_>>()})),
            "sale.property.list" => {
                let code = params["filter"]["code"].as_str().unwrap_or("");
                let found: Vec<Value> = self
                    .definitions
                    .iter()
                    .filter(|(c, _)| c == code)
                    .map(|(c, id)| json!({"id": id.parse::<u64>().unwrap(), "code": c}))
                    .collect();
                ok(json!({ "properties": found }))
            }
            "sale.propertyvalue.modify" => {
                let given = params["fields"]["order"]["propertyValues"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                // Bitrix deletes whatever it is not given.
                self.properties = given
                    .iter()
                    .map(|g| {
                        let id = as_text(&g["orderPropsId"]);
                        let code = self
                            .definitions
                            .iter()
                            .find(|(_, d)| *d == id)
                            .map(|(c, _)| c.clone())
                            .unwrap_or_else(|| id.clone());
                        (code, id, g["value"].clone())
                    })
                    .collect();
                ok(json!({ "propertyValues": given }))
            }
            "sale.order.update" => {
                if let Some(c) = params["fields"]["comments"].as_str() {
                    self.comments.push(c.to_owned());
                } else {
                    self.status = Some(as_text(&params["fields"]["statusId"]));
                }
                ok(json!({"order": {"id": params["id"]}}))
            }
            other => refusal("ERROR_METHOD_NOT_FOUND", other),
        }
    }
}

#[derive(Default)]
struct FakeBitrix {
    shop: Mutex<Shop>,
}

impl FakeBitrix {
    fn shop(&self) -> std::sync::MutexGuard<'_, Shop> {
        self.shop.lock().unwrap()
    }

    /// The methods run so far (inside `batch` too), in order.
    fn methods(&self) -> Vec<String> {
        self.shop()
            .commands
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// The calls made so far (a `batch` once), in order.
    fn calls(&self) -> Vec<String> {
        self.shop().calls.iter().map(|(m, _)| m.clone()).collect()
    }

    /// The parameters of the `n`-th run of `method`.
    fn params(&self, method: &str, n: usize) -> Value {
        self.shop()
            .commands
            .iter()
            .filter(|(m, _)| m == method)
            .nth(n)
            .map(|(_, p)| p.clone())
            .unwrap()
    }

    fn count(&self, method: &str) -> usize {
        self.methods().iter().filter(|m| *m == method).count()
    }

    fn payment(&self, id: &str) -> Value {
        self.shop()
            .payments
            .iter()
            .find(|p| as_text(&p["id"]) == id)
            .cloned()
            .unwrap()
    }

    fn property(&self, code: &str) -> Option<Value> {
        self.shop()
            .properties
            .iter()
            .find(|(c, _, _)| c == code)
            .map(|(_, _, v)| v.clone())
    }
}

#[async_trait]
impl BitrixApi for FakeBitrix {
    async fn call(&self, method: &str, params: &Value) -> Result<Answer, BitrixError> {
        let (status, body) = {
            let mut shop = self.shop();
            shop.calls.push((method.to_owned(), params.clone()));
            if shop.no_auth {
                (
                    401,
                    json!({"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}),
                )
            } else if shop.busy > 0 {
                shop.busy -= 1;
                (
                    503,
                    json!({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}),
                )
            } else if method == "batch" {
                let shop = &mut *shop;
                let mut wrote = false;
                let body = crate::testing::bitrix_batch(params, |m, p| {
                    wrote |= WRITES.contains(&m);
                    shop.commands.push((m.to_owned(), p.clone()));
                    shop.respond(m, p)
                });
                if wrote && shop.lose_write_answers > 0 {
                    shop.lose_write_answers -= 1;
                    return Err(BitrixError::Busy("timeout".into()));
                }
                (200, body)
            } else {
                shop.commands.push((method.to_owned(), params.clone()));
                shop.respond(method, params)
            }
        };
        bitrix::answer(method, status, &serde_json::to_vec(&body).unwrap())
    }
}

/// The shop's hook receivers: what was delivered, and whether they fail.
#[derive(Default)]
struct FakeHooks {
    attempts: Mutex<usize>,
    delivered: Mutex<Vec<(String, String, Value)>>,
    failing: AtomicBool,
}

impl FakeHooks {
    fn delivered(&self) -> Vec<(String, String, Value)> {
        self.delivered.lock().unwrap().clone()
    }
}

#[async_trait]
impl HookSender for FakeHooks {
    async fn send(&self, hook: Hook<'_>) -> Result<(), HookError> {
        *self.attempts.lock().unwrap() += 1;
        if self.failing.load(Ordering::SeqCst) {
            return Err(HookError::Refused {
                event_id: hook.event_id.to_owned(),
                status: 500,
            });
        }
        self.delivered.lock().unwrap().push((
            hook.url.to_owned(),
            hook.event_id.to_owned(),
            serde_json::from_str(hook.body).unwrap(),
        ));
        Ok(())
    }
}

struct Env {
    ledger: Arc<MemoryLedgerStore>,
    events: Arc<MemoryPublisher>,
    shop: Arc<FakeBitrix>,
    hooks: Arc<FakeHooks>,
    deps: StoreDeps,
}

fn env(push: PushConfig) -> Env {
    let ledger = Arc::new(MemoryLedgerStore::default());
    let events = Arc::new(MemoryPublisher::default());
    let shop = Arc::new(FakeBitrix::default());
    let hooks = Arc::new(FakeHooks::default());
    let deps = StoreDeps {
        // Generous: the unit tests are not about the limit (`budget.rs` is).
        budget: Arc::new(crate::adapters::memory::MemoryBudget::new(
            crate::ports::budget::RestLimit {
                per_second: 1_000,
                burst: 10_000,
                pull_reserve: 0,
            },
        )),
        store: ledger.clone(),
        directory: ledger.clone(),
        cursors: ledger.clone(),
        markers: ledger.clone(),
        events: events.clone(),
        bitrix: shop.clone(),
        hooks: hooks.clone(),
        overlap_minutes: 10,
        initial_days: 30,
        push,
        inbox: None,
        push_orders: 10,
    };
    Env {
        ledger,
        events,
        shop,
        hooks,
        deps,
    }
}

/// Paid amount and paid text properties, card money on pay system 5.
fn push_config() -> PushConfig {
    PushConfig {
        paid_amount_code: Some("PAID_AMOUNT".into()),
        paid_text_code: Some("PAID_TEXT".into()),
        pay_systems: [("tbank".to_owned(), "5".to_owned())].into_iter().collect(),
        status_map: BTreeMap::new(),
        hooks: Vec::new(),
    }
}

impl Env {
    fn ledger(&self) -> Ledger<'_> {
        Ledger::new(self.deps.store.as_ref(), self.deps.events.as_ref())
    }

    /// Order 7001 of 5 000,00, as the store registered it.
    async fn register(&self, info: OrderInfo) {
        self.ledger()
            .register_order(&OrderId::parse("7001").unwrap(), info)
            .await
            .unwrap();
    }

    /// A T-Bank card payment (or refund) of order 7001 recorded in the ledger.
    async fn record(&self, fact_id: &str, payment: &str, kind: FactKind) {
        let fact = PaymentFact::new(
            FactId::new(Source::Tbank, fact_id).unwrap(),
            OrderId::parse("7001").unwrap(),
            PaymentRef::new(Source::Tbank, payment).unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            kind,
            PAID_AT_MS,
        )
        .unwrap();
        self.ledger().record(&fact).await.unwrap();
    }

    /// Order 7001 of 5 000,00 paid 1 500,00 by card (T-Bank payment 61).
    async fn partially_paid(&self) -> crate::domain::Order {
        self.register(OrderInfo::new(Some("7001".into()), 500_000, Currency::RUB))
            .await;
        self.record("61#CONFIRMED", "61", FactKind::Payment { amount: 150_000 })
            .await;
        self.order()
    }

    fn order(&self) -> crate::domain::Order {
        self.ledger.order("7001").unwrap()
    }

    /// What checkout left in the store: one unpaid card payment for the whole order, the buyer's e-mail, and
    /// the paysync properties defined (but not set on the order).
    fn checkout(&self) {
        let mut s = self.shop.shop();
        s.payments.push(
            json!({"id": 900, "orderId": 7001, "paid": "N", "sum": "5000.00",
                               "paySystemId": 5, "isReturn": "N", "accountNumber": "7001/1"}),
        );
        s.properties
            .push(("EMAIL".into(), "1".into(), json!("buyer@example.ru")));
        s.definitions = vec![
            ("EMAIL".into(), "1".into()),
            ("PAID_AMOUNT".into(), "20".into()),
            ("PAID_TEXT".into(), "21".into()),
        ];
    }
}

fn batch(order: &str, messages: &[&str]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|id| {
            json!({"messageId": id, "body": json!({"order_id": order}).to_string(),
                   "attributes": {"MessageGroupId": order}})
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn failures(r: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

const PAID_TEXT: &str = "Оплачено: 1\u{a0}500 из 5\u{a0}000 (30%)";

#[tokio::test]
async fn a_partial_card_payment_marks_the_stores_own_payment_paid_and_writes_the_paid_properties_once(
) {
    let e = env(push_config());
    e.checkout();
    let order = e.partially_paid().await;
    assert_eq!(order.state(), OrderState::PartiallyPaid);

    let report = push_order(e.shop.as_ref(), &e.deps.push, &order)
        .await
        .unwrap();
    assert_eq!(
        report,
        PushReport {
            added: 0,
            updated: 1,
            unchanged: 0,
            properties: true,
            status: None
        }
    );
    // Checkout's payment took the money: nothing added, its sum and paid flag changed, marked as ours.
    let p = e.shop.payment("900");
    assert_eq!(e.shop.shop().payments.len(), 1);
    assert_eq!(
        (
            as_text(&p["paid"]),
            as_text(&p["sum"]),
            as_text(&p["xmlId"]),
            as_text(&p["psInvoiceId"]),
            as_text(&p["paySystemId"]),
        ),
        (
            "Y".into(),
            "1500.00".into(),
            "paysync:tbank:61".into(),
            "61".into(),
            "5".into()
        )
    );
    assert_eq!(as_text(&p["datePaid"]), "2026-11-28T10:00:00+03:00");
    assert_eq!(e.shop.property("PAID_AMOUNT"), Some(json!("1500.00")));
    assert_eq!(paid_text(150_000, 500_000, Some(30)), PAID_TEXT);
    assert_eq!(e.shop.property("PAID_TEXT"), Some(json!(PAID_TEXT)));
    assert_eq!(
        e.shop.property("EMAIL"),
        Some(json!("buyer@example.ru")),
        "the buyer's property is sent back, not deleted"
    );
    assert_eq!(
        e.shop.methods(),
        [
            "sale.order.get",
            "sale.property.list",
            "sale.property.list",
            "sale.payment.update",
            "sale.propertyvalue.modify"
        ]
    );
    assert_eq!(
        e.shop.calls(),
        ["batch", "batch"],
        "one batch of reads, one of writes"
    );

    // The same order pushed again (a redelivered message): the store already shows it; only reads.
    let before = e.shop.methods().len();
    let again = push_order(e.shop.as_ref(), &e.deps.push, &order)
        .await
        .unwrap();
    assert_eq!(
        again,
        PushReport {
            unchanged: 1,
            ..PushReport::default()
        }
    );
    assert_eq!(
        e.shop.methods()[before..],
        ["sale.order.get", "sale.property.list", "sale.property.list"]
    );
    assert_eq!(e.shop.calls().len(), 3, "one batch of reads, no write");
}

#[tokio::test]
async fn money_with_no_free_store_payment_is_added_as_a_paid_payment_of_its_pay_system() {
    let e = env(push_config());
    e.checkout();
    // The store's only payment is no longer free (the manager marked it paid by another way).
    e.shop.shop().payments[0]["paid"] = json!("Y");
    let order = e.partially_paid().await;
    let report = push_order(e.shop.as_ref(), &e.deps.push, &order)
        .await
        .unwrap();
    assert_eq!((report.added, report.updated), (1, 0));
    let added = e.shop.params("sale.payment.add", 0);
    assert_eq!(
        added["fields"],
        json!({
            "orderId": "7001", "paySystemId": "5", "sum": "1500.00", "currency": "RUB", "paid": "Y",
            "datePaid": "2026-11-28T10:00:00+03:00", "payVoucherNum": "61", "psInvoiceId": "61",
            "xmlId": "paysync:tbank:61",
        })
    );
    assert_eq!(
        e.shop.payment("900")["sum"],
        "5000.00",
        "the other payment is left alone"
    );
    assert_eq!(e.shop.property("PAID_AMOUNT"), Some(json!("1500.00")));

    // Found again by its xmlId: not added twice, nothing written.
    let before = e.shop.methods().len();
    let again = push_order(e.shop.as_ref(), &e.deps.push, &order)
        .await
        .unwrap();
    assert_eq!((again.added, again.unchanged), (0, 1));
    assert_eq!(
        e.shop.methods()[before..],
        ["sale.order.get", "sale.property.list", "sale.property.list"]
    );
    assert_eq!(e.shop.shop().payments.len(), 2);
}

#[tokio::test]
async fn a_paid_property_the_store_does_not_define_is_a_configuration_error() {
    let e = env(push_config());
    let order = e.partially_paid().await;
    assert!(matches!(
        push_order(e.shop.as_ref(), &e.deps.push, &order).await,
        Err(PushError::Config(c)) if c.contains("PAID_AMOUNT")
    ));
    assert_eq!(
        e.shop.methods(),
        ["sale.order.get", "sale.property.list", "sale.property.list"],
        "planned before any write: nothing half written"
    );
    assert!(e.shop.property("PAID_AMOUNT").is_none());
}

#[tokio::test]
async fn money_of_a_source_without_a_pay_system_is_not_written() {
    let mut config = push_config();
    config.pay_systems.clear();
    let e = env(config);
    let order = e.partially_paid().await;
    assert!(matches!(
        push_order(e.shop.as_ref(), &e.deps.push, &order).await,
        Err(PushError::Config(_))
    ));
    assert_eq!(
        e.shop.methods(),
        ["sale.order.get", "sale.property.list", "sale.property.list"]
    );
}

#[tokio::test]
async fn the_mapped_status_is_written_when_the_store_shows_another_and_not_when_it_shows_it() {
    let mut config = push_config();
    config.paid_amount_code = None;
    config.paid_text_code = None;
    config.status_map = [("partially_paid".to_owned(), "PP".to_owned())]
        .into_iter()
        .collect();
    let e = env(config);
    e.checkout();
    let mut info = OrderInfo::new(Some("7001".into()), 500_000, Currency::RUB);
    info.details.status = Some(("N".into(), "Принят".into()));
    e.register(info.clone()).await;
    e.record("61#CONFIRMED", "61", FactKind::Payment { amount: 150_000 })
        .await;
    let report = push_order(e.shop.as_ref(), &e.deps.push, &e.order())
        .await
        .unwrap();
    assert_eq!(report.status.as_deref(), Some("PP"));
    assert_eq!(e.shop.shop().status.as_deref(), Some("PP"));

    // Once the ledger knows the store shows PP (the pull brought it), it is not written again.
    info.details.status = Some(("PP".into(), "Частично оплачен".into()));
    e.register(info).await;
    let before = e.shop.methods().len();
    let again = push_order(e.shop.as_ref(), &e.deps.push, &e.order())
        .await
        .unwrap();
    assert_eq!(again.status, None);
    assert!(e.shop.methods()[before..]
        .iter()
        .all(|m| !WRITES.contains(&m.as_str())));
}

#[tokio::test]
async fn a_change_the_store_refuses_fails_the_message_and_is_said_on_the_order_and_in_the_ledger() {
    let e = env(push_config());
    e.checkout();
    e.partially_paid().await;
    e.shop.shop().refuse_writes = Some(("SALE_ORDER_LOCKED", "the order is being edited"));

    let out = handle_events(&e.deps, batch("7001", &["m1", "m2"])).await;
    assert_eq!(
        failures(&out),
        ["m1", "m2"],
        "failed, and the rest of its group held back"
    );
    assert_eq!(
        e.shop.count("sale.payment.update"),
        1,
        "a refusal is not retried"
    );
    assert_eq!(e.shop.payment("900")["paid"], "N");
    let comments = e.shop.shop().comments.clone();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].starts_with("paysync: the store refused a payment change")
            && comments[0].contains("SALE_ORDER_LOCKED")
            && comments[0].contains("the order is being edited"),
        "{comments:?}"
    );
    let kept = e
        .deps
        .markers
        .marker(MarkerKind::StoreError, "7001")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some(comments[0].as_str()));
}

#[tokio::test]
async fn a_busy_store_fails_the_message_without_a_note_and_the_retry_lands_it() {
    let e = env(push_config());
    e.checkout();
    e.partially_paid().await;
    e.shop.shop().busy = 2;
    let out = handle_events(&e.deps, batch("7001", &["m1"])).await;
    assert_eq!(failures(&out), ["m1"]);
    assert_eq!(e.shop.calls(), ["batch", "batch"], "the reads, busy twice");
    assert!(e.shop.methods().is_empty());
    assert!(e.shop.shop().comments.is_empty());
    assert_eq!(
        e.deps
            .markers
            .marker(MarkerKind::StoreError, "7001")
            .await
            .unwrap(),
        None
    );

    let out = handle_events(&e.deps, batch("7001", &["m1"])).await;
    assert!(failures(&out).is_empty());
    assert_eq!(e.shop.payment("900")["paid"], "Y");
    // What the store was told is noted for the console's order page (only once it was told).
    let told = e
        .deps
        .markers
        .marker(MarkerKind::StoreTold, "7001")
        .await
        .unwrap()
        .expect("noted");
    let told: serde_json::Value = serde_json::from_str(&told).unwrap();
    assert_eq!(
        (told["state"].as_str(), told["paid"].as_i64()),
        (Some("partially_paid"), Some(150_000))
    );
}

#[tokio::test]
async fn an_order_the_store_never_described_is_not_pushed() {
    let e = env(push_config());
    e.record("61#CONFIRMED", "61", FactKind::Payment { amount: 150_000 })
        .await;
    let out = handle_events(&e.deps, batch("7001", &["m1"])).await;
    assert!(failures(&out).is_empty());
    assert!(e.shop.methods().is_empty());
}

fn hook(url: &str, on: &str) -> HookConfig {
    HookConfig {
        url: url.into(),
        on: vec![on.into()],
        secret: Secret::new("hook-secret"),
    }
}

const RESERVE: &str = "https://erp.example/hs/reserve";
const RETURN: &str = "https://erp.example/hs/return";

#[tokio::test]
async fn a_hook_is_sent_once_per_hook_order_and_state() {
    let mut config = push_config();
    config.hooks = vec![hook(RESERVE, "paid"), hook(RETURN, "refunded")];
    let e = env(config);
    e.register(OrderInfo::new(Some("7001".into()), 500_000, Currency::RUB))
        .await;
    e.record("61#CONFIRMED", "61", FactKind::Payment { amount: 500_000 })
        .await;
    let markers = e.deps.markers.as_ref();
    let sent = fire_hooks(markers, e.hooks.as_ref(), &e.deps.push, &e.order())
        .await
        .unwrap();
    assert_eq!(sent, 1, "only the hook of the paid state");
    let delivered = e.hooks.delivered();
    assert_eq!(
        (delivered[0].0.as_str(), delivered[0].1.as_str()),
        (RESERVE, "7001#paid")
    );
    assert_eq!(
        delivered[0].2,
        json!({
            "id": "7001#paid", "type": "order.paid", "order_id": "7001", "number": "7001", "state": "paid",
            "total": 500_000, "paid": 500_000, "paid_percent": 100, "currency": "RUB",
        })
    );

    // Again in the same state: nothing.
    let sent = fire_hooks(markers, e.hooks.as_ref(), &e.deps.push, &e.order())
        .await
        .unwrap();
    assert_eq!(sent, 0);
    assert_eq!(e.hooks.delivered().len(), 1);

    // Another state fires its own hook, once.
    e.record(
        "61#REFUNDED",
        "61",
        FactKind::Refund {
            amount: RefundAmount::Delta(500_000),
        },
    )
    .await;
    assert_eq!(e.order().state(), OrderState::Refunded);
    for expected in [1, 0] {
        let sent = fire_hooks(markers, e.hooks.as_ref(), &e.deps.push, &e.order())
            .await
            .unwrap();
        assert_eq!(sent, expected);
    }
    let delivered = e.hooks.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(
        (delivered[1].0.as_str(), delivered[1].1.as_str()),
        (RETURN, "7001#refunded")
    );
    assert_eq!(delivered[1].2["paid"], json!(0));
}

#[tokio::test]
async fn a_hook_that_failed_is_not_remembered_and_is_sent_on_the_next_call() {
    let mut config = push_config();
    config.hooks = vec![hook(RESERVE, "paid")];
    let e = env(config);
    e.register(OrderInfo::new(Some("7001".into()), 500_000, Currency::RUB))
        .await;
    e.record("61#CONFIRMED", "61", FactKind::Payment { amount: 500_000 })
        .await;
    let markers = e.deps.markers.as_ref();
    e.hooks.failing.store(true, Ordering::SeqCst);
    let err = fire_hooks(markers, e.hooks.as_ref(), &e.deps.push, &e.order())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PushError::Hook(HookError::Refused { event_id, status: 500 }) if event_id == "7001#paid"
        ),
        "{err}"
    );
    assert!(e.hooks.delivered().is_empty());

    e.hooks.failing.store(false, Ordering::SeqCst);
    let sent = fire_hooks(markers, e.hooks.as_ref(), &e.deps.push, &e.order())
        .await
        .unwrap();
    assert_eq!(sent, 1);
    assert_eq!(*e.hooks.attempts.lock().unwrap(), 2);
    assert_eq!(e.hooks.delivered().len(), 1);
}

#[tokio::test]
async fn a_busy_store_is_retried_and_a_refusal_is_not() {
    let shop = FakeBitrix::default();
    shop.shop().busy = 2;
    let params = json!({"filter": {"orderId": "7001"}});
    let answer = call_with_backoff(&shop, "sale.payment.list", &params, 4)
        .await
        .unwrap();
    assert_eq!(
        bitrix::payments(&answer.result).unwrap(),
        [],
        "the store's answer"
    );
    assert_eq!(
        shop.shop().calls,
        vec![
            ("sale.payment.list".to_owned(), params.clone()),
            ("sale.payment.list".to_owned(), params.clone()),
            ("sale.payment.list".to_owned(), params.clone()),
        ],
        "busy twice, then answered: the same call 3 times"
    );

    // Busy for longer than the attempts: the last Busy after exactly that many calls.
    let shop = FakeBitrix::default();
    shop.shop().busy = 5;
    let err = call_with_backoff(&shop, "sale.payment.list", &params, 2)
        .await
        .unwrap_err();
    assert!(matches!(err, BitrixError::Busy(_)), "{err}");
    assert_eq!(shop.calls().len(), 2);

    // A refusal is returned at once.
    let shop = FakeBitrix::default();
    let err = call_with_backoff(&shop, "sale.no.such", &params, 4)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        BitrixError::Refused {
            method: "sale.no.such".into(),
            code: "ERROR_METHOD_NOT_FOUND".into(),
            description: "sale.no.such".into()
        }
    );
    assert_eq!(shop.methods().len(), 1);
}

/// Two orders changed in the store, with what `sale.order.get` adds.
fn two_orders(shop: &FakeBitrix) {
    let mut s = shop.shop();
    s.orders = vec![
        json!({"id": 7001, "accountNumber": "7001", "price": "5000.00", "currency": "RUB", "statusId": "N",
               "canceled": "N", "payed": "N", "dateInsert": "2026-11-27T09:00:00+03:00",
               "dateUpdate": "2026-11-28T10:00:00+03:00", "personTypeId": 1, "userId": 7}),
        json!({"id": 7002, "accountNumber": "7002", "price": 1480.5, "currency": "RUB", "statusId": "N",
               "canceled": "N", "payed": "N", "dateInsert": "2026-11-28T10:30:00+03:00",
               "dateUpdate": "2026-11-28T11:00:00+03:00", "personTypeId": 1, "userId": 8}),
    ];
    s.details.insert(
        "7001".into(),
        json!({"order": {"id": 7001,
            "basketItems": [{"id": 1, "name": "Бумага A4", "price": "250.00", "quantity": "20"}],
            "shipments": [],
            "propertyValues": [{"code": "EMAIL", "value": "buyer@example.ru", "orderPropsId": 1}],
            "payments": [{"id": 900, "orderId": 7001, "paid": "N", "sum": "5000.00", "paySystemId": 5,
                          "accountNumber": "7001/1", "paySystemName": "Банковская карта"}]}}),
    );
    s.details.insert(
        "7002".into(),
        json!({"order": {"id": 7002,
            "basketItems": [{"id": 2, "name": "Кабель", "price": "1480.50", "quantity": "1"}],
            "shipments": [], "propertyValues": [], "payments": []}}),
    );
}

#[tokio::test]
async fn a_page_of_orders_is_registered_in_the_ledger_and_sets_the_watermark_and_a_rerun_changes_nothing(
) {
    let e = env(push_config());
    two_orders(&e.shop);
    let s = pull_orders(&e.deps).await.unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!((s.pages, s.fetched, s.changed, s.unchanged), (1, 2, 2, 0));
    assert_eq!(s.watermark.as_deref(), Some("2026-11-28T11:00:00+03:00"));
    assert_eq!(
        e.deps.cursors.watermark("bitrix-orders").await.unwrap(),
        Some("2026-11-28T11:00:00+03:00".to_owned())
    );
    assert_eq!(
        e.shop.shop().calls[1].1,
        json!({"halt": 0, "cmd": {"o7001": "sale.order.get?id=7001", "o7002": "sale.order.get?id=7002"}}),
        "one batch of sale.order.get for the page"
    );
    let first = e.ledger.order("7001").unwrap();
    let info = first.info.as_ref().unwrap();
    assert_eq!(
        (info.total, info.number.as_deref(), info.currency),
        (500_000, Some("7001"), Currency::RUB)
    );
    assert_eq!(info.details.lines.len(), 1);
    assert_eq!(
        (
            info.details.lines[0].name.as_str(),
            info.details.lines[0].amount
        ),
        ("Бумага A4", 500_000)
    );
    assert_eq!(
        info.details.buyer.as_ref().and_then(|b| b.email.as_deref()),
        Some("buyer@example.ru")
    );
    assert_eq!(info.details.payments[0].id, "900");
    assert_eq!(
        e.ledger.order("7002").unwrap().total(),
        Some(148_050),
        "money from its literal"
    );
    let versions = (first.version, e.ledger.order("7002").unwrap().version);
    assert_eq!(e.events.events().len(), 2, "each change announced");

    // The same answers again: nothing changes, nothing is announced, the watermark stays.
    let again = pull_orders(&e.deps).await.unwrap();
    assert_eq!((again.fetched, again.changed, again.unchanged), (2, 0, 2));
    assert_eq!(
        again.from, "2026-11-28T10:50:00+03:00",
        "from the watermark minus the overlap"
    );
    assert_eq!(
        again.watermark.as_deref(),
        Some("2026-11-28T11:00:00+03:00")
    );
    assert_eq!(
        (
            e.ledger.order("7001").unwrap().version,
            e.ledger.order("7002").unwrap().version
        ),
        versions
    );
    assert_eq!(e.events.events().len(), 2);
    assert_eq!(
        e.shop.calls(),
        ["sale.order.list", "batch", "sale.order.list", "batch"]
    );
    let list = &e.shop.shop().calls[2].1;
    assert_eq!(list["filter"][">=dateUpdate"], "2026-11-28T10:50:00+03:00");
}

#[tokio::test]
async fn a_refused_webhook_stops_the_pull_and_keeps_the_watermark() {
    let e = env(push_config());
    two_orders(&e.shop);
    e.deps
        .cursors
        .set_watermark("bitrix-orders", "2026-11-28T09:00:00+03:00")
        .await
        .unwrap();
    e.shop.shop().no_auth = true;
    let s = pull_orders(&e.deps).await.unwrap();
    assert!(s.auth_failed, "{s:?}");
    assert!(s.errors[0].contains("NO_AUTH_FOUND"), "{s:?}");
    assert_eq!((s.pages, s.changed, s.watermark), (0, 0, None));
    assert_eq!(e.shop.calls(), ["sale.order.list"], "not retried");
    assert!(e.ledger.order("7001").is_none());
    assert_eq!(
        e.deps.cursors.watermark("bitrix-orders").await.unwrap(),
        Some("2026-11-28T09:00:00+03:00".to_owned())
    );
}

#[tokio::test]
async fn an_order_the_store_gave_no_details_for_holds_the_watermark_and_is_read_again() {
    let e = env(push_config());
    two_orders(&e.shop);
    // sale.order.get fails for the earlier order: it is registered from the list alone, and the next pull must
    // read it again for its lines and payments.
    e.shop.shop().refused_details.push("7001".into());
    let s = pull_orders(&e.deps).await.unwrap();
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert!(s.errors[0].contains("o7001"), "{:?}", s.errors);
    assert_eq!(s.changed, 2);
    let partial = e.ledger.order("7001").unwrap();
    assert!(partial.info.as_ref().unwrap().details.lines.is_empty());
    assert_eq!(
        s.watermark.as_deref(),
        Some("2026-11-28T10:00:00+03:00"),
        "not past the order left out"
    );
    e.shop.shop().refused_details.clear();
    let again = pull_orders(&e.deps).await.unwrap();
    assert!(again.errors.is_empty(), "{:?}", again.errors);
    assert_eq!((again.changed, again.unchanged), (1, 1));
    let full = e.ledger.order("7001").unwrap();
    assert_eq!(
        full.info.as_ref().unwrap().details.lines.len(),
        1,
        "its lines came"
    );
    assert_eq!(
        again.watermark.as_deref(),
        Some("2026-11-28T11:00:00+03:00")
    );
}

#[tokio::test]
async fn a_store_payment_started_at_an_acquirer_names_its_acquirer() {
    let e = env(push_config());
    two_orders(&e.shop);
    pull_orders(&e.deps).await.unwrap();
    let info = e.ledger.order("7001").unwrap().info.unwrap();
    // Pay system 5 is T-Bank's entry of BITRIX_PAY_SYSTEMS in this test's configuration.
    assert_eq!(
        (
            info.details.payments[0].pay_system_id.as_deref(),
            info.details.payments[0].acquirer
        ),
        (Some("5"), Some(crate::domain::Source::Tbank))
    );
    // …so the ledger asks T-Bank about its psInvoiceId until the money settles.
    let watched = crate::domain::watch::watches(&e.ledger.order("7001").unwrap());
    assert!(
        watched.is_empty(),
        "no psInvoiceId yet: not started at the acquirer"
    );
}

/// Only real changes reach the store: a registered order with no money costs no call (no `PAID_AMOUNT=0.00`
/// written, which would re-save it); a payment is written once; its message again, or an event that changed
/// nothing the store shows (the store's data read again), costs no call either.
#[tokio::test]
async fn an_order_whose_store_visible_state_did_not_change_costs_no_call() {
    let e = env(push_config());
    e.checkout();
    e.register(OrderInfo::new(Some("7001".into()), 500_000, Currency::RUB))
        .await;
    let calls = |e: &Env| e.shop.shop().calls.len();
    assert!(failures(&handle_events(&e.deps, batch("7001", &["m0"])).await).is_empty());
    assert_eq!(
        calls(&e),
        0,
        "a new unpaid order: the store shows it already"
    );
    e.record("61#CONFIRMED", "61", FactKind::Payment { amount: 150_000 })
        .await;
    assert!(failures(&handle_events(&e.deps, batch("7001", &["m1"])).await).is_empty());
    let after_payment = calls(&e);
    assert!(after_payment > 0);
    // The same message again, and the order re-registered with a new comment (nothing the push writes).
    assert!(failures(&handle_events(&e.deps, batch("7001", &["m1", "m2"])).await).is_empty());
    let mut info = OrderInfo::new(Some("7001".into()), 500_000, Currency::RUB);
    info.details.comment = Some("позвонить перед доставкой".into());
    e.register(info).await;
    assert!(failures(&handle_events(&e.deps, batch("7001", &["m3"])).await).is_empty());
    assert_eq!(calls(&e), after_payment, "nothing new to show: no call");
    // A refund changes what the store shows: written.
    e.record(
        "61#PARTIAL_REFUNDED#100000",
        "61",
        FactKind::Refund {
            amount: crate::domain::RefundAmount::Remaining(100_000),
        },
    )
    .await;
    assert!(failures(&handle_events(&e.deps, batch("7001", &["m4"])).await).is_empty());
    assert!(calls(&e) > after_payment);
    assert_eq!(e.shop.payment("900")["sum"], "1000.00");
}

/// Thirty orders paid at once: ten handed by Lambda, twenty taken from the queue. One `batch` reads them all, two
/// carry the 60 writes; the store's refusal of one order's write fails that order alone (its handed message is
/// reported, its taken one left to come back), and the others are done.
#[tokio::test]
async fn one_invocation_pushes_many_orders_in_a_few_batches_and_a_refusal_fails_only_its_order() {
    let mut e = env(push_config());
    let queue = Arc::new(crate::adapters::memory::MemoryQueue::new(60_000));
    e.deps.inbox = Some(queue.clone());
    e.deps.push_orders = 100;
    e.shop.shop().definitions = vec![
        ("PAID_AMOUNT".into(), "20".into()),
        ("PAID_TEXT".into(), "21".into()),
    ];
    let mut handed = Vec::new();
    for n in 0..30u64 {
        let id = (8000 + n).to_string();
        e.shop.shop().payments.push(
            json!({"id": 900 + n, "orderId": id, "paid": "N", "sum": "5000.00",
            "paySystemId": 5, "isReturn": "N"}),
        );
        let order = OrderId::parse(id.clone()).unwrap();
        e.ledger()
            .register_order(
                &order,
                OrderInfo::new(Some(id.clone()), 500_000, Currency::RUB),
            )
            .await
            .unwrap();
        let fact = PaymentFact::new(
            FactId::new(Source::Tbank, &format!("{n}#CONFIRMED")).unwrap(),
            order,
            PaymentRef::new(Source::Tbank, &format!("6{n}")).unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Payment { amount: 150_000 },
            PAID_AT_MS,
        )
        .unwrap();
        e.ledger().record(&fact).await.unwrap();
        let body = json!({ "order_id": id }).to_string();
        if n < 10 {
            handed.push(json!({"messageId": format!("h{n}"), "body": body, "attributes": {"MessageGroupId": id}}));
        } else {
            queue.send(&id, &body);
        }
    }
    e.shop.shop().locked_payments = vec!["905".into(), "915".into()];
    let event = serde_json::from_value(json!({ "Records": handed })).unwrap();

    let out = handle_events(&e.deps, event).await;

    assert_eq!(failures(&out), ["h5"], "only the refused order's message");
    assert_eq!(
        e.shop.calls(),
        [
            "batch",
            "batch",
            "batch",
            "sale.order.update",
            "sale.order.update"
        ],
        "32 reads in one batch, 60 writes in two; then the two refusals said on their orders"
    );
    assert_eq!(e.shop.count("sale.order.get"), 30);
    assert_eq!(e.shop.count("sale.payment.update"), 30);
    assert_eq!(e.shop.count("sale.propertyvalue.modify"), 30);
    let paid: Vec<String> = e
        .shop
        .shop()
        .payments
        .iter()
        .filter(|p| p["paid"] == "Y")
        .map(|p| as_text(&p["orderId"]))
        .collect();
    assert_eq!(paid.len(), 28);
    assert!(!paid.contains(&"8005".to_owned()) && !paid.contains(&"8015".to_owned()));
    assert_eq!(
        queue.len(),
        1,
        "the refused taken message stays; the other 19 are done"
    );
    let comments = e.shop.shop().comments.clone();
    assert!(
        comments.iter().all(|c| c.contains("SALE_ORDER_LOCKED")),
        "{comments:?}"
    );

    // The next invocation sees the store already showing the 28: only the two left are read and written.
    e.shop.shop().locked_payments.clear();
    let before = e.shop.calls().len();
    let out = handle_events(&e.deps, batch("8005", &["h5"])).await;
    assert!(failures(&out).is_empty());
    assert_eq!(e.shop.calls().len() - before, 2);
    assert_eq!(
        queue.len(),
        1,
        "8015 stays hidden until its visibility ends"
    );
    assert!(queue.receive(10).is_empty());
    assert_eq!(e.shop.payment("905")["paid"], "Y");
}

#[tokio::test]
async fn a_paid_property_is_the_one_of_the_orders_person_type() {
    let mut config = push_config();
    config.paid_text_code = None;
    let e = env(config);
    e.checkout();
    e.shop.shop().definitions.clear();
    let order = e.partially_paid().await;
    let state = bitrix::StoreOrderState {
        person_type_id: Some("2".into()),
        payments: Vec::new(),
        property_values: Vec::new(),
    };
    let def = |id: &str, person: &str| bitrix::PropertyDefinition {
        id: id.into(),
        code: Some("PAID_AMOUNT".into()),
        person_type_id: Some(person.into()),
    };
    let planned = plan_push(
        &e.deps.push,
        &order,
        &state,
        &[def("20", "1"), def("30", "2")],
    )
    .unwrap();
    let (method, modify) = planned.commands.last().unwrap();
    assert_eq!(*method, "sale.propertyvalue.modify");
    assert_eq!(
        modify["fields"]["order"]["propertyValues"],
        json!([{"orderPropsId": "30", "value": "1500.00"}])
    );
    // Two definitions, neither of the order's person type: not guessed between.
    assert!(matches!(
        plan_push(&e.deps.push, &order, &state, &[def("20", "1"), def("40", "3")]),
        Err(PushError::Config(c)) if c.contains("several person types")
    ));
}

/// The answer to a batch of writes is lost after the store did them (a timeout): the writes are not sent again in
/// the same run (a payment added twice would be money shown twice); the message fails, and its next run reads the
/// order, finds the added payment by its `xmlId`, and adds nothing.
#[tokio::test]
async fn writes_whose_answer_was_lost_are_read_again_not_sent_again() {
    let e = env(push_config());
    e.checkout();
    // No free store payment: the money is added.
    e.shop.shop().payments[0]["paid"] = json!("Y");
    e.partially_paid().await;
    e.shop.shop().lose_write_answers = 1;

    let out = handle_events(&e.deps, batch("7001", &["m1"])).await;
    assert_eq!(failures(&out), ["m1"]);
    assert_eq!(
        e.shop.count("sale.payment.add"),
        1,
        "not sent again after the timeout"
    );
    assert_eq!(e.shop.shop().payments.len(), 2);

    let out = handle_events(&e.deps, batch("7001", &["m1"])).await;
    assert!(failures(&out).is_empty());
    assert_eq!(e.shop.count("sale.payment.add"), 1, "found by its xmlId");
    assert_eq!(e.shop.shop().payments.len(), 2);
    assert_eq!(e.shop.property("PAID_AMOUNT"), Some(json!("1500.00")));
}
