//! Configuration read once from the environment at init. Handlers never call `std::env::var`.
//!
//! Every function reads its whole configuration in `main` before it serves anything, so a bad value stops it at
//! init with the variable's name and the reason (`Error: environment variable X is invalid: …` on stderr, which
//! Lambda logs as an init error), never on the first request.

use std::fmt;

use ipnet::IpNet;

use crate::domain::{RefRule, Source};

#[derive(thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The message itself: `main` returning this error prints its `Debug`, and the person reading it wants the
/// variable's name and the reason, not a struct dump.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A secret string that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the ledger lives. Every function needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// `LEDGER_TABLE`: the DynamoDB table.
    pub table: String,
    /// `EVENTS_QUEUE_URL`: the SQS FIFO queue every committed change is announced on.
    pub events_queue_url: String,
    /// `REFUNDS_QUEUE_URL`: the SQS FIFO queue of `refund-chargeback`; changes that leave refund work are announced
    /// there too. Unset: nobody executes refunds (they wait, admitted, in the ledger).
    pub refunds_queue_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TbankConfig {
    /// `TBANK_TERMINAL_KEY`, `TBANK_PASSWORD` (the notification's `Token` is signed with it), `TBANK_API_URL`.
    pub api: AcquirerApi,
    /// `TBANK_REFERENCE`: what `OrderId` may name in the store.
    pub reference: Vec<RefRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SberConfig {
    pub callback_token: Secret,
    /// `SBER_USERNAME`, `SBER_PASSWORD`, `SBER_API_URL`: `getOrderStatusExtended.do` (asked when a callback lacks
    /// an amount); `None` when the API user is not configured.
    pub api: Option<AcquirerApi>,
    /// `SBER_REFERENCE`: what `orderNumber` may name in the store.
    pub reference: Vec<RefRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YooKassaVerify {
    /// Re-read the object through the API and act on what it returns (default).
    Api,
    /// Accept by source IP in YooKassa's published networks.
    Ip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YooKassaConfig {
    /// `YOOKASSA_SHOP_ID`, `YOOKASSA_SECRET_KEY`, `YOOKASSA_API_URL`; `None` only with `YOOKASSA_VERIFY=ip`.
    pub api: Option<AcquirerApi>,
    pub verify: YooKassaVerify,
    pub trusted_networks: Vec<IpNet>,
    /// Metadata keys that may carry the store's order reference, tried in order.
    pub order_keys: Vec<String>,
    /// `YOOKASSA_REFERENCE`: what such a key's value may name in the store.
    pub reference: Vec<RefRule>,
}

/// YooKassa's published notification networks.
pub const YOOKASSA_NETWORKS: &[&str] = &[
    "185.71.76.0/27",
    "185.71.77.0/27",
    "77.75.153.0/25",
    "77.75.156.11/32",
    "77.75.156.35/32",
    "77.75.154.128/25",
    "2a02:5180::/32",
];

/// Metadata keys a shop's own integration may put the order in. Bitrix's `BX_PAYMENT_NUMBER` is not among them:
/// it is always read as the store payment id (see `formats::yookassa::store_reference`).
pub const DEFAULT_YOOKASSA_ORDER_KEYS: &str = "order_id,orderId,order_number,orderNumber";

/// Defaults of `TBANK_REFERENCE`, `SBER_REFERENCE`, `YOOKASSA_REFERENCE` for a stock 1C-Bitrix store: what the
/// acquirer's order reference may name, most likely first (see `domain::reference`).
pub const DEFAULT_TBANK_REFERENCE: &str = "order_number,order,payment_number";
pub const DEFAULT_SBER_REFERENCE: &str = "payment_paysystem,order_attempt,order_number,order";
pub const DEFAULT_YOOKASSA_REFERENCE: &str = "order_number,order";

/// Settings of `acquiring-callback`. A provider whose settings are absent is disabled (its route answers 404).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackConfig {
    pub ledger: LedgerConfig,
    pub tbank: Option<TbankConfig>,
    pub sber: Option<SberConfig>,
    pub yookassa: Option<YooKassaConfig>,
    /// Which acquirers issue the payments' fiscal receipts.
    pub receipts: Receipts,
}

/// An acquirer's API as `refund-chargeback` calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirerApi {
    /// T-Bank: the terminal key; Sber: the API user; YooKassa: the shop id.
    pub login: String,
    /// T-Bank: the terminal password; Sber: the API password; YooKassa: the secret key.
    pub secret: Secret,
    /// The API's base URL (`*_API_URL`).
    pub api_url: String,
}

/// Settings of `refund-chargeback`: the API of every acquirer that is configured. An acquirer left out cannot
/// refund: its requests fail with that reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundConfig {
    pub ledger: LedgerConfig,
    pub tbank: Option<AcquirerApi>,
    pub sber: Option<AcquirerApi>,
    pub yookassa: Option<AcquirerApi>,
    /// Which acquirers issue the shop's fiscal receipts.
    pub receipts: Receipts,
}

/// `RECEIPTS`: the acquirers whose receipts service issues the shop's fiscal receipts (54-FZ), comma-separated:
/// `yookassa` ("Чеки от ЮKassa"), `tbank` (T-Bank's online cashbox); `none` (the default) when the shop prints them
/// itself. A partial refund through such an acquirer carries the receipt of the returned goods.
/// `RECEIPT_TAXATION`: the shop's taxation system as T-Bank's `Receipt.Taxation` names it (`osn`, `usn_income`,
/// `usn_income_outcome`, `esn`, `patent`); required with `tbank`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipts {
    pub by: Vec<Source>,
    pub taxation: Option<String>,
}

impl Receipts {
    pub fn issued_by(&self, acquirer: Source) -> bool {
        self.by.contains(&acquirer)
    }
}

/// An acquirer as status-sync asks it: its API, and how its references name store orders (the same rules the
/// acquirer's notifications are read with, so a status read gives the notification's fact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirerStatus {
    pub api: AcquirerApi,
    /// `*_REFERENCE`.
    pub reference: Vec<RefRule>,
    /// YooKassa only: `YOOKASSA_ORDER_KEYS`.
    pub order_keys: Vec<String>,
}

