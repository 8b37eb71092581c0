//! `outbox-sweeper`: on a schedule, announce changes that were committed but whose announcement failed and was
//! not retried by a redelivery (Sber, for one, gives up after three failed callbacks), and apply 1C uploads that
//! exchange-1c's proxy tapped but could not apply.

use std::sync::Arc;

use crate::app::exchange_1c::proxy::retry_pending_taps;
use crate::app::exchange_1c::Importer;
use crate::app::ledger::{Ledger, LedgerError, SweepReport};
use crate::ports::{
    EventPublisher, ExchangeStore, LedgerStore, OrderViews, StoreDirectory, StoreError,
};

/// Rows younger than this may still be announced by the request that wrote them.
pub const GRACE_MS: i64 = 60_000;
pub const BATCH: usize = 500;
/// Tapped uploads retried per run.
pub const TAP_BATCH: usize = 20;

pub struct SweeperDeps {
    pub store: Arc<dyn LedgerStore>,
    pub events: Arc<dyn EventPublisher>,
    pub uploads: Arc<dyn ExchangeStore>,
    pub views: Arc<dyn OrderViews>,
    pub directory: Arc<dyn StoreDirectory>,
    /// The offset 1C's local dates are in (`EXCHANGE_1C_UTC_OFFSET_MINUTES`).
    pub utc_offset_minutes: i32,
    /// `CANCEL_REFUND_POLICY`, as exchange-1c applies it.
    pub refund_on_cancel: bool,
    /// `EXCHANGE_1C_SESSION_TTL`, as exchange-1c keeps its uploads.
    pub session_ttl_secs: i64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SweeperReport {
    #[serde(flatten)]
    pub outbox: SweepReport,
    pub taps_found: usize,
    pub taps_applied: usize,
}

/// One run. Fails (so the schedule's retry policy and alarms see it) when the outbox or the pending taps cannot be
/// read, or some outbox row could not be announced.
pub async fn handle(deps: &SweeperDeps, grace_ms: i64) -> Result<SweeperReport, SweepError> {
    let outbox = Ledger::new(deps.store.as_ref(), deps.events.as_ref())
        .sweep(grace_ms, BATCH)
        .await?;
    let importer = Importer {
        store: deps.store.as_ref(),
        events: deps.events.as_ref(),
        uploads: deps.uploads.as_ref(),
        views: deps.views.as_ref(),
        directory: deps.directory.as_ref(),
        ttl_secs: deps.session_ttl_secs,
        utc_offset_minutes: deps.utc_offset_minutes,
        refund_on_cancel: deps.refund_on_cancel,
    };
    let (taps_found, taps_applied) = retry_pending_taps(&importer, TAP_BATCH).await?;
    let report = SweeperReport {
        outbox,
        taps_found,
        taps_applied,
    };
    tracing::info!(
        found = outbox.found,
        announced = outbox.announced,
        failed = outbox.failed,
        taps_found,
        taps_applied,
        "swept"
    );
    if outbox.failed > 0 {
        return Err(SweepError::Incomplete(outbox));
    }
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{} of {} outbox rows could not be announced", .0.failed, .0.found)]
    Incomplete(SweepReport),
}
