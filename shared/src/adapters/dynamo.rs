//! DynamoDB adapter of the ledger. The only module that knows `AttributeValue`.
//!
//! One table, key `pk` (S) + `sk` (S):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | order aggregate | `ORDER#<order id>` | `#ORDER` |
//! | payment fact | `ORDER#<order id>` | `FACT#<fact id>` |
//! | outbox row (committed, not yet announced) | `OUTBOX` | `<order id>#<event id>` |
//! | payment → (order, line) holding it | `PAYMENT#<payment ref>` | `#PAYMENT` |
//! | 1C feed entry (changed since 1C's last `success`) | `FEED#1c` | `<order id>` |
//! | 1C exchange session (TTL) | `SESSION#<cookie>` | `#SESSION` |
//! | uploaded file: meta + chunks (TTL) | `UPLOAD#<cookie>#<file>` | `#META`, `CHUNK#<seq>` |
//! | proxy tap the ledger still owes (TTL) | `TAPS` | `<tap key>#<file>` |
//! | order that can still receive money | `OPEN` | `<order id>` |
//! | statement source watermark | `WATERMARK#<source>` | `#WATERMARK` |
//! | bank money that matched no order, not allocated yet | `UNMATCHED` | `<unmatched order id>` |
//! | what one card fact took or refunded, per acquirer and Moscow day | `TAKINGS#<acquirer>#<day>` | `<fact id>` |
//! | acquirer settlement and its reconciliation | `SETTLEMENT#<operation key>` | `#SETTLEMENT` |
//! | store directory: an order number, store payment id/number or `psInvoiceId` → order | `STORE#<key>` | `#STORE` |
//! | acquirer money whose reference to the store has not resolved yet | `UNRESOLVED` | `<unmatched order id>` |
//! | a question status-sync asks an acquirer (`data`: the watch, `due_ms`, `checks`) | `WATCH` | `<watch key>` |
//! | a question given up, for a person | `STATUS_UNKNOWN` | `<watch key>` |
//! | a break for a person (`domain::attention`) | `ATTENTION#<kind>` | `<order id or key>` |
//! | every event a change announced (the order's history) | `ORDER#<order id>` | `EVENT#<version, 12 digits>` |
//! | settlements of an acquirer by their first day (the reconciliation report) | `SETTLEMENTS#<acquirer>` | `<day>#<operation key>` |
//! | a closed day's takings totals (`rev`: the last late fact of the day; `data` valid while `data_rev` = `rev`) | `DAYSUM#<source>` | `<day>` |
//! | a payout mismatch a person accepted (who, why, when) | `ACCEPTED#<kind>` | `<key>` |
//! | failed console sign-ins of a login (TTL: a day after the last) | `SIGNIN#<login>` | `#SIGNIN` |
//! | a console session signed out (TTL: the session's expiry) | `SIGNOUT#<session id>` | `#SIGNOUT` |
//!
//! A fact, its order and its outbox row are written in one `TransactWriteItems`: the fact `Put` with
//! `attribute_not_exists(pk)` (a second delivery is a no-op) and the order `Put` guarded by its version.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use crate::domain::attention::{self, Item as Item_};
use crate::domain::daybook::DayTotals;
use crate::domain::matching::UnmatchedReceipt;
use crate::domain::settlement::{SettlementReport, Taking};
use crate::domain::watch::WatchEntry;
use crate::domain::{Order, OrderEvent, OrderId, PaymentFact, PaymentRef, Source};
use crate::ports::{
    Attention, BoxError, CachedDay, Commit, CommitError, Cursors, ExchangeSession, ExchangeStore,
    Feed1c, Histories, ImportProgress, LedgerStore, MarkerKind, Markers, OrderHistory, OrderViews,
    SignIns, StoreDirectory, StoreError, Takings, UnmatchedRow, Watchlist,
};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expires_at";
const DATA: &str = "data";
const VERSION: &str = "version";
const OUTBOX_PK: &str = "OUTBOX";
const ORDER_SK: &str = "#ORDER";
const PAYMENT_SK: &str = "#PAYMENT";
const FEED_1C_PK: &str = "FEED#1c";
const SESSION_SK: &str = "#SESSION";
const META_SK: &str = "#META";
const TAPS_PK: &str = "TAPS";
const OPEN_PK: &str = "OPEN";
const WATERMARK_SK: &str = "#WATERMARK";
const UNMATCHED_PK: &str = "UNMATCHED";
const SETTLEMENT_SK: &str = "#SETTLEMENT";
const STORE_SK: &str = "#STORE";
const UNRESOLVED_PK: &str = "UNRESOLVED";
const WATCH_PK: &str = "WATCH";
const STATUS_UNKNOWN_PK: &str = "STATUS_UNKNOWN";
const DUE: &str = "due_ms";
const SINCE: &str = "since_ms";
const CHECKS: &str = "checks";
/// A transaction holds at most 100 items; an order's own items take a handful, its questions at most
/// [`MAX_WATCH_ITEMS`] more and its breaks for a person at most 9 (`attention::Kind::ALL`).
const MAX_DIRECTORY_ITEMS: usize = 60;
const MAX_WATCH_ITEMS: usize = 15;

type Item = HashMap<String, AttributeValue>;

fn order_pk(id: &OrderId) -> String {
    format!("ORDER#{id}")
}

fn fact_sk(fact_id: &str) -> String {
    format!("FACT#{fact_id}")
}

