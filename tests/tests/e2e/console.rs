//! The console end to end over HTTP: the function's routes on a local port, its ledger on moto, money brought by a
//! real statement-pull run from a fake T-Bank Business API. Sign-in, roles, CSRF, sessions, escaping, and the
//! allocation that pays an order and reaches the events queue exactly once.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use paysync_e2e::console::{hidden, link, Answer, ConsoleServer, WebClient, PASSWORD, SESSION_KEY};
use paysync_e2e::*;
use serde_json::json;
use shared::domain::OrderState;
use shared::platform::config::{Secret, SourceConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// One incoming bank transfer that names no order, from a payer whose name and purpose carry HTML.
pub const PAYER_NAME: &str = "ООО \"<script>alert('payer')</script> Ромашка\"";
pub const PURPOSE: &str = "Оплата <img src=x onerror=alert(1)> по договору поставки";

fn operation(id: &str, amount: &str) -> serde_json::Value {
    json!({
        "operationDate": "2026-11-30T09:12:00Z",
        "operationId": id,
        "operationStatus": "Transaction",
        "accountNumber": "40702810900000012345",
        "typeOfOperation": "Credit",
        "category": "incomeLegal",
        "chargeDate": "2026-11-30T09:12:00Z",
        "docDate": "2026-11-30T00:00:00Z",
        "documentNumber": "118",
        "operationAmount": amount.parse::<f64>().unwrap_or_default(),
        "operationCurrencyDigitalCode": "643",
        "accountAmount": amount.parse::<f64>().unwrap_or_default(),
        "accountCurrencyDigitalCode": "643",
        "rubleAmount": amount.parse::<f64>().unwrap_or_default(),
        "payPurpose": PURPOSE,
        "description": PURPOSE,
        "payer": {"acct": "40702810000000000999", "inn": "5003000077", "name": PAYER_NAME},
        "receiver": {"acct": "40702810900000012345", "inn": "7701234567", "name": "ООО \"Пример Магазин\""},
        "counterParty": {"account": "40702810000000000999", "inn": "5003000077", "name": PAYER_NAME}
    })
}

/// A statement-pull run that keeps one unmatched receipt of 4 321,50 ₽; its `unmatched:` order id.
pub async fn unmatched_receipt(env: &TestEnv) -> String {
    let page = json!({ "operations": [operation("9f00-console-0001", "4321.50")] });
    let run = pull(env, page).await;
    assert_eq!(run.unmatched, 1, "{run:?}");
    let receipts = {
        use shared::ports::OrderViews;
        env.store.unmatched_receipts(10).await.expect("receipts")
    };
    assert_eq!(receipts.len(), 1);
    receipts[0].order.to_string()
}

/// One statement-pull run over a T-Bank Business API page served by a local fake.
async fn pull(
    env: &TestEnv,
    page: serde_json::Value,
) -> shared::app::statement_pull::SourceSummary {
    let api = &env.yookassa_api; // any local fake server will do as the bank
    Mock::given(method("GET"))
        .and(path("/api/v1/statement"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(api)
        .await;
    let deps = env.pull_deps(
        vec![SourceConfig::TbankApi {
            account: "40702810900000012345".into(),
            token: Secret::new("t-token"),
        }],
        api.uri(),
    );
    let mut run = shared::app::statement_pull::handle(&deps)
        .await
        .expect("pull");
    run.remove(0)
}

/// An accountant signs in, finds the statement's unmatched receipt on "Needs attention", allocates it to the order
/// it pays; the order is paid, the decision is on the timeline with who and why, the queue has the event once, and
/// a second submission of the same form changes nothing.
#[tokio::test]
async fn an_accountant_allocates_unmatched_bank_money_to_its_order() {
    let env = spawn_env().await;
    env.register_order("IM-7001", 432_150).await;
    let receipt = unmatched_receipt(&env).await;
    env.drain_queue().await;
    paysync_e2e::iam::assert_granted("StatementPullFunction", &env.aws_calls.take());
    let server = ConsoleServer::start(&env).await;
    let mut web = WebClient::new(&server);
    let signed = web.sign_in("anna", PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let attention = web.get("/attention").await;
    assert_eq!(attention.status, 200);
    assert!(
        attention.body.contains("4\u{a0}321,50\u{a0}₽"),
        "amount in Russian"
    );
    let order_link =
        link(&attention.body, "/lambda-url/console/orders/unmatched").expect("receipt link");
    let page = web.get(&order_link).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Распределить"),
        "the allocate form is offered"
    );
    let (csrf, token) = (
        hidden(&page.body, "csrf").unwrap(),
        hidden(&page.body, "token").unwrap(),
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("order_1", "IM-7001"),
        ("amount_1", "4 321,50"),
        ("reason", "платёжное поручение 118, договор 15"),
    ];
    let done = web.post(&format!("{order_link}/allocate"), &form).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done
        .location
        .as_deref()
        .unwrap()
        .ends_with("/orders/IM-7001?done=allocated"));
    let order = env.order("IM-7001").await.unwrap();
    assert_eq!(
        (order.state(), order.totals().paid),
        (OrderState::Paid, 432_150)
    );
    let events = env.drain_queue().await;
    let paid: Vec<_> = events.iter().filter(|e| e.order_id == "IM-7001").collect();
    assert_eq!(paid.len(), 1, "{events:?}");
    assert_eq!(paid[0].state, OrderState::Paid);
    // Double submission: the same form again is recognised, nothing counted twice, nothing announced.
    let again = web.post(&format!("{order_link}/allocate"), &form).await;
    assert_eq!(again.status, 303);
    assert!(again.location.unwrap().ends_with("done=repeated"));
    assert_eq!(env.order("IM-7001").await.unwrap().totals().paid, 432_150);
    assert!(env.drain_queue().await.is_empty());
    // The order page shows the decision: who, role, why.
    let shown = web.get(done.location.as_deref().unwrap()).await;
    assert!(shown.body.contains("Поступление распределено"));
    assert!(shown.body.contains("anna"));
    assert!(shown.body.contains("платёжное поручение 118"));
    let audit = env
        .facts("IM-7001")
        .await
        .into_iter()
        .find_map(|f| f.audit)
        .expect("the fact carries who decided");
    assert_eq!(audit.user, "anna");
    // The receipt left the list.
    let after = web.get("/attention").await;
    assert!(!after.body.contains(&receipt));
    assert!(env
        .facts(&receipt)
        .await
        .iter()
        .any(|f| f.id.as_str().starts_with("console#")));
    // What the console did (after statement-pull's calls, taken above) is what the template grants it.
    paysync_e2e::iam::assert_granted("ConsoleFunction", &env.aws_calls.take());
}

/// Post the allocate form of `receipt_path` with these tokens (the rest filled in correctly).
async fn allocate_with(web: &mut WebClient, receipt_path: &str, csrf: &str, token: &str) -> Answer {
    let form = [
        ("csrf", csrf),
        ("token", token),
        ("order_1", "IM-7101"),
        ("amount_1", "4321.50"),
        ("reason", "test"),
    ];
    web.post(&format!("{receipt_path}/allocate"), &form).await
}

/// A viewer sees but cannot decide; a form without this session's CSRF token (missing, forged, or another user's
/// replayed) is refused with a page and changes nothing.
#[tokio::test]
async fn roles_and_csrf_tokens_guard_every_decision() {
    let env = spawn_env().await;
    env.register_order("IM-7101", 432_150).await;
    let receipt = unmatched_receipt(&env).await;
    let server = ConsoleServer::start(&env).await;
    let receipt_path = format!("/orders/{}", ::console::pages::segment(&receipt));

    let mut anna = WebClient::new(&server);
    anna.sign_in("anna", PASSWORD).await;
    let anna_page = anna.get(&receipt_path).await;
    let anna_csrf = hidden(&anna_page.body, "csrf").unwrap();
    let token = hidden(&anna_page.body, "token").unwrap();

    let mut vera = WebClient::new(&server);
    assert_eq!(vera.sign_in("vera", PASSWORD).await.status, 303);
    let vera_page = vera.get(&receipt_path).await;
    assert_eq!(vera_page.status, 200);
    assert!(
        !vera_page.body.contains("/allocate"),
        "no allocate form for a viewer"
    );
    let vera_csrf = hidden(&vera_page.body, "csrf").unwrap();
    let own = "t0k3n-for-the-csrf-tests";
    // A viewer with her own valid token: not allowed.
    let refused = allocate_with(&mut vera, &receipt_path, &vera_csrf, own).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("Недостаточно прав"),
        "{}",
        refused.body
    );
    // Missing and forged tokens.
    let missing = allocate_with(&mut anna, &receipt_path, "", own).await;
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("Форма отклонена"));
    let forged = allocate_with(
        &mut anna,
        &receipt_path,
        "0123456789abcdef0123456789abcdef",
        own,
    )
    .await;
    assert_eq!(forged.status, 403);
    // Anna's form replayed under Vera's session.
    let replayed = allocate_with(&mut vera, &receipt_path, &anna_csrf, &token).await;
    assert_eq!(replayed.status, 403);
    // Without any session: a clear page, not a stack trace.
    let mut nobody = WebClient::new(&server);
    let anonymous = allocate_with(&mut nobody, &receipt_path, &anna_csrf, &token).await;
    assert_eq!(anonymous.status, 403);
    assert!(anonymous.body.contains("Сеанс закончился"));
    assert_eq!(
        env.order("IM-7101").await.unwrap().totals().paid,
        0,
        "nothing was allocated"
    );
    // A page of the console without a session leads to the sign-in form.
    let away = nobody.get("/attention").await;
    assert_eq!(away.status, 303);
    assert!(away
        .location
        .unwrap()
        .ends_with("/lambda-url/console/login"));
}

