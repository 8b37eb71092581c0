//! The 1C protocol through the handler, with in-memory fakes of the ports.

use super::*;
use crate::adapters::memory::{MemoryExchangeStore, MemoryLedgerStore, MemoryPublisher};
use crate::domain::{
    Currency, FactKind, OrderInfo, OrderState, PaymentFact, PaymentMethod, PaymentRef, Source,
};
use crate::platform::config::{LedgerConfig, Secret};
use crate::testing::{fixtures_dir, request_with_headers};
use std::io::Write as _;

pub struct Harness {
    pub deps: ExchangeDeps,
    pub store: Arc<MemoryLedgerStore>,
}

pub fn harness(budget_ms: u64) -> Harness {
    let store = Arc::new(MemoryLedgerStore::default());
    let deps = ExchangeDeps {
        config: Exchange1cConfig {
            ledger: LedgerConfig {
                table: "t".into(),
                events_queue_url: "q".into(),
                refunds_queue_url: None,
            },
            user: "1c-exchange".into(),
            password: Secret::new("s3cret"),
            file_limit: 204_800,
            import_budget_ms: budget_ms,
            session_ttl_secs: 3600,
            utc_offset_minutes: 180,
            refund_on_cancel: true,
            upstream: None,
            upstream_timeout_ms: 25_000,
            enrich_query: true,
            query_undescribed: false,
        },
        store: store.clone(),
        events: Arc::new(MemoryPublisher::default()),
        sessions: Arc::new(MemoryExchangeStore::default()),
        views: store.clone(),
        feed: store.clone(),
        directory: store.clone(),
        upstream: None,
    };
    Harness { deps, store }
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

pub struct Session {
    cookie: String,
    sessid: String,
}

impl Harness {
    pub async fn call(
        &self,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, String) {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let req = request_with_headers(
            method,
            "/lambda-url/exchange-1c/",
            query,
            headers,
            body,
            "10.0.0.1",
        );
        let resp = handle(&self.deps, req).await.unwrap();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let (text, _, _) = encoding_rs::WINDOWS_1251.decode(resp.body().as_ref());
        (resp.status().as_u16(), text.into_owned(), ct)
    }

    pub async fn login(&self) -> Session {
        let (_, text, _) = self
            .call(
                "type=sale&mode=checkauth",
                &[("authorization", &basic("1c-exchange", "s3cret"))],
                b"",
            )
            .await;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "success", "{text}");
        assert_eq!(lines[1], COOKIE);
        Session {
            cookie: format!("{}={}", lines[1], lines[2]),
            sessid: lines[3].trim_start_matches("sessid=").to_owned(),
        }
    }

    pub async fn mode(&self, s: &Session, mode: &str, extra: &str, body: &[u8]) -> String {
        let q = format!("type=sale&mode={mode}&sessid={}{extra}", s.sessid);
        self.call(&q, &[("cookie", &s.cookie)], body).await.1
    }

    pub async fn register(&self, id: &str, total: i64) {
        let events = MemoryPublisher::default();
        Ledger::new(self.store.as_ref(), &events)
            .register_order(
                &OrderId::parse(id).unwrap(),
                OrderInfo::new(Some(id.into()), total, Currency::RUB),
            )
            .await
            .unwrap();
    }

    pub async fn card_payment(&self, order: &str, payment: &str, amount: i64) {
        let f = PaymentFact::new(
            crate::domain::FactId::new(Source::Tbank, &format!("{payment}#CONFIRMED")).unwrap(),
            OrderId::parse(order).unwrap(),
            PaymentRef::new(Source::Tbank, payment).unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Payment { amount },
            1_795_824_000_000,
        )
        .unwrap();
        Ledger::new(self.store.as_ref(), self.deps.events.as_ref())
            .record(&f)
            .await
            .unwrap();
    }

    /// Upload in `chunks` pieces, then import until success.
    pub async fn upload_and_import(
        &self,
        s: &Session,
        name: &str,
        bytes: &[u8],
        chunks: usize,
    ) -> String {
        let size = bytes.len().div_ceil(chunks).max(1);
        for piece in bytes.chunks(size) {
            assert_eq!(
                self.mode(s, "file", &format!("&filename={name}"), piece)
                    .await,
                "success\n"
            );
        }
        for _ in 0..100 {
            let answer = self
                .mode(s, "import", &format!("&filename={name}"), b"")
                .await;
            if !answer.starts_with("progress") {
                return answer;
            }
        }
        panic!("import never finished");
    }
}