fn outbox_sk(order: &OrderId, event_id: &str) -> String {
    format!("{order}#{event_id}")
}

fn payment_pk(p: &PaymentRef) -> String {
    format!("PAYMENT#{p}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(Box::new(e) as BoxError)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt {
        key: "serialise".into(),
        reason: e.to_string(),
    })
}

fn from_data<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let key = || {
        let part = |k| {
            item.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        format!("{}/{}", part(PK), part(SK))
    };
    let data = item
        .get(DATA)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: key(),
            reason: "no data attribute".into(),
        })?;
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt {
        key: key(),
        reason: e.to_string(),
    })
}

/// The order item: the aggregate as JSON plus plain attributes for people reading the table.
pub fn order_item(order: &Order) -> Result<Item, StoreError> {
    let t = order.totals();
    let mut item = key(order_pk(&order.id), ORDER_SK.to_owned());
    item.insert("type".into(), s("order"));
    item.insert("order_id".into(), s(order.id.as_str()));
    item.insert(VERSION.into(), n(order.version));
    item.insert("state".into(), s(order.state().as_str()));
    item.insert("currency".into(), s(order.currency().as_str()));
    item.insert("paid".into(), n(t.paid));
    item.insert("refunded".into(), n(t.refunded));
    item.insert("held".into(), n(t.held));
    if let Some(total) = order.total() {
        item.insert("total".into(), n(total));
    }
    item.insert(DATA.into(), s(to_json(order)?));
    Ok(item)
}

pub fn fact_item(fact: &PaymentFact) -> Result<Item, StoreError> {
    let mut item = key(order_pk(&fact.order_id), fact_sk(fact.id.as_str()));
    item.insert("type".into(), s("fact"));
    item.insert("fact_id".into(), s(fact.id.as_str()));
    item.insert("kind".into(), s(fact.kind.name()));
    item.insert("payment".into(), s(fact.payment.as_str()));
    if let Some(amount) = fact.kind.stated_amount() {
        item.insert("amount".into(), n(amount));
    }
    item.insert("currency".into(), s(fact.currency.as_str()));
    item.insert("at_ms".into(), n(fact.at_ms));
    item.insert(DATA.into(), s(to_json(fact)?));
    Ok(item)
}

fn outbox_item(order: &OrderId, event: &OrderEvent) -> Result<Item, StoreError> {
    let mut item = key(OUTBOX_PK.to_owned(), outbox_sk(order, &event.event_id));
    item.insert("type".into(), s("outbox"));
    item.insert("created_ms".into(), n(event.at_ms));
    item.insert(DATA.into(), s(to_json(event)?));
    Ok(item)
}

fn put(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: Option<Item>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_values(values)
        .build()
        .map_err(unavailable)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The row of a break for a person: `data` the item, `since_ms` also as a number.
fn attention_row(table: &str, item: &Item_) -> Result<TransactWriteItem, StoreError> {
    let mut row = key(attention_pk(item.kind), item.key.clone());
    row.insert(DATA.into(), s(to_json(item)?));
    row.insert(SINCE.into(), n(item.since_ms));
    put(table, row, None, None)
}

fn attention_pk(kind: attention::Kind) -> String {
    format!("ATTENTION#{kind}")
}

/// A break as its row keeps it, with the time of its first write.
fn attention_item(row: &Item) -> Result<Item_, StoreError> {
    let mut item: Item_ = from_data(row)?;
    if let Some(since) = row
        .get(SINCE)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
    {
        item.since_ms = since;
    }
    Ok(item)
}

fn event_sk(version: u64) -> String {
    format!("EVENT#{version:012}")
}

fn delete(table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
    let delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .build()
        .map_err(unavailable)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// A conditional write whose condition failed left things as they should be (the row was there, or was gone):
/// that is not an error. Anything else is.
fn unless_condition_failed<E>(out: Result<(), E>) -> Result<(), StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match out {
        Err(e) if e.code() != Some("ConditionalCheckFailedException") => Err(unavailable(e)),
        _ => Ok(()),
    }
}

/// A watch row: the entry in `data`, its schedule also as numbers (the due filter reads `due_ms`).
fn watch_item(pk: &str, entry: &WatchEntry) -> Result<Item, StoreError> {
    let mut row = key(pk.to_owned(), entry.key());
    row.insert(DATA.into(), s(to_json(entry)?));
    row.insert(DUE.into(), n(entry.due_ms));
    row.insert(CHECKS.into(), n(entry.checks));
    Ok(row)
}

/// The entry of a watch row, with the schedule status-sync last wrote.
fn watch_entry(item: &Item) -> Result<WatchEntry, StoreError> {
    let mut entry: WatchEntry = from_data(item)?;
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    if let Some(due) = number(DUE) {
        entry.due_ms = due;
    }
    if let Some(checks) = number(CHECKS) {
        entry.checks = u32::try_from(checks).unwrap_or(u32::MAX);
    }
    Ok(entry)
}

fn takings_pk(acquirer: Source, day: &str) -> String {
    format!("TAKINGS#{acquirer}#{day}")
}

#[derive(Clone)]
pub struct DynamoLedgerStore {
    client: Client,
    table: String,
}

impl DynamoLedgerStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoLedgerStore {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(out.item)
    }

    async fn put_plain(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(())
    }

    async fn delete(&self, key: Item) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(())
    }

    /// Items of one partition in sort-key order, paging until `limit` are collected: all of them, those whose sort
    /// key starts with `sk_prefix`, or those passing `filter` (expression with `:v` bound to the value).
    async fn query_partition(
        &self,
        pk: &str,
        sk_prefix: Option<&str>,
        filter: Option<(&str, AttributeValue)>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            q = match sk_prefix {
                Some(prefix) => q
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":prefix", s(prefix)),
                None => q.key_condition_expression("#pk = :pk"),
            };
            if let Some((expression, value)) = &filter {
                q = q
                    .filter_expression(*expression)
                    .expression_attribute_values(":v", value.clone());
            }
            let out = q
                .send()
                .await
                .map_err(|e| unavailable(e.into_service_error()))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if items.len() < limit => start = Some(k),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// Raw items of one order partition (the order, its facts), for tests and operators.
    pub async fn order_partition(&self, id: &OrderId) -> Result<Vec<Item>, StoreError> {
        self.query_partition(&order_pk(id), None, None, usize::MAX)
            .await
    }

    /// Facts recorded for an order.
    pub async fn facts(&self, id: &OrderId) -> Result<Vec<PaymentFact>, StoreError> {
        self.order_partition(id)
            .await?
            .iter()
            .filter(|i| {
                i.get(SK)
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|sk| sk.starts_with("FACT#"))
            })
            .map(from_data)
            .collect()
    }
}

