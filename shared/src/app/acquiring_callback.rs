//! `acquiring-callback`: verify a provider's notification over the exact bytes received, turn it into a fact,
//! record it, and acknowledge in the provider's format only after it is persisted and announced.
//!
//! Routes by the last path segment (`/tbank`, `/sber`, `/yookassa`), so the same binary works behind a Function
//! URL, an HTTP API stage and `cargo lambda watch` (`/lambda-url/acquiring-callback/tbank`).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::{error, info, warn};

use crate::app::ledger::{Ledger, LedgerError, Recorded};
use crate::domain::watch::{Question, Watch, WatchEntry};
use crate::domain::{OrderId, PaymentFact, PaymentRef, Source};
use crate::formats::sber::{Callback, Need, Params, SberError};
use crate::formats::tbank::{self, TbankError};
use crate::formats::yookassa::{self, Subject, YooKassaError};
use crate::platform::clock::now_ms;
use crate::platform::config::{CallbackConfig, YooKassaVerify};
use crate::platform::http_response::{error as error_response, text, MAX_BODY_BYTES};
use crate::ports::acquirers::{ProviderError, SberGateway, YooKassaApi};
use crate::ports::{EventPublisher, LedgerStore, StoreDirectory, Watchlist};

pub struct CallbackDeps {
    pub config: CallbackConfig,
    pub store: Arc<dyn LedgerStore>,
    /// What the store described (acquirer references resolve against it).
    pub directory: Arc<dyn StoreDirectory>,
    /// Look-ups owed to status-sync (a callback whose amount could not be learned now).
    pub watchlist: Arc<dyn Watchlist>,
    pub events: Arc<dyn EventPublisher>,
    pub yookassa: Option<Arc<dyn YooKassaApi>>,
    pub sber_gateway: Option<Arc<dyn SberGateway>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no such route")]
    NotFound,
    #[error("provider {0} is not configured here")]
    Disabled(&'static str),
    #[error("method not allowed")]
    Method,
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Api(#[from] ProviderError),
}

impl From<TbankError> for CallbackError {
    fn from(e: TbankError) -> Self {
        match e {
            TbankError::Forbidden(m) => CallbackError::Forbidden(m.to_owned()),
            TbankError::Malformed(m) => CallbackError::Malformed(m),
        }
    }
}

impl From<SberError> for CallbackError {
    fn from(e: SberError) -> Self {
        match e {
            SberError::Forbidden(m) => CallbackError::Forbidden(m.to_owned()),
            SberError::Malformed(m) => CallbackError::Malformed(m),
        }
    }
}

impl From<YooKassaError> for CallbackError {
    fn from(e: YooKassaError) -> Self {
        let YooKassaError::Malformed(m) = e;
        CallbackError::Malformed(m)
    }
}

impl CallbackError {
    /// The one place where errors become HTTP statuses. 5xx means "retry later" to every provider.
    pub fn into_response(self) -> Response<Body> {
        let (status, code, message) = match &self {
            CallbackError::NotFound | CallbackError::Disabled(_) => {
                (StatusCode::NOT_FOUND, "not_found", self.to_string())
            }
            CallbackError::Method => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                self.to_string(),
            ),
            CallbackError::TooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large", self.to_string())
            }
            CallbackError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed", self.to_string()),
            CallbackError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", self.to_string()),
            CallbackError::Ledger(LedgerError::Domain(_)) => {
                (StatusCode::BAD_REQUEST, "malformed", self.to_string())
            }
            CallbackError::Ledger(_) | CallbackError::Api(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "could not record the notification now; retry later".to_owned(),
            ),
        };
        if status.is_server_error() {
            error!(status = status.as_u16(), error.message = %self, error.cause_chain = ?self, "callback not recorded");
        } else {
            warn!(status = status.as_u16(), error.message = %self, "callback refused");
        }
        error_response(status, code, &message)
    }
}

/// Entry point for `lambda_http::run`. Never fails: every outcome is an HTTP answer.
pub async fn handle(deps: &CallbackDeps, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(route(deps, &req)
        .await
        .unwrap_or_else(CallbackError::into_response))
}

