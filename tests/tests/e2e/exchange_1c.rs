//! exchange-1c end to end on moto: sessions, chunked uploads and the 1C feed live in DynamoDB.

use paysync_e2e::*;
use shared::domain::OrderState;
use shared::formats::commerceml::read;
use shared::formats::commerceml::text::to_windows_1251;
use shared::testing::fixtures_dir;

fn receipt(id: &str, order: &str, amount: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация ВерсияСхемы="2.08" ДатаФормирования="2026-11-27T12:00:00">
<Документ><Ид>{id}</Ид><НомерВерсии>v1</НомерВерсии><Номер>{id}</Номер><Дата>2026-11-27</Дата>
<ХозОперация>Выплата безналичных денег</ХозОперация><Роль>Продавец</Роль><Валюта>руб</Валюта><Курс>1</Курс>
<Сумма>{amount}</Сумма><Основание>{order}</Основание><Комментарий>Оплата по счету № {order} от 27.11.2026. Сумма {amount}, без НДС. Длинный комментарий, чтобы файл разбился на несколько частей: {pad}</Комментарий>
<ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Оплачен</Наименование><Значение>true</Значение></ЗначениеРеквизита></ЗначенияРеквизитов>
</Документ></КоммерческаяИнформация>"#,
        pad = "оплата ".repeat(200)
    )
}

#[tokio::test]
async fn b2b_invoice_paid_in_1c_reaches_the_ledger_and_1c_sees_the_order_state() {
    let env = spawn_env().await;
    env.register_order("8001", 500_000).await;
    let c = OneC::connect(&env).await;
    assert!(c
        .mode("init", "&version=2.09", b"")
        .await
        .starts_with("zip=yes\nfile_limit=1024\n"));
    let file = receipt("pp-8001-1", "8001", "1500.00");
    assert!(file.len() > 3 * 1024, "the upload must take several chunks");
    assert_eq!(
        c.send_file("v8_8001.xml", file.as_bytes()).await,
        "success\n"
    );
    let order = env.order("8001").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.state()),
        (150_000, OrderState::PartiallyPaid)
    );
    assert_eq!(order.paid_percent(), Some(30));
    // The same file again, under another name: nothing changes.
    assert_eq!(
        c.send_file("v8_8001_again.xml", file.as_bytes()).await,
        "success\n"
    );
    assert_eq!(env.facts("8001").await.len(), 1);

    let x = read(&to_windows_1251(&c.mode("query", "", b"").await)).expect("query XML");
    assert_eq!(x.documents.len(), 1);
    assert_eq!(x.documents[0].requisite("Сумма оплаты"), Some("1500.00"));
    assert_eq!(c.mode("success", "", b"").await, "success\n");
    assert!(read(&to_windows_1251(&c.mode("query", "", b"").await))
        .expect("xml")
        .documents
        .is_empty());
    // Least privilege, against what the code did: every call granted, every grant used.
    let unused = paysync_e2e::iam::assert_granted("Exchange1cFunction", &env.aws_calls.take());
    assert!(
        unused.is_empty(),
        "granted to Exchange1cFunction but never used: {unused:?}"
    );

    // The balance paid by card: the acquirer callback changes the order, 1C learns it at its next query.
    assert_eq!(
        env.post_tbank(&tbank_note("8001", "88", "CONFIRMED", 350_000))
            .await
            .status,
        200
    );
    let x = read(&to_windows_1251(&c.mode("query", "", b"").await)).expect("xml");
    assert!(x.documents[0].paid_per_site());
    assert_eq!(x.documents[0].requisite("Сумма оплаты"), Some("5000.00"));
}

#[tokio::test]
async fn commerceml_fixtures_apply_against_moto() {
    let env = spawn_env().await;
    env.register_order("13838", 151_500).await;
    env.register_order("142", 1_000).await;
    env.register_order("235", 410_000).await;
    let c = OneC::connect(&env).await;
    c.mode("init", "&version=2.08", b"").await;
    for name in [
        "ArgentCrusade__commerceml__documents-example.xml",
        "dicrtarasov__yii2-exchange1c__orders.xml",
        "carono__yii2-1c-exchange__to.xml",
        "dobromyslov__commerceml-parser__bitrix-query-response-full.xml",
    ] {
        let bytes = std::fs::read(fixtures_dir().join("commerceml").join(name)).expect("fixture");
        assert_eq!(c.send_file(name, &bytes).await, "success\n", "{name}");
    }
    assert_eq!(
        env.order("13838").await.expect("order").state(),
        OrderState::Paid
    );
    assert_eq!(
        env.order("142").await.expect("order").state(),
        OrderState::Paid
    );
    let described = env.order("235").await.expect("order");
    assert_eq!(described.state(), OrderState::Paid);
    assert_eq!(env.facts("235").await.len(), 1);
    assert!(
        env.order("20").await.is_none(),
        "a site export carries no 1C payment"
    );
}

#[tokio::test]
async fn an_unmatched_bank_receipt_is_resolved_by_1cs_payment_document() {
    use shared::domain::bank_operation::{facts, BankOperation};
    use shared::domain::matching::{Confidence, Matched};
    use shared::ports::OrderViews as _;
    let env = spawn_env().await;
    env.register_order("5010", 4_200_050).await;
    // statement-pull kept this credit unmatched: its purpose names no order.
    let op = BankOperation {
        account: "40702810900000012345".into(),
        date: "2026-11-26".into(),
        number: "4411".into(),
        amount: 4_200_050,
        incoming: true,
        counterparty_account: Some("40702810000000000222".into()),
        counterparty_inn: Some("7702000002".into()),
        counterparty_name: Some("ООО Оптовик".into()),
        purpose: "Оплата за товар, НДС не облагается".into(),
        is_final: true,
    };
    let ledger = shared::app::ledger::Ledger::new(&env.store, env.deps.events.as_ref());
    let unmatched = facts(&op, &Matched::Unmatched("no number"), None, 1).expect("facts");
    ledger.record(&unmatched[0]).await.expect("record");
    assert_eq!(
        env.store.unmatched_receipts(10).await.expect("list").len(),
        1
    );

    // The accountant allocates it to order 5010 in 1C; the document arrives (and again, as 1C re-sends).
    let one_c = OneC::connect(&env).await;
    let doc = receipt("pay-5010", "5010", "42000.50");
    for _ in 0..2 {
        assert!(one_c
            .send_file("receipt.xml", doc.as_bytes())
            .await
            .starts_with("success"));
    }
    let order = env.order("5010").await.expect("order");
    assert_eq!(
        (order.totals().paid, order.state()),
        (4_200_050, OrderState::Paid)
    );
    let gone = env
        .order(unmatched[0].order_id.as_str())
        .await
        .expect("unmatched order");
    assert_eq!(gone.totals().paid, 0);
    assert!(env
        .store
        .unmatched_receipts(10)
        .await
        .expect("list")
        .is_empty());

    // The statement re-read, now matching 5010 by amount: DynamoDB refuses a second hold on the same money.
    let matched = Matched::Order {
        order: shared::domain::OrderId::parse("5010").expect("id"),
        amount: 4_200_050,
        confidence: Confidence::AmountAndInn,
        partial: false,
        overpaid: false,
        inn_mismatch: false,
    };
    let again = facts(&op, &matched, None, 2).expect("facts");
    assert!(matches!(
        ledger.record(&again[0]).await.expect("record"),
        shared::app::ledger::Recorded::Duplicate
    ));
    assert_eq!(
        env.order("5010").await.expect("order").totals().paid,
        4_200_050
    );
}