/// Map a cancelled transaction to what went wrong: the fact existed (duplicate) or the order moved (conflict).
fn classify(
    err: SdkError<TransactWriteItemsError>,
    has_fact: bool,
    claims_at: std::ops::Range<usize>,
) -> CommitError {
    let service = err.into_service_error();
    if let TransactWriteItemsError::TransactionCanceledException(ref cancelled) = service {
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        // Item 0 is the fact Put when there is a fact; a failed condition there means it was recorded before.
        if has_fact && codes.first() == Some(&"ConditionalCheckFailed") {
            return CommitError::Duplicate;
        }
        if codes
            .get(claims_at)
            .is_some_and(|c| c.contains(&"ConditionalCheckFailed"))
        {
            return CommitError::Claimed;
        }
        if codes
            .iter()
            .any(|c| *c == "ConditionalCheckFailed" || *c == "TransactionConflict")
        {
            return CommitError::Conflict;
        }
    }
    if service.meta().code() == Some("TransactionConflictException") {
        return CommitError::Conflict;
    }
    CommitError::Store(unavailable(service))
}

#[async_trait]
impl LedgerStore for DynamoLedgerStore {
    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        match self.get(key(order_pk(id), ORDER_SK.to_owned())).await? {
            Some(item) => from_data(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn commit(&self, c: Commit<'_>) -> Result<(), CommitError> {
        let mut items = Vec::with_capacity(4);
        if let Some(fact) = c.fact {
            items.push(put(
                &self.table,
                fact_item(fact)?,
                Some("attribute_not_exists(pk)"),
                None,
            )?);
        }
        let order = order_item(c.order)?;
        items.push(if c.expected_version == 0 {
            put(&self.table, order, Some("attribute_not_exists(pk)"), None)?
        } else {
            put(
                &self.table,
                order,
                Some("version = :expected"),
                Some(HashMap::from([(
                    ":expected".to_owned(),
                    n(c.expected_version),
                )])),
            )?
        });
        items.push(put(
            &self.table,
            outbox_item(&c.order.id, c.event)?,
            None,
            None,
        )?);
        // The same money can belong to one order's line only: a second order (or line) claiming it would count it
        // twice (a bank operation re-read after 1C allocated it, a statement seeing money 1C booked first).
        let claims_from = items.len();
        for claim in &c.claims {
            let mut item = key(payment_pk(&claim.payment), PAYMENT_SK.to_owned());
            item.insert("order_id".into(), s(c.order.id.as_str()));
            item.insert("line".into(), s(claim.line.as_str()));
            items.push(put(
                &self.table,
                item,
                Some("attribute_not_exists(pk) OR (order_id = :order AND line = :line)"),
                Some(HashMap::from([
                    (":order".to_owned(), s(c.order.id.as_str())),
                    (":line".to_owned(), s(claim.line.as_str())),
                ])),
            )?);
        }
        let claims_at = claims_from..items.len();
        for released in &c.releases {
            items.push(delete(
                &self.table,
                key(payment_pk(released), PAYMENT_SK.to_owned()),
            )?);
        }
        if let Some(t) = &c.taking {
            let mut row = key(takings_pk(t.acquirer, &t.day), t.fact_id.clone());
            row.insert(DATA.into(), s(to_json(t)?));
            items.push(put(&self.table, row, None, None)?);
        }
        // A late fact of a closed day: the day's kept totals are no longer current (the row is replaced by one
        // without totals, its revision the fact's id, so a reader that computed before cannot keep its totals).
        if let (Some((source, day)), Some(fact)) = (&c.stale_day, c.fact) {
            let mut row = key(format!("DAYSUM#{source}"), day.clone());
            row.insert("rev".into(), s(fact.id.as_str()));
            items.push(put(&self.table, row, None, None)?);
        }
        let row = || key(UNMATCHED_PK.to_owned(), c.order.id.to_string());
        match &c.projections.unmatched {
            UnmatchedRow::NotUnmatched => {}
            UnmatchedRow::Keep(receipt) => {
                let mut row = row();
                row.insert(DATA.into(), s(to_json(receipt)?));
                items.push(put(&self.table, row, None, None)?);
            }
            UnmatchedRow::Drop => items.push(delete(&self.table, row())?),
        }
        // Dropped only by `forget_unresolved`, after the money moved (see the port).
        if c.projections.awaiting_reference {
            let row = key(UNRESOLVED_PK.to_owned(), c.order.id.to_string());
            items.push(put(&self.table, row, None, None)?);
        }
        for entry in c.directory.iter().take(MAX_DIRECTORY_ITEMS) {
            let mut row = key(format!("STORE#{}", entry.key), STORE_SK.to_owned());
            row.insert("order_id".into(), s(entry.order_id.as_str()));
            row.insert(DATA.into(), s(to_json(entry)?));
            items.push(put(&self.table, row, None, None)?);
        }
        // The questions status-sync asks follow the order's money (a handful per order; more would be a store
        // gone wrong, and the transaction must stay under 100 items): the rest is logged for a person.
        if c.projections.watch_opened.len() > MAX_WATCH_ITEMS {
            tracing::error!(order_id = %c.order.id, questions = c.projections.watch_opened.len(), kept = MAX_WATCH_ITEMS, "too many open questions for one order change; only the first are asked about, a person must look");
        }
        for entry in c.projections.watch_opened.iter().take(MAX_WATCH_ITEMS) {
            items.push(put(&self.table, watch_item(WATCH_PK, entry)?, None, None)?);
        }
        for closed in &c.projections.watch_closed {
            items.push(delete(
                &self.table,
                key(WATCH_PK.to_owned(), closed.clone()),
            )?);
        }
        // The open-orders index follows every change of the order.
        match &c.projections.open {
            Some(open) => {
                let mut row = key(OPEN_PK.to_owned(), c.order.id.to_string());
                row.insert(DATA.into(), s(to_json(open)?));
                items.push(put(&self.table, row, None, None)?);
            }
            None => {
                items.push(delete(
                    &self.table,
                    key(OPEN_PK.to_owned(), c.order.id.to_string()),
                )?);
            }
        }
        // A person's lists follow the order's breaks; a row keeps the time it was first shown.
        for row in &c.projections.attention {
            items.push(attention_row(&self.table, row)?);
        }
        for kind in &c.projections.attention_closed {
            items.push(delete(
                &self.table,
                key(attention_pk(*kind), c.order.id.to_string()),
            )?);
        }
        // The order's history: every event it announced, kept after the outbox row is cleared.
        let mut history = key(order_pk(&c.order.id), event_sk(c.order.version));
        history.insert("type".into(), s("event"));
        history.insert(DATA.into(), s(to_json(c.event)?));
        items.push(put(&self.table, history, None, None)?);
        // Every change is news for 1C until it acknowledges this version.
        let mut feed = key(FEED_1C_PK.to_owned(), c.order.id.to_string());
        feed.insert(VERSION.into(), n(c.order.version));
        items.push(put(&self.table, feed, None, None)?);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(e, c.fact.is_some(), claims_at)),
        }
    }

