//! The handouts' real-world cases (`../shared/cases/`), each with its expected values, through the real handlers on
//! moto and a fake store that answers Bitrix's REST as documented (`sale.order.list` pages from the case,
//! `sale.payment.list` by filter). Issue #14.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::sync::{Arc, Mutex};

use paysync_e2e::*;
use serde_json::{json, Value};
use shared::app::store_sync::{pull_orders, StoreDeps};
use shared::domain::OrderState;
use shared::platform::config::{Secret, YooKassaVerify};
use shared::testing::{case_file, function_url_request};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A store whose `sale.order.list` answer is a case's page, whose orders have no further details, and whose
/// payments are the case's `sale.payment.list` answer, filtered by what is asked.
#[derive(Clone, Default)]
struct CaseStore {
    page: Arc<Mutex<Value>>,
    payments: Arc<Mutex<Vec<Value>>>,
    calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl wiremock::Respond for CaseStore {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let method = req
            .url
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".json")
            .to_owned();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        self.calls
            .lock()
            .expect("lock")
            .push((method.clone(), body.clone()));
        let answer = match method.as_str() {
            "sale.order.list" => {
                let page = self.page.lock().expect("lock").clone();
                let filter = &body["filter"];
                let orders: Vec<Value> = page["result"]["orders"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|o| {
                        ["id", "accountNumber"].iter().all(|k| {
                            filter.get(*k).is_none_or(|want| {
                                o[*k].to_string().trim_matches('"')
                                    == want.to_string().trim_matches('"')
                            })
                        })
                    })
                    .collect();
                json!({"result": {"orders": orders}, "total": orders.len(), "time": {}})
            }
            "batch" => json!({"result": {"result": {}, "result_error": []}, "time": {}}),
            "sale.payment.list" => {
                let filter = body["filter"].as_object().cloned().unwrap_or_default();
                let found: Vec<Value> = self
                    .payments
                    .lock()
                    .expect("lock")
                    .iter()
                    .filter(|p| {
                        filter.iter().all(|(k, want)| {
                            p[k].to_string().trim_matches('"') == want.to_string().trim_matches('"')
                        })
                    })
                    .cloned()
                    .collect();
                json!({"result": {"payments": found}, "total": found.len(), "time": {}})
            }
            other => {
                return ResponseTemplate::new(404).set_body_json(
                    json!({"error": "ERROR_METHOD_NOT_FOUND", "error_description": other}),
                )
            }
        };
        ResponseTemplate::new(200).set_body_json(answer)
    }
}

struct Case {
    env: TestEnv,
    _bitrix: MockServer,
    store: CaseStore,
    deps: StoreDeps,
}

async fn case_env(verify: YooKassaVerify) -> Case {
    let env = spawn_env_with(Endpoints::default(), verify).await;
    let bitrix = MockServer::start().await;
    let store = CaseStore::default();
    Mock::given(method("POST"))
        .respond_with(store.clone())
        .mount(&bitrix)
        .await;
    let deps = env.store_deps(format!("{}/rest/1/case/", bitrix.uri()), 36_500);
    Case {
        env,
        _bitrix: bitrix,
        store,
        deps,
    }
}

/// A case whose Sber callbacks are signed with `key` and carry their amounts (no gateway look-up).
async fn case_env_sber(key: &str) -> Case {
    let mut c = case_env(YooKassaVerify::Api).await;
    if let Some(sber) = c.env.deps.config.sber.as_mut() {
        sber.callback_token = Secret::new(key);
        sber.api = None;
    }
    c
}

/// A case whose store has described the orders of its `page` (store-sync pulled them).
async fn described(verify: YooKassaVerify, case: &str, page: &str) -> Case {
    let c = case_env(verify).await;
    c.set_page(case, page);
    c.pull().await;
    c
}

impl Case {
    fn set_page(&self, case: &str, file: &str) {
        *self.store.page.lock().expect("lock") =
            serde_json::from_slice(&case_file(case, file)).expect("page json");
    }

