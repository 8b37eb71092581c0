//! Proxy mode: write the ledger's payment truth into the store's own `mode=query` answer while keeping every byte
//! of the store's content. Edits are spliced into the original text: the requisites we own get their values
//! replaced (or are added), and for 2.10+ payment documents the store lacks are added under
//! `ПодчиненныеДокументы`.

use quick_xml::events::Event;
use quick_xml::Reader;

/// What to change in one order document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrichment {
    /// Requisites to set, `(Наименование, Значение)`.
    pub requisites: Vec<(String, String)>,
    /// Payment documents (as `ПодчиненныйДокумент` XML) with their `Ид`s; added when the store lacks that `Ид`.
    pub payments: Vec<(String, String)>,
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

/// An order document as found in the store's answer.
#[derive(Default)]
struct Found {
    id: Option<String>,
    number: Option<String>,
    /// Per requisite: name, the byte range of its `Значение` text (start, end), and whether that range is a whole
    /// empty element (`<Значение/>`) to be replaced.
    requisites: Vec<(String, (usize, usize, bool))>,
    requisites_end: Option<usize>,
    subordinate_ids: Vec<String>,
    subordinates_end: Option<usize>,
    doc_end: usize,
}

/// The order numbers (`Номер`, else `Ид`) of the top-level order documents, to look them up first.
pub fn order_numbers(text: &str) -> Vec<String> {
    scan(text)
        .into_iter()
        .filter_map(|f| f.number.or(f.id))
        .collect()
}

