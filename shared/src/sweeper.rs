//! `outbox-sweeper`: on a schedule, announce changes that were committed but whose announcement failed and was
//! not retried by a redelivery (Sber, for one, gives up after three failed callbacks).

use std::sync::Arc;

use crate::config::LedgerConfig;
use crate::ledger::{Ledger, LedgerError, SweepReport};
use crate::ports::{EventPublisher, LedgerStore};

/// Rows younger than this may still be announced by the request that wrote them.
pub const GRACE_MS: i64 = 60_000;
pub const BATCH: usize = 500;

pub struct SweeperDeps {
    pub store: Arc<dyn LedgerStore>,
    pub events: Arc<dyn EventPublisher>,
}

impl SweeperDeps {
    pub fn new(config: &LedgerConfig, aws: &aws_config::SdkConfig) -> Self {
        let (store, events) = crate::adapters::aws_ledger(config, aws);
        SweeperDeps { store, events }
    }
}

/// One sweep. Fails (so the schedule's retry policy and alarms see it) only when the outbox cannot be read or
/// some row could not be announced.
pub async fn handle(deps: &SweeperDeps, grace_ms: i64) -> Result<SweepReport, SweepError> {
    let report = Ledger::new(deps.store.as_ref(), deps.events.as_ref())
        .sweep(grace_ms, BATCH)
        .await?;
    tracing::info!(
        found = report.found,
        announced = report.announced,
        failed = report.failed,
        "outbox swept"
    );
    if report.failed > 0 {
        return Err(SweepError::Incomplete(report));
    }
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{} of {} outbox rows could not be announced", .0.failed, .0.found)]
    Incomplete(SweepReport),
}
