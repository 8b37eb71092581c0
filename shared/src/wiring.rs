//! The composition root: every function's dependencies are built here, from its configuration and the clients,
//! and nowhere else. The seven `functions/*` mains call these with the AWS SDK's clients; the end-to-end tests call
//! the same functions with clients pointed at moto (and recording their calls for the IAM check), so the wiring the
//! Lambdas run is the wiring the tests exercise.
//!
//! Each builder takes the function's config struct and the [`Clients`], and returns the use case's `Deps`.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::dynamo::DynamoLedgerStore;
use crate::adapters::http::bank_api::{ClientBankUrl, TbankBusinessStatement};
use crate::adapters::http::bitrix::HttpBitrix;
use crate::adapters::http::exchange_upstream::HttpExchangeUpstream;
use crate::adapters::http::hooks::HttpHooks;
use crate::adapters::http::sber::{HttpSberGateway, SberRefunds};
use crate::adapters::http::tbank::{HttpTbank, TbankRefunds};
use crate::adapters::http::yookassa::{HttpYooKassa, YooKassaRefunds};
use crate::adapters::sqs::SqsEventPublisher;
use crate::app::acquiring_callback::CallbackDeps;
use crate::app::console::ConsoleDeps;
use crate::app::exchange_1c::ExchangeDeps;
use crate::app::outbox_sweeper::SweeperDeps;
use crate::app::refund_chargeback::RefundDeps;
use crate::app::statement_pull::PullDeps;
use crate::app::status_sync::StatusSyncDeps;
use crate::app::store_sync::StoreDeps;
use crate::domain::Source;
use crate::formats::purpose::PurposePatterns;
use crate::platform::config::{
    AcquirerApi, CallbackConfig, ConsoleConfig, Exchange1cConfig, LedgerConfig, RefundConfig,
    SourceConfig, StatementPullConfig, StatusSyncConfig, StoreConfig, SweeperConfig,
};
use crate::ports::acquirers::{Gateways, SberGateway, TbankApi, YooKassaApi};
use crate::ports::bank::StatementSource;

/// Why a function could not be wired (at start-up, before any request).
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("purpose patterns: {0}")]
    Patterns(#[from] regex::Error),
}

/// The clients every function shares: DynamoDB and SQS (one SDK configuration) and outbound HTTP.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// `adapters::http::client()`: every adapter's outbound HTTP, one policy.
    pub http: reqwest::Client,
}

impl Clients {
    /// The AWS clients from one SDK configuration, and paysync's HTTP client.
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, WiringError> {
        Ok(Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            http: crate::adapters::http::client()?,
        })
    }

    /// From the environment, with paysync's AWS timeouts and retries (`platform::aws`).
    pub async fn from_env() -> Result<Self, WiringError> {
        Self::new(&crate::platform::aws::sdk_config().await)
    }
}

/// The ledger table and the events (and refunds) queues.
fn ledger(
    config: &LedgerConfig,
    clients: &Clients,
) -> (Arc<DynamoLedgerStore>, Arc<SqsEventPublisher>) {
    (
        Arc::new(DynamoLedgerStore::new(
            clients.dynamodb.clone(),
            &config.table,
        )),
        Arc::new(
            SqsEventPublisher::new(clients.sqs.clone(), &config.events_queue_url)
                .with_refunds_queue(config.refunds_queue_url.clone()),
        ),
    )
}

fn yookassa(api: &AcquirerApi, http: &reqwest::Client) -> Arc<HttpYooKassa> {
    Arc::new(HttpYooKassa::new(
        http.clone(),
        &api.api_url,
        &api.login,
        api.secret.clone(),
    ))
}

fn sber(api: &AcquirerApi, http: &reqwest::Client) -> Arc<HttpSberGateway> {
    Arc::new(HttpSberGateway::new(
        http.clone(),
        &api.api_url,
        &api.login,
        api.secret.clone(),
    ))
}

