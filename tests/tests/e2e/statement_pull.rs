//! statement-pull end to end: a fake T-Bank Business API serving the synthetic statement pages, the ledger on moto.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use paysync_e2e::*;
use shared::adapters::sqs::SqsEventPublisher;
use shared::app::ledger::Ledger;
use shared::app::statement_pull::{handle, PullDeps};
use shared::domain::{Currency, OrderId, OrderInfo, OrderState};
use shared::platform::config::SourceConfig;
use shared::testing::fixtures_dir;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

/// The run's dependencies: the env's ledger, the env's fake API as the bank, these sources.
fn pull_deps(env: &TestEnv, sources: Vec<SourceConfig>) -> PullDeps {
    env.pull_deps(sources, env.yookassa_api.uri())
}

fn tbank(token: &str) -> SourceConfig {
    SourceConfig::TbankApi {
        account: "40702810900000012345".into(),
        token: shared::platform::config::Secret::new(token),
    }
}

async fn register(env: &TestEnv, id: &str, total: i64, invoice: &str) {
    let mut info = OrderInfo::new(Some(id.into()), total, Currency::RUB);
    info.details.invoices = vec![invoice.into()];
    let events = SqsEventPublisher::new(env.sqs.clone(), &env.queue_url);
    Ledger::new(&env.store, &events)
        .register_order(&OrderId::parse(id).expect("id"), info)
        .await
        .expect("register");
}

#[tokio::test]
async fn b2b_payments_from_the_bank_api_mark_orders_paid_once() {
    let env = spawn_env().await;
    register(&env, "5001", 500_000, "1024").await;
    register(&env, "5002", 4_200_050, "ТМ-0457").await;
    let api = &env.yookassa_api; // any local fake server will do
    let page = |n: u8| {
        std::fs::read(fixtures_dir().join(format!(
            "statements/tbank-api__synthetic__statement-page{n}.json"
        )))
        .expect("page")
    };
    Mock::given(method("GET"))
        .and(path("/api/v1/statement"))
        .and(header("authorization", "Bearer t-token"))
        .and(query_param("accountNumber", "40702810900000012345"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(page(1)))
        .mount(api)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/statement"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(page(2)))
        .mount(api)
        .await;
    let deps = pull_deps(&env, vec![tbank("t-token")]);
    let first = handle(&deps).await.expect("pull");
    let s = &first[0];
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.fetched, 7);
    assert_eq!(
        (s.matched, s.partial, s.unmatched, s.settlements, s.skipped),
        (3, 1, 1, 1, 2),
        "{s:?}"
    );
    // 30 % advance and the 70 % balance of invoice 1024; invoice ТМ-0457 in one go.
    let order = env.order("5001").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.state()),
        (500_000, OrderState::Paid)
    );
    assert_eq!(
        env.order("5002").await.expect("order").state(),
        OrderState::Paid
    );
    // Re-reading the same (overlapping) window changes nothing: four payments and the acquirer payout seen before.
    let again = handle(&deps).await.expect("pull");
    assert_eq!((again[0].new, again[0].duplicates), (0, 5));
    assert_eq!(env.facts("5001").await.len(), 2);
    assert_eq!(
        env.order("5001").await.expect("order").totals().paid,
        500_000
    );
    let _ = Arc::strong_count(&deps.store);
    // Least privilege, against what the code did: every call granted, every grant used.
    let unused = paysync_e2e::iam::assert_granted("StatementPullFunction", &env.aws_calls.take());
    assert!(
        unused.is_empty(),
        "granted to StatementPullFunction but never used: {unused:?}"
    );
}

#[tokio::test]
async fn a_refused_token_leaves_the_watermark_and_reports_the_error() {
    let env = spawn_env().await;
    let api = &env.yookassa_api;
    Mock::given(path("/api/v1/statement"))
        .respond_with(ResponseTemplate::new(401))
        .mount(api)
        .await;
    let deps = pull_deps(&env, vec![tbank("wrong")]);
    let s = handle(&deps).await.expect("pull");
    assert_eq!(s[0].errors.len(), 1);
    assert!(s[0].errors[0].contains("401"));
    assert_eq!(
        deps.cursors
            .watermark("tbank-api:40702810900000012345")
            .await
            .expect("read"),
        None
    );
}

