//! The store leg at sale-day volume: ORDERS orders paid at once by card, their events on a FIFO queue (in memory,
//! one group per order) that INVOCATIONS concurrent invocations read as Lambda hands a FIFO function its messages,
//! 10 at a time, while store-sync takes up to PUSH_ORDERS per invocation itself (a failed message comes back after
//! a visibility timeout), against a local 1C-Bitrix REST fake that enforces the standard limit: 2 requests per
//! second, a burst of 50, `503 QUERY_LIMIT_EXCEEDED` beyond it (https://apidocs.bitrix24.ru/limits.html; a `batch`
//! is one request, its commands read as the store's `parse_str` reads them). Reports REST calls accepted per paid
//! order, calls refused, and the time from payment to "the store shows paid" (p50/p99). The ledger is in memory;
//! store-sync's code, its HTTP adapter and the wire are the shipped ones.
//!
//! Args: ORDERS (default 500) INVOCATIONS (default 4) PUSH_ORDERS (default 48, as `STORE_PUSH_ORDERS`; 10 is
//! Lambda's batches alone) PER_SECOND BURST (default 2 and 50, Bitrix's standard limit; enterprise 5 and 250).
//! Run with `make load-store`.

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use shared::adapters::memory::{MemoryLedgerStore, MemoryPublisher, MemoryQueue};
use shared::app::ledger::Ledger;
use shared::app::store_sync::{handle_events, PushConfig, StoreDeps};
use shared::domain::{
    Currency, FactId, FactKind, OrderId, OrderInfo, PaymentFact, PaymentMethod, PaymentRef, Source,
};

/// The events queue's visibility timeout, as the template sets it (longer than store-sync's 300 s timeout, so no message
/// is handled by two invocations at once).
const VISIBILITY: Duration = Duration::from_secs(360);

#[derive(Default)]
struct Shop {
    payments: HashMap<String, Vec<Value>>,
    properties: HashMap<String, Vec<Value>>,
    totals: HashMap<String, String>,
    shown_paid: HashMap<String, Instant>,
    /// Requests the limit let through, by method (a `batch` once).
    accepted: BTreeMap<String, usize>,
    /// Methods run, inside `batch` too.
    commands: BTreeMap<String, usize>,
    refused: usize,
    next_id: u64,
    tokens: f64,
    last: Option<Instant>,
    /// The limit: requests a second back, and the most at once (Bitrix standard 2 and 50, enterprise 5 and 250).
    per_second: f64,
    burst: f64,
}

type Store = Arc<Mutex<Shop>>;

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