/// Sessions: a sign-in always issues a new session (a planted one is worth nothing), an expired session is refused
/// even with a valid cookie, guessing passwords is slowed down per login.
#[tokio::test]
async fn sessions_are_fresh_expiring_and_guessing_is_slowed_down() {
    let env = spawn_env().await;
    let server = ConsoleServer::start(&env).await;
    // Fixation: the attacker's own valid session planted in the victim's browser.
    let mut attacker = WebClient::new(&server);
    attacker.sign_in("vera", PASSWORD).await;
    let planted = attacker.cookies["paysync_session"].clone();
    let mut victim = WebClient::new(&server);
    let form = victim.get("/login").await;
    let csrf = hidden(&form.body, "csrf").unwrap();
    victim
        .cookies
        .insert("paysync_session".into(), planted.clone());
    let signed = victim
        .post(
            "/login",
            &[("login", "max"), ("password", PASSWORD), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(signed.status, 303);
    assert_ne!(
        victim.cookies["paysync_session"], planted,
        "a fresh session at sign-in"
    );
    let attackers_view = attacker.get("/").await;
    assert!(attackers_view.body.contains("vera") && !attackers_view.body.contains(">max"));

    // An expired session, sealed with the console's own key.
    let key = cookie::Key::derive_from(SESSION_KEY.as_bytes());
    let mut jar = cookie::CookieJar::new();
    let session = json!({"sid": "s", "login": "max", "csrf": "c", "expires_ms": 1_000});
    jar.private_mut(&key)
        .add(cookie::Cookie::new("paysync_session", session.to_string()));
    let sealed = jar.get("paysync_session").unwrap().value().to_owned();
    let mut late = WebClient::new(&server);
    late.cookies.insert("paysync_session".into(), sealed);
    let refused = late.get("/attention").await;
    assert_eq!(refused.status, 303, "an expired session signs in again");
    // The same, still valid, is accepted (the cookie is what the console makes).
    let mut jar = cookie::CookieJar::new();
    let session = json!({"sid": "s", "login": "max", "csrf": "c", "expires_ms": i64::MAX});
    jar.private_mut(&key)
        .add(cookie::Cookie::new("paysync_session", session.to_string()));
    let mut fine = WebClient::new(&server);
    fine.cookies.insert(
        "paysync_session".into(),
        jar.get("paysync_session").unwrap().value().to_owned(),
    );
    assert_eq!(fine.get("/attention").await.status, 200);

    // Sign-out ends the session itself, not only this browser's cookie: a copy taken before opens nothing.
    let mut anna = WebClient::new(&server);
    anna.sign_in("anna", PASSWORD).await;
    let mut copy = WebClient::new(&server);
    copy.cookies = anna.cookies.clone();
    assert_eq!(copy.get("/attention").await.status, 200);
    let csrf = hidden(&anna.get("/").await.body, "csrf").unwrap();
    let out = anna.post("/logout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(!anna.cookies.contains_key("paysync_session"));
    let after = copy.get("/attention").await;
    assert_eq!(after.status, 303, "the copied cookie signs in again");
    let form = copy
        .post(
            "/orders/IM-1/payment",
            &[("csrf", csrf.as_str()), ("reason", "после выхода")],
        )
        .await;
    assert_eq!(form.status, 403, "{}", form.body);
    assert!(form.body.contains("Сеанс закончился"));
    assert_eq!(
        attacker.get("/attention").await.status,
        200,
        "other sessions go on"
    );

    // Guessing: five failures are answered at once, then each attempt waits, even with the right password.
    let mut guesser = WebClient::new(&server);
    for _ in 0..5 {
        assert_eq!(guesser.sign_in("anna", "wrong password").await.status, 401);
    }
    let slowed = guesser.sign_in("anna", PASSWORD).await;
    assert_eq!(slowed.status, 429, "{}", slowed.body);
    assert!(slowed.body.contains("Слишком много неудачных попыток"));
    // Other logins are not affected.
    assert_eq!(
        WebClient::new(&server)
            .sign_in("max", PASSWORD)
            .await
            .status,
        303
    );
}

/// Whatever a payer writes in a statement shows as text on every page, never as markup.
#[tokio::test]
async fn html_in_a_statement_is_escaped_everywhere() {
    let env = spawn_env().await;
    let receipt = unmatched_receipt(&env).await;
    let server = ConsoleServer::start(&env).await;
    let mut web = WebClient::new(&server);
    web.sign_in("anna", PASSWORD).await;
    for path in [
        "/attention".to_owned(),
        format!("/orders/{}", ::console::pages::segment(&receipt)),
    ] {
        let page = web.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: script not escaped"
        );
        assert!(!page.body.contains("<img src=x"), "{path}: img not escaped");
        assert!(
            page.body.contains("&lt;script&gt;alert"),
            "{path}: the payer's name shown as text"
        );
        assert!(
            page.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{path}: the purpose shown as text"
        );
    }
    // The language switch: English amounts and words.
    let switched = web.get("/lang/en?back=/attention").await;
    assert_eq!(switched.status, 303);
    let english = web.get("/attention").await;
    assert!(english.body.contains("Needs attention"));
    assert!(english.body.contains("4,321.50 RUB"));
}

/// The reconciliation report per source and business day, on the page and as CSV and XLSX: a card payment today
/// is T-Bank money awaiting its payout, the statement's transfer is bank money on the account.
#[tokio::test]
async fn the_report_shows_each_source_day_as_a_page_csv_and_xlsx() {
    let env = spawn_env().await;
    env.register_order("IM-7301", 9_855).await;
    let note = tbank_note("IM-7301", "8742777", "CONFIRMED", 9_855);
    assert_eq!(env.post_tbank(&note).await.status, 200);
    unmatched_receipt(&env).await;
    let server = ConsoleServer::start(&env).await;
    let mut web = WebClient::new(&server);
    web.sign_in("vera", PASSWORD).await;
    let today = shared::domain::settlement::business_day(shared::platform::clock::now_ms());

    let page = web.get("/report").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("98,55\u{a0}₽"), "T-Bank's taking");
    assert!(page.body.contains("ждём возмещения"));
    assert!(page.body.contains("Банк (переводы)"));

    let csv = web
        .get(&format!("/report.csv?from={today}&to={today}"))
        .await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "День;Источник;Оплачено;Возвращено;Комиссия;Возмещено;Разница;Статус"
    );
    assert!(
        lines.contains(
            &format!("{today};T-Bank;98.55;0.00;0.00;0.00;98.55;ждём возмещения").as_str()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(
            &format!("{today};Банк (переводы);4321.50;0.00;0.00;0.00;0.00;на счёте").as_str()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"unmatched_bank;0–1 дн.;1;4321.50"),
        "{lines:?}"
    );

    let xlsx = web
        .get_bytes(&format!("/report.xlsx?from={today}&to={today}"))
        .await;
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(xlsx)).expect("an XLSX workbook");
    let sheet = book
        .worksheet_range("Сверка")
        .expect("the reconciliation sheet");
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows[0][0], "День");
    assert!(
        rows.iter()
            .any(|r| r[1] == "T-Bank" && r[2] == "98.55" && r[6] == "98.55"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r[1] == "Банк (переводы)" && r[2] == "4321.5"),
        "{rows:?}"
    );
}

