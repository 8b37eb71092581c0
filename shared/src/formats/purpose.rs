//! Invoice and order references in a bank payment's purpose (`НазначениеПлатежа`).
//!
//! People write `по счету № 123`, `по сч.34`, `сч.№ 183 …, № 211 …`, `по сч 19-685`, `№ ХИМ-ММР286`, `по заказу
//! клиента №9614`, `по счету-оферте № 4512`, `по счет-договору №4513`, `по счетам №№ 4514, 4515`, `Оплата заказа
//! 4516 от …`, and Bitrix's payment account numbers `по счету № 392/1` (`<order number>/<payment>`). Contract (`договор`), personal-account (`ЛС`, `лицевой счет`), settlement-account (`р/с`,
//! `расчетный счет`) and tax-invoice (`счет-фактура`) numbers are not invoices, and neither are 20-digit account
//! numbers. Amounts written inside purposes are ignored: the document's `Сумма` is authoritative.

use regex::Regex;

pub use crate::domain::matching::Reference;

/// The compiled pattern set (compile once, at init).
pub struct PurposePatterns {
    invoice: Regex,
    order: Regex,
    chained: Regex,
    /// After `№№`: further numbers need no `№` of their own (`№№ 4514, 4515`).
    chained_plural: Regex,
}

const TOKEN: &str = r"([\p{L}\d][\p{L}\d/\-]{0,39})";

impl PurposePatterns {
    pub fn new() -> Result<Self, regex::Error> {
        Ok(PurposePatterns {
            // `сч` at a word start: "раСЧет" never matches.
            // `счет-оферта`, `счет-договор` are invoices (an offer or contract in the form of an invoice).
            invoice: Regex::new(&format!(
                r"(?i)(?:^|[^\p{{L}}])(сч[её]т[\p{{L}}]*|сч-т|сч)(\s*-\s*фактур)?(?:\s*-\s*(?:оферт|договор)[\p{{L}}]*)?\s*\.?\s*(?:на\s+оплату\s*)?(№+|N|#)?\s*{TOKEN}"
            ))?,
            order: Regex::new(&format!(
                r"(?i)(?:^|[^\p{{L}}])заказ[\p{{L}}]*\s+(?:клиента\s+|покупателя\s+)?(№|N|#)?\s*{TOKEN}"
            ))?,
            // `…№ 183 от 31.05.2022 г, № 211 …`: further numbers of the same kind.
            chained: Regex::new(&format!(
                r"(?i)^\s*(?:от\s+\d{{1,2}}[./]\d{{1,2}}[./]\d{{2,4}}\s*(?:г\.?)?)?\s*(?:,|;|и)\s*(?:№|N)\s*{TOKEN}"
            ))?,
            chained_plural: Regex::new(&format!(
                r"(?i)^\s*(?:от\s+\d{{1,2}}[./]\d{{1,2}}[./]\d{{2,4}}\s*(?:г\.?)?)?\s*(?:,|;|и)\s*(?:№|N)?\s*{TOKEN}"
            ))?,
        })
    }

    /// The references a purpose names, in order, without duplicates.
    pub fn references(&self, purpose: &str) -> Vec<Reference> {
        let text: std::borrow::Cow<'_, str> = if purpose.contains(['\u{a0}', '\u{202f}']) {
            purpose.replace(['\u{a0}', '\u{202f}'], " ").into()
        } else {
            purpose.into()
        };
        let mut out: Vec<Reference> = Vec::new();
        let push = |r: Reference, out: &mut Vec<Reference>| {
            if !out.contains(&r) {
                out.push(r);
            }
        };
        for caps in self.invoice.captures_iter(&text) {
            let (Some(keyword), Some(token)) = (caps.get(1), caps.get(4)) else {
                continue;
            };
            let plural = caps.get(3).is_some_and(|m| m.as_str().chars().count() > 1);
            if caps.get(2).is_some() {
                continue; // счет-фактура
            }
            // Only the words right before the keyword matter.
            let head = &text[..keyword.start()];
            let from = head.char_indices().rev().nth(15).map_or(0, |(i, _)| i);
            let before = head[from..].to_lowercase();
            let before = before.trim_end();
            if ["расчетный", "расчётный", "лицевой", "р/", "л/"]
                .iter()
                .any(|w| before.ends_with(w))
            {
                continue;
            }
            let Some(number) = clean(token.as_str()) else {
                continue;
            };
            push(Reference::Invoice(number), &mut out);
            let mut rest = &text[token.end()..];
            let chained = if plural {
                &self.chained_plural
            } else {
                &self.chained
            };
            while let Some(next) = chained.captures(rest) {
                let (Some(whole), Some(t)) = (next.get(0), next.get(1)) else {
                    break;
                };
                if let Some(n) = clean(t.as_str()) {
                    push(Reference::Invoice(n), &mut out);
                }
                rest = &rest[whole.end()..];
            }
        }
        for caps in self.order.captures_iter(&text) {
            let Some(token) = caps.get(2) else { continue };
            // Without `№`, only a plain number that is not the start of a date or an amount (`заказа 27.11.2026`).
            if caps.get(1).is_none() {
                let next: Vec<char> = text[token.end()..].chars().take(2).collect();
                let starts_date_or_amount =
                    matches!(next.as_slice(), ['.' | ',', d] if d.is_ascii_digit());
                if starts_date_or_amount || !token.as_str().chars().all(|c| c.is_ascii_digit()) {
                    continue;
                }
            }
            if let Some(n) = clean(token.as_str()) {
                push(Reference::Order(n), &mut out);
            }
        }
        out
    }
}

