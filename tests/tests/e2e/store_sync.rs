//! store-sync end to end: a fake 1C-Bitrix REST server (inbound webhook, `sale.*` envelope and paging as the
//! reference documents them), the ledger on moto.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::sync::{Arc, Mutex};

use paysync_e2e::*;
use serde_json::{json, Value};
use shared::app::store_sync::{pull_orders, StoreDeps};
use shared::domain::OrderState;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The store's orders, served by `sale.order.list` with the `>=dateUpdate` filter, ordered by `dateUpdate`, 50 per
/// page; optionally answering 503 `QUERY_LIMIT_EXCEEDED` a few times first.
#[derive(Clone, Default)]
struct FakeStore {
    orders: Arc<Mutex<Vec<Value>>>,
    busy: Arc<Mutex<u32>>,
    filters: Arc<Mutex<Vec<(String, u64)>>>,
}

impl FakeStore {
    fn add(&self, id: u64, price: &str, updated: &str, canceled: bool) {
        self.orders.lock().expect("lock").push(json!({
            "id": id, "accountNumber": format!("{id}"), "price": serde_json::from_str::<Value>(price).expect("number"),
            "currency": "RUB", "statusId": "N", "canceled": if canceled { "Y" } else { "N" }, "payed": "N",
            "dateInsert": "2026-11-01T10:00:00+03:00", "dateUpdate": updated, "personTypeId": 1, "userId": 7
        }));
    }
}

impl Respond for FakeStore {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        {
            let mut busy = self.busy.lock().expect("lock");
            if *busy > 0 {
                *busy -= 1;
                return ResponseTemplate::new(503).set_body_json(
                    json!({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}),
                );
            }
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let from = body["filter"][">=dateUpdate"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let start = body["start"].as_u64().unwrap_or(0);
        self.filters
            .lock()
            .expect("lock")
            .push((from.clone(), start));
        let mut all: Vec<Value> = self
            .orders
            .lock()
            .expect("lock")
            .iter()
            .filter(|o| o["dateUpdate"].as_str().unwrap_or("") >= from.as_str())
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            (a["dateUpdate"].as_str(), a["id"].as_u64())
                .cmp(&(b["dateUpdate"].as_str(), b["id"].as_u64()))
        });
        let total = all.len() as u64;
        let page: Vec<Value> = all.into_iter().skip(start as usize).take(50).collect();
        let mut answer = json!({"result": {"orders": page}, "total": total, "time": {"start": 0}});
        if start + 50 < total {
            answer["next"] = json!(start + 50);
        }
        ResponseTemplate::new(200).set_body_json(answer)
    }
}