/// Every page is served from queries of its own lists, never a scan, in a number of requests that does not grow
/// with the orders: the overview (after its first render keeps the closed days' totals), the lists, an order.
#[tokio::test]
async fn every_page_reads_a_bounded_number_of_times_and_never_scans() {
    let env = spawn_env().await;
    for n in 0..20 {
        env.register_order(&format!("IM-74{n:02}"), 10_000).await;
        let note = tbank_note(
            &format!("IM-74{n:02}"),
            &format!("87430{n:02}"),
            "CONFIRMED",
            10_000,
        );
        env.post_tbank(&note).await;
    }
    let server = ConsoleServer::start(&env).await;
    let mut web = WebClient::new(&server);
    web.sign_in("vera", PASSWORD).await;
    assert_eq!(web.get("/").await.status, 200); // keeps the closed days' totals
    env.aws_calls.take_requests();
    let mut counts = Vec::new();
    for path in ["/", "/attention", "/orders/IM-7401", "/report"] {
        assert_eq!(web.get(path).await.status, 200, "{path}");
        let requests = env.aws_calls.take_requests();
        assert!(
            !requests.keys().any(|k| k.ends_with(".Scan")),
            "{path}: {requests:?}"
        );
        counts.push((path, requests.values().sum::<usize>()));
    }
    // Each page: 1 session check (signed out?); 9 lists; 4 sources × (kept totals + 3 live days) + 3 acquirers'
    // settlements.
    assert_eq!(
        counts,
        [
            ("/", 1 + 9 + 16 + 3),
            ("/attention", 1 + 9),
            ("/orders/IM-7401", 1 + 4),
            ("/report", 1 + 9 + 16 + 3)
        ]
    );
}

