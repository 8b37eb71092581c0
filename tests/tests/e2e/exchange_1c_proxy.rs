//! exchange-1c in proxy mode: 1C ↔ paysync ↔ a fake 1C-Bitrix exchange endpoint (wiremock), ledger on moto.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::time::Duration;

use paysync_e2e::*;
use shared::app::exchange_1c::proxy::{UPSTREAM_DOWN, UPSTREAM_TIMEOUT};
use shared::app::exchange_1c::{respond, ExchangeDeps};
use shared::domain::OrderState;
use shared::formats::commerceml::text::to_windows_1251;
use shared::platform::config::{Exchange1cConfig, Secret};
use shared::testing::{fixtures_dir, request_with_headers};
use wiremock::matchers::{header, method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const COOKIE: &str = "PHPSESSID=26abebd6e578cc6d129cd14227438ee8";

fn bitrix(text: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "text/html; charset=windows-1251")
        .set_body_bytes(to_windows_1251(text))
}

/// A fake store endpoint answering like 1C-Bitrix's `sale` exchange.
async fn fake_bitrix() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(query_param("mode", "checkauth"))
        .and(header("authorization", "Basic MWM6cHc=")) // 1c:pw
        .respond_with(
            bitrix("success\nPHPSESSID\n26abebd6e578cc6d129cd14227438ee8\nsessid=5a562c8331776182a53b39fa228c99cc\n")
                .insert_header("set-cookie", "PHPSESSID=26abebd6e578cc6d129cd14227438ee8; path=/; HttpOnly"),
        )
        .mount(&server)
        .await;
    Mock::given(query_param("mode", "checkauth"))
        .respond_with(bitrix(
            "failure\nОшибка авторизации. Неверное имя пользователя или пароль.",
        ))
        .mount(&server)
        .await;
    Mock::given(query_param("mode", "init"))
        .respond_with(bitrix(
            "zip=no\nfile_limit=1000\nsessid=5a562c8331776182a53b39fa228c99cc\nversion=2.09",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(query_param("mode", "file"))
        .and(header("cookie", COOKIE))
        .respond_with(bitrix("success\n"))
        .mount(&server)
        .await;
    // Like Bitrix, the first import call runs out of its time slice and answers `progress`.
    Mock::given(query_param("mode", "import"))
        .respond_with(bitrix("progress\n"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(query_param("mode", "import"))
        .respond_with(bitrix("success\n"))
        .mount(&server)
        .await;
    let query = std::fs::read(
        fixtures_dir()
            .join("commerceml/dobromyslov__commerceml-parser__bitrix-query-response-full.xml"),
    )
    .expect("fixture");
    Mock::given(query_param("mode", "query"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/xml; charset=windows-1251")
                .set_body_bytes(query),
        )
        .mount(&server)
        .await;
    Mock::given(query_param("mode", "broken"))
        .respond_with(ResponseTemplate::new(500).set_body_string("Internal Server Error"))
        .mount(&server)
        .await;
    Mock::given(query_param("mode", "slow"))
        .respond_with(bitrix("success\n").set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    server
}

fn proxy(env: &TestEnv, upstream: &str, enrich: bool) -> ExchangeDeps {
    shared::wiring::exchange_1c(
        Exchange1cConfig {
            ledger: env.ledger_config(),
            user: String::new(),
            password: Secret::new(""),
            file_limit: 1000,
            import_budget_ms: 20_000,
            // The store's slow mode answers after 3 s.
            upstream_timeout_ms: 1_000,
            session_ttl_secs: 600,
            utc_offset_minutes: 180,
            refund_on_cancel: true,
            upstream: Some(upstream.to_owned()),
            enrich_query: enrich,
            query_undescribed: false,
        },
        &env.clients,
    )
    .expect("wiring")
}

struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: lambda_http::http::HeaderMap,
}

async fn call(deps: &ExchangeDeps, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let m = if body.is_empty() { "GET" } else { "POST" };
    let resp = respond(
        deps,
        request_with_headers(m, "/", query, headers, body, "10.0.0.1"),
    )
    .await;
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.body().as_ref().to_vec(),
    }
}

#[tokio::test]
async fn a_whole_1c_session_passes_through_and_the_upload_is_tapped_once() {
    let env = spawn_env().await;
    env.register_order("9001", 500_000).await;
    let store = fake_bitrix().await;
    let p = proxy(
        &env,
        &format!("{}/bitrix/admin/1c_exchange.php", store.uri()),
        true,
    );

    let auth = call(
        &p,
        "type=sale&mode=checkauth",
        &[("authorization", "Basic MWM6cHc=")],
        b"",
    )
    .await;
    assert_eq!(auth.status, 200);
    assert_eq!(
        auth.body,
        to_windows_1251("success\nPHPSESSID\n26abebd6e578cc6d129cd14227438ee8\nsessid=5a562c8331776182a53b39fa228c99cc\n")
    );
    assert_eq!(
        auth.headers.get("set-cookie").and_then(|v| v.to_str().ok()),
        Some("PHPSESSID=26abebd6e578cc6d129cd14227438ee8; path=/; HttpOnly")
    );
    assert_eq!(
        auth.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/html; charset=windows-1251")
    );
    let sess = "&sessid=5a562c8331776182a53b39fa228c99cc";
    let init = call(
        &p,
        &format!("type=sale&mode=init{sess}&version=2.08"),
        &[("cookie", COOKIE)],
        b"",
    )
    .await;
    assert_eq!(
        init.body,
        to_windows_1251(
            "zip=no\nfile_limit=1000\nsessid=5a562c8331776182a53b39fa228c99cc\nversion=2.09"
        )
    );
    let query = call(
        &p,
        &format!("type=sale&mode=query{sess}"),
        &[("cookie", COOKIE)],
        b"",
    )
    .await;
    let fixture = std::fs::read(
        fixtures_dir()
            .join("commerceml/dobromyslov__commerceml-parser__bitrix-query-response-full.xml"),
    )
    .expect("fixture");
    assert_eq!(
        query.body, fixture,
        "the store's query answer reaches 1C byte for byte"
    );

    // 1C uploads a bank receipt in three chunks, then imports it: the store gets it, and so does the ledger.
    let file = format!(
        "{}{}",
        r#"<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация ВерсияСхемы="2.08" ДатаФормирования="2026-11-27T12:00:00"><Документ><Ид>pp-9001</Ид><НомерВерсии>v1</НомерВерсии><ХозОперация>Выплата безналичных денег</ХозОперация><Сумма>1500.00</Сумма><Основание>9001</Основание><ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Оплачен</Наименование><Значение>true</Значение></ЗначениеРеквизита></ЗначенияРеквизитов>"#,
        "</Документ></КоммерческаяИнформация>"
    );
    for chunk in file.as_bytes().chunks(file.len().div_ceil(3)) {
        let r = call(
            &p,
            &format!("type=sale&mode=file&filename=orders.xml{sess}"),
            &[("cookie", COOKIE)],
            chunk,
        )
        .await;
        assert_eq!(r.body, b"success\n");
    }
    for expected in ["progress\n", "success\n", "success\n"] {
        let r = call(
            &p,
            &format!("type=sale&mode=import&filename=orders.xml{sess}"),
            &[("cookie", COOKIE)],
            b"",
        )
        .await;
        assert_eq!(r.body, expected.as_bytes());
        if expected.starts_with("progress") {
            assert!(
                env.facts("9001").await.is_empty(),
                "nothing is tapped before the store finished importing"
            );
        }
    }
    let order = env.order("9001").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.state()),
        (150_000, OrderState::PartiallyPaid)
    );
    assert_eq!(
        env.facts("9001").await.len(),
        1,
        "a repeated import changes the ledger once"
    );
    let uploads: Vec<_> = store
        .received_requests()
        .await
        .expect("recorded")
        .into_iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains("mode=file")))
        .collect();
    let upstream_file: Vec<u8> = uploads.iter().flat_map(|r| r.body.clone()).collect();
    assert_eq!(
        upstream_file,
        file.as_bytes(),
        "the store got the exact bytes 1C sent"
    );
}

