//! The console's web layer: routes (axum), pages (maud), sign-in and sessions. What is decided and read is
//! `shared::app::console`; this crate turns requests into those calls and their answers into pages.
//!
//! Served by `lambda_http` behind a Function URL (paths from `/`), and under `cargo lambda watch` at
//! `/lambda-url/console/`: `cargo lambda watch` hands the function the path without that prefix, so
//! `CONSOLE_BASE_PATH` says what to put in front of every link (a request that still carries the prefix, as on a
//! local port in the tests, has it taken off before routing).

pub mod auth;
pub mod chart;
pub mod fmt;
pub mod pages;
pub mod report;

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, Request, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar};
use maud::Markup;
use serde::Deserialize;
use shared::app::console::{
    self as use_case, ActionError, ConsoleDeps, Decision, Refusal, LIST_LIMIT,
};
use shared::domain::daybook::DayFigures;
use shared::domain::settlement::business_day;
use shared::domain::{OrderId, PaymentMethod, PaymentRef, Role};
use shared::platform::clock::now_ms;
use shared::platform::config::ConsoleConfig;
use tracing::{error, info, warn};

use auth::{Session, Users, SESSION_COOKIE, SIGN_IN_COOKIE};
use fmt::Lang;
use pages::Ctx;

/// Where `cargo lambda watch` serves the function.
pub const LOCAL_PREFIX: &str = "/lambda-url/console";
const LANG_COOKIE: &str = "paysync_lang";

/// The console's shared state: the use cases' ports, the users and the cookie key.
#[derive(Clone)]
pub struct Console {
    deps: Arc<ConsoleDeps>,
    users: Arc<Users>,
    key: Key,
    session_minutes: i64,
    base: String,
}

impl FromRef<Console> for Key {
    fn from_ref(c: &Console) -> Key {
        c.key.clone()
    }
}

/// Where the console is mounted for this request (`CONSOLE_BASE_PATH`).
#[derive(Debug, Clone, Default)]
struct Base(String);

/// Take `base` off the path before routing when the request still carries it (routing sees `/…` either way), and
/// remember it for the links.
pub fn strip_prefix<B>(base: &str, mut req: Request<B>) -> Request<B> {
    let path = req.uri().path();
    match path.strip_prefix(base) {
        Some(rest) if !base.is_empty() && (rest.is_empty() || rest.starts_with('/')) => {
            let rest = if rest.is_empty() { "/" } else { rest };
            let pq = match req.uri().query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_owned(),
            };
            if let Ok(uri) = pq.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
        }
        _ => {}
    }
    req.extensions_mut().insert(Base(base.to_owned()));
    req
}

impl Console {
    /// The key must be at least 32 bytes (`ConsoleConfig` checks it); the cookie key is derived from it.
    pub fn new(deps: ConsoleDeps, config: &ConsoleConfig) -> Console {
        Console {
            deps: Arc::new(deps),
            users: Arc::new(Users::new(&config.users)),
            key: Key::derive_from(config.session_key.expose().as_bytes()),
            session_minutes: config.session_minutes,
            base: config.base_path.clone(),
        }
    }

    /// The routes (without the prefix handling: wrap with [`strip_prefix`], as [`service`] does).
    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(overview))
            .route("/login", get(sign_in_form).post(sign_in))
            .route("/logout", post(sign_out))
            .route("/lang/{lang}", get(set_lang))
            .route("/attention", get(attention))
            .route("/report", get(report_page))
            .route("/report.csv", get(report_csv))
            .route("/report.xlsx", get(report_xlsx))
            .route("/search", get(search))
            .route("/orders/{id}", get(order))
            .route("/orders/{id}/allocate", post(allocate))
            .route("/orders/{id}/payment", post(record_payment))
            .route("/orders/{id}/reverse", post(reverse))
            .route("/orders/{id}/refund/approve", post(approve_refund))
            .route("/orders/{id}/refund/deny", post(deny_refund))
            .route("/orders/{id}/refund/retry", post(retry_refund))
            .route("/payouts/accept", post(accept_payout))
            .fallback(not_found)
            .method_not_allowed_fallback(not_allowed)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                plain_refusals,
            ))
            .with_state(self)
    }
}

/// The console as one service: the prefix taken off, then the routes.
/// `B` is the body type of whoever serves it (`lambda_http::Body` in Lambda, axum's own on a local port).
pub fn service<B>(
    console: Console,
) -> tower::util::MapRequest<Router, impl Fn(Request<B>) -> Request<B> + Clone> {
    let base = console.base.clone();
    tower::util::MapRequest::new(console.router(), move |req| strip_prefix(&base, req))
}

/// A refusal or failure, as a page.
struct PageError(Box<RefusalPage>);

struct RefusalPage {
    status: StatusCode,
    ctx: Ctx,
    title: String,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let r = self.0;
        let page = pages::refusal(&r.ctx, &r.title, &r.message);
        (r.status, no_store(), Html(page.into_string())).into_response()
    }
}