pub fn payment_xml(
    id: &str,
    version: &str,
    base: &str,
    amount: &str,
    operation: &str,
    extra: &str,
) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2" ВерсияСхемы="2.08" ДатаФормирования="2026-11-27T12:00:00">
<Документ><Ид>{id}</Ид><НомерВерсии>{version}</НомерВерсии><Номер>{id}</Номер><Дата>2026-11-27</Дата><Время>9:30:00</Время>
<ХозОперация>{operation}</ХозОперация><Роль>Продавец</Роль><Валюта>руб</Валюта><Курс>1</Курс><Сумма>{amount}</Сумма><Основание>{base}</Основание>
<ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Оплачен</Наименование><Значение>true</Значение></ЗначениеРеквизита>{extra}</ЗначенияРеквизитов>
</Документ></КоммерческаяИнформация>"#
    )
}

#[tokio::test]
async fn full_session_moves_payment_state_both_ways() {
    let h = harness(20_000);
    h.register("5001", 500_000).await;
    let s = h.login().await;
    let init = h.mode(&s, "init", "&version=2.10", b"").await;
    assert_eq!(
        init,
        format!(
            "zip=yes\nfile_limit=204800\nsessid={}\nversion=2.10",
            s.sessid
        )
    );
    // 1C → site: a bank receipt for 30 % arrives in three chunks.
    let xml = payment_xml(
        "pp-1",
        "AAAA",
        "5001",
        "1 500,00",
        "Выплата безналичных денег",
        "",
    );
    assert_eq!(
        h.upload_and_import(&s, "v8_1.xml", xml.as_bytes(), 3).await,
        "success\n"
    );
    let order = h.store.order("5001").unwrap();
    assert_eq!(
        (order.totals().paid, order.state()),
        (150_000, OrderState::PartiallyPaid)
    );
    // Re-posting the same document (another upload) changes nothing.
    assert_eq!(
        h.upload_and_import(&s, "v8_2.xml", xml.as_bytes(), 1).await,
        "success\n"
    );
    assert_eq!(h.store.order("5001").unwrap().totals().paid, 150_000);
    assert_eq!(h.store.facts().len(), 1);

    // site → 1C: the order with what is paid so far, in windows-1251 XML.
    let (status, text, ct) = h
        .call(
            &format!("type=sale&mode=query&sessid={}", s.sessid),
            &[("cookie", &s.cookie)],
            b"",
        )
        .await;
    assert_eq!(
        (status, ct.as_str()),
        (200, "application/xml; charset=windows-1251")
    );
    let x = read(&to_windows_1251(&text)).unwrap();
    assert_eq!(x.schema_version.as_deref(), Some("2.10"));
    let doc = &x.documents[0];
    assert_eq!(doc.number.as_deref(), Some("5001"));
    assert_eq!(doc.requisite("Сумма оплаты"), Some("1500.00"));
    assert!(!doc.paid_per_site());
    assert!(
        doc.subordinates.is_empty(),
        "1C's own receipt is not echoed back"
    );
    assert_eq!(h.mode(&s, "success", "", b"").await, "success\n");
    let empty = read(&to_windows_1251(&h.mode(&s, "query", "", b"").await)).unwrap();
    assert!(empty.documents.is_empty(), "nothing changed since success");

    // A card payment for the rest: 1C sees the order paid with the payment document.
    h.card_payment("5001", "777", 350_000).await;
    let x = read(&to_windows_1251(&h.mode(&s, "query", "", b"").await)).unwrap();
    let doc = &x.documents[0];
    assert!(doc.paid_per_site());
    assert_eq!(doc.requisite("Сумма оплаты"), Some("5000.00"));
    assert_eq!(doc.subordinates.len(), 1);
    assert_eq!(doc.subordinates[0].amount, Some(350_000));
    assert_eq!(
        doc.subordinates[0].operation,
        crate::formats::commerceml::Operation::PaymentCard
    );
    // 1C echoes that card payment back as its own document: linked, not added.
    let echo = payment_xml(
        "acq-1",
        "v1",
        "5001",
        "3500.00",
        "Эквайринговая операция",
        "",
    );
    assert_eq!(
        h.upload_and_import(&s, "v8_3.xml", echo.as_bytes(), 1)
            .await,
        "success\n"
    );
    let order = h.store.order("5001").unwrap();
    assert_eq!(
        (order.totals().paid, order.state()),
        (500_000, OrderState::Paid)
    );
}

