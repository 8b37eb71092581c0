//! Acquirer money finds its store order: a reference is resolved against what the store said (the ledger's store
//! directory, or the store itself), never guessed; money whose reference does not resolve yet waits on its
//! `unmatched:<payment ref>` order and moves to the order exactly once when it does.
//!
//! Two callers:
//! - `acquiring-callback` ([`at_notification`]): the money the acquirer already booked follows its order
//!   (`PAYMENT#` index); otherwise the acquirer's payment id against `psInvoiceId`, then the **first** reference
//!   rule that applies, from the directory only. A miss there proves nothing (store-sync may not have pulled the
//!   order yet), so later rules wait for the store's own answer.
//! - `store-sync` ([`settle`]): every waiting reference, each rule in turn, the directory first and then the
//!   store's REST answer ([`StoreLookup`]), which is definite, so a later rule may resolve after an earlier one
//!   was answered "no such thing".

use async_trait::async_trait;
use serde::Serialize;
use tracing::{info, warn};

use crate::app::ledger::{Ledger, LedgerError, Recorded};
use crate::domain::{
    is_acquirer, moved_to, moved_to_link, DirectoryEntry, FactId, FactKind, Lookup, OrderId,
    PaymentFact, PaymentRef, Source, StoreReference,
};
use crate::ports::{BoxError, LedgerStore, StoreDirectory, StoreError};

/// The store's own definite answer to a look-up (store-sync asks it through the REST API).
#[async_trait]
pub trait StoreLookup: Send + Sync {
    /// `Ok(None)`: the store has no such order or payment.
    async fn find(&self, lookup: &Lookup) -> Result<Option<DirectoryEntry>, BoxError>;
}

/// The order a look-up names among what the store described: the directory entry (its conditions met), or for an
/// order id, that order if the store described it.
pub async fn described_order(
    store: &dyn LedgerStore,
    directory: &dyn StoreDirectory,
    lookup: &Lookup,
) -> Result<Option<OrderId>, StoreError> {
    match lookup.directory_key() {
        Some(key) => Ok(directory
            .directory(&key)
            .await?
            .filter(|e| lookup.accepts(e))
            .and_then(|e| OrderId::parse(e.order_id).ok())),
        None => {
            let Lookup::OrderId(id) = lookup else {
                return Ok(None);
            };
            let Ok(id) = OrderId::parse(id.clone()) else {
                return Ok(None);
            };
            if id.is_unmatched() {
                return Ok(None);
            }
            // Only an order the store (or 1C) described: money never creates an order by naming a number.
            Ok(store
                .load_order(&id)
                .await?
                .filter(|o| o.info.is_some())
                .map(|o| o.id))
        }
    }
}

/// Record an acquirer's fact (a notification, or the same fact read from its status API) on the order its money
/// belongs to: where the payment already is, else the store order its reference names ([`at_notification`]), else
/// its `unmatched:` order, where it waits for store-sync to resolve it.
pub async fn record_acquirer_fact(
    ledger: &Ledger<'_>,
    store: &dyn LedgerStore,
    directory: &dyn StoreDirectory,
    mut fact: PaymentFact,
) -> Result<Recorded, LedgerError> {
    if fact.order_id.is_unmatched() {
        if let Some(order) = at_notification(store, directory, &fact).await? {
            fact = fact.on_order(order);
        } else if let Some(r) = &fact.reference {
            info!(reference = %r, order = %fact.order_id, "reference names no known store order yet; the money waits for store-sync");
        }
    }
    let recorded = ledger.record(&fact).await?;
    if let Recorded::Duplicate = recorded {
        info!(fact_id = %fact.id, "already recorded");
    }
    Ok(recorded)
}

/// Where a notification's money goes when it arrives: its current holder, or the order its reference names in
/// the directory (the invoice id, then the first applicable rule). `None`: it waits on its `unmatched:` order.
pub async fn at_notification(
    store: &dyn LedgerStore,
    directory: &dyn StoreDirectory,
    fact: &PaymentFact,
) -> Result<Option<OrderId>, StoreError> {
    if let Some(holder) = store.order_for_payment(&fact.payment).await? {
        return Ok(Some(holder));
    }
    let Some(reference) = &fact.reference else {
        return Ok(None);
    };
    let groups = reference.groups();
    // The invoice-id group (when there is one) and the first rule that applies; later rules wait for the store.
    let has_invoice = groups
        .first()
        .is_some_and(|g| matches!(g.first(), Some(Lookup::Invoice(_))));
    let tried = groups.iter().take(usize::from(has_invoice) + 1);
    for group in tried {
        for lookup in group {
            if let Some(order) = described_order(store, directory, lookup).await? {
                info!(reference = %reference, by = %lookup, order = %order, "acquirer reference resolved");
                return Ok(Some(order));
            }
        }
    }
    Ok(None)
}

/// The order a waiting reference names: each rule in turn, the directory first, then the store's answer.
/// `Err` when the store could not be asked (the reference keeps waiting).
pub async fn resolve(
    store: &dyn LedgerStore,
    directory: &dyn StoreDirectory,
    lookup_in_store: Option<&dyn StoreLookup>,
    reference: &StoreReference,
) -> Result<Option<(OrderId, Lookup)>, ResolveError> {
    for group in reference.groups() {
        for lookup in group {
            if let Some(order) = described_order(store, directory, &lookup).await? {
                return Ok(Some((order, lookup)));
            }
            if let Some(api) = lookup_in_store {
                let found = api.find(&lookup).await.map_err(ResolveError::Store)?;
                if let Some(entry) = found.filter(|e| lookup.accepts(e)) {
                    if let Ok(order) = OrderId::parse(entry.order_id) {
                        return Ok(Some((order, lookup)));
                    }
                }
            }
        }
    }
    Ok(None)
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the store could not be asked: {0}")]
    Store(#[source] BoxError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<StoreError> for ResolveError {
    fn from(e: StoreError) -> Self {
        ResolveError::Ledger(e.into())
    }
}

/// What one [`settle`] run did (part of store-sync's answer).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SettleReport {
    /// Waiting pieces of money looked at.
    pub waiting: usize,
    /// Moved to the order their reference names.
    pub resolved: usize,
    /// Still naming nothing the store has (kept for a person; tried again next run).
    pub unresolved: usize,
    pub errors: Vec<String>,
}