/// Every page: not cached (it shows money and a CSRF token), never framed, no script of any origin (the pages need
/// none; injected markup could run none either), forms posted only to the console itself.
fn no_store() -> [(header::HeaderName, &'static str); 5] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    ]
}

fn page(markup: Markup) -> Response {
    (no_store(), Html(markup.into_string())).into_response()
}

/// What every handler gets: the page context, the cookie jar and, when signed in, the session.
struct Visit {
    ctx: Ctx,
    jar: PrivateCookieJar,
    session: Option<(Session, Role)>,
}

impl Visit {
    /// What the cookies say, before the ledger is asked whether the session was signed out.
    fn of_cookies(parts: &Parts, state: &Console) -> Visit {
        let base = parts
            .extensions
            .get::<Base>()
            .cloned()
            .unwrap_or_default()
            .0;
        let jar = PrivateCookieJar::from_headers(&parts.headers, state.key.clone());
        let plain = axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers);
        let lang = Lang::from_cookie(plain.get(LANG_COOKIE).map(|c| c.value()));
        let session = auth::current(&jar, &state.users, now_ms());
        let here = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |pq| pq.as_str().to_owned())
        } else {
            // A refusal of a form: the language switch returns to the page the form was on, never to the form's
            // target (a GET there is a 405).
            page_of_form(parts.uri.path())
        };
        let ctx = Ctx {
            base,
            lang,
            user: session.as_ref().map(|(s, r)| (s.login.clone(), *r)),
            csrf: session
                .as_ref()
                .map(|(s, _)| s.csrf.clone())
                .unwrap_or_default(),
            here,
        };
        Visit { ctx, jar, session }
    }

    fn signed_out(&mut self) {
        self.session = None;
        self.ctx.user = None;
        self.ctx.csrf.clear();
    }
}

/// The visit, its session checked against the sign-outs kept in the ledger (one consistent GetItem): the cookie
/// of a signed-out session, copied or kept, opens nothing until it expires either. When the ledger does not answer
/// the page is a 503, not a guess either way.
impl FromRequestParts<Console> for Visit {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self, PageError> {
        let mut visit = Visit::of_cookies(parts, state);
        if let Some((session, _)) = &visit.session {
            match state.deps.sign_ins.signed_out(&session.sid).await {
                Ok(false) => {}
                Ok(true) => {
                    info!(user = %session.login, "a signed-out session's cookie came back");
                    visit.signed_out();
                }
                Err(e) => {
                    visit.signed_out();
                    return Err(visit.unavailable(e));
                }
            }
        }
        Ok(visit)
    }
}

/// A visit of a signed-in user; anyone else is sent to the sign-in page.
struct Signed(Visit);

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self, Response> {
        let visit = Visit::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match visit.session {
            Some(_) => Ok(Signed(visit)),
            None => Err(Redirect::to(&visit.ctx.link("/login")).into_response()),
        }
    }
}

impl Visit {
    fn refuse(
        &self,
        status: StatusCode,
        title: (&str, &str),
        message: impl Into<String>,
    ) -> PageError {
        PageError(Box::new(RefusalPage {
            status,
            ctx: self.ctx.clone(),
            title: self.ctx.t(title.0, title.1).to_owned(),
            message: message.into(),
        }))
    }

    /// The signed-in user of a form, whose CSRF token the form must carry. A missing session is a clear page (a
    /// form posted after the session ended), not a silent redirect that would lose what was typed.
    fn posted(&self, csrf: &str) -> Result<(&Session, Role), PageError> {
        let Some((s, r)) = &self.session else {
            return Err(self.refuse(
                StatusCode::FORBIDDEN,
                ("Сеанс закончился", "Your session has ended"),
                self.ctx.t(
                    "Войдите снова и повторите действие.",
                    "Sign in again and repeat the action.",
                ),
            ));
        };
        if !auth::same_token(csrf, &s.csrf) {
            warn!(user = %s.login, "form refused: CSRF token missing or not this session's");
            return Err(self.refuse(
                StatusCode::FORBIDDEN,
                ("Форма отклонена", "Form refused"),
                self.ctx.t(
                    "Форма устарела или отправлена не из этой консоли. Откройте страницу заново.",
                    "The form is out of date or was not sent from this console. Open the page again.",
                ),
            ));
        }
        Ok((s, *r))
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> PageError {
        error!(error.message = %e, "console request failed");
        self.refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ("Временно недоступно", "Temporarily unavailable"),
            self.ctx.t(
                "Хранилище не ответило. Повторите через минуту; ничего не изменено.",
                "The ledger did not answer. Try again in a minute; nothing was changed.",
            ),
        )
    }
}

/// A posted form, or a page saying why it could not be read (too large, not a form, a field missing).
struct Posted<T>(T);