#[tokio::test]
async fn a_change_between_query_and_success_is_sent_next_time() {
    let h = harness(20_000);
    h.register("6001", 100_000).await;
    let s = h.login().await;
    h.mode(&s, "init", "&version=2.08", b"").await;
    assert_eq!(
        read(&to_windows_1251(&h.mode(&s, "query", "", b"").await))
            .unwrap()
            .documents
            .len(),
        1
    );
    h.card_payment("6001", "1", 100_000).await; // lands after the query, before success
    assert_eq!(h.mode(&s, "success", "", b"").await, "success\n");
    let again = read(&to_windows_1251(&h.mode(&s, "query", "", b"").await)).unwrap();
    assert_eq!(again.documents.len(), 1);
    assert!(again.documents[0].paid_per_site());
}

#[tokio::test]
async fn authentication_cookie_and_sessid_are_enforced() {
    let h = harness(20_000);
    let (_, wrong, _) = h
        .call(
            "type=sale&mode=checkauth",
            &[("authorization", &basic("1c-exchange", "nope"))],
            b"",
        )
        .await;
    assert_eq!(wrong, format!("failure\n{AUTH_FAILED}"));
    let (_, none, _) = h.call("type=sale&mode=checkauth", &[], b"").await;
    assert_eq!(none, format!("failure\n{AUTH_FAILED}"));
    let s = h.login().await;
    let (_, no_cookie, _) = h
        .call(
            &format!("type=sale&mode=init&sessid={}", s.sessid),
            &[],
            b"",
        )
        .await;
    assert_eq!(no_cookie, format!("failure\n{AUTH_FAILED}"));
    let (_, forged, _) = h
        .call(
            "type=sale&mode=init&sessid=0000",
            &[("cookie", &s.cookie)],
            b"",
        )
        .await;
    assert_eq!(forged, format!("failure\n{SESSID_FAILED}"));
    let (_, foreign_success, _) = h
        .call(
            "type=sale&mode=success&sessid=x",
            &[("cookie", "PAYSYNC1C=nope")],
            b"",
        )
        .await;
    assert_eq!(foreign_success, "error\n");
    let (_, unknown, _) = h.call("type=catalog&mode=init", &[], b"").await;
    assert_eq!(unknown, "failure\nUnknown command type.");
    assert_eq!(
        h.mode(&s, "frobnicate", "", b"").await,
        format!("failure\n{UNKNOWN_MODE}")
    );
}

#[tokio::test]
async fn broken_files_are_refused_with_a_reason_and_change_nothing() {
    let h = harness(20_000);
    h.register("5001", 500_000).await;
    let s = h.login().await;
    h.mode(&s, "init", "&version=2.08", b"").await;
    let good = payment_xml("pp-9", "v1", "5001", "100.00", "Выплата наличных денег", "");
    let truncated = &good.as_bytes()[..good.len() - 40];
    let answer = h.upload_and_import(&s, "broken.xml", truncated, 2).await;
    assert!(
        answer.starts_with("failure\nОшибка разбора файла"),
        "{answer}"
    );
    let malformed = good.replace("</Ид>", "</Номер>");
    let answer = h
        .upload_and_import(&s, "bad.xml", malformed.as_bytes(), 1)
        .await;
    assert!(answer.starts_with("failure\n"), "{answer}");
    assert_eq!(
        h.mode(&s, "import", "&filename=never-uploaded.xml", b"")
            .await,
        format!("failure\n{EMPTY_FILE}")
    );
    assert_eq!(
        h.mode(&s, "file", "&filename=x.xml", b"").await,
        format!("failure\n{READ_FAILED}")
    );
    assert!(h.store.facts().is_empty());
    let zip_garbage = b"PK\x03\x04not really a zip";
    let answer = h.upload_and_import(&s, "x.zip", zip_garbage, 1).await;
    assert_eq!(answer, format!("failure\n{UNZIP_FAILED}"));
}

