//! The money of one business day (Moscow) per source: what the acquirers (and the bank account) took and refunded,
//! the fee and payout of the acquirers' settlements covering the day, and what is left unexplained. Pure: takings
//! and settlement reports in, a day's figures out; the console's overview, chart and reconciliation report read it.
//!
//! A settlement covering several days counts on its first day (the key it is kept under).

use serde::{Deserialize, Serialize};

use super::fact::Source;
use super::settlement::{SettlementReport, Taking};

/// Sums of one source's takings on one day, minor units (what a cached day keeps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    pub taken: i64,
    pub refunded: i64,
    /// Facts that moved money that day.
    pub facts: usize,
}

impl DayTotals {
    pub fn of(takings: &[Taking]) -> DayTotals {
        takings.iter().fold(DayTotals::default(), |t, x| DayTotals {
            taken: t.taken + x.captured,
            refunded: t.refunded + x.refunded,
            facts: t.facts + 1,
        })
    }
}

/// Where a day's money stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// Nothing was taken.
    Quiet,
    /// Paid out, and it reconciles.
    Reconciled,
    /// A payout does not reconcile (see the settlement's problems).
    Mismatch,
    /// Money taken, no payout seen yet.
    AwaitingPayout,
    /// Bank transfers: money already on the account, nothing to pay out.
    OnAccount,
}

impl DayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DayStatus::Quiet => "quiet",
            DayStatus::Reconciled => "reconciled",
            DayStatus::Mismatch => "mismatch",
            DayStatus::AwaitingPayout => "awaiting_payout",
            DayStatus::OnAccount => "on_account",
        }
    }
}

/// One source's business day: taken and refunded (from the takings), fee and paid out (from the settlements whose
/// first day it is), all minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    pub source: Source,
    /// `YYYY-MM-DD`, Moscow.
    pub day: String,
    pub taken: i64,
    pub refunded: i64,
    pub fee: i64,
    pub paid_out: i64,
    pub status: DayStatus,
    /// What the settlements said did not reconcile.
    pub problems: Vec<String>,
}

impl DayFigures {
    /// Taken − refunded − fee − paid out: what the acquirer still owes for the day (0 when reconciled; for the bank
    /// 0 by definition, the money is on the account).
    pub fn difference(&self) -> i64 {
        if self.source == Source::Bank {
            return 0;
        }
        self.taken - self.refunded - self.fee - self.paid_out
    }
}

/// The figures of `source` on `day` from that day's totals and the settlements kept under it.
pub fn day_figures(
    source: Source,
    day: &str,
    totals: DayTotals,
    settlements: &[SettlementReport],
) -> DayFigures {
    let ours: Vec<&SettlementReport> = settlements
        .iter()
        .filter(|s| s.acquirer == source && s.days.first().map(String::as_str) == Some(day))
        .collect();
    let fee = ours.iter().map(|s| s.stated_fee.unwrap_or(s.fee)).sum();
    let paid_out = ours.iter().map(|s| s.credited).sum();
    let problems: Vec<String> = ours.iter().flat_map(|s| s.problems.clone()).collect();
    let status = if source == Source::Bank {
        if totals.facts == 0 {
            DayStatus::Quiet
        } else {
            DayStatus::OnAccount
        }
    } else if !problems.is_empty() {
        DayStatus::Mismatch
    } else if !ours.is_empty() {
        DayStatus::Reconciled
    } else if totals.taken == 0 && totals.refunded == 0 {
        DayStatus::Quiet
    } else {
        DayStatus::AwaitingPayout
    };
    DayFigures {
        source,
        day: day.to_owned(),
        taken: totals.taken,
        refunded: totals.refunded,
        fee,
        paid_out,
        status,
        problems,
    }
}

/// The `n` business days ending with `last` (`YYYY-MM-DD`), oldest first; empty when `last` is not a date.
pub fn days_until(last: &str, n: usize) -> Vec<String> {
    let Ok(last) = time::Date::parse(last, &time::format_description::well_known::Iso8601::DATE)
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = (0..n)
        .map_while(|i| last.checked_sub(time::Duration::days(i64::try_from(i).ok()?)))
        .map(super::settlement::iso)
        .collect();
    out.reverse();
    out
}

/// The sources a daybook covers, in the order the console shows them.
pub const SOURCES: [Source; 4] = [Source::Tbank, Source::Sber, Source::Yookassa, Source::Bank];

#[cfg(test)]
mod tests {
    use super::*;

    fn taking(captured: i64, refunded: i64) -> Taking {
        Taking {
            acquirer: Source::Tbank,
            day: "2026-11-30".into(),
            fact_id: format!("tbank#{captured}#{refunded}"),
            captured,
            refunded,
            fee: None,
        }
    }

    fn report(credited: i64, fee: i64, problems: Vec<String>) -> SettlementReport {
        SettlementReport {
            key: "k".into(),
            acquirer: Source::Tbank,
            days: vec!["2026-11-30".into()],
            credited,
            payments: 2,
            captured: 10_000,
            refunded: 1_000,
            fee,
            stated_fee: None,
            payment_fees: None,
            reconciled: problems.is_empty(),
            problems,
        }
    }

    #[test]
    fn days_count_back_over_month_ends() {
        assert_eq!(
            days_until("2026-12-01", 3),
            ["2026-11-29", "2026-11-30", "2026-12-01"]
        );
        assert!(days_until("not a day", 3).is_empty());
    }

    #[test]
    fn a_reconciled_day_leaves_no_difference() {
        let totals = DayTotals::of(&[taking(10_000, 0), taking(0, 1_000)]);
        assert_eq!(
            totals,
            DayTotals {
                taken: 10_000,
                refunded: 1_000,
                facts: 2
            }
        );
        let d = day_figures(
            Source::Tbank,
            "2026-11-30",
            totals,
            &[report(8_800, 200, vec![])],
        );
        assert_eq!((d.fee, d.paid_out, d.difference()), (200, 8_800, 0));
        assert_eq!(d.status, DayStatus::Reconciled);
    }

    #[test]
    fn a_day_without_its_payout_awaits_it_and_shows_what_is_owed() {
        let totals = DayTotals::of(&[taking(10_000, 0)]);
        let d = day_figures(Source::Tbank, "2026-11-30", totals, &[]);
        assert_eq!(
            (d.status, d.difference()),
            (DayStatus::AwaitingPayout, 10_000)
        );
        let other_day = day_figures(
            Source::Tbank,
            "2026-11-29",
            DayTotals::default(),
            &[report(1, 1, vec![])],
        );
        assert_eq!(other_day.status, DayStatus::Quiet);
    }

    #[test]
    fn a_mismatch_keeps_the_settlements_reasons() {
        let d = day_figures(
            Source::Tbank,
            "2026-11-30",
            DayTotals::of(&[taking(10_000, 0)]),
            &[report(5_000, 5_000, vec!["fee above 5%".into()])],
        );
        assert_eq!(d.status, DayStatus::Mismatch);
        assert_eq!(d.problems, ["fee above 5%"]);
    }
}