async fn route(deps: &CallbackDeps, req: &Request) -> Result<Response<Body>, CallbackError> {
    let provider = req
        .uri()
        .path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let acquirer = Source::parse(provider)
        .filter(|s| s.is_acquirer())
        .ok_or(CallbackError::NotFound)?;
    if req.body().len() > MAX_BODY_BYTES {
        return Err(CallbackError::TooLarge);
    }
    match acquirer {
        Source::Tbank => tbank_callback(deps, req).await,
        Source::Sber => sber_callback(deps, req).await,
        Source::Yookassa => yookassa_callback(deps, req).await,
        Source::Bank | Source::OneC | Source::Store | Source::Refund | Source::Console => {
            Err(CallbackError::NotFound)
        }
    }
}

/// Record a notification's fact on the order its money belongs to (`crate::app::resolve::record_acquirer_fact`).
async fn record(deps: &CallbackDeps, fact: Option<PaymentFact>) -> Result<(), CallbackError> {
    let Some(fact) = fact else {
        info!("notification moves no money; acknowledged");
        return Ok(());
    };
    let ledger = Ledger::new(deps.store.as_ref(), deps.events.as_ref());
    let recorded = crate::app::resolve::record_acquirer_fact(
        &ledger,
        deps.store.as_ref(),
        deps.directory.as_ref(),
        fact.receipted_by(&deps.config.receipts.by),
    )
    .await?;
    if let Recorded::Duplicate = recorded {
        info!("duplicate notification acknowledged");
    }
    Ok(())
}

/// The acquirer's settings, or 404 when it is not configured here.
fn enabled<T>(config: Option<&T>, acquirer: Source) -> Result<&T, CallbackError> {
    config.ok_or(CallbackError::Disabled(acquirer.as_str()))
}

/// [`enabled`], for an acquirer that only POSTs.
fn posted_to<'a, T>(
    req: &Request,
    config: Option<&'a T>,
    acquirer: Source,
) -> Result<&'a T, CallbackError> {
    if req.method() != Method::POST {
        return Err(CallbackError::Method);
    }
    enabled(config, acquirer)
}

async fn tbank_callback(
    deps: &CallbackDeps,
    req: &Request,
) -> Result<Response<Body>, CallbackError> {
    let cfg = posted_to(req, deps.config.tbank.as_ref(), Source::Tbank)?;
    let note = tbank::verify(req.body().as_ref(), &cfg.api.login, cfg.api.secret.expose())?;
    record(deps, tbank::to_fact(&note, &cfg.reference, now_ms())?).await?;
    // T-Bank wants exactly `OK`, and only once the fact is safe.
    Ok(text(StatusCode::OK, "OK"))
}

async fn sber_callback(
    deps: &CallbackDeps,
    req: &Request,
) -> Result<Response<Body>, CallbackError> {
    let raw: &[u8] = match *req.method() {
        Method::GET => req.uri().query().unwrap_or_default().as_bytes(),
        Method::POST if !req.body().is_empty() => req.body().as_ref(),
        Method::POST => req.uri().query().unwrap_or_default().as_bytes(),
        _ => return Err(CallbackError::Method),
    };
    let cfg = enabled(deps.config.sber.as_ref(), Source::Sber)?;
    let params = Params::parse(raw)?;
    if params.is_empty() {
        return Err(CallbackError::Malformed("no callback parameters".into()));
    }
    params.verify(cfg.callback_token.expose())?;
    let callback = Callback::from_params(params)?;
    let gateway = match callback.needs()? {
        Need::Nothing => None,
        Need::GatewayStatus => {
            let asked = match &deps.sber_gateway {
                Some(g) => g
                    .order_status(&callback.md_order)
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("SBER_USERNAME/SBER_PASSWORD are not set to ask the gateway".into()),
            };
            match asked {
                Ok(status) => Some(status),
                Err(reason) => return owe_amount(deps, &callback.md_order, &reason).await,
            }
        }
    };
    record(
        deps,
        callback.to_fact(gateway.as_ref(), &cfg.reference, now_ms())?,
    )
    .await?;
    Ok(text(StatusCode::OK, "OK"))
}