    async fn order_for_payment(&self, payment: &PaymentRef) -> Result<Option<OrderId>, StoreError> {
        let Some(item) = self
            .get(key(payment_pk(payment), PAYMENT_SK.to_owned()))
            .await?
        else {
            return Ok(None);
        };
        let id = item
            .get("order_id")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt {
                key: payment_pk(payment),
                reason: "no order_id".into(),
            })?;
        OrderId::parse(id.clone())
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                key: payment_pk(payment),
                reason: e.to_string(),
            })
    }

    async fn order_facts(&self, order: &OrderId) -> Result<Vec<PaymentFact>, StoreError> {
        self.query_partition(&order_pk(order), Some("FACT#"), None, usize::MAX)
            .await?
            .iter()
            .map(from_data)
            .collect()
    }

    async fn pending_event(
        &self,
        order: &OrderId,
        event_id: &str,
    ) -> Result<Option<OrderEvent>, StoreError> {
        match self
            .get(key(OUTBOX_PK.to_owned(), outbox_sk(order, event_id)))
            .await?
        {
            Some(item) => from_data(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn clear_pending(&self, order: &OrderId, event_id: &str) -> Result<(), StoreError> {
        self.delete(key(OUTBOX_PK.to_owned(), outbox_sk(order, event_id)))
            .await
    }

    async fn list_pending(
        &self,
        created_before_ms: i64,
        limit: usize,
    ) -> Result<Vec<OrderEvent>, StoreError> {
        let items = self
            .query_partition(
                OUTBOX_PK,
                None,
                Some(("created_ms < :v", n(created_before_ms))),
                usize::MAX,
            )
            .await?;
        let mut events = items
            .iter()
            .map(from_data::<OrderEvent>)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| e.at_ms);
        events.truncate(limit);
        Ok(events)
    }
}

#[async_trait]
impl StoreDirectory for DynamoLedgerStore {
    async fn directory(
        &self,
        key_: &str,
    ) -> Result<Option<crate::domain::DirectoryEntry>, StoreError> {
        match self
            .get(key(format!("STORE#{key_}"), STORE_SK.to_owned()))
            .await?
        {
            Some(item) => from_data(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn unresolved(&self, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        self.query_partition(UNRESOLVED_PK, None, None, limit)
            .await?
            .iter()
            .map(|item| {
                let sk = item
                    .get(SK)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                OrderId::parse(sk).map_err(|e| StoreError::Corrupt {
                    key: UNRESOLVED_PK.into(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    async fn forget_unresolved(&self, order: &OrderId) -> Result<(), StoreError> {
        self.delete(key(UNRESOLVED_PK.to_owned(), order.to_string()))
            .await
    }
}

#[async_trait]
impl OrderViews for DynamoLedgerStore {
    async fn open_orders(
        &self,
        limit: usize,
    ) -> Result<Vec<crate::domain::matching::OpenOrder>, StoreError> {
        self.query_partition(OPEN_PK, None, None, limit)
            .await?
            .iter()
            .map(from_data)
            .collect()
    }

    async fn unmatched_receipts(&self, limit: usize) -> Result<Vec<UnmatchedReceipt>, StoreError> {
        self.query_partition(UNMATCHED_PK, None, None, limit)
            .await?
            .iter()
            .map(from_data)
            .collect()
    }
}

#[async_trait]
impl Takings for DynamoLedgerStore {
    async fn card_takings(&self, acquirer: Source, day: &str) -> Result<Vec<Taking>, StoreError> {
        self.query_partition(&takings_pk(acquirer, day), None, None, usize::MAX)
            .await?
            .iter()
            .map(from_data)
            .collect()
    }

    async fn record_settlement(&self, report: &SettlementReport) -> Result<bool, StoreError> {
        let mut item = key(
            format!("SETTLEMENT#{}", report.key),
            SETTLEMENT_SK.to_owned(),
        );
        let data = s(to_json(report)?);
        item.insert(DATA.into(), data.clone());
        // The settlement, its row in the acquirer's report and (when it does not reconcile) the break for a
        // person, at once: a re-read statement finds the settlement kept and writes none of them again.
        let first_day = report.days.first().map_or("", String::as_str);
        let mut by_day = key(
            format!("SETTLEMENTS#{}", report.acquirer),
            format!("{first_day}#{}", report.key),
        );
        by_day.insert(DATA.into(), data);
        let mut items = vec![
            put(&self.table, item, Some("attribute_not_exists(pk)"), None)?,
            put(&self.table, by_day, None, None)?,
        ];
        if let Some(mismatch) = attention::payout_mismatch(report, crate::platform::clock::now_ms())
        {
            items.push(attention_row(&self.table, &mismatch)?);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = e.into_service_error();
                let kept_before = match &e {
                    TransactWriteItemsError::TransactionCanceledException(c) => {
                        c.cancellation_reasons().first().and_then(|r| r.code())
                            == Some("ConditionalCheckFailed")
                    }
                    _ => false,
                };
                if kept_before {
                    Ok(false)
                } else {
                    Err(unavailable(e))
                }
            }
        }
    }

    async fn settlements(
        &self,
        acquirer: Source,
        from: &str,
        to: &str,
    ) -> Result<Vec<SettlementReport>, StoreError> {
        self.day_range(&format!("SETTLEMENTS#{acquirer}"), from, to)
            .await?
            .iter()
            .map(from_data)
            .collect()
    }

    async fn cached_days(
        &self,
        source: Source,
        from: &str,
        to: &str,
    ) -> Result<Vec<CachedDay>, StoreError> {
        self.day_range(&format!("DAYSUM#{source}"), from, to)
            .await?
            .iter()
            .map(|item| {
                let rev = string_attr(item, "rev");
                let current = item.contains_key(DATA) && string_attr(item, "data_rev") == rev;
                Ok(CachedDay {
                    day: item
                        .get(SK)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default(),
                    rev,
                    totals: if current {
                        Some(from_data(item)?)
                    } else {
                        None
                    },
                })
            })
            .collect()
    }

    async fn cache_day(
        &self,
        source: Source,
        day: &str,
        totals: DayTotals,
        rev: &str,
    ) -> Result<bool, StoreError> {
        let mut item = key(format!("DAYSUM#{source}"), day.to_owned());
        item.insert(DATA.into(), s(to_json(&totals)?));
        item.insert("rev".into(), s(rev));
        item.insert("data_rev".into(), s(rev));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = if rev.is_empty() {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("#rev = :rev")
                .expression_attribute_names("#rev", "rev")
                .expression_attribute_values(":rev", s(rev))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_conditional_check_failed_exception() {
                    Ok(false)
                } else {
                    Err(unavailable(e))
                }
            }
        }
    }
}

fn string_attr(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

impl DynamoLedgerStore {
    /// Items of `pk` whose sort key is within `from..=to~` (a day range over `<day>…` keys): one query, paged.
    async fn day_range(&self, pk: &str, from: &str, to: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":from", s(from))
                // `~` sorts after every character of a key's tail (`#`, digits, letters).
                .expression_attribute_values(":to", s(format!("{to}~")))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(e.into_service_error()))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(items)
    }
}

#[async_trait]
impl Cursors for DynamoLedgerStore {
    async fn watermark(&self, source: &str) -> Result<Option<String>, StoreError> {
        let item = self
            .get(key(format!("WATERMARK#{source}"), WATERMARK_SK.to_owned()))
            .await?;
        Ok(item.and_then(|i| i.get("value").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn set_watermark(&self, source: &str, value: &str) -> Result<(), StoreError> {
        let mut item = key(format!("WATERMARK#{source}"), WATERMARK_SK.to_owned());
        item.insert("value".into(), s(value));
        self.put_plain(item).await
    }
}

#[async_trait]
impl Watchlist for DynamoLedgerStore {
    async fn watch(&self, entry: &WatchEntry) -> Result<(), StoreError> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(watch_item(WATCH_PK, entry)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        // Already open: its schedule stays.
        unless_condition_failed(out.map(drop).map_err(SdkError::into_service_error))
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<WatchEntry>, StoreError> {
        let mut due: Vec<WatchEntry> = self
            .query_partition(
                WATCH_PK,
                None,
                Some(("due_ms <= :v", n(now_ms))),
                usize::MAX,
            )
            .await?
            .iter()
            .map(watch_entry)
            .collect::<Result<_, _>>()?;
        due.sort_by_key(|e| (e.due_ms, e.since_ms));
        due.truncate(limit);
        Ok(due)
    }

    async fn reschedule(&self, key_: &str, due_ms: i64, checks: u32) -> Result<(), StoreError> {
        // Only a question still open: one a commit closed meanwhile stays closed.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(WATCH_PK.to_owned(), key_.to_owned())))
            .update_expression("SET #due = :due, #checks = :checks")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#due", DUE)
            .expression_attribute_names("#checks", CHECKS)
            .expression_attribute_values(":due", n(due_ms))
            .expression_attribute_values(":checks", n(checks))
            .send()
            .await;
        unless_condition_failed(out.map(drop).map_err(SdkError::into_service_error))
    }

    async fn close(&self, key_: &str) -> Result<(), StoreError> {
        self.delete(key(WATCH_PK.to_owned(), key_.to_owned())).await
    }

    async fn give_up(&self, entry: &WatchEntry) -> Result<(), StoreError> {
        // Kept for a person first: a crash in between asks once more rather than losing the question.
        self.put_plain(watch_item(STATUS_UNKNOWN_PK, entry)?)
            .await?;
        self.close(&entry.key()).await
    }

    async fn status_unknown(&self, limit: usize) -> Result<Vec<WatchEntry>, StoreError> {
        self.query_partition(STATUS_UNKNOWN_PK, None, None, limit)
            .await?
            .iter()
            .map(watch_entry)
            .collect()
    }
}

#[async_trait]
impl Attention for DynamoLedgerStore {
    async fn attention(
        &self,
        kind: attention::Kind,
        limit: usize,
    ) -> Result<Vec<Item_>, StoreError> {
        if kind == attention::Kind::StatusUnknown {
            return Ok(self
                .status_unknown(limit)
                .await?
                .iter()
                .map(attention::status_unknown)
                .collect());
        }
        self.query_partition(&attention_pk(kind), None, None, limit)
            .await?
            .iter()
            .map(attention_item)
            .collect()
    }

    async fn accept(
        &self,
        kind: attention::Kind,
        key_: &str,
        audit: &crate::domain::Audit,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let pk = if kind == attention::Kind::StatusUnknown {
            STATUS_UNKNOWN_PK.to_owned()
        } else {
            attention_pk(kind)
        };
        let row = key(pk, key_.to_owned());
        let Some(current) = self.get(row.clone()).await? else {
            return Ok(false);
        };
        let mut accepted = key(format!("ACCEPTED#{kind}"), key_.to_owned());
        accepted.insert(
            DATA.into(),
            s(to_json(&serde_json::json!({
                "audit": audit,
                "at_ms": at_ms,
                "item": current.get(DATA).and_then(|v| v.as_s().ok()),
            }))?),
        );
        let remove = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(row))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(unavailable)?;
        let out = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(remove).build())
            .transact_items(put(&self.table, accepted, None, None)?)
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) => match e.into_service_error() {
                // Accepted meanwhile by someone else.
                TransactWriteItemsError::TransactionCanceledException(_) => Ok(false),
                other => Err(unavailable(other)),
            },
        }
    }
}

fn sign_in_key(login: &str) -> Item {
    key(format!("SIGNIN#{login}"), "#SIGNIN".to_owned())
}

#[async_trait]
impl SignIns for DynamoLedgerStore {
    async fn failures(&self, login: &str) -> Result<(u32, i64), StoreError> {
        let item = self.get(sign_in_key(login)).await?;
        let number = |name: &str| {
            item.as_ref()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok((
            u32::try_from(number("failures")).unwrap_or(u32::MAX),
            number("last_ms"),
        ))
    }

    async fn failed(&self, login: &str, at_ms: i64) -> Result<u32, StoreError> {
        // Forgotten a day after the last failure (the table's TTL).
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(sign_in_key(login)))
            .update_expression("ADD failures :one SET last_ms = :at, #ttl = :ttl")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", n(at_ms))
            .expression_attribute_values(":ttl", n(at_ms / 1000 + 86_400))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(out
            .attributes
            .as_ref()
            .and_then(|a| a.get("failures"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX))
    }

    async fn succeeded(&self, login: &str) -> Result<(), StoreError> {
        self.delete(sign_in_key(login)).await
    }

    async fn sign_out(&self, sid: &str, until_ms: i64) -> Result<(), StoreError> {
        // The row outlives the session by a minute of clock skew, then the table's TTL removes it.
        let mut item = sign_out_key(sid);
        item.insert(TTL_ATTRIBUTE.to_owned(), n(until_ms / 1000 + 60));
        self.put_plain(item).await
    }

    async fn signed_out(&self, sid: &str) -> Result<bool, StoreError> {
        Ok(self.get(sign_out_key(sid)).await?.is_some())
    }
}

fn sign_out_key(sid: &str) -> Item {
    key(format!("SIGNOUT#{sid}"), "#SIGNOUT".to_owned())
}

#[async_trait]
impl Histories for DynamoLedgerStore {
    async fn history(&self, id: &OrderId) -> Result<OrderHistory, StoreError> {
        let mut history = OrderHistory::default();
        for item in self.order_partition(id).await? {
            let sk = item
                .get(SK)
                .and_then(|v| v.as_s().ok())
                .map_or("", String::as_str);
            if sk == ORDER_SK {
                history.order = Some(from_data(&item)?);
            } else if sk.starts_with("FACT#") {
                history.facts.push(from_data(&item)?);
            } else if sk.starts_with("EVENT#") {
                history.events.push(from_data(&item)?);
            }
        }
        history
            .facts
            .sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
        Ok(history)
    }

    async fn waiting_for_1c(&self, order: &OrderId) -> Result<Option<u64>, StoreError> {
        let item = self
            .get(key(FEED_1C_PK.to_owned(), order.to_string()))
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get(VERSION))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok()))
    }
}

/// Markers live beside the cursors, under `WATERMARK#<kind>#<key>` (the keys they always had).
#[async_trait]
impl Markers for DynamoLedgerStore {
    async fn marker(&self, kind: MarkerKind, key: &str) -> Result<Option<String>, StoreError> {
        self.watermark(&format!("{}#{key}", kind.as_str())).await
    }

    async fn set_marker(&self, kind: MarkerKind, key: &str, value: &str) -> Result<(), StoreError> {
        self.set_watermark(&format!("{}#{key}", kind.as_str()), value)
            .await
    }
}

#[async_trait]
impl Feed1c for DynamoLedgerStore {
    async fn feed_1c(&self, limit: usize) -> Result<Vec<(OrderId, u64)>, StoreError> {
        let items = self.query_partition(FEED_1C_PK, None, None, limit).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let order = item.get(SK).and_then(|v| v.as_s().ok())?;
                let version = item
                    .get(VERSION)
                    .and_then(|v| v.as_n().ok())?
                    .parse::<u64>()
                    .ok()?;
                Some((OrderId::parse(order.clone()).ok()?, version))
            })
            .collect())
    }

    async fn ack_feed_1c(&self, sent: &[(OrderId, u64)]) -> Result<(), StoreError> {
        for (order, version) in sent {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(FEED_1C_PK.to_owned(), order.to_string())))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(version))
                .send()
                .await;
            match result {
                Ok(_) => {}
                // Changed again after the query: it stays in the feed for the next exchange.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(unavailable(e.into_service_error())),
            }
        }
        Ok(())
    }
}