async fn store_env() -> (TestEnv, MockServer, FakeStore, StoreDeps) {
    let env = spawn_env().await;
    let bitrix = MockServer::start().await;
    let fake = FakeStore::default();
    for method_path in ["sale.order.list", "batch"] {
        Mock::given(method("POST"))
            .and(path(format!("/rest/1/secret-code/{method_path}.json")))
            .respond_with(fake.clone())
            .mount(&bitrix)
            .await;
    }
    // The store has no payment a waiting reference could name (its payments are not part of these tests).
    Mock::given(method("POST"))
        .and(path("/rest/1/secret-code/sale.payment.list.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"result": {"payments": []}, "total": 0, "time": {}})),
        )
        .mount(&bitrix)
        .await;
    let deps = env.store_deps(format!("{}/rest/1/secret-code/", bitrix.uri()), 36_500);
    (env, bitrix, fake, deps)
}

#[tokio::test]
async fn orders_come_in_across_pages_and_a_restart_reads_only_the_overlap() {
    let (env, _bitrix, fake, deps) = store_env().await;
    for i in 0..120u64 {
        fake.add(
            7000 + i,
            "1480.50",
            &format!("2026-11-28T10:{:02}:00+03:00", i % 60),
            false,
        );
    }
    let s = pull_orders(&deps).await.expect("pull");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!((s.pages, s.fetched, s.changed), (3, 120, 120));
    assert_eq!(s.watermark.as_deref(), Some("2026-11-28T10:59:00+03:00"));
    let order = env.order("7042").await.expect("order");
    let info = order.info.as_ref().expect("known to the store");
    assert_eq!(
        (info.total, info.number.as_deref()),
        (148_050, Some("7042"))
    );
    assert_eq!(order.state(), OrderState::Unpaid);

    // The next run starts at the watermark minus the overlap and changes nothing it re-reads.
    fake.add(7500, "100", "2026-11-28T11:30:00+03:00", false);
    let again = pull_orders(&deps).await.expect("pull");
    assert_eq!(again.from, "2026-11-28T10:49:00+03:00");
    assert_eq!((again.changed, again.unchanged), (1, again.fetched - 1));
    assert!(
        again.fetched < 120,
        "only the overlap is re-read: {}",
        again.fetched
    );
    let filters = fake.filters.lock().expect("lock").clone();
    assert_eq!(filters.last().map(|f| f.1), Some(0));
    // Least privilege, against what the code did: every call granted, every grant used.
    let unused = paysync_e2e::iam::assert_granted("StoreSyncFunction", &env.aws_calls.take());
    assert!(
        unused.is_empty(),
        "granted to StoreSyncFunction but never used: {unused:?}"
    );
}

#[tokio::test]
async fn money_that_came_first_waits_and_moves_to_its_order_once_the_store_describes_it() {
    let (env, _bitrix, fake, deps) = store_env().await;
    // The card payment arrives before the store told the ledger about the order: it names order 7101, which
    // nobody described yet, so it waits on its own `unmatched:` order (no order is made up from a number).
    assert_eq!(
        env.post_tbank(&tbank_note("7101", "55", "CONFIRMED", 150_000))
            .await
            .status,
        200
    );
    assert!(env.order("7101").await.is_none());
    let waiting = env
        .order("unmatched:tbank:55")
        .await
        .expect("waiting money");
    assert_eq!(waiting.totals().paid, 150_000);
    fake.add(7101, "5000", "2026-11-28T12:00:00+03:00", false);
    let s = pull_orders(&deps).await.expect("pull");
    assert_eq!((s.changed, s.references.resolved), (1, 1), "{s:?}");
    let order = env.order("7101").await.expect("order");
    assert!(!order.flags().contains(&"unknown_order"));
    assert_eq!(
        (order.totals().paid, order.state(), order.paid_percent()),
        (150_000, OrderState::PartiallyPaid, Some(30))
    );
    // Moved, not copied: the waiting line counts nothing any more, and a second run moves nothing.
    let waiting = env
        .order("unmatched:tbank:55")
        .await
        .expect("waiting money");
    assert_eq!(waiting.totals().paid, 0);
    let again = pull_orders(&deps).await.expect("pull");
    assert_eq!(again.references.waiting, 0, "{again:?}");
    assert_eq!(
        env.order("7101").await.expect("order").totals().paid,
        150_000
    );
    // A later notification of the same payment follows it to its order.
    assert_eq!(
        env.post_tbank(&tbank_note("7101", "55", "CONFIRMED", 150_000))
            .await
            .status,
        200
    );
    assert_eq!(env.facts("7101").await.len(), 1);
    let used = env.aws_calls.take();
    assert!(used.contains("dynamodb:Query"), "{used:?}");
}

#[tokio::test]
async fn a_busy_store_is_retried_and_a_cancelled_order_is_cancelled() {
    let (env, _bitrix, fake, deps) = store_env().await;
    fake.add(7201, "100", "2026-11-28T12:00:00+03:00", true);
    *fake.busy.lock().expect("lock") = 2;
    let s = pull_orders(&deps).await.expect("pull");
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.changed, 1);
    assert!(env.order("7201").await.expect("order").cancelled());
    // Busy for longer than the run is willing to wait: an error, and the watermark stays.
    *fake.busy.lock().expect("lock") = 10;
    fake.add(7202, "100", "2026-11-28T13:00:00+03:00", false);
    let s = pull_orders(&deps).await.expect("pull");
    assert_eq!(s.errors.len(), 1, "{s:?}");
    assert!(s.watermark.is_none() && !s.auth_failed);
    assert!(env.order("7202").await.is_none());
}