#[tokio::test]
async fn store_errors_reach_1c_as_the_store_said_or_as_a_clean_failure() {
    let env = spawn_env().await;
    let store = fake_bitrix().await;
    let p = proxy(
        &env,
        &format!("{}/bitrix/admin/1c_exchange.php", store.uri()),
        true,
    );
    let wrong = call(
        &p,
        "type=sale&mode=checkauth",
        &[("authorization", "Basic bm9wZTpub3Bl")],
        b"",
    )
    .await;
    assert_eq!(
        wrong.body,
        to_windows_1251("failure\nОшибка авторизации. Неверное имя пользователя или пароль.")
    );
    let broken = call(&p, "type=sale&mode=broken", &[], b"").await;
    assert_eq!(
        (broken.status, broken.body.as_slice()),
        (500, b"Internal Server Error".as_slice())
    );
    let slow = call(&p, "type=sale&mode=slow", &[], b"").await;
    assert_eq!(
        slow.body,
        to_windows_1251(&format!("failure\n{UPSTREAM_TIMEOUT}"))
    );
    let down = proxy(
        &env,
        "http://127.0.0.1:9/bitrix/admin/1c_exchange.php",
        true,
    );
    let r = call(&down, "type=sale&mode=checkauth", &[], b"").await;
    assert_eq!(
        r.body,
        to_windows_1251(&format!("failure\n{UPSTREAM_DOWN}"))
    );
}