    fn add_payments(&self, case: &str, file: &str) {
        let answer: Value = serde_json::from_slice(&case_file(case, file)).expect("payments json");
        self.store.payments.lock().expect("lock").extend(
            answer["result"]["payments"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }

    async fn paid(&self, order: &str) -> (i64, Option<OrderState>) {
        match self.env.order(order).await {
            Some(o) => (o.totals().paid, Some(o.state())),
            None => (0, None),
        }
    }

    async fn pull(&self) -> shared::app::store_sync::PullSummary {
        // The watermark would skip a page of older orders: each step of a case is a fresh look at the store.
        let s = pull_orders(&self.deps).await.expect("pull");
        assert!(s.errors.is_empty(), "{s:?}");
        s
    }
}

const CASE_01: &str = "01-yookassa-bitrix-payment-id-as-order";
const CASE_02: &str = "02-sber-bitrix-ordernumber-suffix";

#[tokio::test]
async fn case_01_yookassa_payment_id_is_never_an_order_id() {
    // 1. The store's order 1042 (1480.50, unpaid).
    let c = described(YooKassaVerify::Ip, CASE_01, "store-orders-before.json").await;
    // 2. Bitrix's own YooKassa handler: BX_PAYMENT_NUMBER = payment 1187. Acknowledged with 200.
    let body = case_file(CASE_01, "notification.json");
    let reply = c
        .env
        .post_json(
            "yookassa",
            &serde_json::from_slice(&body).expect("json"),
            "185.71.76.10",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let waiting = "unmatched:yookassa:2f9c1e77-000f-5001-9000-1a2b3c4d5e6f";
    assert_eq!(c.paid(waiting).await.0, 148_050, "kept, not guessed");
    assert_eq!(c.paid("1187").await, (0, None));
    // 3. The store creates its order 1187 (another customer); 4. the store knows payment 1187 (of order 1042).
    c.set_page(CASE_01, "store-orders-later.json");
    c.add_payments(CASE_01, "store-payment-1187.json");
    let s = c.pull().await;
    assert_eq!(s.references.resolved, 1, "{s:?}");
    assert_eq!(c.paid("1187").await, (0, Some(OrderState::Unpaid)));
    assert_eq!(c.paid("1042").await, (148_050, Some(OrderState::Paid)));
    assert_eq!(c.paid(waiting).await.0, 0, "moved, not copied");
    assert!(c
        .env
        .facts("1187")
        .await
        .iter()
        .all(|f| !f.payment.as_str().starts_with("yookassa:")));
    // A later refund follows the money to the same place.
    let refund = json!({"type": "notification", "event": "refund.succeeded", "object": {
        "id": "rf-01", "payment_id": "2f9c1e77-000f-5001-9000-1a2b3c4d5e6f", "status": "succeeded",
        "amount": {"value": "480.50", "currency": "RUB"}, "created_at": "2026-11-29T10:00:00.000Z"}});
    assert_eq!(
        c.env
            .post_json("yookassa", &refund, "185.71.76.10")
            .await
            .status,
        200
    );
    let order = c.env.order("1042").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.totals().refunded),
        (148_050, 48_050)
    );
    assert_eq!(c.paid("1187").await.0, 0);
    // 1C's query: order 1187 is never "paid".
    let one_c = OneC::connect(&c.env).await;
    let query = one_c.mode("query", "", b"").await;
    assert!(!query.contains("unmatched:"), "{query}");
    let doc_1187 = query
        .split("<Документ>")
        .find(|d| d.contains("<Ид>1187</Ид>"))
        .unwrap_or_default();
    let paid_flag = doc_1187
        .split("Заказ оплачен")
        .nth(1)
        .map(|rest| rest.chars().take(80).collect::<String>())
        .unwrap_or_default();
    assert!(!paid_flag.contains("true"), "{doc_1187}");
}

#[tokio::test]
async fn case_02_sber_order_numbers_with_suffixes_find_their_orders() {
    // The case's (made-up) callback key; every checksum in it is signed with this.
    let c = case_env_sber("tq3k9v0s7m2p5x8z1c4b6n").await;
    // 1. Store orders 1042 (1480.50) and 1043 (990.00).
    c.set_page(CASE_02, "store-orders.json");
    c.pull().await;
    let get = |file: &str| {
        let q = String::from_utf8(case_file(CASE_02, file)).expect("query");
        function_url_request(
            "GET",
            "/lambda-url/acquiring-callback/sber",
            q.trim(),
            None,
            b"",
            "194.54.14.1",
        )
    };
    // 2. The RBS module: 1043_0 is order 1043, attempt 0.
    let reply = c.env.call(get("callback-rbs-module.query")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(c.paid("1043").await, (99_000, Some(OrderState::Paid)));
    assert!(c.env.order("1043_0").await.is_none());
    // 3. Bitrix's own handler: 1187_3_1 is payment 1187 of pay system 3, second attempt.
    let reply = c.env.call(get("callback-bitrix-core.query")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for phantom in ["1187_3_1", "1187_3", "1187"] {
        assert!(c.env.order(phantom).await.is_none(), "{phantom}");
    }
    // 4. The store's order 1187 appears; the store knows payment 1187 (of order 1042, pay system 3).
    c.set_page(CASE_02, "store-orders-later.json");
    c.add_payments(CASE_02, "store-payment-1187.json");
    let s = c.pull().await;
    assert_eq!(s.references.resolved, 1, "{s:?}");
    assert_eq!(c.paid("1042").await, (148_050, Some(OrderState::Paid)));
    assert_eq!(c.paid("1187").await, (0, Some(OrderState::Unpaid)));
    let one_c = OneC::connect(&c.env).await;
    let query = one_c.mode("query", "", b"").await;
    for phantom in ["<Ид>1043_0</Ид>", "<Ид>1187_3_1</Ид>", "unmatched:"] {
        assert!(!query.contains(phantom), "{phantom} in {query}");
    }
}

/// The kind of case 02 with another pay system: `1187_5` names payment 1187 only if it is of pay system 5.
#[tokio::test]
async fn a_pay_system_that_is_not_the_payments_does_not_resolve_it() {
    let c = case_env_sber("k").await;
    c.set_page(CASE_02, "store-orders.json");
    c.add_payments(CASE_02, "store-payment-1187.json");
    c.pull().await;
    let sign = |params: &str| shared::testing::sber_sign(params, "k");
    let q = sign(
        "mdOrder=aa-1&orderNumber=1187_5&operation=deposited&status=1&amount=148050&currency=643",
    );
    let reply = c
        .env
        .call(function_url_request(
            "GET",
            "/lambda-url/acquiring-callback/sber",
            &q,
            None,
            b"",
            "194.54.14.1",
        ))
        .await;
    assert_eq!(reply.status, 200);
    let s = c.pull().await;
    assert_eq!(
        (s.references.resolved, s.references.unresolved),
        (0, 1),
        "{s:?}"
    );
    assert_eq!(c.paid("1042").await.0, 0);
    assert_eq!(c.paid("unmatched:sber:aa-1").await.0, 148_050);
}

const CASE_04: &str = "04-commerceml-nomer-is-account-number";

/// Case 04: 1C's `Ид` is the store's order id and `Номер` its account number; order 392 is another order.
#[tokio::test]
async fn case_04_one_c_document_finds_its_order_by_id_before_number() {
    let c = described(YooKassaVerify::Api, CASE_04, "store-orders.json").await;
    let one_c = OneC::connect(&c.env).await;
    assert!(one_c
        .mode("init", "&version=2.08", b"")
        .await
        .starts_with("zip="));
    let name = "orders-7d0e5a64-3c1b-4f7e-9a52-0b8d6c2e1f90.xml";
    one_c.send_file(name, &case_file(CASE_04, name)).await;
    let answer = one_c
        .mode("import", &format!("&filename={name}"), b"")
        .await;
    assert_eq!(answer, "success\n");
    assert_eq!(c.paid("236").await, (148_050, Some(OrderState::Paid)));
    let other = c.env.order("392").await.expect("order 392");
    assert_eq!(
        (other.totals().paid, other.state()),
        (0, OrderState::Unpaid)
    );
    assert!(!other.cancelled());
    assert!(other.lines.keys().all(|p| !p.as_str().starts_with("1c:")));
}

/// The kind of case 04: a document naming an order the store never described is reported as Bitrix reports it,
/// never applied to an invented order.
#[tokio::test]
async fn a_one_c_document_for_an_order_nobody_described_is_reported_not_invented() {
    let c = case_env(YooKassaVerify::Api).await;
    let one_c = OneC::connect(&c.env).await;
    one_c.mode("init", "&version=2.08", b"").await;
    let name = "orders-7d0e5a64-3c1b-4f7e-9a52-0b8d6c2e1f90.xml";
    one_c.send_file(name, &case_file(CASE_04, name)).await;
    let answer = one_c
        .mode("import", &format!("&filename={name}"), b"")
        .await;
    assert!(answer.starts_with("success\n"), "{answer}");
    assert!(answer.contains("Документ с Ид - 236."), "{answer}");
    assert!(c.env.order("236").await.is_none() && c.env.order("392").await.is_none());
}

const CASE_05: &str = "05-zip-upload-imported-by-inner-name";
const CASE_06: &str = "06-old-protocol-import-during-file";

/// Case 05: with `zip=yes`, 1C uploads an archive and imports the XML inside it by its own name.
#[tokio::test]
async fn case_05_a_zip_is_imported_by_the_name_of_the_file_inside() {
    let c = case_env(YooKassaVerify::Api).await;
    c.env.register_order("7105", 250_000).await;
    let one_c = OneC::connect(&c.env).await;
    assert!(one_c
        .mode("init", "&version=2.10", b"")
        .await
        .starts_with("zip=yes"));
    one_c
        .send_file("v8_3F1A_4.zip", &case_file(CASE_05, "v8_3F1A_4.zip"))
        .await;
    let inner = "orders-52e1c0d4-8f3a-4b6e-a1d2-9c7b3e5f0a18.xml";
    let mut answer = String::new();
    for _ in 0..5 {
        answer = one_c
            .mode("import", &format!("&filename={inner}"), b"")
            .await;
        if !answer.starts_with("progress") {
            break;
        }
    }
    assert!(answer.starts_with("success"), "{answer}");
    let order = c.env.order("7105").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.state()),
        (250_000, OrderState::Paid)
    );
    assert!(order
        .lines
        .keys()
        .any(|p| p.as_str() == "1c:3a9d4c1e-5b6f-11ee-8c99-0242ac120002"));
    // Again: nothing changes. And the archive's own name still works.
    one_c
        .mode("import", &format!("&filename={inner}"), b"")
        .await;
    one_c.mode("import", "&filename=v8_3F1A_4.zip", b"").await;
    assert_eq!(
        c.env.order("7105").await.expect("order").totals().paid,
        250_000
    );
}

/// `mode=file` in pieces of 1024 bytes (the helper's file_limit); the last answer.
async fn send_in_pieces(one_c: &OneC, file: &[u8]) -> String {
    let mut last = String::new();
    for piece in file.chunks(1024) {
        last = one_c.mode("file", "&filename=v8_8E21_c.xml", piece).await;
    }
    last
}

/// Case 06: the old protocol (no `version` at `init`) imports during `file` and never calls `import`.
#[tokio::test]
async fn case_06_the_old_protocol_imports_during_file() {
    let c = case_env(YooKassaVerify::Api).await;
    c.env.register_order("7106", 315_000).await;
    let one_c = OneC::connect(&c.env).await;
    let init = one_c.mode("init", "", b"").await;
    assert_eq!(init.lines().count(), 2, "{init}");
    let file = case_file(CASE_06, "v8_8E21_c.xml");
    // In pieces of the file_limit 1C was told (1024 here), as 1C sends it: the short last piece ends the file.
    let answer = send_in_pieces(&one_c, &file).await;
    assert!(answer.starts_with("success"), "{answer}");
    assert_eq!(c.paid("7106").await, (315_000, Some(OrderState::Paid)));
    // The next exchange sends the same file again: nothing changes.
    let next = OneC::connect(&c.env).await;
    next.mode("init", "", b"").await;
    let again = send_in_pieces(&next, &file).await;
    assert!(again.starts_with("success"), "{again}");
    assert_eq!(c.paid("7106").await.0, 315_000);
}

const CASE_07: &str = "07-statement-bitrix-payment-number-slash";
const CASE_08: &str = "08-statement-schet-oferta-wording";
const CASE_09: &str = "09-tbank-api-operation-counterparty-only";

/// statement-pull over one source: the case's file (or API page) served by a local fake bank.
async fn pull_statement(
    c: &Case,
    source: shared::platform::config::SourceConfig,
    body: Vec<u8>,
) -> shared::app::statement_pull::SourceSummary {
    let bank = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
        .mount(&bank)
        .await;
    let source = match source {
        shared::platform::config::SourceConfig::ClientbankUrl { account, .. } => {
            shared::platform::config::SourceConfig::ClientbankUrl {
                account,
                url: format!("{}/kl_to_1c.txt", bank.uri()),
            }
        }
        other => other,
    };
    let deps = c.env.pull_deps(vec![source], bank.uri());
    let mut summaries = shared::app::statement_pull::handle(&deps)
        .await
        .expect("pull");
    summaries.pop().expect("one source")
}

fn file_source() -> shared::platform::config::SourceConfig {
    shared::platform::config::SourceConfig::ClientbankUrl {
        account: "40702810400000067890".into(),
        url: String::new(),
    }
}

/// Case 07: `№ 392/1` is Bitrix's payment 1 of order number 392, not order 1; the buyer's return of the
/// overpayment is a refund on it.
#[tokio::test]
async fn case_07_a_payment_account_number_names_its_order() {
    let c = described(YooKassaVerify::Api, CASE_07, "store-orders.json").await;
    let s = pull_statement(&c, file_source(), case_file(CASE_07, "kl_to_1c.txt")).await;
    assert_eq!((s.matched, s.unmatched, s.refunds), (1, 0, 1), "{s:?}");
    assert!(s.errors.is_empty(), "{s:?}");
    let o = c.env.order("392").await.expect("order");
    assert_eq!(
        (o.totals().paid, o.totals().refunded, o.state()),
        (196_100, 48_050, OrderState::Paid)
    );
    assert_eq!(c.paid("1").await, (0, Some(OrderState::Unpaid)));
    let again = pull_statement(&c, file_source(), case_file(CASE_07, "kl_to_1c.txt")).await;
    assert_eq!((again.new, again.matched), (0, 0), "{again:?}");
}

/// Case 08: `счет-оферта`, `счет-договор`, `№№ a, b`, `заказа N`.
#[tokio::test]
async fn case_08_invoice_wording_as_shops_print_it() {
    let c = described(YooKassaVerify::Api, CASE_08, "store-orders.json").await;
    let s = pull_statement(&c, file_source(), case_file(CASE_08, "kl_to_1c.txt")).await;
    assert_eq!((s.matched, s.partial, s.unmatched), (4, 1, 0), "{s:?}");
    assert_eq!(
        c.paid("4512").await,
        (1_250_000, Some(OrderState::PartiallyPaid))
    );
    assert_eq!(c.paid("4513").await, (990_000, Some(OrderState::Paid)));
    assert_eq!(c.paid("4514").await, (210_000, Some(OrderState::Paid)));
    assert_eq!(c.paid("4515").await, (350_000, Some(OrderState::Paid)));
    assert_eq!(c.paid("4516").await, (138_300, Some(OrderState::Paid)));
}

/// Case 09: T-Bank Business operations that name only `counterParty` and no account of their own.
#[tokio::test]
async fn case_09_operations_with_only_a_counterparty_are_read() {
    let c = described(YooKassaVerify::Api, CASE_09, "store-orders.json").await;
    let source = shared::platform::config::SourceConfig::TbankApi {
        account: "40702810400000067890".into(),
        token: shared::platform::config::Secret::new("test-token"),
    };
    let s = pull_statement(&c, source, case_file(CASE_09, "statement-page.json")).await;
    assert_eq!((s.fetched, s.new, s.matched), (2, 2, 2), "{s:?}");
    assert!(s.errors.is_empty(), "{s:?}");
    let o = c.env.order("392").await.expect("order");
    assert_eq!((o.totals().paid, o.state()), (148_050, OrderState::Paid));
    let line = o.lines.values().next().expect("line");
    let payer = line.payer.as_ref().expect("payer");
    assert_eq!(
        (payer.inn.as_deref(), payer.account.as_deref()),
        (Some("7799000111"), Some("40702810000000000111"))
    );
    assert_eq!(
        o.lines.keys().next().map(|p| p.as_str().to_owned()),
        Some("bank:40702810400000067890#2026-11-28#815#148050#40702810000000000111".to_owned())
    );
    assert_eq!(c.paid("1043").await, (99_000, Some(OrderState::Paid)));
}

const CASE_11: &str = "11-query-exports-unmatched-money-as-orders";

/// Case 11: money without an order (a bank receipt nobody could match, a YooKassa payment without metadata) is
/// kept where people resolve it and never goes to 1C's query as an order, whatever the schema version.
#[tokio::test]
async fn case_11_unmatched_money_is_never_exported_to_one_c_as_an_order() {
    let c = case_env(YooKassaVerify::Ip).await;
    let s = pull_statement(&c, file_source(), case_file(CASE_11, "kl_to_1c.txt")).await;
    assert_eq!(s.unmatched, 1, "{s:?}");
    let reply = c
        .env
        .post_json(
            "yookassa",
            &serde_json::from_slice(&case_file(CASE_11, "yookassa-no-metadata.json"))
                .expect("json"),
            "185.71.76.10",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        c.paid("unmatched:yookassa:30a1b2c3-000f-5000-8000-0a1b2c3d4e5f")
            .await
            .0,
        75_000
    );
    for version in ["2.10", "2.08"] {
        let one_c = OneC::connect(&c.env).await;
        one_c
            .mode("init", &format!("&version={version}"), b"")
            .await;
        let query = one_c.mode("query", "", b"").await;
        assert!(query.contains("encoding=\"windows-1251\""), "{query}");
        assert!(!query.contains("unmatched:"), "{version}: {query}");
        assert!(!query.contains("<Документ>"), "{version}: {query}");
        assert_eq!(one_c.mode("success", "", b"").await, "success\n");
    }
}