/// A signed Sber callback whose amount could not be learned now: the look-up is recorded as owed (status-sync asks
/// `getOrderStatusExtended.do` and records what the callback would have), then the callback is acknowledged, so
/// the gateway does not give up on a callback we cannot use yet. The amount is never guessed. Only when the owed
/// look-up cannot be recorded does the gateway get a 5xx and call again.
async fn owe_amount(
    deps: &CallbackDeps,
    md_order: &str,
    reason: &str,
) -> Result<Response<Body>, CallbackError> {
    let payment = PaymentRef::new(Source::Sber, md_order).map_err(LedgerError::from)?;
    let order = match deps
        .store
        .order_for_payment(&payment)
        .await
        .map_err(LedgerError::from)?
    {
        Some(order) => order,
        None => OrderId::unmatched(&payment),
    };
    let watch = Watch {
        order,
        payment,
        question: Question::Owed,
    };
    deps.watchlist
        .watch(&WatchEntry::new(watch, now_ms()))
        .await
        .map_err(LedgerError::from)?;
    info!(
        md_order,
        reason, "callback without its amount acknowledged; status-sync asks the gateway"
    );
    Ok(text(StatusCode::OK, "OK"))
}

fn source_ip(req: &Request) -> Option<IpAddr> {
    #[allow(irrefutable_let_patterns)]
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        return ctx.http.source_ip.as_deref()?.parse().ok();
    }
    None
}