fn upload_pk(session: &str, file: &str) -> String {
    format!("UPLOAD#{session}#{file}")
}

#[async_trait]
impl ExchangeStore for DynamoLedgerStore {
    async fn put_session(&self, session: &ExchangeSession) -> Result<(), StoreError> {
        let mut item = key(format!("SESSION#{}", session.id), SESSION_SK.to_owned());
        item.insert(TTL_ATTRIBUTE.into(), n(session.expires_at));
        item.insert(DATA.into(), s(to_json(session)?));
        self.put_plain(item).await
    }

    async fn session(&self, id: &str) -> Result<Option<ExchangeSession>, StoreError> {
        match self
            .get(key(format!("SESSION#{id}"), SESSION_SK.to_owned()))
            .await?
        {
            Some(item) => from_data(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn append_chunk(
        &self,
        session: &str,
        file: &str,
        bytes: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let pk = upload_pk(session, file);
        // The chunk number comes from an atomic counter on the upload's meta item.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.clone(), META_SK.to_owned())))
            .update_expression("ADD chunks :one SET expires_at = :exp")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        let seq = out
            .attributes()
            .and_then(|a| a.get("chunks"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| StoreError::Corrupt {
                key: pk.clone(),
                reason: "no chunk counter".into(),
            })?;
        let mut item = key(pk, format!("CHUNK#{seq:08}"));
        item.insert(
            DATA.into(),
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes.to_vec())),
        );
        item.insert(TTL_ATTRIBUTE.into(), n(expires_at));
        self.put_plain(item).await
    }

    async fn uploaded(&self, session: &str, file: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let chunks = self
            .query_partition(&upload_pk(session, file), Some("CHUNK#"), None, usize::MAX)
            .await?;
        let mut out: Option<Vec<u8>> = None;
        for item in &chunks {
            if let Some(AttributeValue::B(blob)) = item.get(DATA) {
                out.get_or_insert_with(Vec::new)
                    .extend_from_slice(blob.as_ref());
            }
        }
        Ok(out)
    }

    async fn import_progress(
        &self,
        session: &str,
        file: &str,
    ) -> Result<ImportProgress, StoreError> {
        let item = self
            .get(key(upload_pk(session, file), META_SK.to_owned()))
            .await?;
        match item
            .as_ref()
            .and_then(|i| i.get("progress"))
            .and_then(|v| v.as_s().ok())
        {
            Some(json) => serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
                key: upload_pk(session, file),
                reason: e.to_string(),
            }),
            None => Ok(ImportProgress::default()),
        }
    }