impl Shop {
    /// The limit: a token per request, 2 a second back, 50 at most.
    fn admit(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = self
            .last
            .map_or(0.0, |l| now.duration_since(l).as_secs_f64());
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn note_paid(&mut self, order: &str) {
        let total = self.totals.get(order).cloned().unwrap_or_default();
        let paid = self.payments.get(order).is_some_and(|ps| {
            ps.iter()
                .any(|p| p["paid"] == "Y" && text(&p["sum"]) == total)
        });
        if paid {
            self.shown_paid
                .entry(order.to_owned())
                .or_insert_with(Instant::now);
        }
    }

    fn call(&mut self, method: &str, body: &Value) -> Result<Value, String> {
        *self.commands.entry(method.to_owned()).or_default() += 1;
        match method {
            "sale.order.get" => {
                let order = text(&body["id"]);
                Ok(json!({"order": {"id": order, "personTypeId": 1,
                    "payments": self.payments.get(&order).cloned().unwrap_or_default(),
                    "propertyValues": self.properties.get(&order).cloned().unwrap_or_default()}}))
            }
            "sale.payment.list" => {
                let order = text(&body["filter"]["orderId"]);
                Ok(json!({"payments": self.payments.get(&order).cloned().unwrap_or_default()}))
            }
            "sale.payment.add" => {
                self.next_id += 1;
                let mut p = body["fields"].clone();
                p["id"] = json!(100_000 + self.next_id);
                let order = text(&p["orderId"]);
                self.payments
                    .entry(order.clone())
                    .or_default()
                    .push(p.clone());
                self.note_paid(&order);
                Ok(json!({"payment": p}))
            }
            "sale.payment.update" => {
                let id = text(&body["id"]);
                let fields = body["fields"].as_object().cloned().unwrap_or_default();
                let (order, p) = self
                    .payments
                    .iter_mut()
                    .find_map(|(o, ps)| {
                        ps.iter_mut()
                            .find(|p| text(&p["id"]) == id)
                            .map(|p| (o.clone(), p))
                    })
                    .ok_or("payment does not exist")?;
                let sum_changes = fields
                    .get("sum")
                    .is_some_and(|v| text(v) != text(&p["sum"]));
                if p["paid"] == "Y" && sum_changes {
                    return Err("SALE_PAYMENT_NOT_ALLOWED_CHANGE_SUM".into());
                }
                for (k, v) in fields {
                    p[k] = v;
                }
                let p = p.clone();
                self.note_paid(&order);
                Ok(json!({"payment": p}))
            }
            "sale.propertyvalue.list" => {
                let order = text(&body["filter"]["orderId"]);
                Ok(
                    json!({"propertyValues": self.properties.get(&order).cloned().unwrap_or_default()}),
                )
            }
            "sale.property.list" => {
                let code = text(&body["filter"]["code"]);
                let id = match code.as_str() {
                    "PAID_AMOUNT" => 20,
                    _ => return Ok(json!({"properties": []})),
                };
                Ok(json!({"properties": [{"id": id, "code": code}]}))
            }
            "sale.propertyvalue.modify" => {
                let order = text(&body["fields"]["order"]["id"]);
                let given: Vec<Value> = body["fields"]["order"]["propertyValues"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| {
                        let code = if text(&v["orderPropsId"]) == "20" { "PAID_AMOUNT" } else { "EMAIL" };
                        json!({"orderPropsId": v["orderPropsId"], "code": code, "value": v["value"]})
                    })
                    .collect();
                self.properties.insert(order, given.clone());
                Ok(json!({"propertyValues": given}))
            }
            "sale.order.update" => Ok(json!({"order": {"id": body["id"]}})),
            other => Err(format!("ERROR_METHOD_NOT_FOUND {other}")),
        }
    }
}

async fn rest(
    State(store): State<Store>,
    Path(method): Path<String>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let method = method.trim_end_matches(".json").to_owned();
    let mut shop = store.lock().expect("lock");
    if !shop.admit() {
        shop.refused += 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}),
            ),
        )
            .into_response();
    }
    *shop.accepted.entry(method.clone()).or_default() += 1;
    if method == "batch" {
        let answer = shared::testing::bitrix_batch(&body, |m, p| match shop.call(m, p) {
            Ok(result) => (200, json!({ "result": result })),
            Err(e) => (400, json!({"error": "ERROR_CORE", "error_description": e})),
        });
        return Json(answer).into_response();
    }
    match shop.call(&method, &body) {
        Ok(result) => Json(json!({"result": result, "time": {}})).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "ERROR_CORE", "error_description": e})),
        )
            .into_response(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    paysync_e2e::percentile(sorted, p)
}