#[tokio::test]
async fn the_store_query_carries_the_ledger_payment_state_when_enrichment_is_on() {
    let env = spawn_env().await;
    // Order 132 of the store's answer was paid by card: the ledger knows, the store's export does not yet.
    env.register_order("132", 23_174).await;
    assert_eq!(
        env.post_tbank(&tbank_note("132", "555", "CONFIRMED", 23_174))
            .await
            .status,
        200
    );
    let store = fake_bitrix().await;
    let url = format!("{}/bitrix/admin/1c_exchange.php", store.uri());
    let fixture = std::fs::read(
        fixtures_dir()
            .join("commerceml/dobromyslov__commerceml-parser__bitrix-query-response-full.xml"),
    )
    .expect("fixture");
    let plain = call(
        &proxy(&env, &url, false),
        "type=sale&mode=query&sessid=x",
        &[("cookie", COOKIE)],
        b"",
    )
    .await;
    assert_eq!(plain.body, fixture, "enrichment off: pure relay");
    let enriched = call(
        &proxy(&env, &url, true),
        "type=sale&mode=query&sessid=x",
        &[("cookie", COOKIE)],
        b"",
    )
    .await;
    assert_ne!(enriched.body, fixture);
    let before = shared::formats::commerceml::read(&fixture).expect("store xml");
    let after =
        shared::formats::commerceml::read(&enriched.body).expect("still well-formed windows-1251");
    let (b, a) = (&before.documents[0], &after.documents[0]);
    assert_eq!(b.requisite("Заказ оплачен"), Some("false"));
    assert_eq!(a.requisite("Заказ оплачен"), Some("true"));
    assert_eq!(a.requisite("Сумма оплаты"), Some("231.74"));
    assert_eq!(a.requisite("Номер платежного документа"), Some("tbank:555"));
    assert_eq!(
        (&a.items, &a.counterparties, a.amount),
        (&b.items, &b.counterparties, b.amount)
    );
    assert_eq!(
        after.documents[1], before.documents[1],
        "orders the ledger holds no money for are untouched"
    );
}

