//! store-sync end to end: a fake 1C-Bitrix REST server (inbound webhook, `sale.*` envelope and paging as the
//! reference documents them), the ledger on moto.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::sync::{Arc, Mutex};

use paysync_e2e::*;
use serde_json::{json, Value};
use shared::adapters::dynamo::DynamoLedgerStore;
use shared::domain::OrderState;
use shared::store_sync::{pull_orders, HttpBitrix, StoreDeps};
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
    Mock::given(method("POST"))
        .and(path("/rest/1/secret-code/sale.order.list.json"))
        .respond_with(fake.clone())
        .mount(&bitrix)
        .await;
    let deps = StoreDeps {
        store: Arc::new(DynamoLedgerStore::new(env.ddb.clone(), &env.table)),
        events: env.deps.events.clone(),
        bitrix: Arc::new(HttpBitrix {
            client: reqwest::Client::new(),
            webhook_url: format!("{}/rest/1/secret-code/", bitrix.uri()),
        }),
        overlap_minutes: 10,
        initial_days: 36_500,
    };
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
}

#[tokio::test]
async fn money_that_came_first_is_completed_by_the_pull_not_duplicated() {
    let (env, _bitrix, fake, deps) = store_env().await;
    // The card payment arrives before the store told the ledger about the order.
    assert_eq!(
        env.post_tbank(&tbank_note("7101", "55", "CONFIRMED", 150_000))
            .await
            .status,
        200
    );
    let before = env.order("7101").await.expect("order");
    assert!(before.flags().contains(&"unknown_order"));
    fake.add(7101, "5000", "2026-11-28T12:00:00+03:00", false);
    let s = pull_orders(&deps).await.expect("pull");
    assert_eq!((s.changed, s.completed), (1, 1));
    let order = env.order("7101").await.expect("order");
    assert!(!order.flags().contains(&"unknown_order"));
    assert_eq!(
        (order.totals().paid, order.state(), order.paid_percent()),
        (150_000, OrderState::PartiallyPaid, Some(30))
    );
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
    assert!(s.watermark.is_none());
    assert!(env.order("7202").await.is_none());
}
