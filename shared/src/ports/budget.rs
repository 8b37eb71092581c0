//! The store's REST budget, one for the whole deployment: every store-sync invocation takes its calls from the
//! same token bucket (kept in the ledger table), so the deployment respects Bitrix's limit, not each process.
//!
//! Bitrix's limit is itself a leaky bucket: "2 requests per second, up to 50 at once" on the standard plan, 5 and 250
//! on the enterprise one; beyond it the answer is `503 QUERY_LIMIT_EXCEEDED` (https://apidocs.bitrix24.ru/limits.html).
//! A `batch` call is one request.

use async_trait::async_trait;

use super::StoreError;

/// `BITRIX_REST_PER_SECOND` (default 2), `BITRIX_REST_BURST` (default 50), `BITRIX_PULL_RESERVE` (default 10): the
/// store's limit, and the calls the order pull leaves to payment pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestLimit {
    pub per_second: i64,
    pub burst: i64,
    pub pull_reserve: i64,
}

impl Default for RestLimit {
    fn default() -> Self {
        RestLimit {
            per_second: 2,
            burst: 50,
            pull_reserve: 10,
        }
    }
}

/// Who asks: a payment push, or the order pull, which yields (it takes a call only while `pull_reserve` more are
/// left for pushes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Push,
    Pull,
}

/// The bucket's level in thousandths of a call, at a time (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub milli: i64,
    pub at_ms: i64,
}

/// What taking a call gave: the call may go now, or in this many ms at the earliest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Granted,
    Wait(u64),
}

impl Bucket {
    /// A full bucket (nobody called for a long time).
    pub fn full(limit: RestLimit, now_ms: i64) -> Bucket {
        Bucket {
            milli: limit.burst * 1000,
            at_ms: now_ms,
        }
    }

    /// Refilled up to `now_ms` (`per_second` calls a second, at most `burst`); a clock that went back refills nothing.
    pub fn at(self, limit: RestLimit, now_ms: i64) -> Bucket {
        let elapsed = (now_ms - self.at_ms).max(0);
        Bucket {
            milli: (self.milli + elapsed.saturating_mul(limit.per_second)).min(limit.burst * 1000),
            at_ms: now_ms.max(self.at_ms),
        }
    }

    /// Take one call for `priority` at `now_ms`: the bucket after it, or how long to wait.
    pub fn take(self, limit: RestLimit, priority: Priority, now_ms: i64) -> Result<Bucket, u64> {
        let now = self.at(limit, now_ms);
        let keep = match priority {
            Priority::Push => 0,
            Priority::Pull => limit.pull_reserve.min(limit.burst - 1).max(0) * 1000,
        };
        let need = keep + 1000;
        if now.milli >= need {
            return Ok(Bucket {
                milli: now.milli - 1000,
                at_ms: now.at_ms,
            });
        }
        let missing = need - now.milli;
        let per_ms = limit.per_second.max(1);
        Err(u64::try_from((missing + per_ms - 1) / per_ms).unwrap_or(u64::MAX))
    }
}

#[async_trait]
pub trait RequestBudget: Send + Sync {
    /// Take one call from the deployment's budget at `now_ms`.
    async fn take(&self, priority: Priority, now_ms: i64) -> Result<Take, StoreError>;
    /// The store answered `QUERY_LIMIT_EXCEEDED`: it counts otherwise than we do (another client, a limit lower than
    /// configured), so the bucket is emptied and everyone waits for it to refill.
    async fn drain(&self, now_ms: i64) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RestLimit = RestLimit {
        per_second: 2,
        burst: 50,
        pull_reserve: 10,
    };

    #[test]
    fn fifty_at_once_then_two_a_second_and_the_pull_leaves_ten_to_pushes() {
        let mut b = Bucket::full(LIMIT, 0);
        for _ in 0..50 {
            b = b.take(LIMIT, Priority::Push, 0).unwrap();
        }
        assert_eq!(
            b.take(LIMIT, Priority::Push, 0),
            Err(500),
            "the next call in half a second"
        );
        let b = b.take(LIMIT, Priority::Push, 500).unwrap();
        assert_eq!(b.milli, 0);
        // The pull waits while fewer than 11 calls are left.
        let half = Bucket {
            milli: 10_500,
            at_ms: 0,
        };
        assert_eq!(half.take(LIMIT, Priority::Pull, 0), Err(250));
        assert!(half.take(LIMIT, Priority::Push, 0).is_ok());
        assert!(half.take(LIMIT, Priority::Pull, 250).is_ok());
        // Never more than the burst; a clock that went back adds nothing.
        assert_eq!(
            Bucket { milli: 0, at_ms: 0 }.at(LIMIT, 3_600_000).milli,
            50_000
        );
        assert_eq!(
            Bucket {
                milli: 7_000,
                at_ms: 1_000
            }
            .at(LIMIT, 0)
            .milli,
            7_000
        );
    }
}