#[tokio::test]
async fn zipped_upload_of_several_files_with_progress_then_success_and_errors_appended() {
    let h = harness(0); // every call applies one document, then answers progress
    h.register("5001", 500_000).await;
    let s = h.login().await;
    h.mode(&s, "init", "&version=2.08", b"").await;
    let mut zipped = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut zipped);
        let opts = zip::write::SimpleFileOptions::default();
        w.start_file("a.xml", opts).unwrap();
        w.write_all(
            payment_xml("c-1", "v1", "5001", "1000.00", "Выплата наличных денег", "").as_bytes(),
        )
        .unwrap();
        w.start_file("b.xml", opts).unwrap();
        let refund = "<ЗначениеРеквизита><Наименование>ПризнакВозврата</Наименование><Значение>true</Значение></ЗначениеРеквизита>";
        w.write_all(
            payment_xml(
                "r-1",
                "v1",
                "5001",
                "10.00",
                "Выплата наличных денег",
                refund,
            )
            .as_bytes(),
        )
        .unwrap();
        w.start_file("readme.txt", opts).unwrap();
        w.write_all(b"ignored").unwrap();
        w.finish().unwrap();
    }
    let bytes = zipped.into_inner();
    assert_eq!(
        h.mode(&s, "file", "&filename=v8_2C7E_125d5b.zip", &bytes)
            .await,
        "success\n"
    );
    assert_eq!(
        h.mode(&s, "import", "&filename=v8_2C7E_125d5b.zip", b"")
            .await,
        "progress\n"
    );
    let last = h
        .mode(&s, "import", "&filename=v8_2C7E_125d5b.zip", b"")
        .await;
    assert_eq!(last, "success\n");
    let order = h.store.order("5001").unwrap();
    assert_eq!(order.totals().paid, 100_000);
    assert_eq!(
        order
            .refund_requests
            .values()
            .map(|r| r.amount)
            .sum::<i64>(),
        1_000,
        "the return became a refund request"
    );
    // A document with problems is kept and the problem reported after success, as Bitrix appends errors.
    let bad_sum = payment_xml("c-2", "v1", "5001", "0.3333", "Выплата наличных денег", "");
    let answer = h
        .upload_and_import(&s, "c2.xml", bad_sum.as_bytes(), 1)
        .await;
    assert!(
        answer.starts_with("success\nДокумент с Ид - c-2. Сумма:"),
        "{answer}"
    );
}

#[tokio::test]
async fn info_lists_statuses_with_the_latin_c_and_payment_systems() {
    let h = harness(20_000);
    let s = h.login().await;
    let (_, text, ct) = h
        .call(
            &format!("type=sale&mode=info&sessid={}", s.sessid),
            &[("cookie", &s.cookie)],
            b"",
        )
        .await;
    assert_eq!(ct, "application/xml; charset=windows-1251");
    assert!(
        text.contains("<Cтатусы>")
            && text.starts_with("<?xml version=\"1.0\" encoding=\"windows-1251\"?>")
    );
    assert!(text.contains("<ПлатежныеСистемы>"));
}