    async fn set_import_progress(
        &self,
        session: &str,
        file: &str,
        progress: &ImportProgress,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(upload_pk(session, file), META_SK.to_owned())))
            .update_expression("SET progress = :p, expires_at = :exp")
            .expression_attribute_values(":p", s(to_json(progress)?))
            .expression_attribute_values(":exp", n(expires_at))
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(())
    }

    async fn set_tap_pending(
        &self,
        key_: &str,
        file: &str,
        pending: bool,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let item_key = key(TAPS_PK.to_owned(), format!("{key_}#{file}"));
        if pending {
            let mut item = item_key;
            item.insert("created_ms".into(), n(crate::platform::clock::now_ms()));
            item.insert(TTL_ATTRIBUTE.into(), n(expires_at));
            self.put_plain(item).await
        } else {
            self.delete(item_key).await
        }
    }

    async fn pending_taps(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let items = self.query_partition(TAPS_PK, None, None, limit).await?;
        Ok(items
            .iter()
            .filter_map(|i| i.get(SK).and_then(|v| v.as_s().ok()))
            .filter_map(|sk| {
                sk.split_once('#')
                    .map(|(k, f)| (k.to_owned(), f.to_owned()))
            })
            .collect())
    }
}

/// Create the ledger table (local runs and tests; in AWS the SAM template creates it).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(unavailable)
    };
    let key_el = |name: &str, kt: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kt)
            .build()
            .map_err(unavailable)
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .key_schema(key_el(PK, KeyType::Hash)?)
        .key_schema(key_el(SK, KeyType::Range)?)
        .send()
        .await
        .map_err(|e| unavailable(e.into_service_error()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(unavailable)?,
        )
        .send()
        .await
        .map_err(|e| unavailable(e.into_service_error()))?;
    Ok(())
}

