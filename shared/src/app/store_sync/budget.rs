//! Every REST call store-sync makes is taken from the deployment's budget first ([`RequestBudget`]), so concurrent
//! invocations share the store's limit instead of refusing each other; `QUERY_LIMIT_EXCEEDED` empties the budget
//! (a signal to slow down for everyone), and the call's own retry then waits for it to refill.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tracing::warn;

use crate::formats::bitrix::{Answer, BitrixError};
use crate::platform::clock::now_ms;
use crate::ports::budget::{Priority, RequestBudget, Take};
use crate::ports::store_api::BitrixApi;

/// The longest one call waits for the budget; then it is `Busy` (the message is retried later). Three calls of an
/// invocation, each waiting this long and taking the HTTP client's 55 s, fit in store-sync's 300 s timeout.
const MAX_WAIT: Duration = Duration::from_secs(45);
/// The longest single sleep: the budget is asked again after it (others may have drained it).
const MAX_NAP: Duration = Duration::from_secs(2);

/// The store's API behind the deployment's budget, for pushes or for the pull.
pub struct Budgeted<'a> {
    pub api: &'a dyn BitrixApi,
    pub budget: &'a dyn RequestBudget,
    pub priority: Priority,
}

#[async_trait]
impl BitrixApi for Budgeted<'_> {
    async fn call(&self, method: &str, params: &Value) -> Result<Answer, BitrixError> {
        let started = Instant::now();
        loop {
            match self.budget.take(self.priority, now_ms()).await {
                Ok(Take::Granted) => break,
                Ok(Take::Wait(ms)) => {
                    let nap = Duration::from_millis(ms).min(MAX_NAP);
                    if started.elapsed() + nap > MAX_WAIT {
                        return Err(BitrixError::Busy(
                            "the store's request budget stayed spent".into(),
                        ));
                    }
                    tokio::time::sleep(nap).await;
                }
                Err(e) => {
                    return Err(BitrixError::Busy(format!(
                        "the store's request budget is unreadable: {e}"
                    )))
                }
            }
        }
        let out = self.api.call(method, params).await;
        if let Err(BitrixError::Busy(reason)) = &out {
            if reason.contains("QUERY_LIMIT_EXCEEDED") {
                warn!(
                    method,
                    "the store says its limit is reached: everyone slows down"
                );
                if let Err(e) = self.budget.drain(now_ms()).await {
                    warn!(error.message = %e, "the budget could not be emptied");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::adapters::memory::MemoryBudget;
    use crate::ports::budget::RestLimit;

    /// A store that refuses with `QUERY_LIMIT_EXCEEDED` the calls it is told to, and counts the others.
    #[derive(Default)]
    struct Store {
        refuse: Mutex<u32>,
        calls: Mutex<u32>,
    }

    #[async_trait]
    impl BitrixApi for Store {
        async fn call(&self, method: &str, _: &Value) -> Result<Answer, BitrixError> {
            let mut refuse = self.refuse.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                return Err(BitrixError::Busy("HTTP 503 QUERY_LIMIT_EXCEEDED".into()));
            }
            *self.calls.lock().unwrap() += 1;
            crate::formats::bitrix::answer(method, 200, br#"{"result":{}}"#)
        }
    }

    #[tokio::test]
    async fn calls_wait_for_the_shared_budget_and_the_stores_refusal_empties_it() {
        let limit = RestLimit {
            per_second: 20,
            burst: 3,
            pull_reserve: 1,
        };
        let budget = MemoryBudget::new(limit);
        let store = Store::default();
        let push = Budgeted {
            api: &store,
            budget: &budget,
            priority: Priority::Push,
        };
        let started = Instant::now();
        for _ in 0..5 {
            push.call("sale.payment.list", &json!({})).await.unwrap();
        }
        // Three at once, then twenty a second: the fifth a tenth of a second after the start.
        assert_eq!(*store.calls.lock().unwrap(), 5);
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "{:?}",
            started.elapsed()
        );
        // The store refuses: the budget is emptied, the next call waits for a refill.
        *store.refuse.lock().unwrap() = 1;
        assert!(push.call("sale.payment.list", &json!({})).await.is_err());
        assert!(matches!(
            budget.take(Priority::Push, now_ms()).await.unwrap(),
            Take::Wait(_)
        ));
    }
}