/// The store's payments, property values and order statuses, changed by `sale.*` calls like Bitrix does it
/// (including its refusal to change the sum of a paid payment and `propertyvalue.modify` dropping what it is not
/// given); optionally busy (503) for a number of calls.
#[derive(Clone, Default)]
struct FakeShop {
    state: Arc<Mutex<Shop>>,
}

#[derive(Default)]
struct Shop {
    /// Refuse payment updates for good (e.g. the order is locked by a manager).
    locked: bool,
    comments: Vec<String>,
    payments: Vec<Value>,
    properties: Vec<(String, Value)>,
    statuses: Vec<String>,
    /// Every method run, inside `batch` too.
    calls: Vec<String>,
    /// Every HTTP request (a `batch` once).
    requests: Vec<String>,
    busy: u32,
    next_id: u64,
}

fn as_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

impl Respond for FakeShop {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.state.lock().expect("lock");
        let method = req
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".json")
            .to_owned();
        s.requests.push(method.clone());
        if s.busy > 0 {
            s.busy -= 1;
            return ResponseTemplate::new(503)
                .set_body_json(json!({"error": "QUERY_LIMIT_EXCEEDED"}));
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let (status, answer) = if method == "batch" {
            let s = &mut *s;
            (
                200,
                shared::testing::bitrix_batch(&body, |m, p| {
                    s.calls.push(m.to_owned());
                    s.answer(m, p)
                }),
            )
        } else {
            s.calls.push(method.clone());
            s.answer(&method, &body)
        };
        ResponseTemplate::new(status).set_body_json(answer)
    }
}

