//! End-to-end test environment: the real handlers and the real AWS SDK clients against moto (each test gets its
//! own table and FIFO queue), and local fake provider APIs (wiremock) speaking the providers' documented formats.

// Test support: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod console;
pub mod faults;
pub mod iam;

use std::net::SocketAddr;

use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine as _;
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::adapters::dynamo::{create_table, DynamoLedgerStore};
use shared::adapters::sqs::SqsEventPublisher;
use shared::app::acquiring_callback::CallbackDeps;
use shared::app::exchange_1c::{handle as exchange_handle, ExchangeDeps, COOKIE};
use shared::app::ledger::Ledger;
use shared::domain::{Currency, OrderEvent, OrderId, OrderInfo, PaymentFact};
use shared::platform::config::{
    parse_networks, AcquirerApi, CallbackConfig, Exchange1cConfig, LedgerConfig, PushConfig,
    SberConfig, Secret, SourceConfig, StatementPullConfig, StoreConfig, SweeperConfig, TbankConfig,
    YooKassaConfig, YooKassaVerify, DEFAULT_YOOKASSA_ORDER_KEYS, YOOKASSA_NETWORKS,
};
use shared::testing::{function_url_request, request_with_headers};
use shared::wiring::{self, Clients};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use wiremock::MockServer;

pub const TBANK_TERMINAL: &str = "TestTerminalDEMO";
pub const TBANK_PASSWORD: &str = "test-password";
pub const SBER_TOKEN: &str = "sber-callback-token";
pub const YOOKASSA_SHOP: &str = "123456";
pub const YOOKASSA_KEY: &str = "test_secret_key";

/// moto's endpoint, set by `make test`.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: run the end-to-end tests through `make test`")
    })
}

/// Where clients connect; `None` = straight to moto.
#[derive(Default, Clone)]
pub struct Endpoints {
    pub dynamodb: Option<String>,
    pub sqs: Option<String>,
}

impl Endpoints {
    /// Both services through `url` (a switch, or a moto of the test's own).
    pub fn all(url: &str) -> Self {
        Endpoints {
            dynamodb: Some(url.to_owned()),
            sqs: Some(url.to_owned()),
        }
    }

    /// Only SQS through `url`; DynamoDB straight to moto.
    pub fn sqs(url: &str) -> Self {
        Endpoints {
            dynamodb: None,
            sqs: Some(url.to_owned()),
        }
    }
}

pub struct TestEnv {
    pub table: String,
    pub queue_url: String,
    pub ddb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// A store that always talks to moto directly (for assertions, whatever the handler's endpoints).
    pub store: DynamoLedgerStore,
    /// The handler's clients (through `endpoints`, calls recorded in `aws_calls`).
    pub handler_ddb: aws_sdk_dynamodb::Client,
    pub handler_sqs: aws_sdk_sqs::Client,
    /// The IAM actions of every call the handler's clients made.
    pub aws_calls: iam::AwsCalls,
    /// The handler's clients as `shared::wiring` takes them: every function's dependencies in these tests are
    /// built by the same wiring the Lambdas run.
    pub clients: Clients,
    pub yookassa_api: MockServer,
    pub sber_api: MockServer,
    pub deps: CallbackDeps,
}

async fn clients(endpoints: &Endpoints) -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
    clients_recording(endpoints, None).await
}

/// Clients whose calls are recorded into `calls` (see [`iam`]).
async fn clients_recording(
    endpoints: &Endpoints,
    calls: Option<&iam::AwsCalls>,
) -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
    let mut sdk = shared::platform::aws::sdk_config().await;
    if let Some(calls) = calls {
        sdk = sdk.into_builder().http_client(calls.http_client()).build();
    }
    let mut d = aws_sdk_dynamodb::config::Builder::from(&sdk);
    if let Some(e) = &endpoints.dynamodb {
        d = d.endpoint_url(e);
    }
    let mut s = aws_sdk_sqs::config::Builder::from(&sdk);
    if let Some(e) = &endpoints.sqs {
        s = s.endpoint_url(e);
    }
    (
        aws_sdk_dynamodb::Client::from_conf(d.build()),
        aws_sdk_sqs::Client::from_conf(s.build()),
    )
}