/// Settings of `status-sync`. An acquirer whose API is not configured is not asked; its questions wait and are
/// given up like unanswered ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSyncConfig {
    pub ledger: LedgerConfig,
    pub tbank: Option<AcquirerStatus>,
    pub sber: Option<AcquirerStatus>,
    pub yookassa: Option<AcquirerStatus>,
    /// `STATUS_SYNC_CALLS_PER_RUN` (default 60): status calls per acquirer per run, inside the acquirers' rate
    /// limits; what is left waits for the next run.
    pub calls_per_run: usize,
    /// `STATUS_SYNC_GIVE_UP_DAYS` (default 30): after this a question is given up and flagged `status_unknown`.
    pub give_up_days: i64,
    /// Which acquirers issue the payments' fiscal receipts.
    pub receipts: Receipts,
}

/// A console user (`CONSOLE_USERS`, a JSON list): login, role and the argon2 PHC hash of the password
/// (`$argon2id$v=19$...`, printed by `make console-password`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ConsoleUser {
    pub login: String,
    pub role: crate::domain::Role,
    pub password_hash: Secret,
}

/// Settings of `console`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub ledger: LedgerConfig,
    /// `CONSOLE_USERS` (required): who may sign in.
    pub users: Vec<ConsoleUser>,
    /// `CONSOLE_SESSION_KEY` (required, at least 32 characters): the key the session cookie is encrypted and
    /// authenticated with.
    pub session_key: Secret,
    /// `CONSOLE_SESSION_MINUTES` (default 480): a session ends this long after sign-in.
    pub session_minutes: i64,
    /// `CONSOLE_BASE_PATH` (default empty): the path the console's pages are served under, put in front of every
    /// link. Empty behind a Function URL; `/lambda-url/console` under `cargo lambda watch`, which passes the
    /// function the path without it.
    pub base_path: String,
}

/// Settings of `statement-pull`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementPullConfig {
    pub ledger: LedgerConfig,
    /// `STATEMENT_SOURCES` (default none).
    pub sources: Vec<SourceConfig>,
    /// `BANK_API_URL`: the T-Bank Business API base.
    pub bank_api_url: String,
    /// `STATEMENT_OVERLAP_DAYS` (default 3): days re-read before the watermark.
    pub overlap_days: i64,
}

/// Settings of `outbox-sweeper` (it also applies 1C uploads the proxy tapped, so it reads 1C's settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweeperConfig {
    pub ledger: LedgerConfig,
    /// `EXCHANGE_1C_UTC_OFFSET_MINUTES` (default 180, Moscow).
    pub utc_offset_minutes: i32,
    /// `CANCEL_REFUND_POLICY`.
    pub refund_on_cancel: bool,
    /// `EXCHANGE_1C_SESSION_TTL` (s): how long a tapped upload's pieces are kept.
    pub session_ttl_secs: i64,
}

/// `EXCHANGE_1C_SESSION_TTL`'s default: an hour.
pub const SESSION_TTL_DEFAULT: i64 = 3_600;

/// Default API base URLs, written once.
pub const TBANK_API_DEFAULT: &str = "https://securepay.tinkoff.ru/v2";
pub const SBER_API_DEFAULT: &str = "https://securepayments.sberbank.ru/payment/rest";
pub const YOOKASSA_API_DEFAULT: &str = "https://api.yookassa.ru/v3";
pub const BANK_API_DEFAULT: &str = "https://business.tbank.ru/openapi";

/// How `store-sync` writes payment state into the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushConfig {
    /// `BITRIX_PAID_AMOUNT_PROPERTY` (default `PAID_AMOUNT`; `-` = none): order property that gets the paid amount.
    pub paid_amount_code: Option<String>,
    /// `BITRIX_PAID_TEXT_PROPERTY` (optional): order property that gets `Оплачено: 1 500 из 5 000 (30%)`.
    pub paid_text_code: Option<String>,
    /// `BITRIX_PAY_SYSTEMS`: `{"tbank":"5","sber":"6","yookassa":"7","bank":"2","cash":"1","default":"2"}`, the store's
    /// pay system id per source of the money (for added payments; `sale.payment.update` requires one too).
    pub pay_systems: std::collections::BTreeMap<String, String>,
    /// `BITRIX_STATUS_MAP`: ledger state → store status id, e.g. `{"partially_paid":"PP","refunded":"RF"}`. Full
    /// payment is left to the store's own "paid" path (its status and e-mail) unless mapped.
    pub status_map: std::collections::BTreeMap<String, String>,
    /// `STORE_HOOKS`: signed POSTs on order state transitions (e.g. reserve stock in 1C when an order is paid).
    pub hooks: Vec<Hook>,
}

impl PushConfig {
    /// The acquirer whose entry of `BITRIX_PAY_SYSTEMS` is `pay_system_id` (the store's payment was started there).
    pub fn acquirer_of(&self, pay_system_id: &str) -> Option<Source> {
        self.pay_systems
            .iter()
            .filter(|(_, id)| id.as_str() == pay_system_id)
            .find_map(|(name, _)| Source::parse(name).filter(|s| s.is_acquirer()))
    }
}

/// An outbound hook: `{"url":"https://…","on":["paid"],"secret":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    pub url: String,
    /// Ledger states that fire it: `paid`, `partially_paid`, `overpaid`, `refunded`, `cancelled`.
    pub on: Vec<String>,
    pub secret: Secret,
}

/// Settings of `store-sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub ledger: LedgerConfig,
    /// `BITRIX_WEBHOOK_URL`: the store's inbound webhook, `https://<portal>/rest/<user id>/<code>/` (a secret).
    pub webhook_url: Secret,
    /// `STORE_PULL_OVERLAP_MINUTES` (default 10).
    pub overlap_minutes: i64,
    /// `STORE_PULL_INITIAL_DAYS` (default 30): how far back the first pull looks.
    pub initial_days: i64,
    pub push: PushConfig,
    /// `BITRIX_REST_PER_SECOND`, `BITRIX_REST_BURST`, `BITRIX_PULL_RESERVE`: the store's REST limit, shared by every
    /// invocation (see [`crate::ports::budget`]).
    pub rest_limit: crate::ports::budget::RestLimit,
    /// `STORE_PUSH_ORDERS` (default 48: with the paid-amount properties' two definitions, one `batch` of 50 reads
    /// them all, two carry their writes): the most orders one invocation pushes together. Lambda hands a FIFO
    /// function 10 messages; above 10, store-sync takes the rest from the events queue itself.
    pub push_orders: usize,
}

