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

use crate::adapters::dynamo::DynamoLedgerStore;
use crate::adapters::sqs::SqsEventPublisher;
use crate::clients::{http_client, ApiError, HttpSberGateway, HttpYooKassa, SberGateway, YooKassaApi};
use crate::config::{CallbackConfig, YooKassaVerify};
use crate::domain::{OrderId, PaymentFact, PaymentRef, Source};
use crate::formats::sber::{Callback, Need, Params, SberError};
use crate::formats::tbank::{self, TbankError};
use crate::formats::yookassa::{self, Subject, YooKassaError};
use crate::http::{error as error_response, text, MAX_BODY_BYTES};
use crate::ledger::{now_ms, Ledger, LedgerError, Recorded};
use crate::ports::{EventPublisher, LedgerStore};

pub struct CallbackDeps {
    pub config: CallbackConfig,
    pub store: Arc<dyn LedgerStore>,
    pub events: Arc<dyn EventPublisher>,
    pub yookassa: Option<Arc<dyn YooKassaApi>>,
    pub sber_gateway: Option<Arc<dyn SberGateway>>,
}

impl CallbackDeps {
    /// Real adapters: DynamoDB, SQS and the providers' HTTP APIs.
    pub fn new(config: CallbackConfig, aws: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        let http = http_client()?;
        let store = Arc::new(DynamoLedgerStore::new(
            aws_sdk_dynamodb::Client::new(aws),
            &config.ledger.table,
        ));
        let events = Arc::new(SqsEventPublisher::new(
            aws_sdk_sqs::Client::new(aws),
            &config.ledger.events_queue_url,
        ));
        let yookassa = config.yookassa.as_ref().and_then(|y| {
            y.credentials.as_ref().map(|(shop, key)| {
                Arc::new(HttpYooKassa::new(http.clone(), &y.api_url, shop, key.clone())) as Arc<dyn YooKassaApi>
            })
        });
        let sber_gateway = config.sber.as_ref().and_then(|s| {
            s.api_credentials.as_ref().map(|(user, pass)| {
                Arc::new(HttpSberGateway::new(http.clone(), &s.api_url, user, pass.clone())) as Arc<dyn SberGateway>
            })
        });
        Ok(CallbackDeps {
            config,
            store,
            events,
            yookassa,
            sber_gateway,
        })
    }
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
    /// A needed amount could not be learned (gateway credentials missing); the provider should retry.
    #[error("{0}")]
    Unresolved(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Api(#[from] ApiError),
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
            CallbackError::NotFound | CallbackError::Disabled(_) => (StatusCode::NOT_FOUND, "not_found", self.to_string()),
            CallbackError::Method => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", self.to_string()),
            CallbackError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", self.to_string()),
            CallbackError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed", self.to_string()),
            CallbackError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", self.to_string()),
            CallbackError::Unresolved(_) => (StatusCode::SERVICE_UNAVAILABLE, "unresolved", self.to_string()),
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
    Ok(route(deps, &req).await.unwrap_or_else(CallbackError::into_response))
}

async fn route(deps: &CallbackDeps, req: &Request) -> Result<Response<Body>, CallbackError> {
    let provider = req
        .uri()
        .path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    if !matches!(provider, "tbank" | "sber" | "yookassa") {
        return Err(CallbackError::NotFound);
    }
    if req.body().len() > MAX_BODY_BYTES {
        return Err(CallbackError::TooLarge);
    }
    match provider {
        "tbank" => tbank_callback(deps, req).await,
        "sber" => sber_callback(deps, req).await,
        _ => yookassa_callback(deps, req).await,
    }
}

async fn record(deps: &CallbackDeps, fact: Option<PaymentFact>) -> Result<(), CallbackError> {
    let Some(fact) = fact else {
        info!("notification moves no money; acknowledged");
        return Ok(());
    };
    match Ledger::new(deps.store.as_ref(), deps.events.as_ref()).record(&fact).await? {
        Recorded::Applied(_) => {}
        Recorded::Duplicate => info!(fact_id = %fact.id, "duplicate notification acknowledged"),
    }
    Ok(())
}

async fn tbank_callback(deps: &CallbackDeps, req: &Request) -> Result<Response<Body>, CallbackError> {
    if req.method() != Method::POST {
        return Err(CallbackError::Method);
    }
    let cfg = deps.config.tbank.as_ref().ok_or(CallbackError::Disabled("tbank"))?;
    let note = tbank::verify(req.body().as_ref(), &cfg.terminal_key, cfg.password.expose())?;
    record(deps, tbank::to_fact(&note, now_ms())?).await?;
    // T-Bank wants exactly `OK`, and only once the fact is safe.
    Ok(text(StatusCode::OK, "OK"))
}

async fn sber_callback(deps: &CallbackDeps, req: &Request) -> Result<Response<Body>, CallbackError> {
    let raw: &[u8] = match *req.method() {
        Method::GET => req.uri().query().unwrap_or_default().as_bytes(),
        Method::POST if !req.body().is_empty() => req.body().as_ref(),
        Method::POST => req.uri().query().unwrap_or_default().as_bytes(),
        _ => return Err(CallbackError::Method),
    };
    let cfg = deps.config.sber.as_ref().ok_or(CallbackError::Disabled("sber"))?;
    let params = Params::parse(raw)?;
    if params.is_empty() {
        return Err(CallbackError::Malformed("no callback parameters".into()));
    }
    params.verify(cfg.callback_token.expose())?;
    let callback = Callback::from_params(params)?;
    let gateway = match callback.needs()? {
        Need::Nothing => None,
        Need::GatewayStatus => match &deps.sber_gateway {
            Some(g) => Some(g.order_status(&callback.md_order).await?),
            None => {
                return Err(CallbackError::Unresolved(
                    "callback lacks the amount and SBER_USERNAME/SBER_PASSWORD are not set to ask the gateway".into(),
                ))
            }
        },
    };
    record(deps, callback.to_fact(gateway.as_ref(), now_ms())?).await?;
    Ok(text(StatusCode::OK, "OK"))
}

fn source_ip(req: &Request) -> Option<IpAddr> {
    #[allow(irrefutable_let_patterns)]
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        return ctx.http.source_ip.as_deref()?.parse().ok();
    }
    None
}

async fn yookassa_callback(deps: &CallbackDeps, req: &Request) -> Result<Response<Body>, CallbackError> {
    if req.method() != Method::POST {
        return Err(CallbackError::Method);
    }
    let cfg = deps.config.yookassa.as_ref().ok_or(CallbackError::Disabled("yookassa"))?;
    let note = yookassa::parse_notification(req.body().as_ref())?;
    let api = match cfg.verify {
        YooKassaVerify::Ip => {
            let trusted = source_ip(req).is_some_and(|ip| yookassa::ip_trusted(ip, &cfg.trusted_networks));
            if !trusted {
                return Err(CallbackError::Forbidden("source address is not a YooKassa network".into()));
            }
            None
        }
        YooKassaVerify::Api => Some(deps.yookassa.as_ref().ok_or(CallbackError::Disabled("yookassa"))?),
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
            yookassa::payment_fact(&payment, &cfg.order_keys, now_ms())?
        }
        Subject::Refund(notified) => {
            let refund = match api {
                Some(api) => api.refund(&notified.id).await?.ok_or_else(unknown)?,
                None => notified,
            };
            let payment = PaymentRef::new(Source::Yookassa, &refund.payment_id).map_err(|e| CallbackError::Malformed(e.to_string()))?;
            let order = match deps.store.order_for_payment(&payment).await.map_err(LedgerError::from)? {
                Some(order) => order,
                None => match api {
                    Some(api) => api
                        .payment(&refund.payment_id)
                        .await?
                        .and_then(|p| yookassa::order_id_from_metadata(&p.metadata, &cfg.order_keys))
                        .unwrap_or_else(|| OrderId::unmatched(&payment)),
                    None => OrderId::unmatched(&payment),
                },
            };
            yookassa::refund_fact(&refund, order, now_ms())?
        }
    };
    record(deps, fact).await?;
    Ok(text(StatusCode::OK, "OK"))
}