async fn yookassa_callback(
    deps: &CallbackDeps,
    req: &Request,
) -> Result<Response<Body>, CallbackError> {
    let cfg = posted_to(req, deps.config.yookassa.as_ref(), Source::Yookassa)?;
    let note = yookassa::parse_notification(req.body().as_ref())?;
    let api = match cfg.verify {
        YooKassaVerify::Ip => {
            let trusted =
                source_ip(req).is_some_and(|ip| yookassa::ip_trusted(ip, &cfg.trusted_networks));
            if !trusted {
                return Err(CallbackError::Forbidden(
                    "source address is not a YooKassa network".into(),
                ));
            }
            None
        }
        YooKassaVerify::Api => Some(
            deps.yookassa
                .as_ref()
                .ok_or(CallbackError::Disabled("yookassa"))?,
        ),
    };
    let unknown = || CallbackError::Forbidden("YooKassa does not know this object".into());
    let fact = match note.subject {
        Subject::Other(event) => {
            info!(event, "YooKassa event we do not act on; acknowledged");
            None
        }
        Subject::Payment(notified) => {
            // The fetched object wins over the notification body.
            let payment = match api {
                Some(api) => api.payment(&notified.id).await?.ok_or_else(unknown)?,
                None => notified,
            };
            yookassa::payment_fact(&payment, &cfg.order_keys, &cfg.reference, now_ms())?
        }
        Subject::Refund(notified) => {
            let refund = match api {
                Some(api) => api.refund(&notified.id).await?.ok_or_else(unknown)?,
                None => notified,
            };
            let payment = PaymentRef::new(Source::Yookassa, &refund.payment_id)
                .map_err(|e| CallbackError::Malformed(e.to_string()))?;
            // The refund follows its payment's money (the `PAYMENT#` index); when that payment never reached
            // us, the payment's own metadata is the reference it waits with.
            let held = deps
                .store
                .order_for_payment(&payment)
                .await
                .map_err(LedgerError::from)?;
            let reference = match (&held, api) {
                (None, Some(api)) => api.payment(&refund.payment_id).await?.map(|p| {
                    yookassa::store_reference(&p.metadata, &cfg.order_keys, &cfg.reference, &p.id)
                }),
                _ => None,
            };
            let order = held.unwrap_or_else(|| OrderId::unmatched(&payment));
            yookassa::refund_fact(&refund, order, now_ms())?.map(|f| match reference {
                Some(r) => f.referring(r),
                None => f,
            })
        }
    };
    record(deps, fact).await?;
    Ok(text(StatusCode::OK, "OK"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
    use crate::domain::{FactKind, OrderInfo, OrderState, RefundAmount};
    use crate::formats::sber::GatewayStatus;
    use crate::formats::yookassa::{Payment, Refund};
    use crate::platform::config::{
        AcquirerApi, LedgerConfig, SberConfig, Secret, TbankConfig, YooKassaConfig,
        DEFAULT_YOOKASSA_ORDER_KEYS,
    };
    use crate::testing::{acquiring_vector, acquiring_vectors, function_url_request, tbank_sign};
    use async_trait::async_trait;
    use serde_json::{json, Value};
    use std::collections::HashMap;

    struct FakeYooKassa {
        payments: HashMap<String, Value>,
        refunds: HashMap<String, Value>,
    }

    #[async_trait]
    impl YooKassaApi for FakeYooKassa {
        async fn payment(&self, id: &str) -> Result<Option<Payment>, ProviderError> {
            Ok(self
                .payments
                .get(id)
                .map(|v| serde_json::from_value(v.clone()).unwrap()))
        }
        async fn refund(&self, id: &str) -> Result<Option<Refund>, ProviderError> {
            Ok(self
                .refunds
                .get(id)
                .map(|v| serde_json::from_value(v.clone()).unwrap()))
        }
    }

    struct FakeGateway(GatewayStatus);

    #[async_trait]
    impl SberGateway for FakeGateway {
        async fn order_status(&self, _md_order: &str) -> Result<GatewayStatus, ProviderError> {
            Ok(self.0.clone())
        }
    }

    struct Harness {
        deps: CallbackDeps,
        store: Arc<MemoryLedgerStore>,
        events: Arc<MemoryPublisher>,
    }

    fn harness(
        tbank_key: &str,
        tbank_password: &str,
        sber_token: &str,
        verify: YooKassaVerify,
    ) -> Harness {
        let store = Arc::new(MemoryLedgerStore::default());
        let events = Arc::new(MemoryPublisher::default());
        let yk_objects = |name: &str| {
            let v = acquiring_vector(name);
            let body: Value = serde_json::from_str(v["request"]["body"].as_str().unwrap()).unwrap();
            (
                body["object"]["id"].as_str().unwrap().to_owned(),
                body["object"].clone(),
            )
        };
        let payments = HashMap::from([
            yk_objects("yookassa__captured-test-shop__2"),
            yk_objects("yookassa__docs-webhooks-waiting-for-capture__1"),
        ]);
        let config = CallbackConfig {
            ledger: LedgerConfig {
                table: "t".into(),
                events_queue_url: "q".into(),
                refunds_queue_url: None,
            },
            tbank: Some(TbankConfig {
                api: AcquirerApi {
                    login: tbank_key.into(),
                    secret: Secret::new(tbank_password),
                    api_url: "http://127.0.0.1:1".into(),
                },
                reference: crate::domain::reference::parse_rules_or_default(
                    crate::platform::config::DEFAULT_TBANK_REFERENCE,
                ),
            }),
            sber: Some(SberConfig {
                callback_token: Secret::new(sber_token),
                api: None,
                reference: crate::domain::reference::parse_rules_or_default(
                    crate::platform::config::DEFAULT_SBER_REFERENCE,
                ),
            }),
            yookassa: Some(YooKassaConfig {
                api: Some(AcquirerApi {
                    login: "shop".into(),
                    secret: Secret::new("key"),
                    api_url: "http://127.0.0.1:1".into(),
                }),
                verify,
                trusted_networks: crate::platform::config::parse_networks(
                    &crate::platform::config::YOOKASSA_NETWORKS.join(","),
                )
                .unwrap(),
                order_keys: DEFAULT_YOOKASSA_ORDER_KEYS
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                reference: crate::domain::reference::parse_rules_or_default(
                    crate::platform::config::DEFAULT_YOOKASSA_REFERENCE,
                ),
            }),
            receipts: Default::default(),
        };
        Harness {
            deps: CallbackDeps {
                config,
                store: store.clone(),
                directory: store.clone(),
                watchlist: store.clone(),
                events: events.clone(),
                yookassa: Some(Arc::new(FakeYooKassa {
                    payments,
                    refunds: HashMap::new(),
                })),
                sber_gateway: Some(Arc::new(FakeGateway(GatewayStatus {
                    approved: Some(123_400),
                    ..GatewayStatus::default()
                }))),
            },
            store,
            events,
        }
    }

    /// The store describes its order (as store-sync's pull would): id, account number, total.
    async fn describe(h: &Harness, id: &str, number: &str, total: i64) {
        Ledger::new(h.store.as_ref(), h.events.as_ref())
            .register_order(
                &OrderId::parse(id).unwrap(),
                OrderInfo::new(Some(number.into()), total, crate::domain::Currency::RUB),
            )
            .await
            .unwrap();
    }

    async fn send(h: &Harness, req: Request) -> (u16, String) {
        let resp = handle(&h.deps, req).await.unwrap();
        let body = String::from_utf8_lossy(resp.body().as_ref()).into_owned();
        (resp.status().as_u16(), body)
    }

    fn vector_request(v: &Value, path: &str, source_ip: &str) -> Request {
        let r = &v["request"];
        let method = r["method"].as_str().unwrap();
        let body = r["body"].as_str().unwrap_or_default();
        function_url_request(
            method,
            path,
            r["query"].as_str().unwrap_or_default(),
            r["content_type"].as_str(),
            body.as_bytes(),
            source_ip,
        )
    }

    #[tokio::test]
    async fn every_fixture_vector_is_accepted_or_refused_as_it_says() {
        for (name, v) in acquiring_vectors() {
            let provider = v["provider"].as_str().unwrap().to_owned();
            let secret = v["secret"].as_str().unwrap_or_default();
            let h = match provider.as_str() {
                "tbank" => {
                    let body: Value =
                        serde_json::from_str(v["request"]["body"].as_str().unwrap()).unwrap();
                    harness(
                        body["TerminalKey"].as_str().unwrap(),
                        secret,
                        "unused",
                        YooKassaVerify::Api,
                    )
                }
                "sber" => harness("k", "p", secret, YooKassaVerify::Api),
                _ => harness("k", "p", "s", YooKassaVerify::Api),
            };
            // The store orders the vectors name.
            describe(&h, "201709", "201709", 9855).await;
            describe(&h, "2003", "2003", 123_400).await;
            let described = h.events.events().len();
            let (status, body) = send(
                &h,
                vector_request(&v, &format!("/{provider}"), "185.71.76.1"),
            )
            .await;
            let facts = h.store.facts();
            if v["expected_valid"].as_bool() == Some(false) {
                assert_eq!(status, 403, "{name}: {body}");
                assert!(facts.is_empty(), "{name}: a refused vector wrote {facts:?}");
                assert_eq!(h.events.events().len(), described, "{name}");
                continue;
            }
            assert_eq!(status, 200, "{name}: {body}");
            if let Some(expected) = v["expected_response"]["body"]
                .as_str()
                .filter(|b| *b == "OK")
            {
                assert_eq!(body, expected, "{name}");
            }
            assert_eq!(facts.len(), 1, "{name}");
            assert_eq!(h.events.events().len(), described + 1, "{name}");
            let fact = &facts[0];
            match name.as_str() {
                "tbank__eacq-protocol-doc__3" => {
                    assert_eq!(fact.kind, FactKind::Authorization { amount: 9855 });
                    assert_eq!(fact.order_id.as_str(), "201709");
                    assert_eq!(fact.id.as_str(), "tbank#8742591#AUTHORIZED");
                }
                "tbank__tbank-devportal-notification__1" => {
                    assert_eq!(fact.kind, FactKind::Authorization { amount: 1111 });
                    assert_eq!(fact.payment.as_str(), "tbank:0000000");
                }
                "sber__rbs-bpc-docs-symmetric__1" => {
                    // The callback has no amount: it came from the gateway.
                    assert_eq!(fact.kind, FactKind::Authorization { amount: 123_400 });
                    assert_eq!(fact.order_id.as_str(), "2003");
                }
                "yookassa__captured-test-shop__2" => {
                    assert_eq!(fact.kind, FactKind::Payment { amount: 100 });
                    assert_eq!(
                        fact.order_id.as_str(),
                        "unmatched:yookassa:3086206f-000f-5000-8000-1e653030dc24"
                    );
                }
                "yookassa__docs-webhooks-waiting-for-capture__1" => {
                    assert_eq!(fact.kind, FactKind::Authorization { amount: 200 });
                }
                other => panic!("vector {other} has no expectation here"),
            }
        }
    }

    #[tokio::test]
    async fn yookassa_ip_mode_trusts_published_networks_only() {
        let v = acquiring_vector("yookassa__captured-test-shop__2");
        let h = harness("k", "p", "s", YooKassaVerify::Ip);
        let (status, _) = send(&h, vector_request(&v, "/yookassa", "1.2.3.4")).await;
        assert_eq!(status, 403);
        assert!(h.store.facts().is_empty());
        let (status, _) = send(
            &h,
            vector_request(
                &v,
                "/lambda-url/acquiring-callback/yookassa",
                "::ffff:185.71.77.5",
            ),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(h.store.facts().len(), 1);
    }

    #[tokio::test]
    async fn yookassa_object_unknown_to_the_api_is_refused() {
        let h = harness("k", "p", "s", YooKassaVerify::Api);
        let body = json!({"type":"notification","event":"payment.succeeded","object":{"id":"forged-1","status":"succeeded","amount":{"value":"100.00","currency":"RUB"}}});
        let (status, _) = send(
            &h,
            function_url_request(
                "POST",
                "/yookassa",
                "",
                Some("application/json"),
                body.to_string().as_bytes(),
                "185.71.76.1",
            ),
        )
        .await;
        assert_eq!(status, 403);
        assert!(h.store.facts().is_empty());
    }

    #[tokio::test]
    async fn bad_input_gets_protocol_errors_and_writes_nothing() {
        let h = harness("T", "pw", "s", YooKassaVerify::Api);
        let cases: Vec<(Request, u16)> = vec![
            (
                function_url_request(
                    "POST",
                    "/tbank",
                    "",
                    Some("application/json"),
                    b"{not json",
                    "1.1.1.1",
                ),
                400,
            ),
            (
                function_url_request(
                    "POST",
                    "/tbank",
                    "",
                    Some("application/json"),
                    &vec![b' '; MAX_BODY_BYTES + 1],
                    "1.1.1.1",
                ),
                413,
            ),
            (
                function_url_request("GET", "/tbank", "", None, b"", "1.1.1.1"),
                405,
            ),
            (
                function_url_request(
                    "POST",
                    "/paypal",
                    "",
                    Some("application/json"),
                    b"{}",
                    "1.1.1.1",
                ),
                404,
            ),
            (
                function_url_request(
                    "GET",
                    "/sber",
                    "mdOrder=x&operation=deposited&status=1&checksum=00",
                    None,
                    b"",
                    "1.1.1.1",
                ),
                403,
            ),
            (
                function_url_request("GET", "/sber", "", None, b"", "1.1.1.1"),
                400,
            ),
            (
                function_url_request(
                    "POST",
                    "/yookassa",
                    "",
                    Some("application/json"),
                    b"[]",
                    "1.1.1.1",
                ),
                400,
            ),
        ];
        for (i, (req, expected)) in cases.into_iter().enumerate() {
            let (status, body) = send(&h, req).await;
            assert_eq!(status, expected, "case {i}: {body}");
            let parsed: Value = serde_json::from_str(&body).unwrap();
            assert!(parsed["error"].is_string(), "case {i}: {body}");
            assert!(!body.contains("pw"), "case {i} leaks a secret: {body}");
        }
        assert!(h.store.facts().is_empty());
        assert_eq!(h.store.outbox_len(), 0);
    }

    fn tbank_note(status: &str, payment: &str, amount: i64) -> Value {
        tbank_sign(
            &json!({"TerminalKey":"T","OrderId":"5001","Success":true,"Status":status,"PaymentId":payment,"ErrorCode":"0","Amount":amount}),
            "pw",
        )
    }

    fn post_tbank(body: &Value) -> Request {
        function_url_request(
            "POST",
            "/tbank",
            "",
            Some("application/json"),
            body.to_string().as_bytes(),
            "91.194.226.1",
        )
    }

    #[tokio::test]
    async fn queue_failure_after_commit_is_retryable_and_the_redelivery_announces() {
        let h = harness("T", "pw", "s", YooKassaVerify::Api);
        let note = tbank_note("CONFIRMED", "900", 150_000);
        h.events.set_failing(true);
        let (status, _) = send(&h, post_tbank(&note)).await;
        assert_eq!(status, 503);
        assert_eq!(h.store.facts().len(), 1, "the fact is committed");
        assert_eq!(h.store.outbox_len(), 1, "and owed to the queue");
        h.events.set_failing(false);
        let (status, body) = send(&h, post_tbank(&note)).await;
        assert_eq!((status, body.as_str()), (200, "OK"));
        assert_eq!(h.store.facts().len(), 1);
        assert_eq!(h.events.events().len(), 1);
        assert_eq!(h.store.outbox_len(), 0);
        // A third delivery changes nothing and announces nothing.
        assert_eq!(send(&h, post_tbank(&note)).await.0, 200);
        assert_eq!(h.events.events().len(), 1);
    }

    #[tokio::test]
    async fn card_payment_lifecycle_with_partial_refund() {
        let h = harness("T", "pw", "s", YooKassaVerify::Api);
        Ledger::new(h.store.as_ref(), h.events.as_ref())
            .register_order(
                &OrderId::parse("5001").unwrap(),
                OrderInfo::new(Some("5001".into()), 500_000, crate::domain::Currency::RUB),
            )
            .await
            .unwrap();
        // One-stage payment: CONFIRMED may overtake AUTHORIZED.
        for note in [
            tbank_note("CONFIRMED", "1", 500_000),
            tbank_note("AUTHORIZED", "1", 500_000),
        ] {
            assert_eq!(send(&h, post_tbank(&note)).await.0, 200);
        }
        let order = h.store.order("5001").unwrap();
        assert_eq!(order.state(), OrderState::Paid);
        assert_eq!(order.totals().held, 0);
        assert_eq!(
            send(
                &h,
                post_tbank(&tbank_note("PARTIAL_REFUNDED", "1", 300_000))
            )
            .await
            .0,
            200
        );
        let order = h.store.order("5001").unwrap();
        assert_eq!(order.totals().refunded, 200_000);
        assert_eq!(order.state(), OrderState::PartiallyPaid);
        let fact = h
            .store
            .facts()
            .into_iter()
            .find(|f| f.id.as_str().contains("PARTIAL"))
            .unwrap();
        assert_eq!(
            fact.kind,
            FactKind::Refund {
                amount: RefundAmount::Remaining(300_000)
            }
        );
        assert_eq!(
            send(&h, post_tbank(&tbank_note("REFUNDED", "1", 0)))
                .await
                .0,
            200
        );
        assert_eq!(h.store.order("5001").unwrap().state(), OrderState::Refunded);
        let versions: Vec<u64> = h.events.events().iter().map(|e| e.version).collect();
        assert_eq!(versions, vec![1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn sber_post_form_and_refund_via_gateway_total() {
        let h = harness("T", "pw", "sekret", YooKassaVerify::Api);
        describe(&h, "77", "77", 300_000).await;
        let sign = |params: &str| {
            let p = Params::parse(params.as_bytes()).unwrap();
            use hmac::Mac;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"sekret").unwrap();
            mac.update(p.signed_string().as_bytes());
            format!(
                "{params}&checksum={}",
                hex::encode_upper(mac.finalize().into_bytes())
            )
        };
        let body = sign(
            "mdOrder=md-1&orderNumber=77&operation=deposited&status=1&amount=250000&currency=643",
        );
        let req = function_url_request(
            "POST",
            "/sber",
            "",
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
            "1.1.1.1",
        );
        assert_eq!(send(&h, req).await, (200, "OK".to_owned()));
        let q =
            sign("mdOrder=md-1&orderNumber=77&operation=refunded&status=1&refundedAmount=50000");
        assert_eq!(
            send(
                &h,
                function_url_request("GET", "/sber", &q, None, b"", "1.1.1.1")
            )
            .await
            .0,
            200
        );
        let order = h.store.order("77").unwrap();
        assert_eq!(
            (order.totals().paid, order.totals().refunded),
            (250_000, 50_000)
        );
        assert!(!order.flags().contains(&"unknown_order"));
    }

    /// Issue #16: a signed Sber callback whose amount cannot be learned now is acknowledged once the look-up is
    /// owed to status-sync; nothing is recorded with a guessed amount.
    #[tokio::test]
    async fn a_sber_callback_without_its_amount_is_acknowledged_and_the_look_up_owed() {
        let mut h = harness("T", "pw", "sekret", YooKassaVerify::Api);
        h.deps.sber_gateway = None;
        let params = "mdOrder=md-9&orderNumber=77&operation=deposited&status=1";
        let p = Params::parse(params.as_bytes()).unwrap();
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"sekret").unwrap();
        mac.update(p.signed_string().as_bytes());
        let q = format!(
            "{params}&checksum={}",
            hex::encode_upper(mac.finalize().into_bytes())
        );
        let req = function_url_request("GET", "/sber", &q, None, b"", "1.1.1.1");
        assert_eq!(send(&h, req).await, (200, "OK".to_owned()));
        assert!(h.store.facts().is_empty(), "no amount guessed");
        let owed = crate::ports::Watchlist::due(h.store.as_ref(), i64::MAX, 10)
            .await
            .unwrap();
        assert_eq!(
            owed.iter().map(WatchEntry::key).collect::<Vec<_>>(),
            ["unmatched:sber:md-9#sber:md-9#owed"]
        );
    }

    /// Kind 1 of issue #14: a reference only names an order the store described, by the provider's rules.
    #[tokio::test]
    async fn references_resolve_only_against_what_the_store_described() {
        let h = harness("T", "pw", "s", YooKassaVerify::Ip);
        // T-Bank: an account number with the store's template, and a number nobody described.
        describe(&h, "392", "IM-00392", 10_000).await;
        let pay = |order_ref: &str, payment: &str, amount: i64| {
            let mut note = tbank_note("CONFIRMED", payment, amount);
            note["OrderId"] = json!(order_ref);
            note.as_object_mut().unwrap().remove("Token");
            post_tbank(&crate::testing::tbank_sign(&note, "pw"))
        };
        assert_eq!(send(&h, pay("IM-00392", "91", 10_000)).await.0, 200);
        assert_eq!(h.store.order("392").unwrap().totals().paid, 10_000);
        assert_eq!(send(&h, pay("555", "92", 5_000)).await.0, 200);
        assert!(
            h.store.order("555").is_none(),
            "no order is made up from a number"
        );
        let waiting = h.store.order("unmatched:tbank:92").unwrap();
        assert_eq!(waiting.totals().paid, 5_000);
        assert_eq!(waiting.awaiting_reference()[0].1.raw, "555");
        // YooKassa from Bitrix's own handler: BX_PAYMENT_NUMBER is a payment id, even when an order has that id.
        describe(&h, "1187", "1187", 99_000).await;
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/cases/01-yookassa-bitrix-payment-id-as-order/notification.json"
        ))
        .unwrap_or_else(|_| {
            r#"{"type":"notification","event":"payment.succeeded","object":{"id":"2f9c1e77-000f-5001-9000-1a2b3c4d5e6f","status":"succeeded","paid":true,"amount":{"value":"1480.50","currency":"RUB"},"metadata":{"BX_PAYMENT_NUMBER":"1187","BX_PAYSYSTEM_CODE":"4","BX_HANDLER":"YANDEX_CHECKOUT","cms_name":"api_1c-bitrix"}}}"#.to_owned()
        });
        let req = function_url_request(
            "POST",
            "/yookassa",
            "",
            Some("application/json"),
            body.as_bytes(),
            "185.71.76.10",
        );
        assert_eq!(send(&h, req).await.0, 200);
        assert_eq!(h.store.order("1187").unwrap().totals().paid, 0);
        assert_eq!(
            h.store
                .order("unmatched:yookassa:2f9c1e77-000f-5001-9000-1a2b3c4d5e6f")
                .unwrap()
                .totals()
                .paid,
            148_050
        );
    }
}