/// A number token: must hold a digit, may not be a bank account (16+ digits), trailing punctuation dropped.
fn clean(token: &str) -> Option<String> {
    let t = token.trim_end_matches(['-', '/']);
    let digits = t.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || (digits >= 16 && digits == t.chars().count()) {
        return None;
    }
    Some(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures_dir;

    fn inv(n: &str) -> Reference {
        Reference::Invoice(n.into())
    }

    #[test]
    fn every_real_purpose_yields_exactly_its_references() {
        let text = std::fs::read_to_string(fixtures_dir().join("statements/purposes.txt")).unwrap();
        let purposes: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.replace("\\n", "\n"))
            .collect();
        let expected: Vec<Vec<Reference>> = vec![
            vec![inv("1024")],
            vec![],
            vec![Reference::Order("9614".into())],
            vec![inv("125")],
            vec![inv("777")],
            vec![inv("198")],
            vec![inv("ХИМ-ММР286")],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![inv("34")],
            vec![],
            vec![],
            vec![inv("183"), inv("211")],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![inv("Ек2Тюм003221")],
            vec![inv("19-685")],
            vec![inv("130")],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![inv("53433")],
        ];
        assert_eq!(
            purposes.len(),
            expected.len(),
            "one expectation per purpose in the file"
        );
        let p = PurposePatterns::new().unwrap();
        for (purpose, want) in purposes.iter().zip(&expected) {
            assert_eq!(&p.references(purpose), want, "{purpose}");
        }
    }

    #[test]
    fn account_and_tax_invoice_numbers_are_not_invoices() {
        let p = PurposePatterns::new().unwrap();
        assert!(p
            .references("Перевод на расчетный счет 40702810000000000001")
            .is_empty());
        assert!(p
            .references("Оплата по счет-фактуре № 15 от 01.12.2026")
            .is_empty());
        assert!(p.references("Оплата по лицевой счет 1234567").is_empty());
        assert!(p.references("по счету 40702810000000000001").is_empty());
        assert_eq!(
            p.references("Оплата по сч-т № 00-123 от 25.11.2026"),
            vec![inv("00-123")]
        );
        assert_eq!(p.references("оплата счёта #A-17"), vec![inv("A-17")]);
    }

    /// Issue #14, kind 4: purposes as shops print them (cases 07, 08 and their kind).
    #[test]
    fn invoice_and_order_wording_as_shops_print_it() {
        let p = PurposePatterns::new().unwrap();
        let ord = |n: &str| Reference::Order(n.into());
        let table: &[(&str, Vec<Reference>)] = &[
            ("Оплата по счету № 392/1 от 28.11.2026. Сумма 1961-00 Без налога (НДС)", vec![inv("392/1")]),
            ("Возврат излишне перечисленных средств по счету № 392/1 от 28.11.2026. Без налога (НДС)", vec![inv("392/1")]),
            ("Оплата по счету-оферте № 4512 от 25.11.2026 (аванс 50%). НДС не облагается", vec![inv("4512")]),
            ("Оплата по счет-оферте №4512 от 25.11.2026", vec![inv("4512")]),
            ("Оплата по счет-договору №4513 от 26.11.2026, без НДС", vec![inv("4513")]),
            ("Оплата по счету-договору № 77 от 26.11.2026", vec![inv("77")]),
            ("Оплата по счетам №№ 4514, 4515 от 27.11.2026. Без НДС", vec![inv("4514"), inv("4515")]),
            ("Оплата по счетам №№ 10, 11 и 12", vec![inv("10"), inv("11"), inv("12")]),
            ("Оплата заказа 4516 от 27.11.2026, НДС не облагается", vec![ord("4516")]),
            ("Оплата заказа от 27.11.2026, НДС не облагается", vec![]),
            ("Оплата заказа 27.11.2026", vec![]),
            ("Оплата по заказу № ИМ-4517", vec![ord("ИМ-4517")]),
            // One № means one number: a later bare number is an amount or a date, not an invoice.
            ("Оплата по счету № 5 от 01.01.2026, 1500 руб", vec![inv("5")]),
            ("Оплата по счет-фактуре № 88", vec![]),
        ];
        for (purpose, want) in table {
            assert_eq!(&p.references(purpose), want, "{purpose}");
        }
    }
}