/// Settings of `exchange-1c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange1cConfig {
    pub ledger: LedgerConfig,
    /// `EXCHANGE_1C_USER` / `EXCHANGE_1C_PASSWORD`: what 1C's exchange node sends as HTTP Basic.
    pub user: String,
    pub password: Secret,
    /// `EXCHANGE_1C_FILE_LIMIT`: largest chunk 1C may send per `mode=file` (each is one DynamoDB item).
    pub file_limit: usize,
    /// `EXCHANGE_1C_IMPORT_BUDGET_MS`: time one `mode=import` call may spend before answering `progress`.
    pub import_budget_ms: u64,
    /// `EXCHANGE_1C_SESSION_TTL`: seconds a session stays valid.
    pub session_ttl_secs: i64,
    /// `EXCHANGE_1C_UTC_OFFSET_MINUTES`: the offset 1C's local dates are in (default Moscow, 180).
    pub utc_offset_minutes: i32,
    /// `CANCEL_REFUND_POLICY` (`ask`, default | `refund`): whether cancelling a paid order in 1C asks for the money
    /// back.
    pub refund_on_cancel: bool,
    /// `EXCHANGE_1C_UPSTREAM_URL`: the store's own exchange endpoint (e.g. `https://shop/bitrix/admin/1c_exchange.php`).
    /// Set → proxy mode: 1C's whole conversation is relayed there and tapped.
    pub upstream: Option<String>,
    /// `EXCHANGE_1C_UPSTREAM_TIMEOUT_MS` (default 25 000): how long the store's endpoint may take to answer, inside
    /// the function's 30 s, so 1C gets a clean `failure` instead of a hang.
    pub upstream_timeout_ms: u64,
    /// `EXCHANGE_1C_ENRICH` (proxy mode, default on): write the ledger's payment state into the store's `query`.
    pub enrich_query: bool,
    /// `EXCHANGE_1C_QUERY_UNDESCRIBED` (`wait`, default | `send`): whether an order the store has not described
    /// yet (money or a 1C document came first) goes to 1C's `query` before store-sync describes it.
    pub query_undescribed: bool,
}

/// Ledger order states, as `BITRIX_STATUS_MAP` keys and `STORE_HOOKS` `on` values name them
/// (`OrderState::as_str`).
pub const ORDER_STATES: &[&str] = &[
    "unpaid",
    "partially_paid",
    "paid_unknown_total",
    "paid",
    "overpaid",
    "refunded",
    "cancelled",
];

/// `BITRIX_PAY_SYSTEMS` keys: the source of the money (the payment ref's prefix), or `default`.
pub const PAY_SYSTEM_KEYS: &[&str] = &[
    "tbank", "sber", "yookassa", "bank", "1c", "store", "default",
];

/// Added to JSON errors: the usual cause locally is a value the env file did not quote.
const QUOTING_HINT: &str =
    " (in an env file for `cargo lambda watch`, write a JSON value in single quotes: NAME='{\"a\":\"1\"}')";

/// One configured source (`STATEMENT_SOURCES` is a JSON list of these).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// T-Bank Business API `GET /api/v1/statement` with a Bearer token.
    TbankApi { account: String, token: Secret },
    /// A 1CClientBankExchange file at a URL (an export endpoint or an object-storage link).
    ClientbankUrl { account: String, url: String },
}

impl SourceConfig {
    pub fn id(&self) -> String {
        match self {
            SourceConfig::TbankApi { account, .. } => format!("tbank-api:{account}"),
            SourceConfig::ClientbankUrl { account, .. } => format!("clientbank-url:{account}"),
        }
    }
}

/// `STATEMENT_SOURCES`: a JSON list of sources, each with a 20-digit account, an http(s) `url` or a non-empty
/// `token`, no source twice.
pub fn parse_sources(json: &str) -> Result<Vec<SourceConfig>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "STATEMENT_SOURCES",
        reason,
    };
    let sources: Vec<SourceConfig> = serde_json::from_str(json).map_err(|e| {
        invalid(format!(
            "a JSON list of {{kind, account, url|token}}: {e} (in an env file for `cargo lambda watch`, write it in \
             single quotes: STATEMENT_SOURCES='[...]')"
        ))
    })?;
    let mut seen = std::collections::BTreeSet::new();
    for source in &sources {
        let (account, problem) = match source {
            SourceConfig::TbankApi { account, token } => (
                account,
                token
                    .expose()
                    .trim()
                    .is_empty()
                    .then(|| "empty token".to_owned()),
            ),
            SourceConfig::ClientbankUrl { account, url } => (
                account,
                (!(url.starts_with("https://") || url.starts_with("http://")))
                    .then(|| format!("url {url:?} is not an http(s) URL")),
            ),
        };
        if account.len() != 20 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!(
                "account {account:?} is not a 20-digit account number"
            )));
        }
        if let Some(problem) = problem {
            return Err(invalid(format!("{}: {problem}", source.id())));
        }
        if !seen.insert(source.id()) {
            return Err(invalid(format!("{} is listed twice", source.id())));
        }
    }
    Ok(sources)
}

/// A DynamoDB item holds at most 400 KB; chunks stay well below.
pub const MAX_FILE_LIMIT: usize = 300 * 1024;