impl Shop {
    /// One method's answer (status and body), as the store gives it alone or inside `batch`.
    fn answer(&mut self, method: &str, body: &Value) -> (u16, Value) {
        let s = self;
        let ok = |result: Value| (200, json!({"result": result, "time": {}}));
        let refused = |body: Value| (400, body);
        match method {
            "sale.order.get" => ok(json!({"order": {
                "id": body["id"], "personTypeId": 1, "payments": s.payments,
                "propertyValues": s.properties.iter()
                    .map(|(code, v)| json!({"orderPropsId": v["orderPropsId"], "code": code, "value": v["value"]}))
                    .collect::<Vec<_>>(),
            }})),
            "sale.payment.list" => ok(json!({"payments": s.payments})),
            "sale.payment.add" => {
                s.next_id += 1;
                let mut p = body["fields"].clone();
                p["id"] = json!(1000 + s.next_id);
                s.payments.push(p.clone());
                ok(json!({"payment": p}))
            }
            "sale.payment.update" if s.locked => refused(
                json!({"error": 0, "error_description": "SALE_ORDER_LOCKED: the order is being edited"}),
            ),
            "sale.payment.update" => {
                let id = as_text(&body["id"]);
                let fields = body["fields"].as_object().cloned().unwrap_or_default();
                if !fields.contains_key("paySystemId") {
                    return refused(
                        json!({"error": 0, "error_description": "paySystemId is required"}),
                    );
                }
                let Some(p) = s.payments.iter_mut().find(|p| as_text(&p["id"]) == id) else {
                    return refused(
                        json!({"error": 200640400001u64, "error_description": "payment does not exist"}),
                    );
                };
                let sum_changes = fields
                    .get("sum")
                    .is_some_and(|v| as_text(v) != as_text(&p["sum"]));
                if p["paid"] == "Y" && sum_changes {
                    return refused(
                        json!({"error": 0, "error_description": "SALE_PAYMENT_NOT_ALLOWED_CHANGE_SUM"}),
                    );
                }
                for (k, v) in fields {
                    p[k] = v;
                }
                let p = p.clone();
                ok(json!({"payment": p}))
            }
            "sale.propertyvalue.list" => ok(json!({"propertyValues": s
                .properties
                .iter()
                .map(|(code, v)| json!({"orderPropsId": v["orderPropsId"], "code": code, "value": v["value"]}))
                .collect::<Vec<_>>()})),
            "sale.property.list" => {
                let code = body["filter"]["code"].as_str().unwrap_or("");
                let id = match code {
                    "PAID_AMOUNT" => 20,
                    "PAID_TEXT" => 21,
                    _ => 0,
                };
                ok(
                    json!({"properties": if id > 0 { vec![json!({"id": id, "code": code})] } else { vec![] }}),
                )
            }
            "sale.propertyvalue.modify" => {
                let given = body["fields"]["order"]["propertyValues"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                // Whatever is not given is deleted.
                let codes: Vec<(String, Value)> = given
                    .iter()
                    .map(|g| {
                        let code = match as_text(&g["orderPropsId"]).as_str() {
                            "20" => "PAID_AMOUNT".to_owned(),
                            "21" => "PAID_TEXT".to_owned(),
                            "1" => "EMAIL".to_owned(),
                            "2" => "FILE".to_owned(),
                            other => other.to_owned(),
                        };
                        (code, g.clone())
                    })
                    .collect();
                s.properties = codes;
                ok(json!({"propertyValues": given}))
            }
            "sale.order.update" => {
                if let Some(c) = body["fields"]["comments"].as_str() {
                    s.comments.push(c.to_owned());
                } else {
                    let status = as_text(&body["fields"]["statusId"]);
                    s.statuses.push(status);
                }
                ok(json!({"order": {"id": body["id"]}}))
            }
            other => {
                refused(json!({"error": "ERROR_METHOD_NOT_FOUND", "error_description": other}))
            }
        }
    }
}

struct Push {
    env: TestEnv,
    shop: FakeShop,
    deps: StoreDeps,
    _bitrix: MockServer,
}

async fn push_env(order: &str, total: i64) -> Push {
    let env = spawn_env().await;
    let bitrix = MockServer::start().await;
    let shop = FakeShop::default();
    {
        let mut s = shop.state.lock().expect("lock");
        // What checkout created: one unpaid card payment for the whole order, and the buyer's properties.
        s.payments.push(
            json!({"id": 900, "orderId": order, "paid": "N", "sum": format!("{}", total / 100),
                                "paySystemId": 5, "isReturn": "N"}),
        );
        s.properties.push((
            "EMAIL".into(),
            json!({"orderPropsId": 1, "value": "buyer@example.ru"}),
        ));
        s.properties.push(("FILE".into(), json!({"orderPropsId": 2, "value": {"fileName": "rekv.pdf", "src": "/upload/rekv.pdf"}})));
    }
    Mock::given(method("POST"))
        .respond_with(shop.clone())
        .mount(&bitrix)
        .await;
    env.register_order(order, total).await;
    let mut deps = env.store_deps(format!("{}/rest/1/secret-code/", bitrix.uri()), 30);
    deps.push = shared::platform::config::PushConfig {
        paid_amount_code: Some("PAID_AMOUNT".into()),
        paid_text_code: Some("PAID_TEXT".into()),
        pay_systems: [("bank".to_owned(), "2".to_owned())].into_iter().collect(),
        status_map: [("partially_paid".to_owned(), "PP".to_owned())]
            .into_iter()
            .collect(),
        hooks: Vec::new(),
    };
    Push {
        env,
        shop,
        deps,
        _bitrix: bitrix,
    }
}

impl Push {
    fn batch(&self, order: &str, copies: usize) -> aws_lambda_events::event::sqs::SqsEvent {
        let records: Vec<Value> = (0..copies)
            .map(|i| {
                json!({"messageId": format!("m{i}"), "body": json!({"order_id": order}).to_string(),
                            "attributes": {"MessageGroupId": order}})
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).expect("event")
    }

    async fn deliver(&self, order: &str, copies: usize) -> usize {
        shared::app::store_sync::handle_events(&self.deps, self.batch(order, copies))
            .await
            .batch_item_failures
            .len()
    }

    fn paid_payments(&self) -> Vec<(String, String)> {
        self.shop
            .state
            .lock()
            .expect("lock")
            .payments
            .iter()
            .filter(|p| p["paid"] == "Y")
            .map(|p| (as_text(&p["sum"]), as_text(&p["xmlId"])))
            .collect()
    }

    fn property(&self, code: &str) -> Option<Value> {
        self.shop
            .state
            .lock()
            .expect("lock")
            .properties
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, v)| v["value"].clone())
    }
}

