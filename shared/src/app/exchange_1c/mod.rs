//! `exchange-1c`: the site side of 1C's CommerceML "sale" exchange (`?type=sale&mode=…`), answering like the
//! 1C-Bitrix `sale` module so that 1C's "Обмен с сайтом" works unchanged. Replies are windows-1251 text lines;
//! every failure is `failure\n<reason>`, never a stack trace.

pub mod apply;
pub mod proxy;
pub mod query;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read as _;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use subtle::ConstantTimeEq;
use tracing::{error, info, warn};

use crate::app::ledger::{Ledger, LedgerError};
use crate::domain::{FactId, FactKind, OrderId, PaymentFact, PaymentMethod, Source};
use crate::formats::commerceml::text::to_windows_1251;
use crate::formats::commerceml::write::write_query;
use crate::formats::commerceml::{read, Document, SchemaVersion};
use crate::platform::clock::now_ms;
use crate::platform::config::{Exchange1cConfig, MAX_FILE_LIMIT};
use crate::ports::store_api::ExchangeUpstream;
use crate::ports::{
    EventPublisher, ExchangeSession, ExchangeStore, Feed1c, LedgerStore, OrderViews,
    StoreDirectory, StoreError,
};

/// Cookie name announced on `checkauth` line 2 (1C echoes `<name>=<value>` on every later call).
pub const COOKIE: &str = "PAYSYNC1C";
/// Orders per `query`; the rest go with the next exchange.
pub const MAX_QUERY_ORDERS: usize = 1000;

pub const AUTH_FAILED: &str = "Ошибка авторизации. Неверное имя пользователя или пароль.";
pub const SESSID_FAILED: &str = "Ошибка проверки источника запроса. Обновите модуль обмена.";
pub const UNKNOWN_MODE: &str = "Неизвестная команда.";
pub const EMPTY_FILE: &str = "Файл для импорта пуст.";
pub const READ_FAILED: &str = "Ошибка чтения HTTP данных.";
pub const UNZIP_FAILED: &str = "Ошибка распаковки архива.";
pub const UNAVAILABLE: &str = "Сервис временно недоступен, повторите обмен позже.";
pub const TOO_LARGE: &str = "Файл в архиве слишком большой (более 64 МБ после распаковки).";

/// Largest XML file a zip entry may inflate to.
const MAX_UNZIPPED: u64 = 64 * 1024 * 1024;

pub struct ExchangeDeps {
    pub config: Exchange1cConfig,
    pub store: Arc<dyn LedgerStore>,
    pub events: Arc<dyn EventPublisher>,
    pub sessions: Arc<dyn ExchangeStore>,
    /// Unmatched bank money 1C's payment documents may allocate.
    pub views: Arc<dyn OrderViews>,
    /// What changed since 1C's last `success`.
    pub feed: Arc<dyn Feed1c>,
    /// What the store described (1C documents name orders only among these).
    pub directory: Arc<dyn StoreDirectory>,
    /// Proxy mode: the store's own exchange endpoint.
    pub upstream: Option<Arc<dyn ExchangeUpstream>>,
}

/// What applying an uploaded file needs (the exchange handler, the proxy tap and the scheduled tap retry).
pub struct Importer<'a> {
    pub store: &'a dyn LedgerStore,
    pub events: &'a dyn EventPublisher,
    pub uploads: &'a dyn ExchangeStore,
    pub views: &'a dyn OrderViews,
    pub directory: &'a dyn StoreDirectory,
    pub ttl_secs: i64,
    pub utc_offset_minutes: i32,
    pub refund_on_cancel: bool,
}

impl ExchangeDeps {
    /// One `import` step of a standalone upload, within the configured time budget.
    async fn import_once(&self, session: &str, name: &str) -> Result<Imported, ExchangeError> {
        import_upload(
            &self.importer(),
            session,
            name,
            self.config.import_budget_ms,
        )
        .await
    }

    pub fn importer(&self) -> Importer<'_> {
        Importer {
            store: self.store.as_ref(),
            events: self.events.as_ref(),
            uploads: self.sessions.as_ref(),
            views: self.views.as_ref(),
            directory: self.directory.as_ref(),
            ttl_secs: self.config.session_ttl_secs,
            utc_offset_minutes: self.config.utc_offset_minutes,
            refund_on_cancel: self.config.refund_on_cancel,
        }
    }
}