/// The store's REST budget as one row of the ledger table (`BUDGET#<name>` / `#BUDGET`: `milli`, `at_ms`), taken by a
/// conditional write on the level it was read at, so concurrent invocations never spend the same call twice.
pub struct DynamoBudget {
    store: DynamoLedgerStore,
    key: Item,
    limit: crate::ports::budget::RestLimit,
}

impl DynamoBudget {
    /// `name`: whose limit (`bitrix`: the store's webhook).
    pub fn new(
        store: &DynamoLedgerStore,
        name: &str,
        limit: crate::ports::budget::RestLimit,
    ) -> Self {
        DynamoBudget {
            store: store.clone(),
            key: key(format!("BUDGET#{name}"), "#BUDGET".to_owned()),
            limit,
        }
    }

    async fn read(&self) -> Result<Option<crate::ports::budget::Bucket>, StoreError> {
        let item = self.store.get(self.key.clone()).await?;
        let number = |item: &Item, name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        Ok(item.and_then(|i| {
            Some(crate::ports::budget::Bucket {
                milli: number(&i, "milli")?,
                at_ms: number(&i, "at_ms")?,
            })
        }))
    }

    /// Write `next` if the row still holds `was` (absent when `None`); `false` when another invocation moved it.
    async fn swap(
        &self,
        was: Option<crate::ports::budget::Bucket>,
        next: crate::ports::budget::Bucket,
    ) -> Result<bool, StoreError> {
        let mut item = self.key.clone();
        item.insert("milli".into(), n(next.milli));
        item.insert("at_ms".into(), n(next.at_ms));
        let mut put = self
            .store
            .client
            .put_item()
            .table_name(&self.store.table)
            .set_item(Some(item));
        put = match was {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(b) => put
                .condition_expression("milli = :m AND at_ms = :a")
                .expression_attribute_values(":m", n(b.milli))
                .expression_attribute_values(":a", n(b.at_ms)),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = e.into_service_error();
                if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e)
                    == Some("ConditionalCheckFailedException")
                {
                    Ok(false)
                } else {
                    Err(unavailable(e))
                }
            }
        }
    }
}