fn scan(text: &str) -> Vec<Found> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut found: Vec<Found> = Vec::new();
    let mut current: Option<(usize, Found)> = None;
    let mut req_name: Option<String> = None;
    let mut req_value: Option<(usize, usize, bool)> = None;
    let mut text_start = 0usize;
    let mut text_buf = String::new();
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(0);
        let Ok(event) = reader.read_event() else {
            break;
        };
        let after = usize::try_from(reader.buffer_position()).unwrap_or(0);
        match event {
            Event::Start(e) => {
                let name = local(e.name().as_ref()).to_owned();
                if name == "Документ" && current.is_none() && stack.len() <= 2 {
                    current = Some((stack.len(), Found::default()));
                }
                stack.push(name);
                text_buf.clear();
                text_start = after;
            }
            Event::Text(t) => text_buf.push_str(&t.xml10_content()),
            Event::GeneralRef(_) => text_buf.push('&'),
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if let Some((depth, f)) = current.as_mut() {
                    let rel = &stack[(*depth + 1).min(stack.len())..];
                    let value = text_buf.trim().to_owned();
                    match (
                        rel.iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .as_slice(),
                        name.as_str(),
                    ) {
                        ([], "Ид") => f.id = Some(value),
                        ([], "Номер") => f.number = Some(value),
                        (["ЗначенияРеквизитов", "ЗначениеРеквизита"], "Наименование") => {
                            req_name = Some(value)
                        }
                        (["ЗначенияРеквизитов", "ЗначениеРеквизита"], "Значение")
                            if req_value.is_none() =>
                        {
                            req_value = Some((text_start, before, false));
                        }
                        (["ЗначенияРеквизитов"], "ЗначениеРеквизита") => {
                            if let (Some(n), Some(r)) = (req_name.take(), req_value.take()) {
                                f.requisites.push((n, r));
                            }
                        }
                        ([], "ЗначенияРеквизитов") => {
                            f.requisites_end = Some(before)
                        }
                        (["ПодчиненныеДокументы", "ПодчиненныйДокумент"], "Ид") => {
                            f.subordinate_ids.push(value)
                        }
                        ([], "ПодчиненныеДокументы") => {
                            f.subordinates_end = Some(before)
                        }
                        _ => {}
                    }
                    if stack.len() == *depth && name == "Документ" {
                        f.doc_end = before;
                        if let Some((_, done)) = current.take() {
                            found.push(done);
                        }
                    }
                }
                text_buf.clear();
            }
            Event::Empty(e) => {
                let in_requisite = current.as_ref().is_some_and(|(depth, _)| {
                    let rel: Vec<&str> = stack[(*depth + 1).min(stack.len())..]
                        .iter()
                        .map(String::as_str)
                        .collect();
                    rel == ["ЗначенияРеквизитов", "ЗначениеРеквизита"]
                });
                if in_requisite && local(e.name().as_ref()) == "Значение" && req_value.is_none()
                {
                    req_value = Some((before, after, true));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    found
}

/// Apply `lookup` (order number or id → enrichment) to the store's answer. Unknown orders are left alone.
pub fn enrich(text: &str, lookup: impl Fn(&str) -> Option<Enrichment>) -> String {
    let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for f in scan(text) {
        let Some(e) = f
            .number
            .as_deref()
            .and_then(&lookup)
            .or_else(|| f.id.as_deref().and_then(&lookup))
        else {
            continue;
        };
        let mut added = String::new();
        for (name, value) in &e.requisites {
            match f.requisites.iter().find(|(n, _)| n == name) {
                Some((_, (start, end, false))) => edits.push((*start, *end, esc(value))),
                Some((_, (start, end, true))) => {
                    edits.push((*start, *end, format!("<Значение>{}</Значение>", esc(value))))
                }
                None => added.push_str(&format!(
                    "<ЗначениеРеквизита><Наименование>{}</Наименование><Значение>{}</Значение></ЗначениеРеквизита>",
                    esc(name),
                    esc(value)
                )),
            }
        }
        if !added.is_empty() {
            match f.requisites_end {
                Some(at) => edits.push((at, at, added)),
                None => edits.push((
                    f.doc_end,
                    f.doc_end,
                    format!("<ЗначенияРеквизитов>{added}</ЗначенияРеквизитов>"),
                )),
            }
        }
        let missing: String = e
            .payments
            .iter()
            .filter(|(id, _)| !f.subordinate_ids.contains(id))
            .map(|(_, xml)| xml.as_str())
            .collect();
        if !missing.is_empty() {
            match f.subordinates_end {
                Some(at) => edits.push((at, at, missing)),
                None => edits.push((
                    f.doc_end,
                    f.doc_end,
                    format!("<ПодчиненныеДокументы>{missing}</ПодчиненныеДокументы>"),
                )),
            }
        }
    }
    edits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out =
        String::with_capacity(text.len() + edits.iter().map(|e| e.2.len()).sum::<usize>());
    let mut at = 0;
    for (start, end, insert) in edits {
        if start < at {
            continue; // overlapping edit (malformed input): keep the first
        }
        out.push_str(&text[at..start]);
        out.push_str(&insert);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::commerceml::read;
    use crate::formats::commerceml::text::{decode, to_windows_1251};
    use crate::testing::fixtures_dir;

    fn fixture() -> String {
        let bytes = std::fs::read(
            fixtures_dir()
                .join("commerceml/dobromyslov__commerceml-parser__bitrix-query-response-full.xml"),
        )
        .unwrap();
        decode(&bytes).unwrap().0.into_owned()
    }

    #[test]
    fn known_orders_get_the_ledger_requisites_and_everything_else_stays() {
        let text = fixture();
        assert_eq!(order_numbers(&text), ["132", "133"]);
        let out = enrich(&text, |n| {
            (n == "132").then(|| Enrichment {
                requisites: vec![
                    ("Заказ оплачен".into(), "true".into()),
                    ("Сумма оплаты".into(), "231.74".into()),
                ],
                payments: vec![("tbank:1".into(), "<ПодчиненныйДокумент><Ид>tbank:1</Ид><ХозОперация>Эквайринговая операция</ХозОперация><Сумма>231.74</Сумма></ПодчиненныйДокумент>".into())],
            })
        });
        let before = read(&to_windows_1251(&text)).unwrap();
        let after = read(&to_windows_1251(&out)).unwrap();
        let (b, a) = (&before.documents[0], &after.documents[0]);
        assert_eq!(b.requisite("Заказ оплачен"), Some("false"));
        assert_eq!(a.requisite("Заказ оплачен"), Some("true"));
        assert_eq!(a.requisite("Сумма оплаты"), Some("231.74"));
        assert_eq!(a.subordinates.len(), 1);
        // Everything else of order 132 and all of order 133 is unchanged.
        assert_eq!(
            (&a.items, &a.counterparties, a.amount),
            (&b.items, &b.counterparties, b.amount)
        );
        assert_eq!(after.documents[1], before.documents[1]);
        let untouched_prefix = text.find("Заказ оплачен").unwrap();
        assert_eq!(out[..untouched_prefix], text[..untouched_prefix]);
        // Nothing known: byte for byte the same.
        assert_eq!(enrich(&text, |_| None), text);
        // An empty value element is filled, not shadowed by a second requisite.
        let empty = text.replacen("<Значение>false</Значение>", "<Значение/>", 1);
        let filled = enrich(&empty, |n| {
            (n == "132").then(|| Enrichment {
                requisites: vec![("Заказ оплачен".into(), "true".into())],
                payments: vec![],
            })
        });
        let x = read(&to_windows_1251(&filled)).unwrap();
        let paid: Vec<_> = x.documents[0]
            .requisites
            .iter()
            .filter(|(n, _)| n == "Заказ оплачен")
            .collect();
        assert_eq!(paid.len(), 1);
        assert_eq!(paid[0].1, "true");
    }
}