/// Why a request could not be served by the storage side (answered 503, 1C retries the exchange).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn reply_with(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Body::Binary(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A plain protocol answer, windows-1251 like everything Bitrix answers 1C.
pub fn text_reply(text: &str) -> Response<Body> {
    reply_with(
        StatusCode::OK,
        "text/html; charset=windows-1251",
        to_windows_1251(text),
    )
}

pub fn failure(reason: &str) -> Response<Body> {
    text_reply(&format!("failure\n{reason}"))
}

fn xml_reply(xml: &str) -> Response<Body> {
    reply_with(
        StatusCode::OK,
        "application/xml; charset=windows-1251",
        to_windows_1251(xml),
    )
}

fn params(req: &Request) -> BTreeMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn header_str(req: &Request, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// HTTP Basic credentials checked in constant time (both halves always compared).
fn basic_auth_ok(req: &Request, user: &str, password: &str) -> bool {
    let Some(encoded) =
        header_str(req, header::AUTHORIZATION).and_then(|h| h.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Some(colon) = raw.iter().position(|b| *b == b':') else {
        return false;
    };
    let user_ok = raw[..colon].ct_eq(user.as_bytes());
    let pass_ok = raw[colon + 1..].ct_eq(password.as_bytes());
    bool::from(user_ok & pass_ok)
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A file name as 1C sends it (`C:\v8_8789_c.xml`, `v8_2C7E_125d5b.zip`): the last path component only.
fn file_name(params: &BTreeMap<String, String>) -> Option<String> {
    let raw = params.get("filename")?;
    let name = raw.rsplit(['/', '\\']).next()?.trim();
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 200
        && !name.chars().any(char::is_control);
    ok.then(|| name.to_owned())
}

/// Entry point (infallible form for `lambda_http`-style callers). Every outcome is a protocol answer.
pub async fn handle(deps: &ExchangeDeps, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(respond(deps, req).await)
}

/// Every outcome is a protocol answer; storage trouble is `503 failure`.
pub async fn respond(deps: &ExchangeDeps, req: Request) -> Response<Body> {
    if let Some(upstream) = &deps.upstream {
        return proxy::relay(deps, upstream.as_ref(), &req).await;
    }
    match route(deps, &req).await {
        Ok(resp) => resp,
        Err(e) => {
            error!(error.message = %e, error.cause_chain = ?e, "exchange request failed");
            let mut resp = failure(UNAVAILABLE);
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            resp
        }
    }
}

async fn route(deps: &ExchangeDeps, req: &Request) -> Result<Response<Body>, ExchangeError> {
    let p = params(req);
    if p.get("type").map(String::as_str) != Some("sale") {
        return Ok(failure("Unknown command type."));
    }
    let mode = p.get("mode").map(String::as_str).unwrap_or_default();
    if mode == "checkauth" {
        return checkauth(deps, req).await;
    }
    if !matches!(
        mode,
        "init" | "query" | "success" | "file" | "import" | "info"
    ) {
        return Ok(failure(UNKNOWN_MODE));
    }
    let session = match cookie(req) {
        Some(id) => deps.sessions.session(&id).await?,
        None => None,
    };
    let Some(mut session) = session.filter(|s| s.expires_at > now_ms() / 1000) else {
        // Bitrix answers a `success` from a foreign session with `error`.
        return Ok(if mode == "success" {
            text_reply("error\n")
        } else {
            failure(AUTH_FAILED)
        });
    };
    let sessid_ok = p
        .get("sessid")
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(session.sessid.as_bytes())));
    if !sessid_ok {
        return Ok(failure(SESSID_FAILED));
    }
    match mode {
        "init" => init(deps, &mut session, &p).await,
        "query" => query(deps, &mut session).await,
        "success" => success(deps, &mut session).await,
        "file" => file(deps, &session, &p, req).await,
        "import" => import(deps, &session, &p).await,
        _ => Ok(xml_reply(INFO_XML)),
    }
}

async fn checkauth(deps: &ExchangeDeps, req: &Request) -> Result<Response<Body>, ExchangeError> {
    if !basic_auth_ok(req, &deps.config.user, deps.config.password.expose()) {
        warn!("1C checkauth with wrong credentials");
        return Ok(failure(AUTH_FAILED));
    }
    let session = ExchangeSession {
        id: new_token(),
        sessid: new_token(),
        version: None,
        sent: Vec::new(),
        expires_at: now_ms() / 1000 + deps.config.session_ttl_secs,
    };
    deps.sessions.put_session(&session).await?;
    info!("1C exchange session opened");
    let mut resp = text_reply(&format!(
        "success\n{COOKIE}\n{}\nsessid={}\n",
        session.id, session.sessid
    ));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=None",
        session.id
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

async fn init(
    deps: &ExchangeDeps,
    session: &mut ExchangeSession,
    p: &BTreeMap<String, String>,
) -> Result<Response<Body>, ExchangeError> {
    let mut lines = format!("zip=yes\nfile_limit={}\n", deps.config.file_limit);
    if let Some(requested) = p.get("version").filter(|v| !v.trim().is_empty()) {
        session.version = Some(requested.trim().to_owned());
        deps.sessions.put_session(session).await?;
        // Bitrix answers 2.09 to any 2.0x request; we also write 2.10 and 3.1 when asked for them.
        let answered = match SchemaVersion::parse(Some(requested)) {
            v @ (SchemaVersion::V210 | SchemaVersion::V31) => v.as_str(),
            SchemaVersion::V2 { .. } => "2.09".to_owned(),
        };
        lines.push_str(&format!("sessid={}\nversion={answered}", session.sessid));
    }
    Ok(text_reply(&lines))
}

async fn query(
    deps: &ExchangeDeps,
    session: &mut ExchangeSession,
) -> Result<Response<Body>, ExchangeError> {
    let now = now_ms();
    let offset = deps.config.utc_offset_minutes;
    let entries = deps.feed.feed_1c(MAX_QUERY_ORDERS).await?;
    let mut orders = Vec::with_capacity(entries.len());
    let mut sent = Vec::with_capacity(entries.len());
    for (id, version) in &entries {
        // Money without an order is no order of the site's: 1C never gets it as one (it waits for its
        // order, or a person). Acknowledged with the rest, so it leaves the feed.
        if id.is_unmatched() {
            sent.push((id.to_string(), *version));
            continue;
        }
        let Some(order) = deps.store.load_order(id).await? else {
            continue;
        };
        // An order the store has not described yet would reach 1C as a phantom (no number, no total, no
        // buyer): it stays in the feed until store-sync describes it, unless configured to go as it is.
        if order.info.is_none() && !deps.config.query_undescribed {
            continue;
        }
        orders.push(query::query_order(&order, offset, now));
        sent.push((id.to_string(), *version));
    }
    session.sent = sent;
    deps.sessions.put_session(session).await?;
    info!(orders = orders.len(), "1C query answered");
    let version = SchemaVersion::parse(session.version.as_deref());
    Ok(xml_reply(&write_query(
        &orders,
        version,
        &query::local_datetime(now, offset),
    )))
}

async fn success(
    deps: &ExchangeDeps,
    session: &mut ExchangeSession,
) -> Result<Response<Body>, ExchangeError> {
    let sent: Vec<(OrderId, u64)> = session
        .sent
        .iter()
        .filter_map(|(id, v)| OrderId::parse(id.clone()).ok().map(|id| (id, *v)))
        .collect();
    // Only what the last query sent; changes since then stay in the feed.
    deps.feed.ack_feed_1c(&sent).await?;
    session.sent.clear();
    deps.sessions.put_session(session).await?;
    Ok(text_reply("success\n"))
}

/// Where the names of the zip archives uploaded under a key are kept (one per line), so that an `import` naming a
/// file inside one finds it. `file_name` never yields a name with `/`, so no upload can collide with it.
pub const ARCHIVES_INDEX: &str = "paysync/archives";

/// Store one piece of an upload under `key`/`name`, noting a zip archive's name the first time it is seen.
pub async fn store_upload_piece(
    sessions: &dyn ExchangeStore,
    key: &str,
    name: &str,
    body: &[u8],
    expires_at: i64,
) -> Result<(), StoreError> {
    if body.starts_with(b"PK\x03\x04") {
        let line = format!("{name}\n");
        sessions
            .append_chunk(key, ARCHIVES_INDEX, line.as_bytes(), expires_at)
            .await?;
    }
    // One item per piece: a chunk larger than 1C was told (file_limit) is still stored, split.
    for piece in body.chunks(MAX_FILE_LIMIT) {
        sessions.append_chunk(key, name, piece, expires_at).await?;
    }
    Ok(())
}

async fn file(
    deps: &ExchangeDeps,
    session: &ExchangeSession,
    p: &BTreeMap<String, String>,
    req: &Request,
) -> Result<Response<Body>, ExchangeError> {
    let Some(name) = file_name(p) else {
        return Ok(failure("Не указано или недопустимо имя файла."));
    };
    let body = req.body().as_ref();
    if body.is_empty() {
        return Ok(failure(READ_FAILED));
    }
    let expires_at = now_ms() / 1000 + deps.config.session_ttl_secs;
    store_upload_piece(deps.sessions.as_ref(), &session.id, &name, body, expires_at).await?;
    // The old protocol (no `version` at `init`) imports during `file` and never calls `import`: a piece shorter
    // than the `file_limit` 1C was told is the file's last, so the whole file is applied now.
    if session.version.is_none() && body.len() < deps.config.file_limit {
        let mut rounds = 0;
        loop {
            rounds += 1;
            match deps.import_once(&session.id, &name).await? {
                Imported::Progress if rounds < 50 => continue,
                Imported::Progress => return Ok(finish("progress", &[])),
                Imported::Empty => return Ok(failure(EMPTY_FILE)),
                Imported::Refused(reason) => return Ok(failure(&reason)),
                Imported::Done(errors) => {
                    info!(file = %name, "old-protocol upload imported during file");
                    return Ok(finish("success", &errors));
                }
            }
        }
    }
    Ok(text_reply("success\n"))
}

/// The bytes to import for `name`: the upload of that name, else the entry of that name inside a zip archive
/// uploaded under the same key (1C with `zip=yes` uploads `v8_3F1A_4.zip`, then imports
/// `orders-….xml` by the name inside it).
async fn upload_for_import(
    uploads: &dyn ExchangeStore,
    key: &str,
    name: &str,
) -> Result<Option<Vec<u8>>, ExchangeError> {
    if let Some(bytes) = uploads.uploaded(key, name).await?.filter(|b| !b.is_empty()) {
        return Ok(Some(bytes));
    }
    let Some(index) = uploads.uploaded(key, ARCHIVES_INDEX).await? else {
        return Ok(None);
    };
    let archives: std::collections::BTreeSet<String> = String::from_utf8_lossy(&index)
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    for archive in archives {
        let Some(bytes) = uploads.uploaded(key, &archive).await? else {
            continue;
        };
        let Ok(files) = xml_files(bytes) else {
            continue;
        };
        let wanted = name.to_lowercase();
        if let Some((_, data)) = files.into_iter().find(|(entry, _)| {
            let entry = entry.to_lowercase();
            entry == wanted || entry.rsplit(['/', '\\']).next() == Some(wanted.as_str())
        }) {
            info!(file = %name, archive = %archive, "import names a file inside an uploaded archive");
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// The XML files of an upload: the upload itself, or every `.xml` entry of a zip, by name.
fn xml_files(bytes: Vec<u8>) -> Result<Vec<(String, Vec<u8>)>, &'static str> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return Ok(vec![("(file)".to_owned(), bytes)]);
    }
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|_| UNZIP_FAILED)?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|_| UNZIP_FAILED)?;
        let name = entry.name().map_err(|_| UNZIP_FAILED)?.into_owned();
        if !entry.is_file() || !name.to_lowercase().ends_with(".xml") {
            continue;
        }
        let mut data = Vec::new();
        // Bound what one entry may inflate to (zip bombs) well inside the function's memory.
        (&mut entry)
            .take(MAX_UNZIPPED + 1)
            .read_to_end(&mut data)
            .map_err(|_| UNZIP_FAILED)?;
        if data.len() as u64 > MAX_UNZIPPED {
            return Err(TOO_LARGE);
        }
        out.push((name, data));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if out.is_empty() {
        return Err(EMPTY_FILE);
    }
    Ok(out)
}

fn finish(first: &str, errors: &[String]) -> Response<Body> {
    let mut text = first.to_owned();
    for e in errors {
        text.push('\n');
        text.push_str(e);
    }
    text.push('\n');
    text_reply(&text)
}

/// How far an upload's import got.
pub enum Imported {
    /// Nothing was uploaded under that name (or it is empty).
    Empty,
    /// The file cannot be read; nothing was applied.
    Refused(String),
    /// The time budget ran out; the next call continues.
    Progress,
    /// Every document applied; the reasons some were not.
    Done(Vec<String>),
}

/// Apply an uploaded file (the chunks stored under `key`/`name`) to the ledger, resuming where an earlier call
/// stopped. Everything is parsed before anything is applied, and facts are idempotent, so repeating it is safe.
pub async fn import_upload(
    ctx: &Importer<'_>,
    key: &str,
    name: &str,
    budget_ms: u64,
) -> Result<Imported, ExchangeError> {
    let Some(bytes) = upload_for_import(ctx.uploads, key, name).await? else {
        return Ok(Imported::Empty);
    };
    let mut progress = ctx.uploads.import_progress(key, name).await?;
    if progress.done {
        return Ok(Imported::Done(progress.errors));
    }
    let files = match xml_files(bytes) {
        Ok(files) => files,
        Err(reason) => return Ok(Imported::Refused(reason.to_owned())),
    };
    let mut work: Vec<(Document, Option<Document>)> = Vec::new();
    for (file, data) in files {
        let exchange = match read(&data) {
            Ok(x) => x,
            Err(e) => {
                return Ok(Imported::Refused(format!(
                    "Ошибка разбора файла {file}: {e}"
                )))
            }
        };
        for doc in exchange.documents {
            let subordinates = doc.subordinates.clone();
            let parent = doc.clone();
            work.push((doc, None));
            work.extend(subordinates.into_iter().map(|s| (s, Some(parent.clone()))));
        }
    }
    let started = Instant::now();
    let expires_at = now_ms() / 1000 + ctx.ttl_secs;
    let first = progress.next;
    for (i, (doc, parent)) in work.iter().enumerate().skip(first) {
        if i > first && started.elapsed().as_millis() >= u128::from(budget_ms) {
            progress.next = i;
            ctx.uploads
                .set_import_progress(key, name, &progress, expires_at)
                .await?;
            info!(
                applied = i,
                total = work.len(),
                "1C import continues on the next call"
            );
            return Ok(Imported::Progress);
        }
        for problem in &doc.problems {
            progress.errors.push(apply::doc_error(doc, problem));
        }
        if let Some(line) = apply_document(ctx, doc, parent.as_ref()).await? {
            progress.errors.push(line);
        }
        progress.next = i + 1;
    }
    progress.done = true;
    ctx.uploads
        .set_import_progress(key, name, &progress, expires_at)
        .await?;
    info!(
        documents = work.len(),
        errors = progress.errors.len(),
        "1C import finished"
    );
    Ok(Imported::Done(progress.errors))
}

async fn import(
    deps: &ExchangeDeps,
    session: &ExchangeSession,
    p: &BTreeMap<String, String>,
) -> Result<Response<Body>, ExchangeError> {
    let Some(name) = file_name(p) else {
        return Ok(failure(EMPTY_FILE));
    };
    Ok(match deps.import_once(&session.id, &name).await? {
        Imported::Empty => failure(EMPTY_FILE),
        Imported::Refused(reason) => failure(&reason),
        Imported::Progress => finish("progress", &[]),
        Imported::Done(errors) => finish("success", &errors),
    })
}

/// Apply one 1C document; `Some(line)` is a reason for 1C why it was not (fully) applied.
async fn apply_document(
    ctx: &Importer<'_>,
    doc: &Document,
    parent: Option<&Document>,
) -> Result<Option<String>, ExchangeError> {
    let lookups = apply::order_lookups(doc, parent);
    if lookups.is_empty() {
        return Ok(Some(apply::doc_error(
            doc,
            "Заказ основание для оплаты на сайте не найден",
        )));
    }
    let mut found = None;
    for lookup in &lookups {
        if let Some(order) = crate::app::resolve::described_order(ctx.store, ctx.directory, lookup)
            .await
            .map_err(LedgerError::from)?
        {
            found = Some(order);
            break;
        }
    }
    // Never an invented order: a document that would change the money of an order the store never described is
    // reported, as Bitrix reports a document it cannot place; one that changes nothing is left alone.
    let Some(order_id) = found else {
        let named = doc
            .base
            .as_deref()
            .or(doc.number.as_deref())
            .or(doc.id.as_deref())
            .unwrap_or("?");
        let would = OrderId::parse(named).ok().map(|id| {
            apply::facts_for(
                doc,
                &id,
                None,
                ctx.utc_offset_minutes,
                now_ms(),
                ctx.refund_on_cancel,
            )
        });
        return Ok(match would {
            Some(Ok(facts)) if facts.is_empty() => None,
            Some(Err(line)) => Some(line),
            _ => Some(apply::doc_error(
                doc,
                &format!("Заказ {named} на сайте не найден"),
            )),
        });
    };
    let current = ctx.store.load_order(&order_id).await?;
    let facts = match apply::facts_for(
        doc,
        &order_id,
        current.as_ref(),
        ctx.utc_offset_minutes,
        now_ms(),
        ctx.refund_on_cancel,
    ) {
        Ok(f) => f,
        Err(line) => return Ok(Some(line)),
    };
    let ledger = Ledger::new(ctx.store, ctx.events);
    for fact in &facts {
        match allocation(ctx, fact, current.as_ref()).await? {
            Some((void, linked)) => {
                // Void first: should the second step fail, 1C's retry counts the money once, on the order.
                ledger.record(&void).await?;
                ledger.record(&linked).await?;
            }
            None => {
                ledger.record(fact).await?;
            }
        }
    }
    Ok(None)
}

/// A 1C bank-transfer payment that is new money for its order may be the accountant allocating a receipt that
/// statement-pull kept unmatched: then that receipt is voided on its `unmatched:` order and the payment links it,
/// so the money is counted once, on the order 1C says it pays.
async fn allocation(
    ctx: &Importer<'_>,
    fact: &PaymentFact,
    order: Option<&crate::domain::Order>,
) -> Result<Option<(PaymentFact, PaymentFact)>, ExchangeError> {
    let FactKind::Payment { amount } = fact.kind else {
        return Ok(None);
    };
    if fact.method != PaymentMethod::BankTransfer
        || fact.links.is_some()
        || fact.payment.source() != Some(Source::OneC)
        || order.and_then(|o| o.lines.get(&fact.payment)).is_some()
    {
        return Ok(None);
    }
    let buyer_inn = order
        .and_then(|o| o.info.as_ref())
        .and_then(|i| i.details.buyer.as_ref())
        .and_then(|b| b.inn.as_deref());
    let receipts = ctx.views.unmatched_receipts(1000).await?;
    let Some(receipt) = crate::domain::matching::allocated(amount, buyer_inn, &receipts) else {
        return Ok(None);
    };
    let external = fact
        .id
        .as_str()
        .strip_prefix("1c#")
        .unwrap_or(fact.id.as_str());
    let void = PaymentFact::new(
        FactId::new(Source::OneC, &format!("{external}#allocates")).map_err(LedgerError::from)?,
        receipt.order.clone(),
        receipt.payment.clone(),
        PaymentMethod::BankTransfer,
        fact.currency,
        FactKind::Void {
            reason: format!("allocated in 1C to order {}", fact.order_id),
        },
        fact.at_ms,
    )
    .map_err(LedgerError::from)?;
    tracing::info!(receipt = %receipt.payment, order = %fact.order_id, "1C allocated an unmatched bank receipt");
    Ok(Some((void, fact.clone().linking(receipt.payment.as_str()))))
}

/// `mode=info`: statuses and payment systems for 1C's mapping tables. `Cтатусы` starts with a Latin `C`, exactly
/// as 1C-Bitrix writes it.
pub const INFO_XML: &str = "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n\
<Справочник>\
<Cтатусы>\
<Элемент><Ид>N</Ид><Название>Принят, ожидается оплата</Название></Элемент>\
<Элемент><Ид>P</Ид><Название>Оплачен, формируется к отправке</Название></Элемент>\
<Элемент><Ид>F</Ид><Название>Выполнен</Название></Элемент>\
</Cтатусы>\
<ПлатежныеСистемы>\
<Элемент><Ид>tbank</Ид><Название>T-Bank (эквайринг)</Название><ТипОплаты>Эквайринговая операция</ТипОплаты></Элемент>\
<Элемент><Ид>sber</Ид><Название>Сбербанк (эквайринг)</Название><ТипОплаты>Эквайринговая операция</ТипОплаты></Элемент>\
<Элемент><Ид>yookassa</Ид><Название>ЮKassa</Название><ТипОплаты>Эквайринговая операция</ТипОплаты></Элемент>\
<Элемент><Ид>bank</Ид><Название>Банковский перевод</Название><ТипОплаты>Выплата безналичных денег</ТипОплаты></Элемент>\
<Элемент><Ид>cash</Ид><Название>Наличные</Название><ТипОплаты>Выплата наличных денег</ТипОплаты></Элемент>\
</ПлатежныеСистемы>\
<СлужбыДоставки></СлужбыДоставки>\
</Справочник>";

#[cfg(test)]
mod tests;