/// A paid order 1C cancelled (`CANCEL_REFUND_POLICY=ask`): a refund for a person to decide.
async fn cancelled_paid(env: &TestEnv, id: &str, payment: &str) {
    use shared::domain::{
        Currency, FactId, FactKind, OrderId, PaymentFact, PaymentMethod, PaymentRef, Source,
    };
    env.register_order(id, 9_855).await;
    let paid = tbank_note(id, payment, "CONFIRMED", 9_855);
    assert_eq!(env.post_tbank(&paid).await.status, 200);
    let cancelled = PaymentFact::new(
        FactId::new(Source::OneC, &format!("order#{id}#cancelled")).unwrap(),
        OrderId::parse(id).unwrap(),
        PaymentRef::new(Source::OneC, &format!("order-{id}")).unwrap(),
        PaymentMethod::Other,
        Currency::RUB,
        FactKind::OrderCancelled,
        1,
    )
    .unwrap();
    let events = shared::adapters::sqs::SqsEventPublisher::new(env.sqs.clone(), &env.queue_url);
    shared::app::ledger::Ledger::new(&env.store, &events)
        .record(&cancelled)
        .await
        .unwrap();
}

/// A manager approves one refund (handed to refund-chargeback through the event) and keeps the money of another;
/// an accountant is told who decides and refused; the payout a statement could not reconcile is accepted with a
/// reason, once, and leaves the list.
#[tokio::test]
async fn refunds_are_a_managers_decision_and_payouts_an_accountants() {
    let env = spawn_env().await;
    cancelled_paid(&env, "IM-7501", "8745001").await;
    cancelled_paid(&env, "IM-7502", "8745002").await;
    // A Sber payout for a day without Sber card payments: a mismatch.
    let mut op = operation("9f00-console-0002", "1000.00");
    op["payer"]["inn"] = json!("7707083893");
    op["counterParty"]["inn"] = json!("7707083893");
    op["payPurpose"] = json!("Возмещение по операциям эквайринга за 29.11.2026");
    let run = pull(&env, json!({ "operations": [op] })).await;
    assert_eq!(run.settlement_mismatches, 1, "{run:?}");
    env.drain_queue().await;
    let server = ConsoleServer::start(&env).await;

    let mut anna = WebClient::new(&server);
    anna.sign_in("anna", PASSWORD).await;
    let page = anna.get("/orders/IM-7501").await;
    assert!(page.body.contains("Решение о возврате принимает менеджер"));
    assert!(!page.body.contains("/refund/approve"));
    let csrf = hidden(&page.body, "csrf").unwrap();
    let form = [
        ("csrf", csrf.as_str()),
        ("token", "anna-tries-to-approve-01"),
        ("reason", "x"),
    ];
    assert_eq!(
        anna.post("/orders/IM-7501/refund/approve", &form)
            .await
            .status,
        403
    );

    let mut max = WebClient::new(&server);
    max.sign_in("max", PASSWORD).await;
    let page = max.get("/orders/IM-7501").await;
    let at = page.body.find("/refund/approve").unwrap();
    let (csrf, token) = (
        hidden(&page.body, "csrf").unwrap(),
        hidden(&page.body[at..], "token").unwrap(),
    );
    let form = [
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("amount", ""),
        ("reason", "покупатель отказался"),
    ];
    let done = max.post("/orders/IM-7501/refund/approve", &form).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location.unwrap().ends_with("done=approved"));
    let order = env.order("IM-7501").await.unwrap();
    let request = order
        .refund_requests
        .values()
        .next()
        .expect("a refund request");
    assert_eq!(
        (request.amount, request.status),
        (9_855, shared::domain::RefundStatus::Requested)
    );
    let events = env.drain_queue().await;
    assert!(
        events
            .iter()
            .any(|e| e.order_id == "IM-7501" && e.has_refund_work()),
        "{events:?}"
    );

    let page = max.get("/orders/IM-7502").await;
    let at = page.body.find("/refund/deny").unwrap();
    let token = hidden(&page.body[at..], "token").unwrap();
    let form = [
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("reason", "товар выдан"),
    ];
    let kept = max.post("/orders/IM-7502/refund/deny", &form).await;
    assert_eq!(kept.status, 303, "{}", kept.body);
    assert_eq!(env.order("IM-7502").await.unwrap().waived_total(), 9_855);
    let list = max.get("/attention").await;
    assert!(
        list.body.contains("Ждут решения о возврате — 0"),
        "both decided"
    );

    // The payout mismatch: an accountant accepts it, once.
    assert!(list.body.contains("Расхождения в возмещениях — 1"));
    let page = anna.get("/attention").await;
    let at = page.body.find("/payouts/accept").unwrap();
    let key = hidden(&page.body[at..], "key").unwrap();
    let token = hidden(&page.body[at..], "token").unwrap();
    let csrf = hidden(&page.body, "csrf").unwrap();
    let form = [
        ("csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("key", key.as_str()),
        ("reason", "возмещение за прошлый месяц"),
    ];
    assert_eq!(anna.post("/payouts/accept", &form).await.status, 303);
    assert!(anna
        .get("/attention")
        .await
        .body
        .contains("Расхождения в возмещениях — 0"));
    let again = anna.post("/payouts/accept", &form).await;
    assert_eq!(again.status, 422, "accepted once");
    assert!(
        again.body.contains("Эта выплата не ждёт решения"),
        "the reason in Russian: {}",
        again.body
    );
    paysync_e2e::iam::assert_granted("ConsoleFunction", &env.aws_calls.take());
}

