//! `refund-chargeback`: executes the refund requests the ledger admitted, through the acquirer that took the money.
//!
//! Triggered by the refunds queue (SQS FIFO, one group per order): a message only says "this order has refund
//! work"; what to do is read from the ledger. For each admitted request on a card payment:
//!
//! 1. `sent` is recorded first, with the fact id the acquirer's own notification of this refund will have, so a
//!    notification that overtakes the answer completes the request instead of adding a refund;
//! 2. the acquirer is called with an idempotency key derived from the request id (a retry after a timeout returns the
//!    first refund, never a second one);
//! 3. its answer becomes `succeeded` plus the refund fact (the same fact its notification produces), `pending`, or
//!    `failed` with the acquirer's reason. Timeouts, 5xx and 429 fail the message: SQS redelivers it with backoff
//!    and, after `maxReceiveCount`, moves it to the DLQ.
//!
//! Acquirer-initiated refunds and chargebacks need no work here: acquiring-callback records them, the ledger updates
//! the order and 1C's feed (a return document), and the store learns it from the events queue.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Serialize;
use tracing::{info, warn};

use crate::app::ledger::{Ledger, LedgerError};
use crate::domain::order::is_acquirer;
use crate::domain::{DomainError, FactKind, OrderId, PaymentFact, RefundStatus};
use crate::platform::clock::now_ms;
use crate::ports::acquirers::{Gateways, RefundCall, RefundError, RefundOutcome};
use crate::ports::{EventPublisher, LedgerStore};

pub struct RefundDeps {
    pub store: Arc<dyn LedgerStore>,
    pub events: Arc<dyn EventPublisher>,
    pub gateways: Gateways,
    /// `RECEIPTS`, `RECEIPT_TAXATION`.
    pub receipts: crate::platform::config::Receipts,
}