/// Reads variables through a lookup function so tests need no process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|k| std::env::var(k).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// A set, non-blank value.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    fn url(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let url = self.get(name).unwrap_or_else(|| default.to_owned());
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name,
                reason: "must be an http(s) URL".into(),
            });
        }
        Ok(url.trim_end_matches('/').to_owned())
    }

    /// Both or neither of two variables.
    fn pair(
        &self,
        a: &'static str,
        b: &'static str,
    ) -> Result<Option<(String, Secret)>, ConfigError> {
        match (self.get(a), self.get(b)) {
            (Some(x), Some(y)) => Ok(Some((x, Secret::new(y)))),
            (None, None) => Ok(None),
            (None, Some(_)) => Err(ConfigError::Missing(a)),
            (Some(_), None) => Err(ConfigError::Missing(b)),
        }
    }

    pub fn ledger(&self) -> Result<LedgerConfig, ConfigError> {
        Ok(LedgerConfig {
            table: self.require("LEDGER_TABLE")?,
            events_queue_url: self.require("EVENTS_QUEUE_URL")?,
            refunds_queue_url: self
                .get("REFUNDS_QUEUE_URL")
                .filter(|u| !u.trim().is_empty()),
        })
    }

    fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name,
                reason: format!("{v:?} is not a number"),
            }),
        }
    }

    /// An ordered list of reference kinds (`order_number,order`).
    fn reference(&self, name: &'static str, default: &str) -> Result<Vec<RefRule>, ConfigError> {
        crate::domain::reference::parse_rules(&self.get(name).unwrap_or_else(|| default.to_owned()))
            .map_err(|reason| ConfigError::Invalid { name, reason })
    }

    /// A count that cannot be negative (minutes, days, seconds).
    fn count(&self, name: &'static str, default: i64) -> Result<i64, ConfigError> {
        let n = self.number(name, default)?;
        if n < 0 {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("{n} is negative"),
            });
        }
        Ok(n)
    }

    /// `statement-pull`: `STATEMENT_SOURCES` (JSON list, default none), `BANK_API_URL`, `STATEMENT_OVERLAP_DAYS`.
    pub fn statement_pull(&self) -> Result<StatementPullConfig, ConfigError> {
        Ok(StatementPullConfig {
            ledger: self.ledger()?,
            sources: parse_sources(&self.get("STATEMENT_SOURCES").unwrap_or_else(|| "[]".into()))?,
            bank_api_url: self.url("BANK_API_URL", BANK_API_DEFAULT)?,
            overlap_days: self.count("STATEMENT_OVERLAP_DAYS", 3)?,
        })
    }

    /// `outbox-sweeper`: the ledger, and 1C's settings for the taps it applies.
    pub fn sweeper(&self) -> Result<SweeperConfig, ConfigError> {
        Ok(SweeperConfig {
            ledger: self.ledger()?,
            utc_offset_minutes: self.utc_offset_minutes()?,
            refund_on_cancel: self.refund_on_cancel()?,
            session_ttl_secs: self.count("EXCHANGE_1C_SESSION_TTL", SESSION_TTL_DEFAULT)?,
        })
    }

    /// `EXCHANGE_1C_UTC_OFFSET_MINUTES` (default 180, Moscow).
    pub fn utc_offset_minutes(&self) -> Result<i32, ConfigError> {
        self.number("EXCHANGE_1C_UTC_OFFSET_MINUTES", 180)
    }

    pub fn exchange_1c(&self) -> Result<Exchange1cConfig, ConfigError> {
        let file_limit = self.number("EXCHANGE_1C_FILE_LIMIT", 200 * 1024)?;
        if file_limit == 0 || file_limit > MAX_FILE_LIMIT {
            return Err(ConfigError::Invalid {
                name: "EXCHANGE_1C_FILE_LIMIT",
                reason: format!("must be 1..={MAX_FILE_LIMIT}"),
            });
        }
        let upstream = match self.get("EXCHANGE_1C_UPSTREAM_URL") {
            Some(_) => Some(self.url("EXCHANGE_1C_UPSTREAM_URL", "")?),
            None => None,
        };
        // In proxy mode the store's own endpoint checks 1C's credentials.
        let credential = |name: &'static str| match (&upstream, self.get(name)) {
            (_, Some(v)) => Ok(v),
            (Some(_), None) => Ok(String::new()),
            (None, None) => Err(ConfigError::Missing(name)),
        };
        Ok(Exchange1cConfig {
            ledger: self.ledger()?,
            user: credential("EXCHANGE_1C_USER")?,
            password: Secret::new(credential("EXCHANGE_1C_PASSWORD")?),
            file_limit,
            import_budget_ms: self.number("EXCHANGE_1C_IMPORT_BUDGET_MS", 20_000)?,
            upstream_timeout_ms: self.number("EXCHANGE_1C_UPSTREAM_TIMEOUT_MS", 25_000)?,
            session_ttl_secs: self.count("EXCHANGE_1C_SESSION_TTL", SESSION_TTL_DEFAULT)?,
            utc_offset_minutes: self.number("EXCHANGE_1C_UTC_OFFSET_MINUTES", 180)?,
            upstream,
            enrich_query: !matches!(
                self.get("EXCHANGE_1C_ENRICH").as_deref(),
                Some("0" | "false" | "off" | "no")
            ),
            refund_on_cancel: self.refund_on_cancel()?,
            query_undescribed: match self.get("EXCHANGE_1C_QUERY_UNDESCRIBED").as_deref() {
                None | Some("wait") => false,
                Some("send") => true,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "EXCHANGE_1C_QUERY_UNDESCRIBED",
                        reason: format!("{other:?}: expected `wait` or `send`"),
                    })
                }
            },
        })
    }

    /// `CANCEL_REFUND_POLICY`: `ask` (default) leaves the money of a cancelled paid order to a person (the order is
    /// flagged `refund_due`), because a 1C deletion mark must not refund money on its own; `refund` asks for it
    /// back at once.
    pub fn refund_on_cancel(&self) -> Result<bool, ConfigError> {
        match self.get("CANCEL_REFUND_POLICY").as_deref() {
            None | Some("ask") => Ok(false),
            Some("refund") => Ok(true),
            Some(other) => Err(ConfigError::Invalid {
                name: "CANCEL_REFUND_POLICY",
                reason: format!("{other:?}: expected `refund` or `ask`"),
            }),
        }
    }

    pub fn store_sync(&self) -> Result<StoreConfig, ConfigError> {
        let webhook = self.require("BITRIX_WEBHOOK_URL")?;
        if !(webhook.starts_with("https://") || webhook.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "BITRIX_WEBHOOK_URL",
                reason: "must be the webhook's http(s) URL".into(),
            });
        }
        Ok(StoreConfig {
            ledger: self.ledger()?,
            webhook_url: Secret::new(webhook),
            overlap_minutes: self.count("STORE_PULL_OVERLAP_MINUTES", 10)?,
            initial_days: self.count("STORE_PULL_INITIAL_DAYS", 30)?,
            push: PushConfig {
                paid_amount_code: match self.get("BITRIX_PAID_AMOUNT_PROPERTY").as_deref() {
                    None => Some("PAID_AMOUNT".into()),
                    Some("-") => None,
                    Some(code) => Some(code.to_owned()),
                },
                paid_text_code: self.get("BITRIX_PAID_TEXT_PROPERTY"),
                pay_systems: self.json_map("BITRIX_PAY_SYSTEMS", PAY_SYSTEM_KEYS)?,
                status_map: self.json_map("BITRIX_STATUS_MAP", ORDER_STATES)?,
                hooks: self.hooks()?,
            },
            rest_limit: self.rest_limit()?,
            push_orders: match self.count("STORE_PUSH_ORDERS", 48)? {
                n @ 1..=1000 => usize::try_from(n).unwrap_or(100),
                n => {
                    // Taken messages stay hidden for the queue's visibility timeout: a run must finish in it.
                    return Err(ConfigError::Invalid {
                        name: "STORE_PUSH_ORDERS",
                        reason: format!("{n} is outside 1..=1000"),
                    });
                }
            },
        })
    }

    /// The store's REST limit: 2 requests/s and a burst of 50 by default (Bitrix's standard plan; 5 and 250 on the
    /// enterprise one).
    fn rest_limit(&self) -> Result<crate::ports::budget::RestLimit, ConfigError> {
        let per_second = self.count("BITRIX_REST_PER_SECOND", 2)?;
        let burst = self.count("BITRIX_REST_BURST", 50)?;
        if per_second == 0 || burst == 0 {
            return Err(ConfigError::Invalid {
                name: if per_second == 0 {
                    "BITRIX_REST_PER_SECOND"
                } else {
                    "BITRIX_REST_BURST"
                },
                reason: "must be at least 1".into(),
            });
        }
        Ok(crate::ports::budget::RestLimit {
            per_second,
            burst,
            pull_reserve: self.count("BITRIX_PULL_RESERVE", 10)?,
        })
    }

    /// A JSON object of strings whose keys must be among `keys` (a misspelt key would be ignored silently).
    fn json_map(
        &self,
        name: &'static str,
        keys: &[&str],
    ) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
        let map: std::collections::BTreeMap<String, String> = match self.get(name) {
            None => return Ok(std::collections::BTreeMap::new()),
            Some(text) => serde_json::from_str(&text).map_err(|e| ConfigError::Invalid {
                name,
                reason: format!("a JSON object of strings: {e}{}", QUOTING_HINT),
            })?,
        };
        if let Some(bad) = map.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("unknown key {bad:?}; expected one of {}", keys.join(", ")),
            });
        }
        Ok(map)
    }

    fn hooks(&self) -> Result<Vec<Hook>, ConfigError> {
        const NAME: &str = "STORE_HOOKS";
        let Some(text) = self.get(NAME) else {
            return Ok(Vec::new());
        };
        let hooks: Vec<Hook> = serde_json::from_str(&text).map_err(|e| ConfigError::Invalid {
            name: NAME,
            reason: format!("a JSON list of {{url, on, secret}}: {e}{QUOTING_HINT}"),
        })?;
        for (n, hook) in hooks.iter().enumerate() {
            let invalid = |reason: String| ConfigError::Invalid {
                name: NAME,
                reason: format!("hook {n}: {reason}"),
            };
            if !(hook.url.starts_with("https://") || hook.url.starts_with("http://")) {
                return Err(invalid(format!("url {:?} is not an http(s) URL", hook.url)));
            }
            if hook.on.is_empty() {
                return Err(invalid("`on` names no state".into()));
            }
            if let Some(state) = hook.on.iter().find(|s| !ORDER_STATES.contains(&s.as_str())) {
                return Err(invalid(format!(
                    "unknown state {state:?}; expected one of {}",
                    ORDER_STATES.join(", ")
                )));
            }
            if hook.secret.expose().is_empty() {
                return Err(invalid("empty secret".into()));
            }
        }
        Ok(hooks)
    }

    /// Settings of `refund-chargeback`: the ledger and the refund API of every acquirer that is configured.
    pub fn console(&self) -> Result<ConsoleConfig, ConfigError> {
        let users: Vec<ConsoleUser> = serde_json::from_str(&self.require("CONSOLE_USERS")?)
            .map_err(|e| ConfigError::Invalid {
                name: "CONSOLE_USERS",
                reason: format!("a JSON list of {{\"login\", \"role\", \"password_hash\"}}: {e}"),
            })?;
        let invalid = |reason: String| ConfigError::Invalid {
            name: "CONSOLE_USERS",
            reason,
        };
        let mut logins = std::collections::BTreeSet::new();
        for u in &users {
            if u.login.trim().is_empty() || !logins.insert(u.login.as_str()) {
                return Err(invalid(format!("login {:?} is empty or twice", u.login)));
            }
            if !u.password_hash.expose().starts_with("$argon2") {
                return Err(invalid(format!(
                    "the password_hash of {:?} is not an argon2 hash (make console-password prints one)",
                    u.login
                )));
            }
        }
        let session_key = Secret::new(self.require("CONSOLE_SESSION_KEY")?);
        if session_key.expose().len() < 32 {
            return Err(ConfigError::Invalid {
                name: "CONSOLE_SESSION_KEY",
                reason: "at least 32 characters (openssl rand -base64 48)".into(),
            });
        }
        Ok(ConsoleConfig {
            ledger: self.ledger()?,
            users,
            session_key,
            session_minutes: self.count("CONSOLE_SESSION_MINUTES", 480)?.max(1),
            base_path: match self.get("CONSOLE_BASE_PATH") {
                None => String::new(),
                Some(p)
                    if p.starts_with('/') && !p.ends_with('/') && !p.contains(['?', '#', '"']) =>
                {
                    p
                }
                Some(p) => {
                    return Err(ConfigError::Invalid {
                        name: "CONSOLE_BASE_PATH",
                        reason: format!("{p:?}: a path starting with / and not ending with one"),
                    })
                }
            },
        })
    }

    pub fn status_sync(&self) -> Result<StatusSyncConfig, ConfigError> {
        let status = |acquirer: Source, reference: &'static str, default: &str| {
            self.acquirer_api(acquirer)?
                .map(|api| {
                    Ok::<_, ConfigError>(AcquirerStatus {
                        api,
                        reference: self.reference(reference, default)?,
                        order_keys: Vec::new(),
                    })
                })
                .transpose()
        };
        let mut yookassa = status(
            Source::Yookassa,
            "YOOKASSA_REFERENCE",
            DEFAULT_YOOKASSA_REFERENCE,
        )?;
        if let Some(y) = yookassa.as_mut() {
            y.order_keys = self.order_keys();
        }
        let calls_per_run = self.count("STATUS_SYNC_CALLS_PER_RUN", 60)?;
        Ok(StatusSyncConfig {
            ledger: self.ledger()?,
            tbank: status(Source::Tbank, "TBANK_REFERENCE", DEFAULT_TBANK_REFERENCE)?,
            sber: status(Source::Sber, "SBER_REFERENCE", DEFAULT_SBER_REFERENCE)?,
            yookassa,
            calls_per_run: usize::try_from(calls_per_run).unwrap_or(usize::MAX),
            give_up_days: self.count("STATUS_SYNC_GIVE_UP_DAYS", 30)?,
            receipts: self.receipts()?,
        })
    }

    /// `YOOKASSA_ORDER_KEYS`: metadata keys that may carry the store's order, tried in order.
    fn order_keys(&self) -> Vec<String> {
        self.get("YOOKASSA_ORDER_KEYS")
            .unwrap_or_else(|| DEFAULT_YOOKASSA_ORDER_KEYS.to_owned())
            .split(',')
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .collect()
    }

    pub fn refund_chargeback(&self) -> Result<RefundConfig, ConfigError> {
        Ok(RefundConfig {
            ledger: self.ledger()?,
            tbank: self.acquirer_api(Source::Tbank)?,
            sber: self.acquirer_api(Source::Sber)?,
            yookassa: self.acquirer_api(Source::Yookassa)?,
            receipts: self.receipts()?,
        })
    }

    /// `RECEIPTS` and `RECEIPT_TAXATION` (see [`Receipts`]).
    pub fn receipts(&self) -> Result<Receipts, ConfigError> {
        let mut by = Vec::new();
        for word in self
            .get("RECEIPTS")
            .unwrap_or_else(|| "none".into())
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty() && *w != "none")
        {
            match Source::parse(word).filter(|s| matches!(s, Source::Yookassa | Source::Tbank)) {
                Some(s) => by.push(s),
                None => {
                    return Err(ConfigError::Invalid {
                        name: "RECEIPTS",
                        reason: format!("{word:?} is not one of yookassa, tbank, none"),
                    })
                }
            }
        }
        let taxation = self.get("RECEIPT_TAXATION");
        const TAXATION: [&str; 5] = ["osn", "usn_income", "usn_income_outcome", "esn", "patent"];
        if let Some(t) = taxation.as_deref().filter(|t| !TAXATION.contains(t)) {
            return Err(ConfigError::Invalid {
                name: "RECEIPT_TAXATION",
                reason: format!("{t:?} is not one of {}", TAXATION.join(", ")),
            });
        }
        if by.contains(&Source::Tbank) && taxation.is_none() {
            return Err(ConfigError::Missing("RECEIPT_TAXATION"));
        }
        Ok(Receipts { by, taxation })
    }

    /// An acquirer's API from its three variables (login, secret, base URL with its default), written once here;
    /// `None` when neither login nor secret is set, an error when only one is.
    pub fn acquirer_api(&self, acquirer: Source) -> Result<Option<AcquirerApi>, ConfigError> {
        let (login, secret, url, default) = match acquirer {
            Source::Tbank => (
                "TBANK_TERMINAL_KEY",
                "TBANK_PASSWORD",
                "TBANK_API_URL",
                TBANK_API_DEFAULT,
            ),
            Source::Sber => (
                "SBER_USERNAME",
                "SBER_PASSWORD",
                "SBER_API_URL",
                SBER_API_DEFAULT,
            ),
            Source::Yookassa => (
                "YOOKASSA_SHOP_ID",
                "YOOKASSA_SECRET_KEY",
                "YOOKASSA_API_URL",
                YOOKASSA_API_DEFAULT,
            ),
            Source::Bank | Source::OneC | Source::Store | Source::Refund | Source::Console => {
                return Ok(None)
            }
        };
        self.pair(login, secret)?
            .map(|(login, secret)| {
                Ok(AcquirerApi {
                    login,
                    secret,
                    api_url: self.url(url, default)?,
                })
            })
            .transpose()
    }

    pub fn callback(&self) -> Result<CallbackConfig, ConfigError> {
        let tbank = self
            .acquirer_api(Source::Tbank)?
            .map(|api| -> Result<_, ConfigError> {
                Ok(TbankConfig {
                    api,
                    reference: self.reference("TBANK_REFERENCE", DEFAULT_TBANK_REFERENCE)?,
                })
            })
            .transpose()?;
        let sber = self
            .get("SBER_CALLBACK_TOKEN")
            .map(|token| -> Result<_, ConfigError> {
                Ok(SberConfig {
                    callback_token: Secret::new(token),
                    api: self.acquirer_api(Source::Sber)?,
                    reference: self.reference("SBER_REFERENCE", DEFAULT_SBER_REFERENCE)?,
                })
            })
            .transpose()?;
        let verify = match self.get("YOOKASSA_VERIFY").as_deref() {
            None | Some("api") => YooKassaVerify::Api,
            Some("ip") => YooKassaVerify::Ip,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "YOOKASSA_VERIFY",
                    reason: format!("{other:?} is neither \"api\" nor \"ip\""),
                })
            }
        };
        let api = self.acquirer_api(Source::Yookassa)?;
        let yookassa = if api.is_some() || verify == YooKassaVerify::Ip {
            let networks = self
                .get("YOOKASSA_TRUSTED_NETWORKS")
                .unwrap_or_else(|| YOOKASSA_NETWORKS.join(","));
            let trusted_networks =
                parse_networks(&networks).map_err(|reason| ConfigError::Invalid {
                    name: "YOOKASSA_TRUSTED_NETWORKS",
                    reason,
                })?;
            if verify == YooKassaVerify::Api && api.is_none() {
                return Err(ConfigError::Missing("YOOKASSA_SHOP_ID"));
            }
            Some(YooKassaConfig {
                api,
                verify,
                trusted_networks,
                order_keys: self.order_keys(),
                reference: self.reference("YOOKASSA_REFERENCE", DEFAULT_YOOKASSA_REFERENCE)?,
            })
        } else {
            None
        };
        Ok(CallbackConfig {
            ledger: self.ledger()?,
            tbank,
            sber,
            yookassa,
            receipts: self.receipts()?,
        })
    }
}