#[tokio::test]
async fn a_payment_reaches_the_store_once_though_its_message_comes_three_times() {
    let p = push_env("7301", 500_000).await;
    assert_eq!(
        p.env
            .post_tbank(&tbank_note("7301", "61", "CONFIRMED", 500_000))
            .await
            .status,
        200
    );
    assert_eq!(p.deliver("7301", 3).await, 0);
    // Checkout's own payment took the money (the store's normal "paid" path, which sends its paid e-mail).
    assert_eq!(
        p.paid_payments(),
        [("5000.00".to_owned(), "paysync:tbank:61".to_owned())]
    );
    let s = p.shop.state.lock().expect("lock");
    assert_eq!(s.payments.len(), 1, "nothing added");
    assert_eq!(
        s.calls
            .iter()
            .filter(|c| *c == "sale.payment.update")
            .count(),
        1
    );
    assert_eq!(
        s.calls
            .iter()
            .filter(|c| *c == "sale.propertyvalue.modify")
            .count(),
        1
    );
}

/// An SBP payment as T-Bank notifies it (the payer's masked phone in `Pan`, no card): the method reaches the ledger
/// line, the event on the queue, the store's payment and 1C's payment document.
#[tokio::test]
async fn an_sbp_payment_shows_its_method_on_the_queue_in_the_store_and_to_1c() {
    let p = push_env("7305", 150_000).await;
    let mut note: Value = serde_json::from_str(include_str!(
        "../../fixtures/acquiring/tbank__sbp-notification-confirmed.json"
    ))
    .expect("fixture");
    let body = note.as_object_mut().expect("object");
    body.remove("Token");
    body.insert("TerminalKey".into(), json!(TBANK_TERMINAL));
    body.insert("OrderId".into(), json!("7305"));
    let note = shared::testing::tbank_sign(&note, TBANK_PASSWORD);
    assert_eq!(p.env.post_tbank(&note).await.status, 200);
    let order = p.env.order("7305").await.expect("order");
    assert_eq!(order.state(), OrderState::Paid);
    let line = order.lines.values().next().expect("line");
    assert_eq!(line.pay_method, Some(shared::domain::PayMethod::Sbp));
    let events = p.env.drain_queue().await;
    let paid = events.last().expect("event");
    assert_eq!(paid.payments.len(), 1);
    assert_eq!(
        paid.payments[0].pay_method,
        Some(shared::domain::PayMethod::Sbp)
    );
    assert_eq!(
        paid.cause.as_ref().and_then(|c| c.pay_method.clone()),
        Some(shared::domain::PayMethod::Sbp)
    );

    assert_eq!(p.deliver("7305", 1).await, 0);
    {
        let s = p.shop.state.lock().expect("lock");
        let taken = s
            .payments
            .iter()
            .find(|x| x["paid"] == "Y")
            .expect("paid in the store");
        assert_eq!(taken["psStatusDescription"], "Способ оплаты: СБП");
    }

    // 1C asks in 2.05 (the order says it) and in 2.10 (the payment document says it too).
    let c = OneC::connect(&p.env).await;
    let xml = c.mode("query", "", b"").await;
    assert!(
        xml.contains("<Наименование>Вид оплаты</Наименование>")
            && xml.contains("<Значение>СБП</Значение>"),
        "{xml}"
    );
    c.mode("init", "&version=2.10", b"").await;
    let xml = c.mode("query", "", b"").await;
    assert_eq!(
        xml.matches("<Наименование>Вид оплаты</Наименование>")
            .count(),
        2,
        "{xml}"
    );
}

