//! The console in a real browser: Debian's headless Chromium driven through its WebDriver (chromedriver), against
//! the console on a local port with its ledger on moto and money brought by a real statement-pull run.
//!
//! `make test` installs `chromium` and `chromium-driver` and sets `PAYSYNC_CHROMEDRIVER`; a plain `cargo test`
//! without them says so and skips. `PAYSYNC_SCREENSHOTS=<dir>` saves the main pages as PNG (the README's pictures
//! are made so).

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use paysync_e2e::console::{ConsoleServer, PASSWORD};
use paysync_e2e::*;
use serde_json::json;
use shared::domain::OrderState;

struct Driver {
    child: Child,
    _profile: std::path::PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads a process group of its own: the browser and its helpers go with it, also when the
        // test failed before it closed the session.
        let _ = Command::new("kill")
            .arg("-9")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

/// chromedriver on a free port and a headless Chromium session with a profile of its own. The flags keep Chromium
/// off the network it has no access to here (background updates, sync, QUIC).
async fn browser(chromedriver: &str) -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = std::env::temp_dir().join(format!(
        "paysync-chromium-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let driver = Driver {
        child,
        _profile: profile.clone(),
    };
    let binary = std::env::var("PAYSYNC_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = json!({
        "goog:chromeOptions": {
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1700",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(caps).unwrap();
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer: {last:?}");
}

async fn shot(client: &Client, name: &str) {
    if let Ok(dir) = std::env::var("PAYSYNC_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

async fn sign_in(client: &Client, server: &ConsoleServer, login: &str) {
    client.goto(&format!("{}/login", server.url)).await.unwrap();
    client
        .find(Locator::Css("input[name=login]"))
        .await
        .unwrap()
        .send_keys(login)
        .await
        .unwrap();
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrived(client, "/console/").await;
}

/// Wait until the browser shows a page whose path ends with `suffix` and has finished loading (a click that
/// submits a form returns before the next page is there).
async fn arrived(client: &Client, suffix: &str) {
    for _ in 0..200 {
        let url = client.current_url().await.unwrap();
        let ready = client
            .execute("return document.readyState", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        if url.path().ends_with(suffix) && ready.as_deref() == Some("complete") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "never arrived at …{suffix}: {}",
        client.current_url().await.unwrap()
    );
}

/// Click the element `css` finds (inside `within` when given).
async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Type into the field `css` of `form`.
async fn type_into(form: &fantoccini::elements::Element, css: &str, text: &str) {
    form.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn text(client: &Client) -> String {
    for _ in 0..50 {
        if let Ok(body) = client.find(Locator::Css("body")).await {
            if let Ok(t) = body.text().await {
                return t;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no page text");
}

#[tokio::test]
async fn a_person_allocates_unmatched_bank_money_in_a_real_browser() {
    let Ok(chromedriver) = std::env::var("PAYSYNC_CHROMEDRIVER") else {
        eprintln!("skipped: PAYSYNC_CHROMEDRIVER is not set (make test installs chromium-driver and sets it)");
        return;
    };
    let env = spawn_env().await;
    env.register_order("IM-7201", 432_150).await;
    let receipt = super::console::unmatched_receipt(&env).await;
    let receipt_path = format!("/orders/{}", ::console::pages::segment(&receipt));
    env.drain_queue().await;
    let server = ConsoleServer::start(&env).await;
    let (_driver, client) = browser(&chromedriver).await;

    // A viewer sees the money but is offered no decision.
    sign_in(&client, &server, "vera").await;
    client
        .goto(&format!("{}/attention", server.url))
        .await
        .unwrap();
    click(&client, "a[href*='/orders/unmatched']").await;
    arrived(&client, &receipt_path).await;
    assert!(text(&client).await.contains("4 321,50 ₽"));
    assert!(
        client.find(Locator::Css("form.allocate")).await.is_err(),
        "no allocate form for a viewer"
    );
    click(&client, "header form button").await;
    arrived(&client, "/login").await;

    // The accountant: overview, the list, the receipt, the allocation.
    sign_in(&client, &server, "anna").await;
    shot(&client, "overview").await;
    client
        .goto(&format!("{}/attention", server.url))
        .await
        .unwrap();
    arrived(&client, "/attention").await;
    let list = text(&client).await;
    assert!(list.contains("Нераспознанные поступления банка"));
    assert!(
        list.contains("<script>alert('payer')</script>"),
        "the payer's name shown as text"
    );
    shot(&client, "attention").await;
    click(&client, "a[href*='/orders/unmatched']").await;
    arrived(&client, &receipt_path).await;
    shot(&client, "receipt").await;
    let form = client
        .find(Locator::Css("form.allocate"))
        .await
        .expect("allocate form");
    type_into(&form, "input[name=order_1]", "IM-7201").await;
    type_into(
        &form,
        "input[name=reason]",
        "п/п 118 от 30.11.2026, счёт IM-7201",
    )
    .await;
    form.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrived(&client, "/orders/IM-7201").await;
    let page = text(&client).await;
    assert!(page.contains("Поступление распределено"), "{page}");
    assert!(page.contains("оплачен"));
    assert!(page.contains("из 4 321,50 ₽ (100%)"), "{page}");
    shot(&client, "order").await;
    let order = env.order("IM-7201").await.unwrap();
    assert_eq!(
        (order.state(), order.totals().paid),
        (OrderState::Paid, 432_150)
    );
    let events = env.drain_queue().await;
    assert!(
        events
            .iter()
            .any(|e| e.order_id == "IM-7201" && e.state == OrderState::Paid),
        "{events:?}"
    );
    assert!(!env.facts(&receipt).await.is_empty());

    // A form whose CSRF token was tampered with is refused, and nothing is recorded.
    client
        .execute("document.querySelector(\"form[action$='/payment'] input[name=csrf]\").value = 'forged';", vec![])
        .await
        .unwrap();
    let payment = client
        .find(Locator::Css("form[action$='/payment']"))
        .await
        .unwrap();
    type_into(&payment, "input[name=amount]", "100").await;
    type_into(&payment, "input[name=reason]", "test").await;
    payment
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    arrived(&client, "/orders/IM-7201/payment").await;
    assert!(text(&client).await.contains("Форма отклонена"));
    assert_eq!(env.order("IM-7201").await.unwrap().totals().paid, 432_150);
    // The reconciliation report, and its XLSX as the browser downloads it (with the browser's own session).
    client
        .goto(&format!("{}/report", server.url))
        .await
        .unwrap();
    arrived(&client, "/report").await;
    assert!(text(&client).await.contains("Банк (переводы)"));
    shot(&client, "report").await;
    let href = client
        .find(Locator::Css("a.download[href*='report.xlsx']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("a link");
    let cookies = client.get_all_cookies().await.unwrap();
    let header = cookies
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let origin = server.url.split("/lambda-url").next().unwrap().to_owned();
    let xlsx = reqwest::Client::new()
        .get(format!("{origin}{href}"))
        .header("cookie", header)
        .send()
        .await
        .unwrap();
    assert_eq!(xlsx.status().as_u16(), 200);
    let bytes = xlsx.bytes().await.unwrap().to_vec();
    use calamine::Reader;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).expect("an XLSX workbook");
    let rows: Vec<Vec<String>> = book
        .worksheet_range("Сверка")
        .expect("the reconciliation sheet")
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert!(
        rows.iter()
            .any(|r| r[1] == "Банк (переводы)" && r[2] == "4321.5"),
        "{rows:?}"
    );
    client.close().await.unwrap();
}