#[tokio::test]
async fn every_commerceml_fixture_imports_with_its_ledger_effect() {
    let h = harness(20_000);
    // The store described the orders these files name (1C never gets to pay an order the store does not have).
    for (order, total) in [("142", 818_684), ("235", 410_000), ("13838", 151_500)] {
        h.register(order, total).await;
    }
    let s = h.login().await;
    h.mode(&s, "init", "&version=2.08", b"").await;
    for (i, name) in [
        "ArgentCrusade__commerceml__documents-example.xml",
        "dicrtarasov__yii2-exchange1c__orders.xml",
        "carono__yii2-1c-exchange__to.xml",
        "dobromyslov__commerceml-parser__bitrix-query-response-full.xml",
    ]
    .iter()
    .enumerate()
    {
        let bytes = std::fs::read(fixtures_dir().join("commerceml").join(name)).unwrap();
        let answer = h
            .upload_and_import(&s, &format!("f{i}.xml"), &bytes, 2)
            .await;
        assert_eq!(answer, "success\n", "{name}");
    }
    // 1C's paid orders are settled in the ledger; site exports (carono, Bitrix query) carry no 1C payment.
    let kinds: Vec<(String, String)> = h
        .store
        .facts()
        .iter()
        .map(|f| (f.order_id.to_string(), f.kind.name().to_owned()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("13838".to_owned(), "settled_in_full".to_owned()),
            ("142".to_owned(), "settled_in_full".to_owned()),
            ("235".to_owned(), "settled_in_full".to_owned()),
        ]
    );
    assert_eq!(h.store.order("13838").unwrap().state(), OrderState::Paid);
    assert_eq!(h.store.order("142").unwrap().state(), OrderState::Paid);
    assert!(h.store.order("20").is_none() && h.store.order("132").is_none());
}

#[tokio::test]
async fn a_zip_entry_that_inflates_past_the_limit_is_refused() {
    let h = harness(20_000);
    let s = h.login().await;
    h.mode(&s, "init", "&version=2.08", b"").await;
    let mut zipped = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut zipped);
        w.start_file("bomb.xml", zip::write::SimpleFileOptions::default())
            .unwrap();
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..65 {
            w.write_all(&zeros).unwrap();
        }
        w.finish().unwrap();
    }
    let bytes = zipped.into_inner();
    assert!(bytes.len() < 1024 * 1024, "the archive itself is small");
    let answer = h.upload_and_import(&s, "bomb.zip", &bytes, 1).await;
    assert_eq!(answer, format!("failure\n{TOO_LARGE}"));
}

#[tokio::test]
async fn an_unmatched_bank_receipt_allocated_in_1c_is_counted_once_on_its_order() {
    let h = harness(20_000);
    h.register("5002", 500_000).await;
    // statement-pull kept a 5 000.00 credit that named no order.
    let op = crate::domain::bank_operation::BankOperation {
        account: "40702810900000012345".into(),
        date: "2026-11-26".into(),
        number: "88".into(),
        amount: 500_000,
        incoming: true,
        counterparty_account: Some("40702810000000000111".into()),
        counterparty_inn: Some("7702000001".into()),
        counterparty_name: Some("ООО Покупатель".into()),
        purpose: "Оплата за товар".into(),
        is_final: true,
    };
    let ledger = Ledger::new(h.store.as_ref(), h.deps.events.as_ref());
    for f in crate::domain::bank_operation::facts(
        &op,
        &crate::domain::matching::Matched::Unmatched("x"),
        None,
        1,
    )
    .unwrap()
    {
        ledger.record(&f).await.unwrap();
    }
    let receipts = h.store.unmatched_receipts(10).await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        receipts[0].payer.as_ref().and_then(|p| p.inn.as_deref()),
        Some("7702000001"),
        "kept with what is needed to resolve it"
    );

    // The accountant allocates it to order 5002 in 1C; 1C posts the payment document (twice).
    let s = h.login().await;
    let xml = payment_xml(
        "pay-77",
        "1",
        "5002",
        "5000.00",
        "Выплата безналичных денег",
        "",
    );
    for _ in 0..2 {
        assert!(h
            .upload_and_import(&s, "doc.xml", xml.as_bytes(), 1)
            .await
            .starts_with("success"));
    }
    let order = h.store.order("5002").unwrap();
    assert_eq!(
        (order.totals().paid, order.state()),
        (500_000, OrderState::Paid)
    );
    let line = order.lines.values().next().unwrap();
    assert!(line.linked.contains(receipts[0].payment.as_str()));
    let unmatched = h.store.order(receipts[0].order.as_str()).unwrap();
    assert_eq!(
        unmatched.totals().paid,
        0,
        "the receipt is voided, not counted twice"
    );
    assert!(h.store.unmatched_receipts(10).await.unwrap().is_empty());

    // The statement re-read later: the same money, still one fact on one order.
    let again = crate::domain::bank_operation::facts(
        &op,
        &crate::domain::matching::Matched::Unmatched("x"),
        None,
        1,
    )
    .unwrap();
    assert!(matches!(
        ledger.record(&again[0]).await.unwrap(),
        crate::app::ledger::Recorded::Duplicate
    ));
    let claimed_by_5002 = crate::domain::bank_operation::facts(
        &op,
        &crate::domain::matching::Matched::Order {
            order: OrderId::parse("5002").unwrap(),
            amount: 500_000,
            confidence: crate::domain::matching::Confidence::Reference,
            partial: false,
            overpaid: false,
            inn_mismatch: false,
        },
        None,
        1,
    )
    .unwrap();
    assert!(matches!(
        ledger.record(&claimed_by_5002[0]).await.unwrap(),
        crate::app::ledger::Recorded::Duplicate
    ));
    assert_eq!(h.store.order("5002").unwrap().totals().paid, 500_000);
}