impl<T: serde::de::DeserializeOwned + Send> FromRequest<Console> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(req: axum::extract::Request, state: &Console) -> Result<Self, PageError> {
        let (parts, body) = req.into_parts();
        // Only for the refusal page's language and links: the handler's own `Visit` checks the session.
        let visit = Visit::of_cookies(&parts, state);
        let req = axum::extract::Request::from_parts(parts, body);
        match Form::<T>::from_request(req, state).await {
            Ok(Form(form)) => Ok(Posted(form)),
            Err(e) => {
                warn!(status = e.status().as_u16(), error.message = %e.body_text(), "form refused");
                Err(visit.refuse(
                    e.status(),
                    ("Форма не прочитана", "The form could not be read"),
                    visit.ctx.t(
                        "Отправленные данные не похожи на форму консоли (или слишком велики). Откройте страницу заново.",
                        "What was sent is not one of the console's forms (or is too large). Open the page again.",
                    ),
                ))
            }
        }
    }
}

/// The extractors' own refusals (a path that is not UTF-8, a query with a field twice) are plain text: they become
/// a page too.
async fn plain_refusals(
    State(console): State<Console>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // The language (and who is signed in) from the request's cookies, for the page if one is needed.
    let (parts, body) = req.into_parts();
    let mut ctx = Visit::of_cookies(&parts, &console).ctx;
    let resp = next
        .run(axum::extract::Request::from_parts(parts, body))
        .await;
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !(resp.status().is_client_error() && plain) {
        return resp;
    }
    ctx.here = "/".into();
    let page = pages::refusal(
        &ctx,
        ctx.t("Адрес не прочитан", "The address could not be read"),
        ctx.t(
            "В адресе страницы или его параметрах ошибка. Откройте страницу из консоли заново.",
            "The page's address or its parameters are wrong. Open the page from the console again.",
        ),
    );
    (resp.status(), no_store(), Html(page.into_string())).into_response()
}

async fn not_allowed(visit: Visit) -> PageError {
    visit.refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        ("Так нельзя", "Not this way"),
        visit.ctx.t(
            "Эта страница так не открывается: воспользуйтесь ссылками и кнопками консоли.",
            "This page is not opened this way: use the console's links and buttons.",
        ),
    )
}

async fn not_found(visit: Visit) -> PageError {
    visit.refuse(
        StatusCode::NOT_FOUND,
        ("Страница не найдена", "Page not found"),
        visit.ctx.t("Такой страницы нет.", "There is no such page."),
    )
}

async fn sign_in_form(visit: Visit) -> Response {
    if visit.session.is_some() {
        return Redirect::to(&visit.ctx.link("/")).into_response();
    }
    let token = auth::random_token();
    let jar = visit
        .jar
        .add(auth::private_cookie(SIGN_IN_COOKIE, token.clone(), 60));
    (jar, page(pages::sign_in(&visit.ctx, &token, None))).into_response()
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn sign_in(
    State(console): State<Console>,
    visit: Visit,
    Posted(form): Posted<SignInForm>,
) -> Result<Response, PageError> {
    let ctx = Ctx {
        user: None,
        csrf: String::new(),
        ..visit.ctx.clone()
    };
    let again = |status: StatusCode, message: &str, jar: PrivateCookieJar| {
        let token = auth::random_token();
        let jar = jar.add(auth::private_cookie(SIGN_IN_COOKIE, token.clone(), 60));
        (
            status,
            jar,
            page(pages::sign_in(&ctx, &token, Some(message))),
        )
            .into_response()
    };
    let expected = visit.jar.get(SIGN_IN_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|t| auth::same_token(&form.csrf, &t)) {
        let m = ctx.t(
            "Форма входа устарела. Введите логин и пароль ещё раз.",
            "The sign-in form was out of date. Enter your login and password again.",
        );
        return Ok(again(StatusCode::FORBIDDEN, m, visit.jar));
    }
    let login = form.login.trim().chars().take(100).collect::<String>();
    let now = now_ms();
    let sign_ins = &console.deps.sign_ins;
    let (failures, last) = sign_ins
        .failures(&login)
        .await
        .map_err(|e| visit.unavailable(e))?;
    let wait = auth::wait_ms(failures, last, now);
    if wait > 0 {
        warn!(login = %login, failures, "sign-in slowed down");
        let m = format!(
            "{} {} {}",
            ctx.t(
                "Слишком много неудачных попыток. Повторите через",
                "Too many failed attempts. Try again in"
            ),
            (wait + 999) / 1000,
            ctx.t("с.", "s.")
        );
        return Ok(again(StatusCode::TOO_MANY_REQUESTS, &m, visit.jar));
    }
    let users = console.users.clone();
    let (login_, password) = (login.clone(), form.password);
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let role = tokio::task::spawn_blocking(move || users.verify(&login_, &password))
        .await
        .ok()
        .flatten();
    let Some(role) = role else {
        let count = sign_ins
            .failed(&login, now)
            .await
            .map_err(|e| visit.unavailable(e))?;
        warn!(login = %login, failures = count, "sign-in failed");
        let m = ctx.t("Неверный логин или пароль.", "Wrong login or password.");
        return Ok(again(StatusCode::UNAUTHORIZED, m, visit.jar));
    };
    if failures > 0 {
        sign_ins
            .succeeded(&login)
            .await
            .map_err(|e| visit.unavailable(e))?;
    }
    // A new session whatever the browser brought (no fixation).
    let session = Session {
        sid: auth::random_token(),
        login: login.clone(),
        csrf: auth::random_token(),
        expires_ms: now + console.session_minutes * 60_000,
    };
    let value = serde_json::to_string(&session).map_err(|e| visit.unavailable(e))?;
    let jar = visit
        .jar
        .remove(Cookie::build(SIGN_IN_COOKIE).path("/"))
        .add(auth::private_cookie(
            SESSION_COOKIE,
            value,
            console.session_minutes,
        ));
    info!(user = %login, role = role.as_str(), "signed in");
    Ok((jar, Redirect::to(&visit.ctx.link("/"))).into_response())
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Signs the session out for good: kept in the ledger until the session would have expired, so that the same
/// cookie (a copy, a back-up, another tab) opens nothing afterwards. When that cannot be kept the user is told so,
/// and stays signed in rather than believing a copy is dead.
async fn sign_out(
    State(console): State<Console>,
    visit: Visit,
    Posted(form): Posted<CsrfOnly>,
) -> Result<Response, PageError> {
    let (session, _) = visit.posted(&form.csrf)?;
    console
        .deps
        .sign_ins
        .sign_out(&session.sid, session.expires_ms)
        .await
        .map_err(|e| visit.unavailable(e))?;
    info!(user = %session.login, "signed out");
    let jar = visit
        .jar
        .clone()
        .remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to(&visit.ctx.link("/login"))).into_response())
}