#[async_trait]
impl crate::ports::budget::RequestBudget for DynamoBudget {
    async fn take(
        &self,
        priority: crate::ports::budget::Priority,
        now_ms: i64,
    ) -> Result<crate::ports::budget::Take, StoreError> {
        use crate::ports::budget::{Bucket, Take};
        // A few rounds against other invocations taking at the same moment; then wait a little and ask again.
        for _ in 0..4 {
            let was = self.read().await?;
            let bucket = was.unwrap_or_else(|| Bucket::full(self.limit, now_ms));
            match bucket.take(self.limit, priority, now_ms) {
                Err(wait) => return Ok(Take::Wait(wait)),
                Ok(next) => {
                    if self.swap(was, next).await? {
                        return Ok(Take::Granted);
                    }
                }
            }
        }
        Ok(Take::Wait(50))
    }

    async fn drain(&self, now_ms: i64) -> Result<(), StoreError> {
        let mut item = self.key.clone();
        item.insert("milli".into(), n(0));
        item.insert("at_ms".into(), n(now_ms));
        self.store.put_plain(item).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;

    #[test]
    fn order_item_round_trips_through_its_data_attribute() {
        let id = OrderId::parse("42").unwrap();
        let mut order = Order::new(id.clone());
        let fact = PaymentFact::new(
            FactId::new(Source::Tbank, "1#CONFIRMED").unwrap(),
            id,
            PaymentRef::new(Source::Tbank, "1").unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Refund {
                amount: RefundAmount::Remaining(10),
            },
            5,
        )
        .unwrap();
        order.apply(&fact).unwrap();
        order.version = 3;
        let item = order_item(&order).unwrap();
        assert_eq!(item.get("version"), Some(&AttributeValue::N("3".into())));
        assert_eq!(from_data::<Order>(&item).unwrap(), order);
        let fitem = fact_item(&fact).unwrap();
        assert_eq!(
            fitem.get(SK),
            Some(&AttributeValue::S("FACT#tbank#1#CONFIRMED".into()))
        );
        assert_eq!(from_data::<PaymentFact>(&fitem).unwrap(), fact);
    }
}