#[tokio::test]
async fn partial_then_full_payment_then_a_refund_show_in_the_store_and_other_properties_survive() {
    let p = push_env("7302", 500_000).await;
    p.env
        .post_tbank(&tbank_note("7302", "71", "CONFIRMED", 150_000))
        .await;
    assert_eq!(p.deliver("7302", 1).await, 0);
    assert_eq!(
        p.paid_payments(),
        [("1500.00".to_owned(), "paysync:tbank:71".to_owned())]
    );
    assert_eq!(p.property("PAID_AMOUNT"), Some(json!("1500.00")));
    assert_eq!(
        p.property("PAID_TEXT"),
        Some(json!("Оплачено: 1\u{a0}500 из 5\u{a0}000 (30%)"))
    );
    assert_eq!(p.shop.state.lock().expect("lock").statuses, ["PP"]);
    // The buyer's other properties, the file one included, are sent back untouched.
    assert_eq!(p.property("EMAIL"), Some(json!("buyer@example.ru")));
    assert_eq!(
        p.property("FILE").map(|v| v["fileName"].clone()),
        Some(json!("rekv.pdf"))
    );

    // The balance by card: a second store payment.
    p.env
        .post_tbank(&tbank_note("7302", "72", "CONFIRMED", 350_000))
        .await;
    assert_eq!(p.deliver("7302", 1).await, 0);
    let paid = p.paid_payments();
    assert_eq!(paid.len(), 2);
    assert_eq!(p.property("PAID_AMOUNT"), Some(json!("5000.00")));

    // The advance refunded in part, then in full: the paid sum is corrected through paid=N, then un-paid.
    p.env
        .post_tbank(&tbank_note("7302", "71", "PARTIAL_REFUNDED", 100_000))
        .await;
    assert_eq!(p.deliver("7302", 1).await, 0);
    assert!(p
        .paid_payments()
        .contains(&("1000.00".to_owned(), "paysync:tbank:71".to_owned())));
    p.env
        .post_tbank(&tbank_note("7302", "71", "REFUNDED", 0))
        .await;
    assert_eq!(p.deliver("7302", 1).await, 0);
    assert_eq!(
        p.paid_payments(),
        [("3500.00".to_owned(), "paysync:tbank:72".to_owned())]
    );
    let s = p.shop.state.lock().expect("lock");
    let returned = s
        .payments
        .iter()
        .find(|x| x["xmlId"] == "paysync:tbank:71")
        .expect("payment");
    assert_eq!(
        (returned["paid"].clone(), returned["payReturnNum"].clone()),
        (json!("N"), json!("71"))
    );
    drop(s);
    assert_eq!(p.property("PAID_AMOUNT"), Some(json!("3500.00")));
    // Least privilege, against what the code did: every call granted, every grant used (but Query, which only
    // the pull's look at waiting money makes: asserted in the money-first test).
    let mut unused = paysync_e2e::iam::assert_granted("StoreSyncFunction", &p.env.aws_calls.take());
    unused.remove("dynamodb:Query");
    assert!(
        unused.is_empty(),
        "granted to StoreSyncFunction but never used: {unused:?}"
    );
}