#[derive(Deserialize)]
struct Back {
    #[serde(default)]
    back: String,
}

/// The page a form at `path` is on: its order's page for `/orders/<id>/…`, else the overview.
fn page_of_form(path: &str) -> String {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next()) {
        (Some("orders"), Some(id)) if !id.is_empty() => format!("/orders/{id}"),
        _ => "/".to_owned(),
    }
}

/// A path of this console to return to: starts with one `/`, and holds nothing a browser could read as another
/// site (`//`, `/\`, a scheme) or as a header break.
fn local_path(back: &str) -> bool {
    let mut chars = back.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && back
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.~%?=&#:+".contains(c))
        && !back.contains("//")
}

async fn set_lang(visit: Visit, Path(lang): Path<String>, Query(q): Query<Back>) -> Response {
    let lang = Lang::from_cookie(Some(&lang));
    let cookie = Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(axum_extra::extract::cookie::SameSite::Lax)
        .max_age(time::Duration::days(365))
        .build();
    // Only a path of this console (never another site).
    let back = if local_path(&q.back) {
        visit.ctx.link(&q.back)
    } else {
        visit.ctx.link("/")
    };
    let jar = axum_extra::extract::cookie::CookieJar::new().add(cookie);
    (jar, Redirect::to(&back)).into_response()
}

async fn overview(
    State(console): State<Console>,
    Signed(visit): Signed,
) -> Result<Response, PageError> {
    let now = now_ms();
    let lists = use_case::needs_attention(&console.deps, now, LIST_LIMIT)
        .await
        .map_err(|e| visit.unavailable(e))?;
    let today = business_day(now);
    let yesterday = business_day(now - 86_400_000);
    let figures = use_case::daybook(&console.deps, &today, CHART_DAYS)
        .await
        .map_err(|e| visit.unavailable(e))?;
    let svg = chart::svg(&chart::per_day(&figures), visit.ctx.lang);
    Ok(page(pages::overview(
        &visit.ctx,
        &lists,
        &figures,
        &today,
        &yesterday,
        svg.as_deref(),
    )))
}

/// Days the overview's chart shows.
const CHART_DAYS: usize = 30;

