//! The console on a local port, built by the same wiring as its Lambda, and a small cookie-keeping HTTP client
//! (no redirects followed, so each answer can be checked), for the console's end-to-end and browser tests.

use std::collections::BTreeMap;

use console::{Console, LOCAL_PREFIX};
use shared::domain::Role;
use shared::platform::config::{ConsoleConfig, ConsoleUser, Secret};
use shared::wiring;

use crate::TestEnv;

pub const SESSION_KEY: &str = "a-console-session-key-for-the-tests-only-0123456789";
/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery";

/// A console serving `env`'s ledger at `url` (`http://localhost:<port>`), mounted under `cargo lambda watch`'s
/// prefix like `make run` serves it.
pub struct ConsoleServer {
    pub url: String,
    pub config: ConsoleConfig,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `anna` (accountant), `vera` (viewer), `max` (manager), all with [`PASSWORD`].
pub fn users() -> Vec<ConsoleUser> {
    let hash = console::hash_password(PASSWORD).expect("hash");
    [
        ("anna", Role::Accountant),
        ("vera", Role::Viewer),
        ("max", Role::Manager),
    ]
    .into_iter()
    .map(|(login, role)| ConsoleUser {
        login: login.into(),
        role,
        password_hash: Secret::new(hash.clone()),
    })
    .collect()
}

impl ConsoleServer {
    pub async fn start(env: &TestEnv) -> ConsoleServer {
        let config = ConsoleConfig {
            ledger: env.ledger_config(),
            users: users(),
            session_key: Secret::new(SESSION_KEY),
            session_minutes: 30,
            base_path: LOCAL_PREFIX.to_owned(),
        };
        let deps = wiring::console(&config, &env.clients);
        let service = console::service::<axum::body::Body>(Console::new(deps, &config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let make = axum::ServiceExt::<axum::extract::Request>::into_make_service(service);
            axum::serve(listener, make).await.expect("serve");
        });
        ConsoleServer {
            url: format!("http://localhost:{port}{LOCAL_PREFIX}"),
            config,
            task,
        }
    }
}

/// An answer: status, the `Location` of a redirect, the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// A browser without a browser: keeps the cookies the console sets (whatever their `Secure` flag: the test talks
/// plain HTTP on loopback) and sends them back.
pub struct WebClient {
    base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl WebClient {
    pub fn new(server: &ConsoleServer) -> WebClient {
        WebClient {
            base: server.url.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("console answers");
        for set in resp.headers().get_all("set-cookie") {
            let set = set.to_str().expect("ascii cookie");
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status: resp.status().as_u16(),
            location: resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned),
            body: resp.text().await.expect("body"),
        }
    }

    /// GET a path of the console (`/attention`) or a full URL.
    pub async fn get(&mut self, path: &str) -> Answer {
        let url = self.url(path);
        let req = self.http.get(url);
        self.send(req).await
    }

    /// GET a download as bytes (200 expected).
    pub async fn get_bytes(&mut self, path: &str) -> Vec<u8> {
        let resp = self
            .http
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("console answers");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.bytes().await.expect("body").to_vec()
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let url = self.url(path);
        let req = self.http.post(url).form(form);
        self.send(req).await
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else if let Some(rest) = path.strip_prefix(LOCAL_PREFIX) {
            format!("{}{rest}", self.base)
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Open the sign-in form and sign in; the answer to the form.
    pub async fn sign_in(&mut self, login: &str, password: &str) -> Answer {
        let form = self.get("/login").await;
        let csrf = hidden(&form.body, "csrf").expect("the sign-in form has a CSRF token");
        self.post(
            "/login",
            &[("login", login), ("password", password), ("csrf", &csrf)],
        )
        .await
    }
}

/// The value of the first hidden field `name` in a page.
pub fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker)? + marker.len();
    let end = page[at..].find('"')?;
    Some(page[at..at + end].to_owned())
}

/// The first link in a page whose target starts with `prefix`.
pub fn link(page: &str, prefix: &str) -> Option<String> {
    let marker = format!("href=\"{prefix}");
    let at = page.find(&marker)? + "href=\"".len();
    let end = page[at..].find('"')?;
    Some(page[at..at + end].to_owned())
}