#[tokio::main]
async fn main() {
    // `RUST_LOG=shared=warn` shows why a message failed (the Makefile runs with logs off).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let orders: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let invocations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let push_orders: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(48);
    let per_second: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let burst: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    // The events queue, FIFO: what Lambda hands the function and what store-sync takes itself both come from it.
    let queue = Arc::new(MemoryQueue::new(
        i64::try_from(VISIBILITY.as_millis()).unwrap_or(2_000),
    ));

    let store: Store = Arc::new(Mutex::new(Shop {
        tokens: f64::from(burst),
        per_second: f64::from(per_second),
        burst: f64::from(burst),
        ..Shop::default()
    }));
    let app = Router::new()
        .route("/rest/1/load/{method}", post(rest))
        .with_state(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/rest/1/load/",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let ledger_store = Arc::new(MemoryLedgerStore::default());
    let events = Arc::new(MemoryPublisher::default());
    let deps = StoreDeps {
        // The deployment's share of the limit, as the shipped wiring keeps it (here in memory: one process).
        budget: Arc::new(shared::adapters::memory::MemoryBudget::new(
            shared::ports::budget::RestLimit {
                per_second: i64::from(per_second),
                burst: i64::from(burst),
                ..Default::default()
            },
        )),
        store: ledger_store.clone(),
        directory: ledger_store.clone(),
        cursors: ledger_store.clone(),
        markers: ledger_store.clone(),
        events: events.clone(),
        bitrix: Arc::new(shared::adapters::http::bitrix::HttpBitrix {
            client: shared::adapters::http::client().expect("client"),
            webhook_url: url,
        }),
        hooks: Arc::new(shared::adapters::http::hooks::HttpHooks::new()),
        overlap_minutes: 10,
        initial_days: 30,
        push: PushConfig {
            paid_amount_code: Some("PAID_AMOUNT".into()),
            paid_text_code: None,
            pay_systems: [("tbank".to_owned(), "5".to_owned())].into_iter().collect(),
            status_map: BTreeMap::new(),
            hooks: Vec::new(),
        },
        inbox: (push_orders > 10).then(|| queue.clone() as Arc<dyn shared::ports::EventsInbox>),
        push_orders,
    };
    let ledger = Ledger::new(ledger_store.as_ref(), events.as_ref());

    // The store's orders as checkout left them: one unpaid card payment each, and the buyer's e-mail.
    let ids: Vec<String> = (0..orders).map(|i| format!("{}", 500_000 + i)).collect();
    for (i, id) in ids.iter().enumerate() {
        let total = 150_000 + i64::try_from(i).unwrap_or(0) * 100;
        {
            let mut shop = store.lock().expect("lock");
            shop.totals
                .insert(id.clone(), shared::domain::money::format_minor(total));
            shop.payments.insert(
            id.clone(),
            vec![json!({"id": 900_000 + i, "orderId": id, "paid": "N", "sum": shared::domain::money::format_minor(total), "paySystemId": "5"})],
        );
            shop.properties.insert(
                id.clone(),
                vec![json!({"orderPropsId": 1, "code": "EMAIL", "value": "buyer@example.ru"})],
            );
        }
        ledger
            .register_order(
                &OrderId::parse(id.clone()).expect("id"),
                OrderInfo::new(Some(id.clone()), total, Currency::RUB),
            )
            .await
            .expect("register");
    }
    // Registration events are what the pull brings before the sale; they are not part of the measurement.
    let registered = events.events().len();

    // The burst: every order paid at once.
    let mut paid_at = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let total = 150_000 + i64::try_from(i).unwrap_or(0) * 100;
        let payment = format!("{}", 7_000_000 + i);
        let fact = PaymentFact::new(
            FactId::new(Source::Tbank, &format!("{payment}#CONFIRMED#{total}")).expect("id"),
            OrderId::parse(id.clone()).expect("id"),
            PaymentRef::new(Source::Tbank, &payment).expect("ref"),
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Payment { amount: total },
            shared::platform::clock::now_ms(),
        )
        .expect("fact");
        ledger.record(&fact).await.expect("paid");
        paid_at.insert(id.clone(), Instant::now());
    }
    let started = Instant::now();
    let before = store.lock().expect("lock").accepted.values().sum::<usize>();

    for e in &events.events()[registered..] {
        queue.send(&e.order_id, &json!({ "order_id": e.order_id }).to_string());
    }
    let deps = Arc::new(deps);
    let mut workers = Vec::new();
    for _ in 0..invocations {
        let (queue, deps, store) = (queue.clone(), deps.clone(), store.clone());
        workers.push(tokio::spawn(async move {
            loop {
                if store.lock().expect("lock").shown_paid.len() >= orders {
                    break;
                }
                // Lambda's poller: up to 10 visible messages, then the function; the failed ones come back after
                // the visibility timeout, the others are deleted.
                let handed = queue.receive(10);
                if handed.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let records: Vec<Value> = handed
                    .iter()
                    .map(|r| {
                        json!({"messageId": r.message.message_id, "body": r.message.body,
                        "attributes": {"MessageGroupId": r.group}})
                    })
                    .collect();
                let event = serde_json::from_value(json!({ "Records": records })).expect("event");
                let out = handle_events(&deps, event).await;
                for r in &handed {
                    let failed = out
                        .batch_item_failures
                        .iter()
                        .any(|f| f.item_identifier == r.message.message_id);
                    if !failed {
                        queue.delete(&r.message.receipt_handle);
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("worker");
    }
    let elapsed = started.elapsed();
    let shop = store.lock().expect("lock");
    let accepted = shop.accepted.values().sum::<usize>() - before;
    let mut latencies: Vec<Duration> = ids
        .iter()
        .filter_map(|id| Some(shop.shown_paid.get(id)?.duration_since(paid_at[id])))
        .collect();
    latencies.sort();
    println!(
        "store-sync under a REST limit of {per_second} req/s, burst {burst}: {orders} orders paid at once, \
         {invocations} concurrent invocations, Lambda's batches of 10, up to {push_orders} orders per invocation"
    );
    println!(
        "  shown paid: {} of {orders} in {:.1} s ({:.2} orders/s)",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  REST calls accepted: {accepted} ({:.2} per paid order), refused by the limit: {}",
        accepted as f64 / orders as f64,
        shop.refused
    );
    println!("  requests by method: {:?}", shop.accepted);
    println!("  methods run (inside batch too): {:?}", shop.commands);
    println!(
        "  payment → store shows paid: p50 {:.1} s, p99 {:.1} s",
        percentile(&latencies, 0.50).as_secs_f64(),
        percentile(&latencies, 0.99).as_secs_f64()
    );
}