#[tokio::test]
async fn sessions_cannot_be_fixed_crossed_or_used_after_they_expire() {
    let h = harness(20_000);
    // Fixation: a cookie the client brings to checkauth is ignored; a fresh random session is issued.
    let (_, answer, _) = h
        .call(
            "type=sale&mode=checkauth",
            &[
                ("authorization", &basic("1c-exchange", "s3cret")),
                ("cookie", "PAYSYNC1C=attacker-chosen"),
            ],
            b"",
        )
        .await;
    let issued = answer.lines().nth(2).unwrap_or_default().to_owned();
    assert!(answer.starts_with("success") && issued.len() >= 32 && issued != "attacker-chosen");
    let (_, fixed, _) = h
        .call(
            "type=sale&mode=init&sessid=x",
            &[("cookie", "PAYSYNC1C=attacker-chosen")],
            b"",
        )
        .await;
    assert_eq!(fixed, format!("failure\n{AUTH_FAILED}"));
    // Crossing: one session's sessid does not open another session.
    let a = h.login().await;
    let b = h.login().await;
    let (_, crossed, _) = h
        .call(
            &format!("type=sale&mode=init&sessid={}", b.sessid),
            &[("cookie", &a.cookie)],
            b"",
        )
        .await;
    assert_eq!(crossed, format!("failure\n{SESSID_FAILED}"));
    // Replay after expiry: a session past its TTL is refused even while the table still holds it.
    let mut short = harness(20_000);
    short.deps.config.session_ttl_secs = -1;
    let old = short.login().await;
    let (_, expired, _) = short
        .call(
            &format!("type=sale&mode=query&sessid={}", old.sessid),
            &[("cookie", &old.cookie)],
            b"",
        )
        .await;
    assert_eq!(expired, format!("failure\n{AUTH_FAILED}"));
}

/// Issue #14, kind 6: an order the store has not described yet waits in the feed (no phantom order without
/// number, total or buyer in 1C); once store-sync describes it, it goes. Money without an order never goes.
#[tokio::test]
async fn an_undescribed_order_waits_for_the_store_and_unmatched_money_never_goes() {
    let h = harness(20_000);
    h.card_payment("777", "p-777", 50_000).await;
    h.card_payment("unmatched:tbank:p-9", "p-9", 10_000).await;
    let s = h.login().await;
    h.mode(&s, "init", "&version=2.10", b"").await;
    let q = h.mode(&s, "query", "", b"").await;
    assert!(
        !q.contains("<Ид>777</Ид>") && !q.contains("unmatched:"),
        "{q}"
    );
    assert_eq!(h.mode(&s, "success", "", b"").await, "success\n");
    h.register("777", 50_000).await;
    let q = h.mode(&s, "query", "", b"").await;
    assert!(q.contains("<Ид>777</Ид>"), "{q}");
    assert!(!q.contains("unmatched:"), "{q}");
}