/// The fact that takes money off its `unmatched:` order for `target`: the line stops counting there and records
/// where it went (`linked` `order:<target>`), so a run interrupted before the move completes finishes it.
fn moved_fact(
    from: &OrderId,
    payment: &PaymentRef,
    target: &OrderId,
    by: &str,
    currency: crate::domain::Currency,
    at_ms: i64,
) -> Result<PaymentFact, LedgerError> {
    let fact = PaymentFact::new(
        FactId::new(Source::Store, &format!("resolved#{payment}")).map_err(LedgerError::from)?,
        from.clone(),
        payment.clone(),
        crate::domain::PaymentMethod::Card,
        currency,
        FactKind::Void {
            reason: format!("reference resolved to order {target} ({by})"),
        },
        at_ms,
    )?;
    Ok(fact.linking(moved_to_link(target)))
}

/// Move every waiting piece of acquirer money whose reference now resolves to its order, exactly once: the
/// `unmatched:` line is voided (naming the target), then each of its facts is recorded on the target under its
/// own id (a retry finds them recorded). Later notifications of the same payment follow it there through the
/// `PAYMENT#` index.
pub async fn settle(
    ledger: &Ledger<'_>,
    store: &dyn LedgerStore,
    directory: &dyn StoreDirectory,
    lookup_in_store: Option<&dyn StoreLookup>,
    limit: usize,
) -> Result<SettleReport, LedgerError> {
    let mut report = SettleReport::default();
    for id in directory.unresolved(limit).await? {
        let Some(order) = store.load_order(&id).await? else {
            directory.forget_unresolved(&id).await?;
            continue;
        };
        let mut pending = 0;
        for (payment, line) in &order.lines {
            if !is_acquirer(payment) {
                continue;
            }
            let Some(reference) = &line.reference else {
                continue;
            };
            report.waiting += 1;
            let target = match line.linked.iter().find_map(|l| moved_to(l)) {
                Some(t) => t,
                None if line.voided => continue,
                None => match resolve(store, directory, lookup_in_store, reference).await {
                    Ok(Some((target, by))) => {
                        let void = moved_fact(
                            &id,
                            payment,
                            &target,
                            &by.to_string(),
                            line.currency,
                            crate::platform::clock::now_ms(),
                        )?;
                        ledger.record(&void).await?;
                        info!(payment = %payment, reference = %reference, by = %by, order = %target, "waiting money moved to its order");
                        target
                    }
                    Ok(None) => {
                        report.unresolved += 1;
                        pending += 1;
                        continue;
                    }
                    Err(e) => {
                        warn!(payment = %payment, error.message = %e, "reference not resolved now");
                        report.errors.push(format!("{payment}: {e}"));
                        pending += 1;
                        continue;
                    }
                },
            };
            for fact in store.order_facts(&id).await? {
                if &fact.payment == payment && !matches!(fact.kind, FactKind::Void { .. }) {
                    ledger.record(&fact.on_order(target.clone())).await?;
                }
            }
            report.resolved += 1;
        }
        if pending == 0 {
            directory.forget_unresolved(&id).await?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
    use crate::domain::{Currency, OrderInfo, PaymentMethod, RefRule};

    fn fact(raw: &str, invoice: Option<&str>, rules: Vec<RefRule>) -> PaymentFact {
        let payment = PaymentRef::new(Source::Tbank, "77").unwrap();
        PaymentFact::new(
            FactId::new(Source::Tbank, "77#CONFIRMED").unwrap(),
            OrderId::unmatched(&payment),
            payment,
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Payment { amount: 100 },
            1,
        )
        .unwrap()
        .referring(StoreReference {
            raw: raw.into(),
            rules,
            invoice_id: invoice.map(Into::into),
        })
    }

    /// At notification time only the first rule that applies is asked of the directory (a miss proves nothing
    /// yet), also when the acquirer sent an empty payment id; store-sync, with the store's definite answers,
    /// tries the rest.
    #[tokio::test]
    async fn a_notification_tries_only_the_first_applicable_rule() {
        let store = MemoryLedgerStore::default();
        let events = MemoryPublisher::default();
        let ledger = Ledger::new(&store, &events);
        // Order 5 is numbered IM-5: `5` is its id, not its number.
        ledger
            .register_order(
                &OrderId::parse("5").unwrap(),
                OrderInfo::new(Some("IM-5".into()), 100, Currency::RUB),
            )
            .await
            .unwrap();
        let rules = vec![RefRule::OrderNumber, RefRule::Order];
        for invoice in [None, Some(""), Some("77")] {
            let f = fact("5", invoice, rules.clone());
            assert_eq!(
                at_notification(&store, &store, &f).await.unwrap(),
                None,
                "{invoice:?}"
            );
        }
        let found = resolve(
            &store,
            &store,
            None,
            fact("5", None, rules).reference.as_ref().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(found.map(|(o, _)| o.to_string()), Some("5".to_owned()));
        // The number names it at once.
        let f = fact("IM-5", Some(""), vec![RefRule::OrderNumber]);
        assert_eq!(
            at_notification(&store, &store, &f)
                .await
                .unwrap()
                .map(|o| o.to_string()),
            Some("5".to_owned())
        );
    }
}
