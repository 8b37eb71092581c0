//! In-memory fakes of the ports, for handler tests without AWS.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::attention;
use crate::domain::daybook::DayTotals;
use crate::domain::matching::{OpenOrder, UnmatchedReceipt};
use crate::domain::settlement::{SettlementReport, Taking};
use crate::domain::watch::WatchEntry;
use crate::domain::{Order, OrderEvent, OrderId, PaymentFact, PaymentRef, Source};
use crate::ports::{
    Attention, CachedDay, Commit, CommitError, Cursors, EventPublisher, ExchangeSession,
    ExchangeStore, Feed1c, Histories, ImportProgress, LedgerStore, MarkerKind, Markers,
    OrderHistory, OrderViews, PublishError, SignIns, StoreDirectory, StoreError, Takings,
    UnmatchedRow, Watchlist,
};

#[derive(Default)]
struct State {
    orders: BTreeMap<OrderId, Order>,
    facts: BTreeMap<(OrderId, String), PaymentFact>,
    outbox: BTreeMap<(OrderId, String), OrderEvent>,
    /// Money → (order, line) holding it.
    payments: BTreeMap<PaymentRef, (OrderId, PaymentRef)>,
    takings: BTreeMap<(Source, String, String), Taking>,
    settlements: BTreeMap<String, SettlementReport>,
    feed: BTreeMap<OrderId, u64>,
    watermarks: BTreeMap<String, String>,
    directory: BTreeMap<String, crate::domain::DirectoryEntry>,
    unresolved: std::collections::BTreeSet<OrderId>,
    /// The read models, as the commits left them (like the table's rows).
    open: BTreeMap<OrderId, OpenOrder>,
    unmatched: BTreeMap<OrderId, UnmatchedReceipt>,
    markers: BTreeMap<(&'static str, String), String>,
    watch: BTreeMap<String, WatchEntry>,
    status_unknown: BTreeMap<String, WatchEntry>,
    attention: BTreeMap<(attention::Kind, String), attention::Item>,
    events: BTreeMap<(OrderId, u64), OrderEvent>,
    sign_ins: BTreeMap<String, (u32, i64)>,
    signed_out: BTreeSet<String>,
    days: BTreeMap<(Source, String), KeptDay>,
}

/// A day's row: its revision, and the totals kept with the revision they were computed at.
type KeptDay = (String, Option<(DayTotals, String)>);

#[derive(Default)]
pub struct MemoryLedgerStore {
    state: Mutex<State>,
}

impl MemoryLedgerStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn facts(&self) -> Vec<PaymentFact> {
        self.lock().facts.values().cloned().collect()
    }

    pub fn order(&self, id: &str) -> Option<Order> {
        let id = OrderId::parse(id).ok()?;
        self.lock().orders.get(&id).cloned()
    }

    pub fn outbox_len(&self) -> usize {
        self.lock().outbox.len()
    }
}