pub async fn spawn_env() -> TestEnv {
    spawn_env_with(Endpoints::default(), YooKassaVerify::Api).await
}

/// A fresh table and queue on moto, fake provider APIs, and the callback handler's real dependencies.
pub async fn spawn_env_with(endpoints: Endpoints, verify: YooKassaVerify) -> TestEnv {
    spawn_env_on(&moto_endpoint(), endpoints, verify).await
}

/// Like [`spawn_env_with`], with the table and queue on the moto at `resources` (e.g. a test's [`OwnMoto`]);
/// `endpoints` is how the handler reaches it.
pub async fn spawn_env_on(
    resources: &str,
    endpoints: Endpoints,
    verify: YooKassaVerify,
) -> TestEnv {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let table = format!("ledger-{id}");
    let (ddb, sqs) = clients(&Endpoints::all(resources)).await;
    create_table(&ddb, &table)
        .await
        .expect("create table on moto");
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("events-{id}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create queue on moto")
        .queue_url
        .expect("queue url");
    let yookassa_api = MockServer::start().await;
    let sber_api = MockServer::start().await;
    let config = CallbackConfig {
        ledger: LedgerConfig {
            table: table.clone(),
            events_queue_url: queue_url.clone(),
            refunds_queue_url: None,
        },
        tbank: Some(TbankConfig {
            api: AcquirerApi {
                login: TBANK_TERMINAL.into(),
                secret: Secret::new(TBANK_PASSWORD),
                api_url: "http://127.0.0.1:9/v2".into(),
            },
            reference: shared::domain::reference::parse_rules_or_default(
                shared::platform::config::DEFAULT_TBANK_REFERENCE,
            ),
        }),
        sber: Some(SberConfig {
            callback_token: Secret::new(SBER_TOKEN),
            api: Some(AcquirerApi {
                login: "merchant-api".into(),
                secret: Secret::new("merchant-pass"),
                api_url: format!("{}/payment/rest", sber_api.uri()),
            }),
            reference: shared::domain::reference::parse_rules_or_default(
                shared::platform::config::DEFAULT_SBER_REFERENCE,
            ),
        }),
        yookassa: Some(YooKassaConfig {
            api: Some(AcquirerApi {
                login: YOOKASSA_SHOP.into(),
                secret: Secret::new(YOOKASSA_KEY),
                api_url: format!("{}/v3", yookassa_api.uri()),
            }),
            verify,
            trusted_networks: parse_networks(&YOOKASSA_NETWORKS.join(",")).expect("networks"),
            order_keys: DEFAULT_YOOKASSA_ORDER_KEYS
                .split(',')
                .map(str::to_owned)
                .collect(),
            reference: shared::domain::reference::parse_rules_or_default(
                shared::platform::config::DEFAULT_YOOKASSA_REFERENCE,
            ),
        }),
        receipts: Default::default(),
    };
    let aws_calls = iam::AwsCalls::default();
    let (h_ddb, h_sqs) = clients_recording(&endpoints, Some(&aws_calls)).await;
    let clients = Clients {
        dynamodb: h_ddb.clone(),
        sqs: h_sqs.clone(),
        http: shared::adapters::http::client().expect("http client"),
    };
    let deps = wiring::acquiring_callback(config, &clients).expect("wiring");
    TestEnv {
        store: DynamoLedgerStore::new(ddb.clone(), &table),
        handler_ddb: h_ddb,
        handler_sqs: h_sqs,
        aws_calls,
        clients,
        table,
        queue_url,
        ddb,
        sqs,
        yookassa_api,
        sber_api,
        deps,
    }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl TestEnv {
    pub async fn call(&self, req: Request) -> Reply {
        let resp: Response<Body> = shared::app::acquiring_callback::handle(&self.deps, req)
            .await
            .unwrap_or_else(|e| match e {});
        Reply {
            status: resp.status().as_u16(),
            body: String::from_utf8_lossy(resp.body().as_ref()).into_owned(),
        }
    }

    pub async fn post_json(&self, provider: &str, body: &Value, source_ip: &str) -> Reply {
        self.call(function_url_request(
            "POST",
            &format!("/lambda-url/acquiring-callback/{provider}"),
            "",
            Some("application/json"),
            body.to_string().as_bytes(),
            source_ip,
        ))
        .await
    }

    pub async fn post_tbank(&self, note: &Value) -> Reply {
        self.post_json("tbank", note, "91.194.226.10").await
    }

    /// The ledger this env's handlers use (its table and events queue, no refunds queue).
    pub fn ledger_config(&self) -> LedgerConfig {
        self.deps.config.ledger.clone()
    }

    /// outbox-sweeper's dependencies, wired on the handler's clients (1C's offset +3 h, refunds on cancel).
    pub fn sweeper_deps(&self) -> shared::app::outbox_sweeper::SweeperDeps {
        wiring::outbox_sweeper(
            SweeperConfig {
                ledger: self.ledger_config(),
                utc_offset_minutes: 180,
                refund_on_cancel: true,
                session_ttl_secs: 3600,
            },
            &self.clients,
        )
        .expect("wiring")
    }

    /// Tell the ledger about an order, as store-sync will.
    pub async fn register_order(&self, id: &str, total: i64) {
        let events = SqsEventPublisher::new(self.sqs.clone(), &self.queue_url);
        Ledger::new(&self.store, &events)
            .register_order(
                &OrderId::parse(id).expect("order id"),
                OrderInfo::new(Some(id.into()), total, Currency::RUB),
            )
            .await
            .expect("register order");
    }

    /// Tell the ledger about an order whose store payments were started at T-Bank (`psInvoiceId` = T-Bank's
    /// `PaymentId`, pay system T-Bank's), as store-sync registers it: status-sync then has a question per payment.
    pub async fn register_started_at_tbank(
        &self,
        id: &str,
        total: i64,
        payments: &[(String, i64)],
    ) {
        let events = SqsEventPublisher::new(self.sqs.clone(), &self.queue_url);
        let mut info = OrderInfo::new(Some(id.into()), total, Currency::RUB);
        info.details.payments = payments
            .iter()
            .enumerate()
            .map(|(n, (invoice, sum))| shared::domain::StorePaymentInfo {
                id: format!("{id}-{n}"),
                account_number: Some(format!("{id}/{}", n + 1)),
                sum: *sum,
                pay_system_id: Some("5".into()),
                ps_invoice_id: Some(invoice.clone()),
                paid: false,
                acquirer: Some(shared::domain::Source::Tbank),
            })
            .collect();
        Ledger::new(&self.store, &events)
            .register_order(&OrderId::parse(id).expect("order id"), info)
            .await
            .expect("register order");
    }

    /// status-sync's dependencies, wired on the handler's clients, asking T-Bank at `tbank_api` (`…/v2`).
    pub fn status_sync_deps(&self, tbank_api: String) -> shared::app::status_sync::StatusSyncDeps {
        wiring::status_sync(
            shared::platform::config::StatusSyncConfig {
                ledger: self.ledger_config(),
                tbank: Some(shared::platform::config::AcquirerStatus {
                    api: AcquirerApi {
                        login: TBANK_TERMINAL.into(),
                        secret: Secret::new(TBANK_PASSWORD),
                        api_url: tbank_api,
                    },
                    reference: shared::domain::reference::parse_rules_or_default(
                        shared::platform::config::DEFAULT_TBANK_REFERENCE,
                    ),
                    order_keys: Vec::new(),
                }),
                sber: None,
                yookassa: None,
                calls_per_run: 10_000,
                give_up_days: 30,
                receipts: Default::default(),
            },
            &self.clients,
        )
        .expect("wiring")
    }

    /// store-sync's dependencies, wired on the handler's clients, with a store at `webhook_url` and nothing
    /// pushed beyond the defaults (a test sets `deps.push`).
    pub fn store_deps(
        &self,
        webhook_url: String,
        initial_days: i64,
    ) -> shared::app::store_sync::StoreDeps {
        wiring::store_sync(
            StoreConfig {
                ledger: self.ledger_config(),
                webhook_url: Secret::new(webhook_url),
                overlap_minutes: 10,
                initial_days,
                push: PushConfig::default(),
                rest_limit: Default::default(),
                // Only what a test hands store-sync: the ledger's own announcements stay on the queue.
                push_orders: 10,
            },
            &self.clients,
        )
        .expect("wiring")
    }

    /// statement-pull's dependencies, wired on the handler's clients, reading `sources` (a T-Bank Business API
    /// source at `bank_api_url`).
    pub fn pull_deps(
        &self,
        sources: Vec<SourceConfig>,
        bank_api_url: String,
    ) -> shared::app::statement_pull::PullDeps {
        wiring::statement_pull(
            StatementPullConfig {
                ledger: self.ledger_config(),
                sources,
                bank_api_url,
                overlap_days: 3,
            },
            &self.clients,
        )
        .expect("wiring")
    }

    /// [`Self::register_order`] through the handler's own clients (for a test whose handler talks to a moto of
    /// its own).
    pub async fn register_order_via_handler(&self, id: &str, total: i64) {
        Ledger::new(self.deps.store.as_ref(), self.deps.events.as_ref())
            .register_order(
                &OrderId::parse(id).expect("order id"),
                OrderInfo::new(Some(id.into()), total, Currency::RUB),
            )
            .await
            .expect("register order");
    }

    pub async fn facts(&self, order: &str) -> Vec<PaymentFact> {
        self.store
            .facts(&OrderId::parse(order).expect("order id"))
            .await
            .expect("read facts")
    }

    pub async fn order(&self, id: &str) -> Option<shared::domain::Order> {
        use shared::ports::LedgerStore;
        self.store
            .load_order(&OrderId::parse(id).expect("order id"))
            .await
            .expect("read order")
    }

    pub async fn outbox(&self) -> Vec<OrderEvent> {
        use shared::ports::LedgerStore;
        self.store
            .list_pending(i64::MAX, 10_000)
            .await
            .expect("read outbox")
    }

    /// Receive and delete every message on the queue, in order.
    pub async fn drain_queue(&self) -> Vec<OrderEvent> {
        let mut out = Vec::new();
        let mut empty_rounds = 0;
        while empty_rounds < 2 {
            let resp = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .send()
                .await
                .expect("receive");
            let msgs = resp.messages.unwrap_or_default();
            if msgs.is_empty() {
                empty_rounds += 1;
                continue;
            }
            empty_rounds = 0;
            for m in msgs {
                out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("event JSON"));
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        out
    }
}

/// A small deterministic generator (xorshift) for shuffles and choices that a seed reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// In `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

/// The `p` quantile (0..=1) of sorted samples, nearest rank; zero when there are none.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A T-Bank notification signed for the test terminal.
pub fn tbank_note(order: &str, payment: &str, status: &str, amount: i64) -> Value {
    shared::testing::tbank_sign(
        &serde_json::json!({
            "TerminalKey": TBANK_TERMINAL, "OrderId": order, "Success": true, "Status": status,
            "PaymentId": payment, "ErrorCode": "0", "Amount": amount,
            "CardId": 322264, "Pan": "430000******0777", "ExpDate": "1130"
        }),
        TBANK_PASSWORD,
    )
}

/// A TCP proxy in front of moto that can be switched off, cutting every connection, like moto going down.
pub struct Switch {
    pub url: String,
    up: watch::Sender<bool>,
}

impl Switch {
    pub async fn start(target: &str) -> Switch {
        let target: SocketAddr = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("moto endpoint is http://host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (up, rx) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut rx = rx.clone();
                if !*rx.borrow() {
                    continue; // dropped: connection closed at once
                }
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Switch { url, up }
    }

    pub fn set_up(&self, up: bool) {
        let _ = self.up.send(up);
    }
}

/// A moto process of a test's own (the shared one must never be stopped), started with the same launcher as
/// `make test` and restartable on the same port.
pub struct OwnMoto {
    child: std::process::Child,
    pub port: u16,
}

impl OwnMoto {
    pub async fn start(port: Option<u16>) -> OwnMoto {
        let python = std::env::var("PAYSYNC_PYTHON").unwrap_or_else(|_| {
            panic!("PAYSYNC_PYTHON is not set: run the end-to-end tests through `make test`")
        });
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto_server.py");
        let port_file =
            std::env::temp_dir().join(format!("moto-{}.port", uuid::Uuid::new_v4().simple()));
        let mut cmd = std::process::Command::new(python);
        cmd.arg(script)
            .arg(&port_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(p) = port {
            cmd.env("MOTO_FIXED_PORT", p.to_string());
        }
        let mut child = cmd.spawn().expect("spawn moto");
        for _ in 0..200 {
            if let Some(status) = child.try_wait().expect("moto status") {
                panic!("moto exited early: {status}");
            }
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let port: u16 = text.trim().parse().expect("port");
                if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    let _ = std::fs::remove_file(&port_file);
                    return OwnMoto { child, port };
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("moto did not start");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) the server: connections stay open and nothing answers, as when a
    /// host stalls.
    pub fn set_frozen(&self, frozen: bool) {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let _ = std::process::Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Create a table and a FIFO queue with these names at an endpoint.
pub async fn create_resources(endpoint: &str, table: &str, queue_name: &str) {
    let (ddb, sqs) = clients(&Endpoints::all(endpoint)).await;
    create_table(&ddb, table).await.expect("create table");
    sqs.create_queue()
        .queue_name(queue_name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("create queue");
}

/// A ledger store reading straight from an endpoint.
pub async fn store_at(endpoint: &str, table: &str) -> DynamoLedgerStore {
    let (ddb, _) = clients(&Endpoints::all(endpoint)).await;
    DynamoLedgerStore::new(ddb, table)
}

/// 1C's exchange node talking to exchange-1c (standalone) whose ledger is the env's table on moto.
pub struct OneC {
    deps: ExchangeDeps,
    cookie: String,
    sessid: String,
}

impl OneC {
    pub async fn connect(env: &TestEnv) -> OneC {
        OneC::connect_with(env, env.ledger_config()).await
    }

    /// With another ledger configuration (e.g. one that also feeds the refunds queue).
    pub async fn connect_with(env: &TestEnv, ledger: LedgerConfig) -> OneC {
        let deps = wiring::exchange_1c(
            Exchange1cConfig {
                ledger,
                user: "1c".into(),
                password: Secret::new("pw"),
                file_limit: 1024,
                import_budget_ms: 20_000,
                upstream_timeout_ms: 25_000,
                session_ttl_secs: 600,
                utc_offset_minutes: 180,
                refund_on_cancel: true,
                upstream: None,
                enrich_query: true,
                query_undescribed: false,
            },
            &env.clients,
        )
        .expect("wiring");
        let mut c = OneC {
            deps,
            cookie: String::new(),
            sessid: String::new(),
        };
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("1c:pw")
        );
        let text = c
            .call("type=sale&mode=checkauth", &[("authorization", &auth)], b"")
            .await;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!((lines[0], lines[1]), ("success", COOKIE), "{text}");
        c.cookie = format!("{COOKIE}={}", lines[2]);
        c.sessid = lines[3].trim_start_matches("sessid=").to_owned();
        c
    }

    pub async fn call(&self, query: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
        let method = if body.is_empty() { "GET" } else { "POST" };
        let req = request_with_headers(method, "/", query, headers, body, "10.0.0.1");
        let resp = exchange_handle(&self.deps, req)
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(resp.status().as_u16(), 200);
        encoding_rs::WINDOWS_1251
            .decode(resp.body().as_ref())
            .0
            .into_owned()
    }

    pub async fn mode(&self, mode: &str, extra: &str, body: &[u8]) -> String {
        let q = format!("type=sale&mode={mode}&sessid={}{extra}", self.sessid);
        self.call(&q, &[("cookie", &self.cookie.clone())], body)
            .await
    }

    pub async fn send_file(&self, name: &str, bytes: &[u8]) -> String {
        // file_limit is 1024 here: a real file arrives in several chunks.
        for chunk in bytes.chunks(1024) {
            assert_eq!(
                self.mode("file", &format!("&filename={name}"), chunk).await,
                "success\n"
            );
        }
        self.mode("import", &format!("&filename={name}"), b"").await
    }
}
