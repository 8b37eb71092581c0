//! The shop's outbound hooks (`STORE_HOOKS`): a JSON POST signed with the hook's secret, so the receiver can check
//! it came from paysync and deduplicate on the event id.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ports::store_api::{Hook, HookError, HookSender};

/// `X-Paysync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Redirects are not followed: a receiver that redirects did not take the hook (a followed 302 would turn the
/// POST into an empty GET whose 200 looks like delivery), so it is refused and sent again. The client is built on
/// the first hook, so a store without hooks pays nothing for it at start-up (a client loads the CA store).
#[derive(Default)]
pub struct HttpHooks {
    client: std::sync::OnceLock<reqwest::Client>,
}

impl HttpHooks {
    pub fn new() -> Self {
        HttpHooks::default()
    }

    fn client(&self, event_id: &str) -> Result<&reqwest::Client, HookError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let built = super::client_with(std::time::Duration::from_secs(6), false).map_err(|_| {
            HookError::Unreachable {
                event_id: event_id.to_owned(),
            }
        })?;
        Ok(self.client.get_or_init(|| built))
    }
}

#[async_trait]
impl HookSender for HttpHooks {
    async fn send(&self, hook: Hook<'_>) -> Result<(), HookError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let resp = self
            .client(hook.event_id)?
            .post(hook.url)
            .header("content-type", "application/json")
            .header("x-paysync-event-id", hook.event_id)
            .header(
                "x-paysync-signature",
                sign(hook.secret.expose(), now, hook.body),
            )
            .body(hook.body.to_owned())
            .send()
            .await
            .map_err(|_| HookError::Unreachable {
                event_id: hook.event_id.to_owned(),
            })?;
        if !resp.status().is_success() {
            return Err(HookError::Refused {
                event_id: hook.event_id.to_owned(),
                status: resp.status().as_u16(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hmac::Mac;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::platform::config::Secret;

    const BODY: &str = r#"{"id":"7001#paid","type":"order.paid","order_id":"7001","paid":500000}"#;

    async fn receiver(status: u16) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hs/reserve"))
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        server
    }

    async fn send(url: &str) -> Result<(), HookError> {
        HttpHooks::new()
            .send(Hook {
                url,
                secret: &Secret::new("hook-secret"),
                event_id: "7001#paid",
                body: BODY,
            })
            .await
    }

    #[tokio::test]
    async fn the_receiver_gets_the_body_the_event_id_and_a_signature_that_verifies() {
        let server = receiver(200).await;
        let before = OffsetDateTime::now_utc().unix_timestamp();
        send(&format!("{}/hs/reserve", server.uri())).await.unwrap();
        let after = OffsetDateTime::now_utc().unix_timestamp();
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 1);
        let r = &received[0];
        assert_eq!(r.body, BODY.as_bytes());
        let h = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(h("x-paysync-event-id"), Some("7001#paid"));
        assert_eq!(h("content-type"), Some("application/json"));
        let signature = h("x-paysync-signature").unwrap();
        let (t, v1) = signature
            .strip_prefix("t=")
            .and_then(|s| s.split_once(",v1="))
            .unwrap();
        let t: i64 = t.parse().unwrap();
        assert!(
            (before..=after).contains(&t),
            "{t} not in {before}..={after}"
        );
        assert_eq!(signature, sign("hook-secret", t, BODY));
        // What a receiver would do: HMAC-SHA256 over "<t>.<body>" with the shared secret.
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(b"hook-secret").unwrap();
        mac.update(format!("{t}.{BODY}").as_bytes());
        mac.verify_slice(&hex::decode(v1).unwrap()).unwrap();
        assert_ne!(signature, sign("another-secret", t, BODY));
        assert_ne!(signature, sign("hook-secret", t + 1, BODY));
    }

    #[tokio::test]
    async fn a_non_2xx_answer_is_refused_with_its_status() {
        for status in [301, 404, 500] {
            let server = receiver(status).await;
            assert_eq!(
                send(&format!("{}/hs/reserve", server.uri())).await,
                Err(HookError::Refused {
                    event_id: "7001#paid".into(),
                    status
                })
            );
        }
    }

    #[tokio::test]
    async fn a_receiver_that_redirects_did_not_take_the_hook() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", format!("{}/moved", server.uri())),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        assert_eq!(
            send(&format!("{}/hs/reserve", server.uri())).await,
            Err(HookError::Refused {
                event_id: "7001#paid".into(),
                status: 302
            })
        );
        let gets = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() == "GET")
            .count();
        assert_eq!(gets, 0, "the redirect was not followed");
    }

    #[tokio::test]
    async fn an_unreachable_receiver_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(
            send(&format!("http://127.0.0.1:{port}/hs/reserve")).await,
            Err(HookError::Unreachable {
                event_id: "7001#paid".into()
            })
        );
        assert_eq!(
            send("not a url").await,
            Err(HookError::Unreachable {
                event_id: "7001#paid".into()
            })
        );
    }
}