#[tokio::test]
async fn a_tap_that_fails_is_retried_by_the_sweeper_and_applied_once() {
    let switch = Switch::start(&moto_endpoint()).await;
    let env = spawn_env_with(
        Endpoints::sqs(&switch.url),
        shared::platform::config::YooKassaVerify::Api,
    )
    .await;
    env.register_order("9100", 70_000).await;
    env.drain_queue().await;
    let store = fake_bitrix().await;
    let p = proxy(
        &env,
        &format!("{}/bitrix/admin/1c_exchange.php", store.uri()),
        true,
    );
    let file = r#"<?xml version="1.0" encoding="UTF-8"?><КоммерческаяИнформация ВерсияСхемы="2.08"><Документ><Ид>cash-9100</Ид><НомерВерсии>v1</НомерВерсии><ХозОперация>Выплата наличных денег</ХозОперация><Сумма>700.00</Сумма><Основание>9100</Основание><ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Оплачен</Наименование><Значение>true</Значение></ЗначениеРеквизита></ЗначенияРеквизитов></Документ></КоммерческаяИнформация>"#;
    let sess = "&sessid=5a562c8331776182a53b39fa228c99cc";
    let r = call(
        &p,
        &format!("type=sale&mode=file&filename=cod.xml{sess}"),
        &[("cookie", COOKIE)],
        file.as_bytes(),
    )
    .await;
    assert_eq!(r.body, b"success\n");
    let first = call(
        &p,
        &format!("type=sale&mode=import&filename=cod.xml{sess}"),
        &[("cookie", COOKIE)],
        b"",
    )
    .await;
    assert_eq!(first.body, b"progress\n");
    switch.set_up(false); // the events queue is down when the store finishes importing
    let r = call(
        &p,
        &format!("type=sale&mode=import&filename=cod.xml{sess}"),
        &[("cookie", COOKIE)],
        b"",
    )
    .await;
    assert_eq!(
        r.body, b"success\n",
        "1C hears what the store said, whatever the tap did"
    );
    switch.set_up(true);
    env.aws_calls.take(); // what exchange-1c did
    let deps = env.sweeper_deps();
    let report = shared::app::outbox_sweeper::handle(&deps, 0)
        .await
        .expect("sweep");
    assert_eq!((report.taps_found, report.taps_applied), (1, 1));
    assert_eq!(env.facts("9100").await.len(), 1, "applied once");
    assert_eq!(
        env.order("9100").await.expect("order").totals().paid,
        70_000
    );
    let events = env.drain_queue().await;
    assert_eq!(
        events.iter().filter(|e| e.order_id == "9100").count(),
        1,
        "announced once"
    );
    let again = shared::app::outbox_sweeper::handle(&deps, 0)
        .await
        .expect("sweep");
    assert_eq!(again.taps_found, 0, "nothing owed any more");
    // Least privilege, against what the code did: every call granted.
    let unused = paysync_e2e::iam::assert_granted("OutboxSweeperFunction", &env.aws_calls.take());
    // This tap was committed before the queue failed; PutItem is for a tap whose import never reached the table.
    assert_eq!(unused, ["dynamodb:PutItem".to_owned()].into());
}

/// Case 05 through the proxy: 1C uploads a zip and the store imports the XML inside by its own name; the tap
/// applies the entry from the archive once the store says `success`.
#[tokio::test]
async fn a_tapped_zip_is_applied_by_the_name_inside_it() {
    let env = spawn_env().await;
    env.register_order("7105", 250_000).await;
    let store = fake_bitrix().await;
    let p = proxy(
        &env,
        &format!("{}/bitrix/admin/1c_exchange.php", store.uri()),
        true,
    );
    let sess = "&sessid=5a562c8331776182a53b39fa228c99cc";
    let zip = shared::testing::case_file("05-zip-upload-imported-by-inner-name", "v8_3F1A_4.zip");
    let r = call(
        &p,
        &format!("type=sale&mode=file&filename=v8_3F1A_4.zip{sess}"),
        &[("cookie", COOKIE)],
        &zip,
    )
    .await;
    assert_eq!(r.body, b"success\n");
    let inner = "orders-52e1c0d4-8f3a-4b6e-a1d2-9c7b3e5f0a18.xml";
    for expected in [&b"progress\n"[..], b"success\n"] {
        let r = call(
            &p,
            &format!("type=sale&mode=import&filename={inner}{sess}"),
            &[("cookie", COOKIE)],
            b"",
        )
        .await;
        assert_eq!(
            r.body, expected,
            "1C hears the store's answers byte for byte"
        );
    }
    let order = env.order("7105").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.state()),
        (250_000, OrderState::Paid)
    );
}

/// Case 06 through the proxy: the old protocol's store imports during `file`; the tap applies the file once its
/// last piece (shorter than the store's `file_limit`) was accepted.
#[tokio::test]
async fn an_old_protocol_upload_is_tapped_on_its_last_piece() {
    let env = spawn_env().await;
    env.register_order("7106", 315_000).await;
    let store = fake_bitrix().await;
    let p = proxy(
        &env,
        &format!("{}/bitrix/admin/1c_exchange.php", store.uri()),
        true,
    );
    let r = call(&p, "type=sale&mode=init", &[("cookie", COOKIE)], b"").await;
    assert!(r.body.starts_with(b"zip=no\nfile_limit=1000"));
    let file = shared::testing::case_file("06-old-protocol-import-during-file", "v8_8E21_c.xml");
    let pieces: Vec<&[u8]> = file.chunks(1000).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let r = call(
            &p,
            "type=sale&mode=file&filename=v8_8E21_c.xml",
            &[("cookie", COOKIE)],
            piece,
        )
        .await;
        assert_eq!(r.body, b"success\n");
        let paid = env.order("7106").await.expect("order").totals().paid;
        assert_eq!(
            paid,
            if i + 1 == pieces.len() { 315_000 } else { 0 },
            "after piece {i}"
        );
    }
}