#[derive(Deserialize)]
struct Range {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The report's days: `from..=to` as asked (`YYYY-MM-DD`), else the last 30 days; at most
/// `use_case::MAX_REPORT_DAYS`, never past today.
fn report_range(q: &Range, now: i64) -> (String, String, usize) {
    let today = business_day(now);
    let parse =
        |s: &str| time::Date::parse(s, &time::format_description::well_known::Iso8601::DATE).ok();
    let to = parse(&q.to)
        .map(shared::domain::settlement::iso)
        .filter(|d| *d <= today)
        .unwrap_or(today);
    let days = match (parse(&q.from), parse(&to)) {
        (Some(f), Some(t)) if f <= t => usize::try_from((t - f).whole_days() + 1).unwrap_or(1),
        _ => CHART_DAYS,
    }
    .min(use_case::MAX_REPORT_DAYS);
    let from = shared::domain::daybook::days_until(&to, days)
        .first()
        .cloned()
        .unwrap_or_else(|| to.clone());
    (from, to, days)
}

async fn report_data(
    console: &Console,
    visit: &Visit,
    q: &Range,
) -> Result<
    (
        String,
        String,
        Vec<DayFigures>,
        Vec<use_case::AttentionList>,
    ),
    PageError,
> {
    let now = now_ms();
    let (from, to, days) = report_range(q, now);
    let figures = use_case::daybook(&console.deps, &to, days)
        .await
        .map_err(|e| visit.unavailable(e))?;
    let lists = use_case::needs_attention(&console.deps, now, LIST_LIMIT)
        .await
        .map_err(|e| visit.unavailable(e))?;
    Ok((from, to, figures, lists))
}

async fn report_page(
    State(console): State<Console>,
    Signed(visit): Signed,
    Query(q): Query<Range>,
) -> Result<Response, PageError> {
    let (from, to, figures, lists) = report_data(&console, &visit, &q).await?;
    Ok(page(pages::report_page(
        &visit.ctx, &from, &to, &figures, &lists,
    )))
}

fn download(content_type: &'static str, name: String, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// A report file's format.
#[derive(Clone, Copy)]
enum ReportFile {
    Csv,
    Xlsx,
}

async fn report_file(
    console: &Console,
    visit: &Visit,
    q: &Range,
    file: ReportFile,
) -> Result<Response, PageError> {
    let (from, to, figures, lists) = report_data(console, visit, q).await?;
    let lang = visit.ctx.lang;
    let (bytes, content_type, ext) = match file {
        ReportFile::Csv => (
            report::csv(lang, &figures, &lists).map_err(|e| visit.unavailable(e))?,
            // Not `text/csv`: lambda_http decodes a text body by its charset and drops the byte-order mark Excel
            // needs (then the body is shorter than its Content-Length). As bytes it goes through base64, exact.
            "application/octet-stream",
            "csv",
        ),
        ReportFile::Xlsx => (
            report::xlsx(lang, &figures, &lists).map_err(|e| visit.unavailable(e))?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
    };
    Ok(download(
        content_type,
        format!("paysync-reconciliation-{from}-{to}.{ext}"),
        bytes,
    ))
}

async fn report_csv(
    State(console): State<Console>,
    Signed(visit): Signed,
    Query(q): Query<Range>,
) -> Result<Response, PageError> {
    report_file(&console, &visit, &q, ReportFile::Csv).await
}

async fn report_xlsx(
    State(console): State<Console>,
    Signed(visit): Signed,
    Query(q): Query<Range>,
) -> Result<Response, PageError> {
    report_file(&console, &visit, &q, ReportFile::Xlsx).await
}

async fn attention(
    State(console): State<Console>,
    Signed(visit): Signed,
) -> Result<Response, PageError> {
    let now = now_ms();
    let lists = use_case::needs_attention(&console.deps, now, LIST_LIMIT)
        .await
        .map_err(|e| visit.unavailable(e))?;
    Ok(page(pages::attention(&visit.ctx, &lists, now)))
}

#[derive(Deserialize)]
struct Done {
    #[serde(default)]
    done: String,
}

fn no_such_order(visit: &Visit) -> PageError {
    visit.refuse(
        StatusCode::NOT_FOUND,
        ("Нет такого заказа", "No such order"),
        visit.ctx.t(
            "Такого заказа в журнале нет.",
            "The ledger has no such order.",
        ),
    )
}

fn order_id(visit: &Visit, id: &str) -> Result<OrderId, PageError> {
    OrderId::parse(id).map_err(|_| no_such_order(visit))
}

async fn order(
    State(console): State<Console>,
    Signed(visit): Signed,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let id = order_id(&visit, &id)?;
    let found = use_case::order_page(&console.deps, &id)
        .await
        .map_err(|e| visit.unavailable(e))?;
    let Some(found) = found else {
        return Err(no_such_order(&visit));
    };
    let notice = match done.done.as_str() {
        "allocated" => Some(
            visit
                .ctx
                .t("Поступление распределено.", "The money was allocated."),
        ),
        "recorded" => Some(visit.ctx.t("Оплата внесена.", "The payment was recorded.")),
        "approved" => Some(visit.ctx.t(
            "Возврат одобрен и передан на исполнение.",
            "The refund was approved and handed over to be executed.",
        )),
        "denied" => Some(visit.ctx.t(
            "Решено: деньги остаются у магазина.",
            "Decided: the shop keeps the money.",
        )),
        "retried" => Some(
            visit
                .ctx
                .t("Возврат отправлен повторно.", "The refund was sent again."),
        ),
        "reversed" => Some(
            visit
                .ctx
                .t("Оплата сторнирована.", "The payment was reversed."),
        ),
        "repeated" => Some(visit.ctx.t(
            "Это действие уже было выполнено; повторно ничего не изменено.",
            "This was done before; nothing was changed again.",
        )),
        _ => None,
    };
    Ok(page(pages::order(&visit.ctx, &found, notice)))
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Search by order id or number, payment reference, amount, payer INN or name: one hit goes straight to its order,
/// several are listed.
async fn search(
    State(console): State<Console>,
    Signed(visit): Signed,
    Query(q): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let q = q.q.trim().chars().take(200).collect::<String>();
    let hits = use_case::search(&console.deps, &q, fmt::parse_amount(&q))
        .await
        .map_err(|e| visit.unavailable(e))?;
    let orders: std::collections::BTreeSet<&str> = hits.iter().map(|h| h.order.as_str()).collect();
    if let [only] = orders.into_iter().collect::<Vec<_>>().as_slice() {
        return Ok(Redirect::to(&visit.ctx.order_link(only)).into_response());
    }
    Ok(page(pages::search(&visit.ctx, &q, &hits)))
}

/// The fields every action form carries.
fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// A decision posted about order `id`: this session's CSRF token checked, the order id read, the decision made of
/// the form (reason, one-time token).
fn on_order(
    visit: &Visit,
    id: &str,
    form: &[(String, String)],
) -> Result<(OrderId, Decision), PageError> {
    let (session, role) = visit.posted(field(form, "csrf"))?;
    let order = order_id(visit, id)?;
    Ok((order, decision(session, role, form)))
}

fn decision(session: &Session, role: Role, form: &[(String, String)]) -> Decision {
    Decision {
        user: session.login.clone(),
        role,
        reason: field(form, "reason").trim().chars().take(500).collect(),
        token: field(form, "token").to_owned(),
        at_ms: now_ms(),
    }
}

fn action_failed(visit: &Visit, e: ActionError) -> PageError {
    let ctx = &visit.ctx;
    match e {
        ActionError::Forbidden => visit.refuse(
            StatusCode::FORBIDDEN,
            ("Недостаточно прав", "Not allowed"),
            ctx.t(
                "Ваша роль не позволяет это действие. Обратитесь к администратору консоли.",
                "Your role does not allow this. Ask the console's administrator.",
            ),
        ),
        ActionError::Refused(r) => not_done(visit, refusal_words(ctx, &r)),
        ActionError::NotFound(o) => visit.refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            ("Не выполнено", "Not done"),
            format!(
                "{} {o}",
                ctx.t(
                    "Магазин не описывал такой заказ:",
                    "The store never described this order:"
                )
            ),
        ),
        ActionError::Ledger(e) => visit.unavailable(e),
    }
}

/// A decision not carried out, with the reason in the person's words (422: the form, not the session, is wrong).
fn not_done(visit: &Visit, why: String) -> PageError {
    visit.refuse(
        StatusCode::UNPROCESSABLE_ENTITY,
        ("Не выполнено", "Not done"),
        why,
    )
}

/// The use case's refusal in the console's language; amounts as the pages write them.
fn refusal_words(ctx: &pages::Ctx, r: &Refusal) -> String {
    let money = |minor, currency| fmt::money(ctx.lang, minor, currency);
    match r {
        Refusal::FormNotValid => ctx
            .t(
                "Форма недействительна: откройте страницу заново.",
                "The form is not valid; open the page again.",
            )
            .into(),
        Refusal::NoReason => ctx
            .t(
                "Укажите причину: она сохраняется в журнале действий.",
                "Say why: the reason is kept in the audit trail.",
            )
            .into(),
        Refusal::NothingToAllocate => ctx
            .t("Распределять нечего.", "There is nothing to allocate.")
            .into(),
        Refusal::NotWaiting => ctx
            .t(
                "Эти деньги уже не ждут заказа (распределены или возвращены).",
                "This money is not waiting for an order any more (allocated or returned).",
            )
            .into(),
        Refusal::NotUnmatched => ctx
            .t(
                "Распределить можно только деньги, не нашедшие заказа; это заказ.",
                "Only money that matched no order can be allocated; this is an order.",
            )
            .into(),
        Refusal::SameOrderTwice => ctx
            .t(
                "Заказ указан дважды: дайте ему одну часть.",
                "An order is named twice; give it one part.",
            )
            .into(),
        Refusal::AlreadyReversed => ctx
            .t(
                "Этот платёж уже сторнирован.",
                "This payment was reversed already.",
            )
            .into(),
        Refusal::BadParts => ctx
            .t(
                "У каждой части должны быть заказ и сумма больше нуля.",
                "Every part needs an order and an amount above zero.",
            )
            .into(),
        Refusal::PartsDoNotAddUp {
            parts,
            receipt,
            currency,
        } => format!(
            "{} {}, {} {}.",
            ctx.t("Сумма частей", "The parts add up to"),
            money(*parts, *currency),
            ctx.t("а поступило", "the receipt is"),
            money(*receipt, *currency)
        ),
        Refusal::FormAlreadyUsed => ctx
            .t(
                "Эта форма уже использована для другого распределения этих денег; откройте страницу заново.",
                "This form was already used for another allocation of this money; open the page again.",
            )
            .into(),
        Refusal::AmountNotPositive => ctx
            .t("Сумма должна быть больше нуля.", "The amount must be above zero.")
            .into(),
        Refusal::NotManual => ctx
            .t(
                "Здесь можно отменить только платежи, внесённые в консоли вручную.",
                "Only payments recorded in the console can be reversed here.",
            )
            .into(),
        Refusal::NoSuchPayment => ctx
            .t("У заказа нет такого платежа.", "The order has no such payment.")
            .into(),
        Refusal::NoRefundDue => ctx
            .t(
                "По заказу нет возврата, ожидающего решения.",
                "The order has no refund to decide.",
            )
            .into(),
        Refusal::MoreThanDue { at_most, currency } => format!(
            "{} {}.",
            ctx.t("Вернуть можно не больше", "At most this can be asked back:"),
            money(*at_most, *currency)
        ),
        Refusal::NoSuchRefund => ctx
            .t(
                "У заказа нет такого запроса на возврат.",
                "The order has no such refund request.",
            )
            .into(),
        Refusal::NotRetryable => ctx
            .t(
                "Повторить можно только неудавшийся возврат, который ещё не повторяли.",
                "Only a failed refund that was not tried again can be retried.",
            )
            .into(),
        Refusal::RefundNamesNoPayment => ctx
            .t(
                "В неудавшемся запросе не указан платёж.",
                "The failed request names no payment.",
            )
            .into(),
        Refusal::NotABank => ctx
            .t(
                "Код банка СБП указан неверно: нужен код из списка участников СБП.",
                "The SBP bank code is not one (digits and letters, as QrMembersList gives them).",
            )
            .into(),
        Refusal::PayoutNotWaiting => ctx
            .t(
                "Эта выплата не ждёт решения (уже принята?).",
                "This payout is not waiting for a decision (accepted before?).",
            )
            .into(),
    }
}

fn done(visit: &Visit, order: &str, outcome: &use_case::Outcome, what: &str) -> Response {
    let what = if outcome.repeated && outcome.events.is_empty() {
        "repeated"
    } else {
        what
    };
    Redirect::to(&format!("{}?done={what}", visit.ctx.order_link(order))).into_response()
}

async fn allocate(
    State(console): State<Console>,
    visit: Visit,
    Path(id): Path<String>,
    Posted(form): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (session, role) = visit.posted(field(&form, "csrf"))?;
    let receipt = order_id(&visit, &id)?;
    let mut parts = Vec::new();
    for n in 1..=3 {
        let (o, a) = (
            field(&form, &format!("order_{n}")),
            field(&form, &format!("amount_{n}")),
        );
        if o.trim().is_empty() && a.trim().is_empty() {
            continue;
        }
        let order = OrderId::parse(o).map_err(|_| {
            not_done(
                &visit,
                format!(
                    "{}{o}{}: {}",
                    visit.ctx.t("«", "“"),
                    visit.ctx.t("»", "”"),
                    visit.ctx.t("не номер заказа", "not an order id")
                ),
            )
        })?;
        let amount = fmt::parse_amount(a).ok_or_else(|| {
            not_done(
                &visit,
                format!(
                    "{}{a}{}: {}",
                    visit.ctx.t("«", "“"),
                    visit.ctx.t("»", "”"),
                    visit.ctx.t("не сумма", "not an amount")
                ),
            )
        })?;
        parts.push((order, amount));
    }
    let d = decision(session, role, &form);
    let outcome = use_case::allocate(&console.deps, &d, &receipt, &parts)
        .await
        .map_err(|e| action_failed(&visit, e))?;
    let first = parts.first().map_or(receipt.as_str(), |(o, _)| o.as_str());
    Ok(done(&visit, first, &outcome, "allocated"))
}

async fn record_payment(
    State(console): State<Console>,
    visit: Visit,
    Path(id): Path<String>,
    Posted(form): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (order, d) = on_order(&visit, &id, &form)?;
    let amount = fmt::parse_amount(field(&form, "amount")).ok_or_else(|| {
        not_done(
            &visit,
            visit
                .ctx
                .t("Сумма не распознана.", "The amount is not a number.")
                .into(),
        )
    })?;
    let method = match field(&form, "method") {
        "cash" => PaymentMethod::Cash,
        _ => {
            return Err(not_done(
                &visit,
                visit
                    .ctx
                    .t("Неизвестный способ оплаты.", "Unknown payment method.")
                    .into(),
            ))
        }
    };
    let outcome = use_case::record_payment(&console.deps, &d, &order, amount, method)
        .await
        .map_err(|e| action_failed(&visit, e))?;
    Ok(done(&visit, order.as_str(), &outcome, "recorded"))
}

async fn reverse(
    State(console): State<Console>,
    visit: Visit,
    Path(id): Path<String>,
    Posted(form): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (order, d) = on_order(&visit, &id, &form)?;
    let payment = PaymentRef::try_from(field(&form, "payment").to_owned()).map_err(|_| {
        not_done(
            &visit,
            visit
                .ctx
                .t("Нет такого платежа.", "No such payment.")
                .into(),
        )
    })?;
    let outcome = use_case::reverse(&console.deps, &d, &order, &payment)
        .await
        .map_err(|e| action_failed(&visit, e))?;
    Ok(done(&visit, order.as_str(), &outcome, "reversed"))
}

async fn approve_refund(
    State(console): State<Console>,
    visit: Visit,
    Path(id): Path<String>,
    Posted(form): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (order, d) = on_order(&visit, &id, &form)?;
    let typed = field(&form, "amount").trim();
    let amount = if typed.is_empty() {
        None
    } else {
        Some(fmt::parse_amount(typed).ok_or_else(|| {
            not_done(
                &visit,
                visit
                    .ctx
                    .t("Сумма не распознана.", "The amount is not a number.")
                    .into(),
            )
        })?)
    };
    let outcome = use_case::approve_refund(&console.deps, &d, &order, amount)
        .await
        .map_err(|e| action_failed(&visit, e))?;
    Ok(done(&visit, order.as_str(), &outcome, "approved"))
}

async fn deny_refund(
    State(console): State<Console>,
    visit: Visit,
    Path(id): Path<String>,
    Posted(form): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (order, d) = on_order(&visit, &id, &form)?;
    let outcome = use_case::deny_refund(&console.deps, &d, &order)
        .await
        .map_err(|e| action_failed(&visit, e))?;
    Ok(done(&visit, order.as_str(), &outcome, "denied"))
}

async fn retry_refund(
    State(console): State<Console>,
    visit: Visit,
    Path(id): Path<String>,
    Posted(form): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (order, d) = on_order(&visit, &id, &form)?;
    let to_bank = Some(field(&form, "to_bank").to_owned());
    let outcome =
        use_case::retry_refund(&console.deps, &d, &order, field(&form, "request"), to_bank)
            .await
            .map_err(|e| action_failed(&visit, e))?;
    Ok(done(&visit, order.as_str(), &outcome, "retried"))
}

async fn accept_payout(
    State(console): State<Console>,
    visit: Visit,
    Posted(form): Posted<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (session, role) = visit.posted(field(&form, "csrf"))?;
    let d = decision(session, role, &form);
    use_case::accept_mismatch(&console.deps, &d, field(&form, "key"))
        .await
        .map_err(|e| action_failed(&visit, e))?;
    Ok(Redirect::to(&visit.ctx.link("/attention#payout_mismatch")).into_response())
}

/// The argon2id PHC string of a password, with a fresh random salt (what `CONSOLE_USERS` keeps).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_worded_in_the_page_language() {
        use shared::domain::Currency;
        let all = [
            Refusal::FormNotValid,
            Refusal::NoReason,
            Refusal::NothingToAllocate,
            Refusal::NotWaiting,
            Refusal::NotUnmatched,
            Refusal::SameOrderTwice,
            Refusal::AlreadyReversed,
            Refusal::BadParts,
            Refusal::PartsDoNotAddUp {
                parts: 140_000,
                receipt: 150_000,
                currency: Currency::RUB,
            },
            Refusal::FormAlreadyUsed,
            Refusal::AmountNotPositive,
            Refusal::NotManual,
            Refusal::NoSuchPayment,
            Refusal::NoRefundDue,
            Refusal::MoreThanDue {
                at_most: 985_500,
                currency: Currency::RUB,
            },
            Refusal::NoSuchRefund,
            Refusal::NotRetryable,
            Refusal::RefundNamesNoPayment,
            Refusal::NotABank,
            Refusal::PayoutNotWaiting,
        ];
        let cyrillic = |s: &str| {
            s.chars()
                .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap()))
        };
        let ru = Ctx::default();
        let en = Ctx {
            lang: Lang::En,
            ..Ctx::default()
        };
        for r in &all {
            let (said_ru, said_en) = (refusal_words(&ru, r), refusal_words(&en, r));
            assert!(cyrillic(&said_ru), "{r:?}: {said_ru}");
            assert!(
                !said_ru.chars().any(|c| c.is_ascii_alphabetic()),
                "{r:?}: {said_ru}"
            );
            assert!(!cyrillic(&said_en), "{r:?}: {said_en}");
        }
        assert_eq!(
            refusal_words(&ru, &all[8]),
            "Сумма частей 1\u{a0}400,00\u{a0}₽, а поступило 1\u{a0}500,00\u{a0}₽."
        );
        assert_eq!(
            refusal_words(&en, &all[14]),
            "At most this can be asked back: 9,855.00 RUB."
        );
    }

    #[test]
    fn after_a_form_the_language_switch_returns_to_the_page_it_was_on() {
        assert_eq!(page_of_form("/orders/1187/payment"), "/orders/1187");
        assert_eq!(
            page_of_form("/orders/IM-7401/refund/approve"),
            "/orders/IM-7401"
        );
        assert_eq!(page_of_form("/payouts/accept"), "/");
        assert_eq!(page_of_form("/logout"), "/");
    }

    #[test]
    fn the_language_switch_returns_only_to_a_page_of_the_console() {
        for fine in [
            "/",
            "/attention",
            "/orders/IM-7001?done=allocated",
            "/search?q=%D0%BE",
        ] {
            assert!(local_path(fine), "{fine}");
        }
        for away in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/a//b",
            "/\r\nSet-Cookie: x",
            "",
        ] {
            assert!(!local_path(away), "{away:?}");
        }
    }
}