async fn api_and_file_deps(env: &TestEnv) -> PullDeps {
    let api = &env.yookassa_api;
    let page =
        std::fs::read(fixtures_dir().join("statements/tbank-api__synthetic__statement-page1.json"))
            .expect("page");
    // One page only here: the cursor leads to an empty last page.
    Mock::given(path("/api/v1/statement"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(page))
        .mount(api)
        .await;
    Mock::given(path("/api/v1/statement"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"operations":[]}"#))
        .mount(api)
        .await;
    // The same 1 500.00 advance as the API's first operation, as the bank's 1CClientBankExchange export has it.
    let file = "1CClientBankExchange\r\nВерсияФормата=1.03\r\nКодировка=Windows\r\nРасчСчет=40702810900000012345\r\nСекцияДокумент=Платежное поручение\r\nНомер=1001\r\nДата=05.03.2024\r\nСумма=1500.00\r\nПлательщикСчет=40702810000000000111\r\nПлательщикИНН=7702000001\r\nПолучательСчет=40702810900000012345\r\nНазначениеПлатежа=Оплата по счету № 1024 от 01.03.2024 (аванс 30%)\r\nКонецДокумента\r\nКонецФайла\r\n";
    let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(file);
    Mock::given(path("/exports/kl_to_1c.txt"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(cp1251.into_owned()))
        .mount(api)
        .await;
    pull_deps(
        env,
        vec![
            tbank("t"),
            SourceConfig::ClientbankUrl {
                account: "40702810900000012345".into(),
                url: format!("{}/exports/kl_to_1c.txt", api.uri()),
            },
        ],
    )
}

#[tokio::test]
async fn the_same_payment_through_the_api_and_a_file_counts_once() {
    let env = spawn_env().await;
    register(&env, "5001", 500_000, "1024").await;
    let deps = api_and_file_deps(&env).await;
    let summary = handle(&deps).await.expect("pull");
    assert_eq!(
        (summary[0].new, summary[0].matched, summary[0].unmatched),
        (2, 1, 1),
        "API: the advance matched; the ТМ-0457 credit has no order here"
    );
    assert_eq!(
        (summary[1].fetched, summary[1].new, summary[1].duplicates),
        (1, 0, 1)
    );
    let order = env.order("5001").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.state()),
        (150_000, OrderState::PartiallyPaid)
    );
    assert_eq!(env.facts("5001").await.len(), 1);
}

#[tokio::test]
async fn two_overlapping_runs_do_not_double_count() {
    let env = spawn_env().await;
    register(&env, "5001", 500_000, "1024").await;
    let deps = api_and_file_deps(&env).await;
    let (a, b) = tokio::join!(handle(&deps), handle(&deps));
    let new: usize = a
        .expect("run a")
        .iter()
        .chain(b.expect("run b").iter())
        .map(|s| s.new)
        .sum();
    assert_eq!(env.facts("5001").await.len(), 1);
    assert_eq!(
        env.order("5001").await.expect("order").totals().paid,
        150_000
    );
    // The advance and the unmatched ТМ-0457 credit: each recorded by exactly one of the runs.
    assert_eq!(new, 2);
}

#[tokio::test]
async fn the_acquirer_payout_reconciles_with_the_card_payments_of_its_registry_day() {
    use shared::domain::{FactId, FactKind, PaymentFact, PaymentMethod, PaymentRef, Source};
    use shared::ports::Takings as _;
    let env = spawn_env().await;
    register(&env, "7001", 6_000_000, "7001").await;
    register(&env, "7002", 4_075_308, "7002").await;
    let events = SqsEventPublisher::new(env.sqs.clone(), &env.queue_url);
    let ledger = Ledger::new(&env.store, &events);
    // Card payments of 4 March 2024 (Moscow), as acquiring-callback records them.
    for (order, payment, amount) in [("7001", "901", 6_000_000), ("7002", "902", 4_075_308)] {
        let fact = PaymentFact::new(
            FactId::new(Source::Tbank, &format!("{payment}#CONFIRMED")).expect("id"),
            OrderId::parse(order).expect("order"),
            PaymentRef::new(Source::Tbank, payment).expect("ref"),
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Payment { amount },
            1_709_542_800_000,
        )
        .expect("fact");
        ledger.record(&fact).await.expect("record");
    }
    assert_eq!(
        env.store
            .card_takings(Source::Tbank, "2024-03-04")
            .await
            .expect("takings")
            .len(),
        2
    );
    let deps = api_and_file_deps(&env).await;
    let s = &handle(&deps).await.expect("pull")[0];
    assert_eq!((s.settlements, s.settlement_mismatches), (1, 0), "{s:?}");
    let report = &s.settlement_reports[0];
    assert_eq!(
        (
            report.credited,
            report.captured,
            report.fee,
            report.stated_fee
        ),
        (9_876_543, 10_075_308, 198_765, Some(198_765))
    );
    assert_eq!(report.days, ["2024-03-04"]);
    // The payout paid no order and is reported once.
    assert_eq!(
        env.order("7001").await.expect("order").totals().paid,
        6_000_000
    );
    let again = &handle(&deps).await.expect("pull")[0];
    assert_eq!(again.settlements, 0);
}