#[async_trait]
impl LedgerStore for MemoryLedgerStore {
    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        Ok(self.lock().orders.get(id).cloned())
    }

    async fn commit(&self, c: Commit<'_>) -> Result<(), CommitError> {
        let mut s = self.lock();
        if let Some(f) = c.fact {
            if s.facts
                .contains_key(&(c.order.id.clone(), f.id.to_string()))
            {
                return Err(CommitError::Duplicate);
            }
        }
        let released = |p: &PaymentRef| c.releases.contains(p);
        for claim in &c.claims {
            if s.payments.get(&claim.payment).is_some_and(|(order, line)| {
                (order != &c.order.id || line != &claim.line) && !released(&claim.payment)
            }) {
                return Err(CommitError::Claimed);
            }
        }
        let current = s.orders.get(&c.order.id).map_or(0, |o| o.version);
        if current != c.expected_version {
            return Err(CommitError::Conflict);
        }
        if let Some(f) = c.fact {
            s.facts
                .insert((c.order.id.clone(), f.id.to_string()), f.clone());
        }
        s.orders.insert(c.order.id.clone(), c.order.clone());
        s.outbox.insert(
            (c.order.id.clone(), c.event.event_id.clone()),
            c.event.clone(),
        );
        for p in &c.releases {
            s.payments.remove(p);
        }
        for claim in &c.claims {
            s.payments.insert(
                claim.payment.clone(),
                (c.order.id.clone(), claim.line.clone()),
            );
        }
        if let Some(t) = &c.taking {
            s.takings
                .insert((t.acquirer, t.day.clone(), t.fact_id.clone()), t.clone());
        }
        if let (Some(day), Some(fact)) = (&c.stale_day, c.fact) {
            s.days.insert(day.clone(), (fact.id.to_string(), None));
        }
        s.feed.insert(c.order.id.clone(), c.order.version);
        for e in &c.directory {
            s.directory.insert(e.key.clone(), e.clone());
        }
        let id = c.order.id.clone();
        match &c.projections.open {
            Some(open) => s.open.insert(id.clone(), open.clone()),
            None => s.open.remove(&id),
        };
        match &c.projections.unmatched {
            UnmatchedRow::NotUnmatched => {}
            UnmatchedRow::Keep(receipt) => {
                s.unmatched.insert(id.clone(), receipt.clone());
            }
            UnmatchedRow::Drop => {
                s.unmatched.remove(&id);
            }
        }
        if c.projections.awaiting_reference {
            s.unresolved.insert(id);
        }
        for entry in &c.projections.watch_opened {
            s.watch.insert(entry.key(), entry.clone());
        }
        for closed in &c.projections.watch_closed {
            s.watch.remove(closed);
        }
        for row in &c.projections.attention {
            let k = (row.kind, row.key.clone());
            let since = s.attention.get(&k).map_or(row.since_ms, |r| r.since_ms);
            s.attention.insert(
                k,
                attention::Item {
                    since_ms: since,
                    ..row.clone()
                },
            );
        }
        for kind in &c.projections.attention_closed {
            s.attention.remove(&(*kind, c.order.id.to_string()));
        }
        s.events
            .insert((c.order.id.clone(), c.order.version), c.event.clone());
        Ok(())
    }

    async fn order_for_payment(&self, payment: &PaymentRef) -> Result<Option<OrderId>, StoreError> {
        Ok(self.lock().payments.get(payment).map(|(o, _)| o.clone()))
    }

    async fn order_facts(&self, order: &OrderId) -> Result<Vec<PaymentFact>, StoreError> {
        Ok(self
            .lock()
            .facts
            .iter()
            .filter(|((o, _), _)| o == order)
            .map(|(_, f)| f.clone())
            .collect())
    }

    async fn pending_event(
        &self,
        order: &OrderId,
        event_id: &str,
    ) -> Result<Option<OrderEvent>, StoreError> {
        Ok(self
            .lock()
            .outbox
            .get(&(order.clone(), event_id.to_owned()))
            .cloned())
    }

    async fn clear_pending(&self, order: &OrderId, event_id: &str) -> Result<(), StoreError> {
        self.lock()
            .outbox
            .remove(&(order.clone(), event_id.to_owned()));
        Ok(())
    }

    async fn list_pending(
        &self,
        created_before_ms: i64,
        limit: usize,
    ) -> Result<Vec<OrderEvent>, StoreError> {
        let mut rows: Vec<OrderEvent> = self
            .lock()
            .outbox
            .values()
            .filter(|e| e.at_ms < created_before_ms)
            .cloned()
            .collect();
        rows.sort_by_key(|e| e.at_ms);
        rows.truncate(limit);
        Ok(rows)
    }
}

#[async_trait]
impl StoreDirectory for MemoryLedgerStore {
    async fn directory(
        &self,
        key: &str,
    ) -> Result<Option<crate::domain::DirectoryEntry>, StoreError> {
        Ok(self.lock().directory.get(key).cloned())
    }

    async fn unresolved(&self, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        Ok(self.lock().unresolved.iter().take(limit).cloned().collect())
    }