/// What one order's run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRun {
    pub succeeded: usize,
    pub pending: usize,
    pub failed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundRunError {
    #[error(transparent)]
    Store(#[from] crate::ports::StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The acquirer could not be reached or asked us to come back: the message is retried.
    #[error("acquirer unavailable: {0}")]
    Transient(String),
}

fn progress(
    order: &OrderId,
    request: &str,
    status: RefundStatus,
    provider_id: Option<String>,
    expect: Option<String>,
    detail: Option<String>,
) -> Result<PaymentFact, DomainError> {
    crate::domain::refund::progress_fact(
        order,
        request,
        status,
        provider_id,
        expect,
        detail,
        now_ms(),
    )
}

/// The request failed for good, with the reason shown to 1C and the store.
async fn fail(
    ledger: &Ledger<'_>,
    order: &OrderId,
    request: &str,
    reason: String,
) -> Result<(), RefundRunError> {
    let fact = progress(
        order,
        request,
        RefundStatus::Failed,
        None,
        None,
        Some(reason),
    )?;
    ledger.record(&fact).await?;
    Ok(())
}

/// Execute every admitted card refund of one order (in request order).
pub async fn execute_order(
    deps: &RefundDeps,
    order_id: &OrderId,
) -> Result<OrderRun, RefundRunError> {
    let ledger = Ledger::new(deps.store.as_ref(), deps.events.as_ref());
    let mut run = OrderRun::default();
    let Some(order) = deps.store.load_order(order_id).await? else {
        return Ok(run);
    };
    let work: Vec<String> = order
        .refund_requests
        .iter()
        .filter(|(_, r)| {
            matches!(r.status, RefundStatus::Requested | RefundStatus::Sent)
                && r.line.as_ref().is_some_and(is_acquirer)
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in work {
        // Re-read: the previous request of this run moved the refunded total.
        let Some(order) = deps.store.load_order(order_id).await? else {
            break;
        };
        let Some(request) = order.refund_requests.get(&id).cloned() else {
            continue;
        };
        let Some(line_ref) = request.line.clone() else {
            continue;
        };
        if !matches!(request.status, RefundStatus::Requested | RefundStatus::Sent) {
            continue;
        }
        let line = order.lines.get(&line_ref);
        let captured = line.map_or(0, |l| l.counted());
        let refunded_before = line.map_or(0, |l| l.refunded());
        // The acquirer issues the shop's receipts: a partial refund names the returned goods (a full one reverses
        // the payment's own receipt), and one that cannot is refused here, before any call.
        let receipted = line_ref
            .source()
            .is_some_and(|s| deps.receipts.issued_by(s));
        let partial = refunded_before > 0 || request.amount < captured;
        let receipt = if receipted && partial {
            let details = order
                .info
                .as_ref()
                .map(|i| i.details.clone())
                .unwrap_or_default();
            match crate::domain::receipt::refund_receipt(&details, request.amount) {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(request = %id, reason = %e, "no valid receipt for the refund; refused before any call");
                    fail(&ledger, order_id, &id, e.to_string()).await?;
                    run.failed += 1;
                    continue;
                }
            }
        } else {
            None
        };
        let call = RefundCall {
            order: order_id,
            request_id: &id,
            payment: &line_ref,
            amount: request.amount,
            currency: order.currency(),
            refunded_before,
            captured,
            reason: &request.reason,
            retry: request.status == RefundStatus::Sent,
            pay_method: line.and_then(|l| l.pay_method.as_ref()),
            receipt: receipt.as_ref(),
            taxation: deps.receipts.taxation.as_deref(),
            to_bank: request.to_bank.as_deref(),
        };
        let gateway = match deps.gateways.for_payment(&line_ref) {
            Ok(g) => g,
            Err(e) => {
                fail(&ledger, order_id, &id, e.to_string()).await?;
                run.failed += 1;
                continue;
            }
        };
        if request.status == RefundStatus::Requested {
            let expect = gateway.expected_fact(&call);
            let mut sent = progress(order_id, &id, RefundStatus::Sent, None, expect, None)?;
            if let FactKind::RefundProgress(p) = &mut sent.kind {
                p.with_receipt = receipted;
            }
            ledger.record(&sent).await?;
        }
        match gateway.refund(&call).await {
            Ok(RefundOutcome::Done { fact, provider_id }) => {
                // The request is marked first: a crash before the money fact leaves nothing to re-send (the
                // acquirer's notification brings the same fact).
                ledger
                    .record(&progress(
                        order_id,
                        &id,
                        RefundStatus::Succeeded,
                        provider_id,
                        Some(fact.id.to_string()),
                        None,
                    )?)
                    .await?;
                ledger.record(&fact).await?;
                info!(request = %id, amount = request.amount, "refund executed");
                run.succeeded += 1;
            }
            Ok(RefundOutcome::Pending {
                provider_id,
                expect,
            }) => {
                ledger
                    .record(&progress(
                        order_id,
                        &id,
                        RefundStatus::Pending,
                        provider_id,
                        expect,
                        None,
                    )?)
                    .await?;
                run.pending += 1;
            }
            Err(RefundError::Permanent(reason)) => {
                warn!(request = %id, reason = %reason, "refund refused by the acquirer");
                fail(&ledger, order_id, &id, reason).await?;
                run.failed += 1;
            }
            Err(RefundError::Transient(reason)) => return Err(RefundRunError::Transient(reason)),
        }
    }
    Ok(run)
}

/// One SQS batch (FIFO per order, partial failures; see [`crate::platform::sqs_batch`]).
pub async fn handle(deps: &RefundDeps, event: SqsEvent) -> SqsBatchResponse {
    crate::platform::sqs_batch::for_each_order(event, |order| async move {
        let run = execute_order(deps, &order).await?;
        info!(order_id = %order, succeeded = run.succeeded, pending = run.pending, failed = run.failed, "refund work done");
        Ok::<(), RefundRunError>(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use crate::domain::{Currency, FactId, FactKind, PaymentMethod, Source};
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
    use crate::domain::{OrderInfo, OrderState, PaymentRef, RefundAmount};
    use crate::ports::acquirers::{idempotency_key, RefundGateway};

    /// A fake acquirer: answers from a script, remembers every call's key and whether it was a retry.
    #[derive(Default)]
    struct Script {
        answers: Mutex<Vec<Result<RefundOutcome, RefundError>>>,
        calls: Mutex<Vec<(String, bool)>>,
    }

    #[async_trait]
    impl RefundGateway for Script {
        async fn refund(&self, call: &RefundCall<'_>) -> Result<RefundOutcome, RefundError> {
            self.calls
                .lock()
                .unwrap()
                .push((idempotency_key(call.request_id), call.retry));
            self.answers.lock().unwrap().remove(0)
        }

        fn expected_fact(&self, call: &RefundCall<'_>) -> Option<String> {
            Some(format!(
                "tbank#p1#PARTIAL_REFUNDED#{}",
                call.captured - call.refunded_before - call.amount
            ))
        }
    }

    fn fact(source: Source, ext: &str, payment: &str, kind: FactKind) -> PaymentFact {
        PaymentFact::new(
            FactId::new(source, ext).unwrap(),
            OrderId::parse("5001").unwrap(),
            PaymentRef::new(Source::Tbank, payment).unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            kind,
            1,
        )
        .unwrap()
    }

    fn tbank_refund(remaining: i64) -> PaymentFact {
        fact(
            Source::Tbank,
            &format!("p1#PARTIAL_REFUNDED#{remaining}"),
            "p1",
            FactKind::Refund {
                amount: RefundAmount::Remaining(remaining),
            },
        )
    }

    struct Env {
        store: Arc<MemoryLedgerStore>,
        script: Arc<Script>,
        deps: RefundDeps,
    }

    async fn env(answers: Vec<Result<RefundOutcome, RefundError>>) -> Env {
        let store = Arc::new(MemoryLedgerStore::default());
        let script = Arc::new(Script {
            answers: Mutex::new(answers),
            calls: Mutex::default(),
        });
        let deps = RefundDeps {
            store: store.clone(),
            events: Arc::new(MemoryPublisher::default()),
            gateways: Gateways::default().with(Source::Tbank, script.clone()),
            receipts: Default::default(),
        };
        let e = Env {
            store,
            script,
            deps,
        };
        let ledger = e.ledger();
        ledger
            .register_order(
                &OrderId::parse("5001").unwrap(),
                OrderInfo::new(Some("5001".into()), 100_000, Currency::RUB),
            )
            .await
            .unwrap();
        ledger
            .record(&fact(
                Source::Tbank,
                "p1#CONFIRMED",
                "p1",
                FactKind::Payment { amount: 100_000 },
            ))
            .await
            .unwrap();
        e
    }

    impl Env {
        fn ledger(&self) -> Ledger<'_> {
            Ledger::new(self.deps.store.as_ref(), self.deps.events.as_ref())
        }

        async fn request(&self, ext: &str, amount: i64) {
            let f = fact(
                Source::OneC,
                ext,
                "p1",
                FactKind::RefundRequested {
                    amount,
                    reason: "Брак".into(),
                    method: PaymentMethod::Card,
                    retries: None,
                    to_bank: None,
                },
            );
            self.ledger().record(&f).await.unwrap();
        }

        async fn run(&self) -> Result<OrderRun, RefundRunError> {
            execute_order(&self.deps, &OrderId::parse("5001").unwrap()).await
        }

        fn status(&self, request: &str) -> RefundStatus {
            self.store.order("5001").unwrap().refund_requests[request].status
        }

        fn calls(&self) -> Vec<(String, bool)> {
            self.script.calls.lock().unwrap().clone()
        }
    }

    fn done(remaining: i64) -> Result<RefundOutcome, RefundError> {
        Ok(RefundOutcome::Done {
            fact: Box::new(tbank_refund(remaining)),
            provider_id: None,
        })
    }

    #[tokio::test]
    async fn a_refund_runs_once_and_the_acquirers_notification_adds_nothing() {
        let e = env(vec![done(60_000)]).await;
        e.request("r1", 40_000).await;
        assert_eq!(e.run().await.unwrap().succeeded, 1);
        assert_eq!(e.status("1c#r1"), RefundStatus::Succeeded);
        let order = e.store.order("5001").unwrap();
        assert_eq!(
            (order.totals().refunded, order.state()),
            (40_000, OrderState::PartiallyPaid)
        );
        // The same refund as T-Bank notifies it.
        assert!(matches!(
            e.ledger().record(&tbank_refund(60_000)).await.unwrap(),
            crate::app::ledger::Recorded::Duplicate
        ));
        // Nothing left to do.
        assert_eq!(e.run().await.unwrap(), OrderRun::default());
        assert_eq!(e.calls().len(), 1);
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_with_the_same_key_and_refunds_once() {
        let e = env(vec![
            Err(RefundError::Transient("T-Bank: HTTP 503".into())),
            done(60_000),
        ])
        .await;
        e.request("r1", 40_000).await;
        assert!(matches!(e.run().await, Err(RefundRunError::Transient(_))));
        assert_eq!(e.status("1c#r1"), RefundStatus::Sent);
        assert_eq!(e.run().await.unwrap().succeeded, 1);
        let calls = e.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].0, calls[1].0, "the same idempotency key");
        assert_eq!((calls[0].1, calls[1].1), (false, true));
        assert_eq!(e.store.order("5001").unwrap().totals().refunded, 40_000);
    }

    #[tokio::test]
    async fn a_refusal_fails_the_request_with_the_acquirers_reason() {
        let e = env(vec![Err(RefundError::Permanent(
            "T-Bank: Неверный статус (ErrorCode 9)".into(),
        ))])
        .await;
        e.request("r1", 40_000).await;
        assert_eq!(e.run().await.unwrap().failed, 1);
        let order = e.store.order("5001").unwrap();
        let r = &order.refund_requests["1c#r1"];
        assert_eq!(r.status, RefundStatus::Failed);
        assert!(r.detail.as_deref().unwrap().contains("ErrorCode 9"));
        assert!(order.flags().contains(&"refund_failed"));
        assert_eq!((order.totals().refunded, order.refund_claimed()), (0, 0));
    }

    #[tokio::test]
    async fn the_notification_of_our_own_refund_completes_it_before_the_answer() {
        let e = env(vec![Err(RefundError::Transient("timeout".into()))]).await;
        e.request("r1", 40_000).await;
        assert!(e.run().await.is_err());
        // T-Bank executed it and notifies before we hear back.
        e.ledger().record(&tbank_refund(60_000)).await.unwrap();
        assert_eq!(e.status("1c#r1"), RefundStatus::Succeeded);
        assert_eq!(
            e.run().await.unwrap(),
            OrderRun::default(),
            "not sent again"
        );
        assert_eq!(e.store.order("5001").unwrap().totals().refunded, 40_000);
    }

    #[tokio::test]
    async fn partial_refunds_accumulate_and_what_exceeds_the_rest_is_refused() {
        let e = env(vec![done(70_000), done(20_000)]).await;
        e.request("r1", 30_000).await;
        e.request("r2", 50_000).await;
        e.request("r3", 30_000).await;
        assert_eq!(e.status("1c#r3"), RefundStatus::Refused);
        let run = e.run().await.unwrap();
        assert_eq!(run.succeeded, 2);
        let order = e.store.order("5001").unwrap();
        assert_eq!(
            (order.totals().refunded, order.totals().net()),
            (80_000, 20_000)
        );
    }

    fn sqs(messages: &[(&str, &str, &str)]) -> SqsEvent {
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|(id, group, body)| {
                serde_json::json!({"messageId": id, "body": body, "attributes": {"MessageGroupId": group}})
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    #[tokio::test]
    async fn a_failed_message_holds_back_the_rest_of_its_group_only() {
        let e = env(vec![Err(RefundError::Transient("HTTP 503".into()))]).await;
        e.request("r1", 40_000).await;
        let order = e.store.order("5001").unwrap();
        let body = serde_json::to_string(&crate::domain::OrderEvent::snapshot(
            "x".into(),
            &order,
            None,
            1,
        ))
        .unwrap();
        let other = body.replace("\"order_id\":\"5001\"", "\"order_id\":\"5002\"");
        let response = handle(
            &e.deps,
            sqs(&[
                ("m1", "5001", &body),
                ("m2", "5001", &body),
                ("m3", "5002", &other),
                ("m4", "bad", "not json"),
            ]),
        )
        .await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["m1", "m2", "m4"]);
        assert_eq!(e.calls().len(), 1, "m2 was not processed");
    }
}
