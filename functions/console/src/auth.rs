//! Who is signed in: users from `CONSOLE_USERS` (argon2 password hashes), a session in an encrypted and
//! authenticated cookie (AES-256-GCM, `axum-extra`'s private jar; HttpOnly, Secure, SameSite=Strict, expiring), a
//! CSRF token per session that every form carries, and failed sign-ins slowed down per login.
//!
//! A sign-in always issues a fresh session (new id, new CSRF token), whatever cookie the browser brought, so a
//! session planted before sign-in is worth nothing (session fixation). The role is read from `CONSOLE_USERS` at
//! every request: a user removed or demoted there loses the rights at once, not at the cookie's expiry.

use std::collections::HashMap;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use serde::{Deserialize, Serialize};
use shared::domain::Role;
use shared::platform::config::ConsoleUser;
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "paysync_session";
/// The sign-in form's own CSRF token (double submit: the private cookie and the form field must agree).
pub const SIGN_IN_COOKIE: &str = "paysync_sign_in";
/// Sign-ins a login may fail before each further one waits.
pub const FREE_ATTEMPTS: u32 = 5;
/// The longest wait between attempts once slowed down.
pub const MAX_WAIT_MS: i64 = 15 * 60_000;

/// The session the cookie carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// Random, new at every sign-in.
    pub sid: String,
    pub login: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// Ms since the epoch; the session is refused after it (whatever the cookie's own expiry says).
    pub expires_ms: i64,
}

pub fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The users who may sign in.
pub struct Users {
    users: HashMap<String, ConsoleUser>,
    /// Verified against for an unknown login, so that the answer takes as long as for a known one.
    decoy: String,
}

impl Users {
    pub fn new(users: &[ConsoleUser]) -> Self {
        Users {
            users: users
                .iter()
                .map(|u| (u.login.clone(), u.clone()))
                .collect(),
            // The hash of a random password: verifying anything against it fails, at the same cost.
            decoy: "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0fNbXPrTlSxyhJvpzN6Gw4vU5t4BGpvPS+Mrz+qoPbA"
                .to_owned(),
        }
    }

    /// The role of `login` when `password` is its password. Runs argon2 whether or not the login exists.
    pub fn verify(&self, login: &str, password: &str) -> Option<Role> {
        let user = self.users.get(login);
        let hash = user.map_or(self.decoy.as_str(), |u| u.password_hash.expose());
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        user.filter(|_| ok).map(|u| u.role)
    }

    /// The role `login` has now (`None`: no longer a user).
    pub fn role(&self, login: &str) -> Option<Role> {
        self.users.get(login).map(|u| u.role)
    }
}

/// How long the next sign-in of a login must wait after `failures` failures, the last at `last_ms`: nothing for
/// the first [`FREE_ATTEMPTS`], then 1 s doubling up to [`MAX_WAIT_MS`].
pub fn wait_ms(failures: u32, last_ms: i64, now_ms: i64) -> i64 {
    if failures < FREE_ATTEMPTS {
        return 0;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(20);
    let delay = (1000_i64 << doublings).min(MAX_WAIT_MS);
    (last_ms + delay - now_ms).max(0)
}

/// Equal tokens, compared in constant time.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A cookie only this console can read or forge.
pub fn private_cookie(name: &'static str, value: String, max_age_minutes: i64) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(time::Duration::minutes(max_age_minutes))
        .build()
}

/// The session in the jar, if it is still valid at `now_ms` and its user still exists.
pub fn current(jar: &PrivateCookieJar, users: &Users, now_ms: i64) -> Option<(Session, Role)> {
    let cookie = jar.get(SESSION_COOKIE)?;
    let session: Session = serde_json::from_str(cookie.value()).ok()?;
    if session.expires_ms <= now_ms {
        return None;
    }
    let role = users.role(&session.login)?;
    Some((session, role))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::platform::config::Secret;

    #[test]
    fn sign_ins_wait_longer_after_each_failure_beyond_five() {
        assert_eq!(wait_ms(4, 1_000, 1_000), 0);
        assert_eq!(wait_ms(5, 1_000, 1_000), 1_000);
        assert_eq!(wait_ms(7, 1_000, 2_000), 3_000);
        assert_eq!(wait_ms(60, 0, 0), MAX_WAIT_MS);
        assert_eq!(wait_ms(6, 0, 10_000), 0);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert!(!same_token("", ""));
    }

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = crate::hash_password("correct horse").unwrap();
        let users = Users::new(&[ConsoleUser {
            login: "anna".into(),
            role: Role::Accountant,
            password_hash: Secret::new(hash),
        }]);
        assert_eq!(
            users.verify("anna", "correct horse"),
            Some(Role::Accountant)
        );
        assert_eq!(users.verify("anna", "wrong"), None);
        assert_eq!(users.verify("boris", "correct horse"), None);
    }
}