#[tokio::test]
async fn a_busy_store_fails_the_message_and_the_retry_lands_it_once() {
    let p = push_env("7303", 100_000).await;
    p.env
        .post_tbank(&tbank_note("7303", "81", "CONFIRMED", 100_000))
        .await;
    p.shop.state.lock().expect("lock").busy = 3;
    assert_eq!(
        p.deliver("7303", 1).await,
        1,
        "503 twice: SQS retries the message"
    );
    assert!(p.paid_payments().is_empty());
    assert_eq!(p.deliver("7303", 1).await, 0);
    assert_eq!(
        p.paid_payments(),
        [("1000.00".to_owned(), "paysync:tbank:81".to_owned())]
    );
}

#[tokio::test]
async fn an_outbound_hook_is_signed_retried_after_a_500_and_sent_once_per_event() {
    let mut p = push_env("7304", 100_000).await;
    let receiver = MockServer::start().await;
    Mock::given(path("/hs/reserve"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(path("/hs/reserve"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&receiver)
        .await;
    p.deps.push.hooks = vec![serde_json::from_value(json!({
        "url": format!("{}/hs/reserve", receiver.uri()), "on": ["paid"], "secret": "hook-secret"
    }))
    .expect("hook")];
    p.env
        .post_tbank(&tbank_note("7304", "91", "CONFIRMED", 100_000))
        .await;
    assert_eq!(
        p.deliver("7304", 1).await,
        1,
        "the receiver's 500 fails the message"
    );
    assert_eq!(p.deliver("7304", 1).await, 0, "the retry delivers it");
    assert_eq!(
        p.deliver("7304", 1).await,
        0,
        "a later change of a paid order does not send it again"
    );
    let received = receiver.received_requests().await.expect("recorded");
    assert_eq!(received.len(), 2);
    for r in &received {
        assert_eq!(
            r.headers
                .get("x-paysync-event-id")
                .and_then(|v| v.to_str().ok()),
            Some("7304#paid")
        );
        let signature = r
            .headers
            .get("x-paysync-signature")
            .and_then(|v| v.to_str().ok())
            .expect("signed");
        let t: i64 = signature
            .split(',')
            .next()
            .and_then(|x| x.strip_prefix("t="))
            .and_then(|x| x.parse().ok())
            .expect("timestamp");
        let body = String::from_utf8(r.body.clone()).expect("utf-8");
        assert_eq!(
            signature,
            shared::adapters::http::hooks::sign("hook-secret", t, &body)
        );
        let event: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            (event["type"].clone(), event["paid"].clone()),
            (json!("order.paid"), json!(100_000))
        );
    }
}

#[tokio::test]
async fn a_refused_webhook_is_reported_as_such() {
    let env = spawn_env().await;
    let bitrix = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}),
        ))
        .expect(1)
        .mount(&bitrix)
        .await;
    let deps = env.store_deps(format!("{}/rest/1/wrong/", bitrix.uri()), 30);
    let s = pull_orders(&deps).await.expect("pull");
    assert!(s.auth_failed, "{s:?}");
    assert!(s.errors[0].contains("NO_AUTH_FOUND"));
}

#[tokio::test]
async fn a_change_the_store_refuses_is_said_on_the_order_and_the_message_fails() {
    let p = push_env("7305", 100_000).await;
    p.env
        .post_tbank(&tbank_note("7305", "95", "CONFIRMED", 100_000))
        .await;
    p.shop.state.lock().expect("lock").locked = true;
    assert_eq!(
        p.deliver("7305", 2).await,
        2,
        "failed, and the rest of its group held back"
    );
    let s = p.shop.state.lock().expect("lock");
    assert!(
        s.comments.iter().any(|c| c.contains("SALE_ORDER_LOCKED")),
        "{:?}",
        s.comments
    );
    assert!(s.payments.iter().all(|x| x["paid"] == "N"));
}