/// `acquiring-callback`: the ledger, and the acquirers' status APIs its verification asks.
pub fn acquiring_callback(
    config: CallbackConfig,
    clients: &Clients,
) -> Result<CallbackDeps, WiringError> {
    let http = &clients.http;
    let (store, events) = ledger(&config.ledger, clients);
    let yookassa = config
        .yookassa
        .as_ref()
        .and_then(|y| y.api.as_ref())
        .map(|api| yookassa(api, http) as Arc<dyn YooKassaApi>);
    let sber_gateway = config
        .sber
        .as_ref()
        .and_then(|s| s.api.as_ref())
        .map(|api| sber(api, http) as Arc<dyn SberGateway>);
    Ok(CallbackDeps {
        config,
        directory: store.clone(),
        watchlist: store.clone(),
        store,
        events,
        yookassa,
        sber_gateway,
    })
}

/// `exchange-1c`: the ledger, its sessions and, in proxy mode, the store's own exchange endpoint.
pub fn exchange_1c(
    config: Exchange1cConfig,
    clients: &Clients,
) -> Result<ExchangeDeps, WiringError> {
    let (store, events) = ledger(&config.ledger, clients);
    let upstream = match config.upstream.as_deref() {
        Some(url) => Some(Arc::new(HttpExchangeUpstream::with_timeout(
            url,
            Duration::from_millis(config.upstream_timeout_ms),
        )?) as _),
        None => None,
    };
    Ok(ExchangeDeps {
        config,
        store: store.clone(),
        events,
        sessions: store.clone(),
        views: store.clone(),
        feed: store.clone(),
        directory: store,
        upstream,
    })
}

/// `statement-pull`: the ledger and one statement source per `STATEMENT_SOURCES` entry.
pub fn statement_pull(
    config: StatementPullConfig,
    clients: &Clients,
) -> Result<PullDeps, WiringError> {
    let http = &clients.http;
    let (store, events) = ledger(&config.ledger, clients);
    let sources = config
        .sources
        .into_iter()
        .map(|source| -> Arc<dyn StatementSource> {
            match source {
                SourceConfig::TbankApi { account, token } => Arc::new(TbankBusinessStatement {
                    client: http.clone(),
                    api_url: config.bank_api_url.clone(),
                    account,
                    token,
                }),
                SourceConfig::ClientbankUrl { account, url } => Arc::new(ClientBankUrl {
                    client: http.clone(),
                    account,
                    url,
                }),
            }
        })
        .collect();
    Ok(PullDeps {
        views: store.clone(),
        takings: store.clone(),
        cursors: store.clone(),
        directory: store.clone(),
        store,
        events,
        sources,
        patterns: PurposePatterns::new()?,
        overlap_days: config.overlap_days,
    })
}

/// `store-sync`: the ledger, the store's REST webhook and the shop's outbound hooks.
pub fn store_sync(config: StoreConfig, clients: &Clients) -> Result<StoreDeps, WiringError> {
    let (store, events) = ledger(&config.ledger, clients);
    let budget = Arc::new(crate::adapters::dynamo::DynamoBudget::new(
        &store,
        "bitrix",
        config.rest_limit,
    ));
    Ok(StoreDeps {
        budget,
        directory: store.clone(),
        cursors: store.clone(),
        markers: store.clone(),
        store,
        events,
        bitrix: Arc::new(HttpBitrix {
            // A `batch` of 50 writes saves 50 orders: it may take the store tens of seconds, inside its own 60 s
            // limit per request (bitrix-rest.md §1.5).
            client: crate::adapters::http::client_with(std::time::Duration::from_secs(55), true)?,
            webhook_url: config.webhook_url.expose().to_owned(),
        }),
        hooks: Arc::new(HttpHooks::new()),
        overlap_minutes: config.overlap_minutes,
        initial_days: config.initial_days,
        push: config.push,
        // Beyond the 10 messages Lambda hands a FIFO function, store-sync takes the rest of its batch itself.
        inbox: (config.push_orders > 10).then(|| {
            Arc::new(crate::adapters::sqs::SqsEventsInbox::new(
                clients.sqs.clone(),
                &config.ledger.events_queue_url,
            )) as Arc<dyn crate::ports::EventsInbox>
        }),
        push_orders: config.push_orders,
    })
}