/// Every refusal is a page that says why: an unknown page, a wrong method, a body that is not a form, a form too
/// large to be one of ours.
#[tokio::test]
async fn refusals_are_pages_that_say_why() {
    let env = spawn_env().await;
    let server = ConsoleServer::start(&env).await;
    let mut web = WebClient::new(&server);
    web.sign_in("anna", PASSWORD).await;
    let missing = web.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Страница не найдена"));
    let twice = web.get("/search?q=a&q=b").await;
    assert_eq!(twice.status, 400);
    assert!(twice.body.contains("<html") && twice.body.contains("Адрес не прочитан"));
    assert!(
        twice.body.contains(">anna<") || twice.body.contains("anna"),
        "still signed in"
    );
    // In the reader's language.
    let mut english = WebClient::new(&server);
    english.sign_in("anna", PASSWORD).await;
    english.get("/lang/en?back=/").await;
    let twice = english.get("/search?q=a&q=b").await;
    assert_eq!(twice.status, 400);
    assert!(
        twice.body.contains("The address could not be read")
            && !twice.body.contains("Адрес не прочитан"),
        "{}",
        twice.body
    );
    // A refused form's language switch returns to the form's page, not to the form's target.
    let order_form = english
        .post(
            "/orders/IM-1/payment",
            &[("csrf", "wrong"), ("reason", "x")],
        )
        .await;
    assert!(
        order_form.body.contains("back=%2Forders%2FIM-1\"")
            || order_form.body.contains("back=/orders/IM-1\""),
        "{}",
        order_form.body
    );
    let not_utf8 = web.get("/orders/%FF%FE").await;
    assert_eq!(not_utf8.status, 400);
    assert!(not_utf8.body.contains("<html"));
    let wrong = web.get("/logout").await;
    assert_eq!(wrong.status, 405);
    assert!(wrong.body.contains("<html"));
    let page = web.get("/").await;
    let csrf = hidden(&page.body, "csrf").unwrap();
    let huge = "x".repeat(3 * 1024 * 1024);
    let big = web
        .post(
            "/orders/IM-1/payment",
            &[("csrf", csrf.as_str()), ("reason", &huge)],
        )
        .await;
    assert_eq!(big.status, 413);
    assert!(big.body.contains("Форма не прочитана"));
    let no_token = web.post("/login", &[("only", "this")]).await;
    assert_eq!(no_token.status, 403);
    assert!(no_token.body.contains("Форма входа устарела"));
}