/// Two invocations take from one budget in the ledger table (moto): the conditional write never lets them spend the
/// same call twice, so together they stay inside the store's burst.
#[tokio::test]
async fn concurrent_invocations_share_one_request_budget() {
    use shared::adapters::dynamo::{DynamoBudget, DynamoLedgerStore};
    use shared::ports::budget::{Priority, RequestBudget, RestLimit, Take};
    let env = spawn_env().await;
    let limit = RestLimit {
        per_second: 1,
        burst: 8,
        pull_reserve: 2,
    };
    // Two processes: two clients, two adapters, one row.
    let one = DynamoBudget::new(
        &DynamoLedgerStore::new(env.ddb.clone(), &env.table),
        "bitrix",
        limit,
    );
    let two = DynamoBudget::new(
        &DynamoLedgerStore::new(env.ddb.clone(), &env.table),
        "bitrix",
        limit,
    );
    let now = 1_795_824_000_000;
    let (a, b) = tokio::join!(
        async {
            let mut granted = 0;
            for _ in 0..10 {
                if one.take(Priority::Push, now).await.expect("take") == Take::Granted {
                    granted += 1;
                }
            }
            granted
        },
        async {
            let mut granted = 0;
            for _ in 0..10 {
                if two.take(Priority::Push, now).await.expect("take") == Take::Granted {
                    granted += 1;
                }
            }
            granted
        }
    );
    assert_eq!(a + b, 8, "the burst, once: {a} + {b}");
    // The pull waits for its reserve; a second later one more push goes.
    assert!(matches!(
        one.take(Priority::Pull, now + 1_000).await.expect("take"),
        Take::Wait(_)
    ));
    assert_eq!(
        two.take(Priority::Push, now + 1_000).await.expect("take"),
        Take::Granted
    );
    // The store's refusal empties it for everyone.
    one.drain(now + 5_000).await.expect("drain");
    assert!(matches!(
        two.take(Priority::Push, now + 5_000).await.expect("take"),
        Take::Wait(1000)
    ));
}

/// store-sync takes more of the FIFO events queue itself (moto over HTTP, the real SDK, the handler's recorded
/// client): the oldest first, never a message of an order whose earlier message is in flight, and what it handled
/// is deleted; every action it used is granted to store-sync in the template.
#[tokio::test]
async fn store_sync_takes_more_of_the_fifo_queue_one_order_at_a_time_and_deletes_what_it_handled() {
    use shared::ports::EventsInbox;
    let env = spawn_env().await;
    for (n, order) in ["7401", "7401", "7402"].iter().enumerate() {
        env.sqs
            .send_message()
            .queue_url(&env.queue_url)
            .message_body(json!({ "order_id": order, "n": n }).to_string())
            .message_group_id(*order)
            .message_deduplication_id(format!("d{n}"))
            .send()
            .await
            .expect("send");
    }
    let inbox =
        shared::adapters::sqs::SqsEventsInbox::new(env.handler_sqs.clone(), env.queue_url.clone());
    let body = |m: &shared::ports::InboxMessage| -> (String, u64) {
        let v: Value = serde_json::from_str(&m.body).expect("json");
        (as_text(&v["order_id"]), v["n"].as_u64().expect("n"))
    };
    let first = inbox.take(1).await.expect("take");
    assert_eq!(
        first.iter().map(body).collect::<Vec<_>>(),
        [("7401".to_owned(), 0)]
    );
    // 7401's first message is in flight: its second is not given, 7402's is.
    let second = inbox.take(10).await.expect("take");
    assert_eq!(
        second.iter().map(body).collect::<Vec<_>>(),
        [("7402".to_owned(), 2)]
    );
    inbox.done(&first).await.expect("done");
    let third = inbox.take(10).await.expect("take");
    assert_eq!(
        third.iter().map(body).collect::<Vec<_>>(),
        [("7401".to_owned(), 1)]
    );
    inbox.done(&[second, third].concat()).await.expect("done");
    let attributes = env
        .sqs
        .get_queue_attributes()
        .queue_url(&env.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
        attributes.get(&name).cloned().unwrap_or_default()
    };
    assert_eq!(
        (
            count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
            count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        ),
        ("0".to_owned(), "0".to_owned()),
        "all three deleted"
    );
    paysync_e2e::iam::assert_granted("StoreSyncFunction", &env.aws_calls.take());
}