/// `refund-chargeback`: the ledger and the refund API of every configured acquirer, keyed by [`Source`].
pub fn refund_chargeback(
    config: RefundConfig,
    clients: &Clients,
) -> Result<RefundDeps, WiringError> {
    let http = &clients.http;
    let (store, events) = ledger(&config.ledger, clients);
    let mut gateways = Gateways::default();
    if let Some(api) = config.tbank {
        gateways = gateways.with(
            Source::Tbank,
            Arc::new(TbankRefunds {
                client: http.clone(),
                state: Arc::new(HttpTbank::new(
                    http.clone(),
                    &api.api_url,
                    &api.login,
                    api.secret.clone(),
                )),
                api_url: api.api_url,
                terminal_key: api.login,
                password: api.secret,
            }),
        );
    }
    if let Some(api) = config.sber {
        let status = sber(&api, http);
        gateways = gateways.with(
            Source::Sber,
            Arc::new(SberRefunds {
                client: http.clone(),
                api_url: api.api_url,
                username: api.login,
                password: api.secret,
                status,
            }),
        );
    }
    if let Some(api) = config.yookassa {
        gateways = gateways.with(
            Source::Yookassa,
            Arc::new(YooKassaRefunds {
                client: http.clone(),
                api_url: api.api_url,
                shop_id: api.login,
                secret_key: api.secret,
            }),
        );
    }
    Ok(RefundDeps {
        store,
        events,
        gateways,
        receipts: config.receipts,
    })
}

/// `status-sync`: the ledger, its questions, and every configured acquirer's status API.
/// `console`: the ledger, its lists and the sign-in counts (the web layer keeps the users and the cookie key).
pub fn console(config: &ConsoleConfig, clients: &Clients) -> ConsoleDeps {
    let (store, events) = ledger(&config.ledger, clients);
    ConsoleDeps {
        attention: store.clone(),
        views: store.clone(),
        directory: store.clone(),
        markers: store.clone(),
        takings: store.clone(),
        histories: store.clone(),
        sign_ins: store.clone(),
        store,
        events,
    }
}

pub fn status_sync(
    config: StatusSyncConfig,
    clients: &Clients,
) -> Result<StatusSyncDeps, WiringError> {
    let http = &clients.http;
    let (store, events) = ledger(&config.ledger, clients);
    let tbank = config.tbank.as_ref().map(|t| {
        Arc::new(HttpTbank::new(
            http.clone(),
            &t.api.api_url,
            &t.api.login,
            t.api.secret.clone(),
        )) as Arc<dyn TbankApi>
    });
    let sber = config
        .sber
        .as_ref()
        .map(|s| sber(&s.api, http) as Arc<dyn SberGateway>);
    let yookassa = config
        .yookassa
        .as_ref()
        .map(|y| yookassa(&y.api, http) as Arc<dyn YooKassaApi>);
    Ok(StatusSyncDeps {
        directory: store.clone(),
        watchlist: store.clone(),
        store,
        events,
        tbank,
        sber,
        yookassa,
        config,
    })
}

/// `outbox-sweeper`: the ledger and the 1C uploads the proxy tapped.
pub fn outbox_sweeper(
    config: SweeperConfig,
    clients: &Clients,
) -> Result<SweeperDeps, WiringError> {
    let (store, events) = ledger(&config.ledger, clients);
    Ok(SweeperDeps {
        store: store.clone(),
        events,
        uploads: store.clone(),
        views: store.clone(),
        directory: store,
        utc_offset_minutes: config.utc_offset_minutes,
        refund_on_cancel: config.refund_on_cancel,
        session_ttl_secs: config.session_ttl_secs,
    })
}
