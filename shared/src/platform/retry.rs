//! One retry policy for every peer and for the ledger's optimistic-lock conflicts: exponential backoff with jitter
//! ([backon](https://docs.rs/backon)), retrying only what the caller calls transient (a 429, a 5xx, a timeout, a
//! conflict); anything else is returned at once.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first pause (before jitter).
    pub first: Duration,
    /// No pause is longer (before jitter).
    pub max: Duration,
    /// Attempts in all, the first included (at least 1).
    pub attempts: usize,
}

impl Backoff {
    fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .with_max_times(self.attempts.saturating_sub(1))
            .with_jitter()
    }

    /// The pause after failed attempt `attempt` (0-based), for loops that retry by hand (the ledger re-reads the
    /// order before each attempt); `None` when no attempt is left.
    pub fn pause(&self, attempt: usize) -> Option<Duration> {
        self.builder().build().nth(attempt)
    }
}

/// Run `op` until it succeeds, fails with an error `transient` refuses, or `policy.attempts` are spent (then the
/// last error).
pub async fn retry<T, E, F, Fut>(
    policy: Backoff,
    op: F,
    transient: impl FnMut(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    op.retry(policy.builder()).when(transient).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const FAST: Backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(2),
        attempts: 3,
    };

    #[tokio::test]
    async fn a_transient_error_is_retried_up_to_the_attempts_and_the_last_error_returned() {
        let calls = AtomicUsize::new(0);
        let out: Result<(), &str> = retry(
            FAST,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("busy")
            },
            |_| true,
        )
        .await;
        assert_eq!(out, Err("busy"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_returned_at_once_and_a_success_ends_the_retries() {
        let calls = AtomicUsize::new(0);
        let refused: Result<(), &str> = retry(
            FAST,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("refused")
            },
            |e| *e != "refused",
        )
        .await;
        assert_eq!(
            (refused, calls.swap(0, Ordering::SeqCst)),
            (Err("refused"), 1)
        );
        let ok = retry(
            FAST,
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    Err("busy")
                } else {
                    Ok(n)
                }
            },
            |_| true,
        )
        .await;
        assert_eq!(ok, Ok(1));
    }

    #[test]
    fn pauses_grow_within_the_cap_and_stop_when_the_attempts_are_spent() {
        let policy = Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(40),
            attempts: 4,
        };
        let pauses: Vec<_> = (0..4).map(|a| policy.pause(a)).collect();
        assert_eq!(pauses[3], None, "3 pauses for 4 attempts");
        for p in pauses.iter().take(3) {
            let p = p.unwrap_or_default();
            // Jitter adds up to one more delay.
            assert!(
                p >= Duration::from_millis(10) && p <= Duration::from_millis(80),
                "{p:?}"
            );
        }
    }
}