/// Comma-separated CIDRs or single addresses.
pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not a network"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn receipts_name_acquirers_with_a_receipts_service_and_t_bank_needs_the_taxation() {
        assert_eq!(env(&[]).receipts(), Ok(Receipts::default()));
        assert_eq!(
            env(&[("RECEIPTS", "none")]).receipts(),
            Ok(Receipts::default())
        );
        let both = env(&[
            ("RECEIPTS", "yookassa, tbank"),
            ("RECEIPT_TAXATION", "usn_income"),
        ])
        .receipts()
        .unwrap();
        assert!(both.issued_by(Source::Yookassa) && both.issued_by(Source::Tbank));
        assert!(!both.issued_by(Source::Sber));
        assert_eq!(
            env(&[("RECEIPTS", "tbank")]).receipts(),
            Err(ConfigError::Missing("RECEIPT_TAXATION"))
        );
        assert!(matches!(
            env(&[("RECEIPTS", "sber")]).receipts(),
            Err(ConfigError::Invalid {
                name: "RECEIPTS",
                ..
            })
        ));
        assert!(matches!(
            env(&[("RECEIPTS", "yookassa"), ("RECEIPT_TAXATION", "simple")]).receipts(),
            Err(ConfigError::Invalid {
                name: "RECEIPT_TAXATION",
                ..
            })
        ));
    }

    #[test]
    fn names_the_missing_variable() {
        assert_eq!(env(&[]).ledger(), Err(ConfigError::Missing("LEDGER_TABLE")));
        let e = env(&[
            ("LEDGER_TABLE", "t"),
            ("EVENTS_QUEUE_URL", "q"),
            ("TBANK_TERMINAL_KEY", "k"),
        ]);
        assert_eq!(
            e.callback().err(),
            Some(ConfigError::Missing("TBANK_PASSWORD"))
        );
    }

    #[test]
    fn providers_without_settings_are_disabled_and_secrets_stay_hidden() {
        let e = env(&[
            ("LEDGER_TABLE", "t"),
            ("EVENTS_QUEUE_URL", "q"),
            ("TBANK_TERMINAL_KEY", "k"),
            ("TBANK_PASSWORD", "hunter2"),
        ]);
        let c = e.callback().unwrap();
        assert!(c.sber.is_none() && c.yookassa.is_none());
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn yookassa_ip_mode_uses_published_networks_unless_overridden() {
        let e = env(&[
            ("LEDGER_TABLE", "t"),
            ("EVENTS_QUEUE_URL", "q"),
            ("YOOKASSA_VERIFY", "ip"),
        ]);
        let y = e.callback().unwrap().yookassa.unwrap();
        assert_eq!(y.trusted_networks.len(), YOOKASSA_NETWORKS.len());
        let e = env(&[
            ("LEDGER_TABLE", "t"),
            ("EVENTS_QUEUE_URL", "q"),
            ("YOOKASSA_VERIFY", "ip"),
            ("YOOKASSA_TRUSTED_NETWORKS", "127.0.0.1, 10.0.0.0/8"),
        ]);
        assert_eq!(
            e.callback()
                .unwrap()
                .yookassa
                .unwrap()
                .trusted_networks
                .len(),
            2
        );
        let e = env(&[
            ("LEDGER_TABLE", "t"),
            ("EVENTS_QUEUE_URL", "q"),
            ("YOOKASSA_VERIFY", "both"),
        ]);
        assert!(matches!(e.callback(), Err(ConfigError::Invalid { .. })));
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("LEDGER_TABLE", "t"),
            ("EVENTS_QUEUE_URL", "q"),
            ("BITRIX_WEBHOOK_URL", "https://shop.example/rest/1/x/"),
        ]
    }

    fn invalid_name<T: fmt::Debug>(r: Result<T, ConfigError>) -> &'static str {
        match r {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("expected an invalid variable, got {other:?}"),
        }
    }

    fn with(extra: (&'static str, &'static str)) -> Env<impl Fn(&str) -> Option<String>> {
        let mut pairs = base();
        pairs.push(extra);
        env(&pairs)
    }

    #[test]
    fn a_json_object_names_the_variable_and_refuses_unknown_keys() {
        // Kept quoted by a naive env file: not JSON.
        let e = with(("BITRIX_PAY_SYSTEMS", r#"'{"default":"1"}'"#));
        let err = e.store_sync().unwrap_err().to_string();
        assert!(
            err.contains("BITRIX_PAY_SYSTEMS") && err.contains("single quotes"),
            "{err}"
        );
        assert_eq!(
            invalid_name(with(("BITRIX_PAY_SYSTEMS", r#"{"tinkoff":"5"}"#)).store_sync()),
            "BITRIX_PAY_SYSTEMS"
        );
        assert_eq!(
            invalid_name(with(("BITRIX_STATUS_MAP", r#"{"payed":"P"}"#)).store_sync()),
            "BITRIX_STATUS_MAP"
        );
        let ok = with(("BITRIX_PAY_SYSTEMS", r#"{"tbank":"5","default":"1"}"#));
        assert_eq!(ok.store_sync().unwrap().push.pay_systems["tbank"], "5");
    }

    #[test]
    fn a_json_list_of_hooks_is_checked_hook_by_hook() {
        for bad in [
            "[{\"url\":\"https://erp/h\",\"on\":[\"paid\"]}]", // no secret
            "[{\"url\":\"ftp://erp/h\",\"on\":[\"paid\"],\"secret\":\"s\"}]",
            "[{\"url\":\"https://erp/h\",\"on\":[\"payed\"],\"secret\":\"s\"}]",
            "[{\"url\":\"https://erp/h\",\"on\":[],\"secret\":\"s\"}]",
            "[{\"url\":\"https://erp/h\",\"on\":[\"paid\"],\"secret\":\"\"}]",
            "{\"url\":\"https://erp/h\"}",
        ] {
            assert_eq!(
                invalid_name(with(("STORE_HOOKS", bad)).store_sync()),
                "STORE_HOOKS",
                "{bad}"
            );
        }
        let ok = with((
            "STORE_HOOKS",
            r#"[{"url":"https://erp/h","on":["paid","refunded"],"secret":"s"}]"#,
        ));
        assert_eq!(
            ok.store_sync().unwrap().push.hooks[0].on,
            ["paid", "refunded"]
        );
    }

    #[test]
    fn statement_sources_are_checked_source_by_source() {
        for bad in [
            "[{kind:1}]",
            r#"[{"kind":"clientbank-url","account":"40702810200000000001","url":"bank.example/x"}]"#,
            r#"[{"kind":"clientbank-url","account":"4070281","url":"https://bank.example/x"}]"#,
            r#"[{"kind":"tbank-api","account":"40702810200000000001","token":" "}]"#,
            r#"[{"kind":"tbank-api","account":"40702810200000000001","token":"t"},{"kind":"tbank-api","account":"40702810200000000001","token":"u"}]"#,
        ] {
            let e = with(("STATEMENT_SOURCES", bad));
            assert_eq!(
                invalid_name(e.statement_pull()),
                "STATEMENT_SOURCES",
                "{bad}"
            );
        }
    }

    /// Issue #14, kind 7: a 1C deletion mark must not refund money on its own; 1C's query waits for the store.
    #[test]
    fn money_safe_defaults() {
        assert_eq!(env(&[]).refund_on_cancel(), Ok(false));
        assert_eq!(
            with(("CANCEL_REFUND_POLICY", "refund")).refund_on_cancel(),
            Ok(true)
        );
        let mut pairs = base();
        pairs.extend([("EXCHANGE_1C_USER", "u"), ("EXCHANGE_1C_PASSWORD", "p")]);
        let x = env(&pairs).exchange_1c().unwrap();
        assert!(!x.refund_on_cancel && !x.query_undescribed);
        let c = with(("YOOKASSA_VERIFY", "ip")).callback().unwrap();
        let y = c.yookassa.unwrap();
        assert!(!y.order_keys.iter().any(|k| k == "BX_PAYMENT_NUMBER"));
        let mut pairs = base();
        pairs.extend([
            ("SBER_CALLBACK_TOKEN", "t"),
            ("SBER_REFERENCE", "order,orderid"),
        ]);
        assert_eq!(invalid_name(env(&pairs).callback()), "SBER_REFERENCE");
    }

    #[test]
    fn a_choice_a_number_a_url_and_networks_name_the_variable() {
        assert_eq!(
            invalid_name(with(("CANCEL_REFUND_POLICY", "refund-all")).refund_on_cancel()),
            "CANCEL_REFUND_POLICY"
        );
        assert_eq!(
            invalid_name(with(("STORE_PULL_OVERLAP_MINUTES", "ten")).store_sync()),
            "STORE_PULL_OVERLAP_MINUTES"
        );
        assert_eq!(
            invalid_name(with(("STORE_PULL_INITIAL_DAYS", "-3")).store_sync()),
            "STORE_PULL_INITIAL_DAYS"
        );
        for bad in ["0", "1001"] {
            assert_eq!(
                invalid_name(with(("STORE_PUSH_ORDERS", bad)).store_sync()),
                "STORE_PUSH_ORDERS"
            );
        }
        assert_eq!(
            with(("STORE_PUSH_ORDERS", "250"))
                .store_sync()
                .unwrap()
                .push_orders,
            250
        );
        assert_eq!(
            invalid_name(with(("BANK_API_URL", "business.tbank.ru")).statement_pull()),
            "BANK_API_URL"
        );
        let mut pairs = base();
        pairs.extend([
            ("YOOKASSA_VERIFY", "ip"),
            ("YOOKASSA_TRUSTED_NETWORKS", "185.71.76.0/33"),
        ]);
        assert_eq!(
            invalid_name(env(&pairs).callback()),
            "YOOKASSA_TRUSTED_NETWORKS"
        );
        // What `main` prints when it stops: the name and the reason, not a struct.
        let shown = format!(
            "{:?}",
            with(("CANCEL_REFUND_POLICY", "x"))
                .refund_on_cancel()
                .unwrap_err()
        );
        assert_eq!(shown, "environment variable CANCEL_REFUND_POLICY is invalid: \"x\": expected `refund` or `ask`");
    }

    #[test]
    fn sources_are_configured_as_json() {
        let s = parse_sources(
            r#"[{"kind":"tbank-api","account":"40702810900000012345","token":"t"},
                {"kind":"clientbank-url","account":"40702810200000000001","url":"https://bank.example/kl_to_1c.txt"}]"#,
        )
        .unwrap();
        assert_eq!(s[0].id(), "tbank-api:40702810900000012345");
        assert_eq!(s[1].id(), "clientbank-url:40702810200000000001");
        assert!(parse_sources(r#"[{"kind":"ftp","account":"1"}]"#).is_err());
    }

    /// `.env.example` read with the parser `cargo lambda watch` uses: every line parses, and every function's whole
    /// configuration reads back from it, JSON values included (the smoke test then runs them for real).
    #[test]
    fn env_example_parses_as_cargo_lambda_reads_it_and_configures_every_function() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example");
        let vars = env_file_reader::read_file(path)
            .expect(".env.example must parse as cargo lambda reads it");
        let e = Env(move |k: &str| vars.get(k).cloned());
        e.callback().unwrap();
        e.exchange_1c().unwrap();
        e.refund_chargeback().unwrap();
        e.refund_on_cancel().unwrap();
        e.utc_offset_minutes().unwrap();
        assert_eq!(e.statement_pull().unwrap().sources.len(), 1);
        e.sweeper().unwrap();
        e.status_sync().unwrap();
        let store = e.store_sync().unwrap();
        assert_eq!(
            store.push.pay_systems.get("default").map(String::as_str),
            Some("1")
        );
        assert!(store.push.status_map.is_empty());
        // The documented way to write JSON works with this parser, and the bare form is what it refuses.
        let dir = std::env::temp_dir().join(format!("paysync-env-{}", std::process::id()));
        std::fs::write(&dir, "A='{\"default\":\"1\"}'\n").unwrap();
        assert_eq!(
            env_file_reader::read_file(&dir).unwrap()["A"],
            r#"{"default":"1"}"#
        );
        std::fs::write(&dir, "A={\"default\":\"1\"}\n").unwrap();
        assert!(env_file_reader::read_file(&dir).is_err());
        std::fs::remove_file(&dir).unwrap();
    }
}