    async fn forget_unresolved(&self, order: &OrderId) -> Result<(), StoreError> {
        self.lock().unresolved.remove(order);
        Ok(())
    }
}

#[async_trait]
impl OrderViews for MemoryLedgerStore {
    async fn open_orders(&self, limit: usize) -> Result<Vec<OpenOrder>, StoreError> {
        Ok(self.lock().open.values().take(limit).cloned().collect())
    }

    async fn unmatched_receipts(&self, limit: usize) -> Result<Vec<UnmatchedReceipt>, StoreError> {
        Ok(self
            .lock()
            .unmatched
            .values()
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Takings for MemoryLedgerStore {
    async fn card_takings(&self, acquirer: Source, day: &str) -> Result<Vec<Taking>, StoreError> {
        Ok(self
            .lock()
            .takings
            .values()
            .filter(|t| t.acquirer == acquirer && t.day == day)
            .cloned()
            .collect())
    }

    async fn record_settlement(&self, report: &SettlementReport) -> Result<bool, StoreError> {
        let mut s = self.lock();
        if s.settlements.contains_key(&report.key) {
            return Ok(false);
        }
        s.settlements.insert(report.key.clone(), report.clone());
        if let Some(item) = attention::payout_mismatch(report, crate::platform::clock::now_ms()) {
            s.attention.insert((item.kind, item.key.clone()), item);
        }
        Ok(true)
    }

    async fn settlements(
        &self,
        acquirer: Source,
        from: &str,
        to: &str,
    ) -> Result<Vec<SettlementReport>, StoreError> {
        Ok(self
            .lock()
            .settlements
            .values()
            .filter(|r| r.acquirer == acquirer)
            .filter(|r| {
                r.days
                    .first()
                    .is_some_and(|d| d.as_str() >= from && d.as_str() <= to)
            })
            .cloned()
            .collect())
    }

    async fn cached_days(
        &self,
        source: Source,
        from: &str,
        to: &str,
    ) -> Result<Vec<CachedDay>, StoreError> {
        Ok(self
            .lock()
            .days
            .iter()
            .filter(|((s, d), _)| *s == source && d.as_str() >= from && d.as_str() <= to)
            .map(|((_, d), (rev, kept))| CachedDay {
                day: d.clone(),
                rev: rev.clone(),
                totals: kept.as_ref().filter(|(_, at)| at == rev).map(|(t, _)| *t),
            })
            .collect())
    }

    async fn cache_day(
        &self,
        source: Source,
        day: &str,
        totals: DayTotals,
        rev: &str,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let entry = s
            .days
            .entry((source, day.to_owned()))
            .or_insert((String::new(), None));
        if entry.0 != rev {
            return Ok(false);
        }
        entry.1 = Some((totals, rev.to_owned()));
        Ok(true)
    }
}

#[async_trait]
impl Cursors for MemoryLedgerStore {
    async fn watermark(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().watermarks.get(source).cloned())
    }

    async fn set_watermark(&self, source: &str, value: &str) -> Result<(), StoreError> {
        self.lock()
            .watermarks
            .insert(source.to_owned(), value.to_owned());
        Ok(())
    }
}

#[async_trait]
impl Watchlist for MemoryLedgerStore {
    async fn watch(&self, entry: &WatchEntry) -> Result<(), StoreError> {
        self.lock()
            .watch
            .entry(entry.key())
            .or_insert_with(|| entry.clone());
        Ok(())
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<WatchEntry>, StoreError> {
        let mut due: Vec<WatchEntry> = self
            .lock()
            .watch
            .values()
            .filter(|e| e.due_ms <= now_ms)
            .cloned()
            .collect();
        due.sort_by_key(|e| (e.due_ms, e.since_ms));
        due.truncate(limit);
        Ok(due)
    }

    async fn reschedule(&self, key: &str, due_ms: i64, checks: u32) -> Result<(), StoreError> {
        if let Some(e) = self.lock().watch.get_mut(key) {
            e.due_ms = due_ms;
            e.checks = checks;
        }
        Ok(())
    }

    async fn close(&self, key: &str) -> Result<(), StoreError> {
        self.lock().watch.remove(key);
        Ok(())
    }

    async fn give_up(&self, entry: &WatchEntry) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.status_unknown.insert(entry.key(), entry.clone());
        s.watch.remove(&entry.key());
        Ok(())
    }

    async fn status_unknown(&self, limit: usize) -> Result<Vec<WatchEntry>, StoreError> {
        Ok(self
            .lock()
            .status_unknown
            .values()
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Markers for MemoryLedgerStore {
    async fn marker(&self, kind: MarkerKind, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .markers
            .get(&(kind.as_str(), key.to_owned()))
            .cloned())
    }

    async fn set_marker(&self, kind: MarkerKind, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock()
            .markers
            .insert((kind.as_str(), key.to_owned()), value.to_owned());
        Ok(())
    }
}

#[async_trait]
impl Attention for MemoryLedgerStore {
    async fn attention(
        &self,
        kind: attention::Kind,
        limit: usize,
    ) -> Result<Vec<attention::Item>, StoreError> {
        let s = self.lock();
        if kind == attention::Kind::StatusUnknown {
            return Ok(s
                .status_unknown
                .values()
                .take(limit)
                .map(attention::status_unknown)
                .collect());
        }
        Ok(s.attention
            .range((kind, String::new())..)
            .take_while(|((k, _), _)| *k == kind)
            .take(limit)
            .map(|(_, i)| i.clone())
            .collect())
    }

    async fn accept(
        &self,
        kind: attention::Kind,
        key: &str,
        _audit: &crate::domain::Audit,
        _at_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        Ok(if kind == attention::Kind::StatusUnknown {
            s.status_unknown.remove(key).is_some()
        } else {
            s.attention.remove(&(kind, key.to_owned())).is_some()
        })
    }
}

#[async_trait]
impl SignIns for MemoryLedgerStore {
    async fn failures(&self, login: &str) -> Result<(u32, i64), StoreError> {
        Ok(self.lock().sign_ins.get(login).copied().unwrap_or((0, 0)))
    }

    async fn failed(&self, login: &str, at_ms: i64) -> Result<u32, StoreError> {
        let mut s = self.lock();
        let entry = s.sign_ins.entry(login.to_owned()).or_insert((0, 0));
        *entry = (entry.0 + 1, at_ms);
        Ok(entry.0)
    }

    async fn succeeded(&self, login: &str) -> Result<(), StoreError> {
        self.lock().sign_ins.remove(login);
        Ok(())
    }

    async fn sign_out(&self, sid: &str, _until_ms: i64) -> Result<(), StoreError> {
        self.lock().signed_out.insert(sid.to_owned());
        Ok(())
    }

    async fn signed_out(&self, sid: &str) -> Result<bool, StoreError> {
        Ok(self.lock().signed_out.contains(sid))
    }
}

#[async_trait]
impl Histories for MemoryLedgerStore {
    async fn history(&self, order: &OrderId) -> Result<OrderHistory, StoreError> {
        let s = self.lock();
        let mut facts: Vec<PaymentFact> = s
            .facts
            .iter()
            .filter(|((o, _), _)| o == order)
            .map(|(_, f)| f.clone())
            .collect();
        facts.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        Ok(OrderHistory {
            order: s.orders.get(order).cloned(),
            facts,
            events: s
                .events
                .range((order.clone(), 0)..=(order.clone(), u64::MAX))
                .map(|(_, e)| e.clone())
                .collect(),
        })
    }

    async fn waiting_for_1c(&self, order: &OrderId) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().feed.get(order).copied())
    }
}

#[async_trait]
impl Feed1c for MemoryLedgerStore {
    async fn feed_1c(&self, limit: usize) -> Result<Vec<(OrderId, u64)>, StoreError> {
        Ok(self
            .lock()
            .feed
            .iter()
            .take(limit)
            .map(|(o, v)| (o.clone(), *v))
            .collect())
    }

    async fn ack_feed_1c(&self, sent: &[(OrderId, u64)]) -> Result<(), StoreError> {
        let mut s = self.lock();
        for (order, version) in sent {
            if s.feed.get(order) == Some(version) {
                s.feed.remove(order);
            }
        }
        Ok(())
    }
}

/// In-memory sessions and uploads.
#[derive(Default)]
pub struct MemoryExchangeStore {
    sessions: Mutex<BTreeMap<String, ExchangeSession>>,
    files: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    progress: Mutex<BTreeMap<(String, String), ImportProgress>>,
    taps: Mutex<std::collections::BTreeSet<(String, String)>>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl ExchangeStore for MemoryExchangeStore {
    async fn put_session(&self, session: &ExchangeSession) -> Result<(), StoreError> {
        guard(&self.sessions).insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn session(&self, id: &str) -> Result<Option<ExchangeSession>, StoreError> {
        Ok(guard(&self.sessions).get(id).cloned())
    }

    async fn append_chunk(
        &self,
        session: &str,
        file: &str,
        bytes: &[u8],
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        guard(&self.files)
            .entry((session.to_owned(), file.to_owned()))
            .or_default()
            .extend_from_slice(bytes);
        Ok(())
    }

    async fn uploaded(&self, session: &str, file: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(guard(&self.files)
            .get(&(session.to_owned(), file.to_owned()))
            .cloned())
    }

    async fn import_progress(
        &self,
        session: &str,
        file: &str,
    ) -> Result<ImportProgress, StoreError> {
        Ok(guard(&self.progress)
            .get(&(session.to_owned(), file.to_owned()))
            .cloned()
            .unwrap_or_default())
    }

    async fn set_import_progress(
        &self,
        session: &str,
        file: &str,
        progress: &ImportProgress,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        guard(&self.progress).insert((session.to_owned(), file.to_owned()), progress.clone());
        Ok(())
    }

    async fn set_tap_pending(
        &self,
        key: &str,
        file: &str,
        pending: bool,
        _expires_at: i64,
    ) -> Result<(), StoreError> {
        let entry = (key.to_owned(), file.to_owned());
        if pending {
            guard(&self.taps).insert(entry);
        } else {
            guard(&self.taps).remove(&entry);
        }
        Ok(())
    }

    async fn pending_taps(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        Ok(guard(&self.taps).iter().take(limit).cloned().collect())
    }
}

/// Collects published events; can be switched to fail like an unreachable queue.
#[derive(Default)]
pub struct MemoryPublisher {
    events: Mutex<Vec<OrderEvent>>,
    failing: AtomicBool,
}

impl MemoryPublisher {
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn events(&self) -> Vec<OrderEvent> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl EventPublisher for MemoryPublisher {
    async fn publish(&self, event: &OrderEvent) -> Result<(), PublishError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(PublishError("queue unavailable (test)".into()));
        }
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event.clone());
        Ok(())
    }
}

/// An SQS FIFO queue in memory: a message in flight hides its group's later messages until it is deleted or its
/// visibility ends. Both the function's trigger ([`MemoryQueue::receive`]) and store-sync's own taking
/// ([`crate::ports::EventsInbox`]) read it, as both read the real queue.
pub struct MemoryQueue {
    state: Mutex<QueueState>,
    /// How long a received message stays hidden (the queue's visibility timeout).
    visibility_ms: i64,
}

#[derive(Default)]
struct QueueState {
    next: u64,
    messages: Vec<Queued>,
}

struct Queued {
    id: String,
    group: String,
    body: String,
    receipt: Option<String>,
    hidden_until_ms: i64,
}

/// A received message and its group (`MessageGroupId`).
#[derive(Debug, Clone)]
pub struct Received {
    pub message: crate::ports::InboxMessage,
    pub group: String,
}

impl MemoryQueue {
    pub fn new(visibility_ms: i64) -> Self {
        MemoryQueue {
            state: Mutex::new(QueueState::default()),
            visibility_ms,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Send `body` in `group`; its message id.
    pub fn send(&self, group: &str, body: &str) -> String {
        let mut s = self.state();
        s.next += 1;
        let id = format!("m{}", s.next);
        s.messages.push(Queued {
            id: id.clone(),
            group: group.to_owned(),
            body: body.to_owned(),
            receipt: None,
            hidden_until_ms: 0,
        });
        id
    }

    /// Up to `max` visible messages, oldest first, none of a group that has one in flight.
    pub fn receive(&self, max: usize) -> Vec<Received> {
        let now = crate::platform::clock::now_ms();
        let mut s = self.state();
        s.next += 1;
        let receipt_base = s.next;
        let mut blocked: HashSet<String> = s
            .messages
            .iter()
            .filter(|m| m.hidden_until_ms > now)
            .map(|m| m.group.clone())
            .collect();
        let mut out = Vec::new();
        let mut taken_groups: HashSet<String> = HashSet::new();
        for (n, m) in s.messages.iter_mut().enumerate() {
            if out.len() >= max {
                break;
            }
            if blocked.contains(&m.group) && !taken_groups.contains(&m.group) {
                continue;
            }
            let receipt = format!("r{receipt_base}-{n}");
            m.receipt = Some(receipt.clone());
            m.hidden_until_ms = now + self.visibility_ms;
            blocked.insert(m.group.clone());
            taken_groups.insert(m.group.clone());
            out.push(Received {
                message: crate::ports::InboxMessage {
                    message_id: m.id.clone(),
                    receipt_handle: receipt,
                    body: m.body.clone(),
                },
                group: m.group.clone(),
            });
        }
        out
    }

    /// Delete the message received under `receipt_handle` (a stale receipt deletes nothing).
    pub fn delete(&self, receipt_handle: &str) {
        self.state()
            .messages
            .retain(|m| m.receipt.as_deref() != Some(receipt_handle));
    }

    /// Make the message received under `receipt_handle` visible again after `after_ms` (a failed message).
    pub fn release(&self, receipt_handle: &str, after_ms: i64) {
        let now = crate::platform::clock::now_ms();
        for m in &mut self.state().messages {
            if m.receipt.as_deref() == Some(receipt_handle) {
                m.hidden_until_ms = now + after_ms;
            }
        }
    }

    /// Messages not yet deleted.
    pub fn len(&self) -> usize {
        self.state().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl crate::ports::EventsInbox for MemoryQueue {
    async fn take(
        &self,
        max: usize,
    ) -> Result<Vec<crate::ports::InboxMessage>, crate::ports::InboxError> {
        Ok(self.receive(max).into_iter().map(|r| r.message).collect())
    }

    async fn done(
        &self,
        messages: &[crate::ports::InboxMessage],
    ) -> Result<(), crate::ports::InboxError> {
        for m in messages {
            self.delete(&m.receipt_handle);
        }
        Ok(())
    }
}

/// The store's REST budget in memory (one process): the same bucket as the table's.
pub struct MemoryBudget {
    bucket: Mutex<Option<crate::ports::budget::Bucket>>,
    limit: crate::ports::budget::RestLimit,
}

impl MemoryBudget {
    pub fn new(limit: crate::ports::budget::RestLimit) -> Self {
        MemoryBudget {
            bucket: Mutex::new(None),
            limit,
        }
    }
}

#[async_trait]
impl crate::ports::budget::RequestBudget for MemoryBudget {
    async fn take(
        &self,
        priority: crate::ports::budget::Priority,
        now_ms: i64,
    ) -> Result<crate::ports::budget::Take, StoreError> {
        use crate::ports::budget::{Bucket, Take};
        let mut b = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = b.unwrap_or_else(|| Bucket::full(self.limit, now_ms));
        Ok(match bucket.take(self.limit, priority, now_ms) {
            Ok(next) => {
                *b = Some(next);
                Take::Granted
            }
            Err(wait) => Take::Wait(wait),
        })
    }

    async fn drain(&self, now_ms: i64) -> Result<(), StoreError> {
        *self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(crate::ports::budget::Bucket {
                milli: 0,
                at_ms: now_ms,
            });
        Ok(())
    }
}
