//! Fiscal receipts (54-FZ) for refunds made through an acquirer's receipts service.
//!
//! A partial refund at YooKassa for a shop on "Чеки от ЮKassa" is refused without a `receipt` naming the returned
//! goods; T-Bank's `Cancel` takes a `Receipt` the same way when the shop's online cashbox is T-Bank's ("При полной
//! отмене структура чека не передается, при частичной — передаются товары, которые нужно отменить", EACQ OpenAPI
//! v1.80, `Cancel`). A full refund of a payment needs none: the service reverses the payment's own receipt.
//!
//! The goods come from the order's basket as the store described it (store-sync keeps name, unit price, quantity,
//! amount and VAT rate per line, and delivery). A partial refund's receipt must add up to the refund exactly, so
//! it names the whole basket lines whose amounts sum to it, or some whole units of one line; when neither is one
//! unambiguous choice, no receipt can be built and the refund is refused before any call, with the reason.
//! Pure: the order's basket in, a receipt or the reason out. Amounts in kopecks.

use serde::{Deserialize, Serialize};

use super::order::{Buyer, OrderDetails, OrderLine};

/// Basket lines searched for an exact subset (2^16 subsets at most).
const MAX_LINES: usize = 16;

/// A VAT rate included in the price, as receipts name it.
///
/// Codes: YooKassa `vat_code` 1 без НДС, 2 0%, 3 10%, 4 20%, 7 5%, 8 7%, 11 22% (the 2026 rate;
/// https://yookassa.ru/developers/54fz/parameters-values). T-Bank `Tax`: `none`, `vat0`, `vat5`, `vat7`, `vat10`,
/// `vat20` (EACQ OpenAPI v1.80 `Items_FFD_105`); `vat22` follows that naming for the 2026 rate and is not in v1.80.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vat {
    None,
    Vat0,
    Vat5,
    Vat7,
    Vat10,
    Vat20,
    Vat22,
}

impl Vat {
    /// The store's rate (Bitrix `vatRate`: a fraction, `0.2`, `"0.20"`; or percent, `20`), `None` = without VAT.
    pub fn from_store(rate: Option<&str>) -> Option<Vat> {
        let Some(rate) = rate.map(str::trim).filter(|r| !r.is_empty()) else {
            return Some(Vat::None);
        };
        // Exactly, in hundredths of a percent: `0.2` → 2000, `20` → 2000.
        let minor = super::money::parse_minor(rate).ok()?;
        let percent_x100 = if minor <= 100 { minor * 100 } else { minor };
        Some(match percent_x100 {
            0 => Vat::Vat0,
            500 => Vat::Vat5,
            700 => Vat::Vat7,
            1000 => Vat::Vat10,
            2000 => Vat::Vat20,
            2200 => Vat::Vat22,
            _ => return None,
        })
    }

    pub fn yookassa_code(self) -> u8 {
        match self {
            Vat::None => 1,
            Vat::Vat0 => 2,
            Vat::Vat10 => 3,
            Vat::Vat20 => 4,
            Vat::Vat5 => 7,
            Vat::Vat7 => 8,
            Vat::Vat22 => 11,
        }
    }

    pub fn tbank_tax(self) -> &'static str {
        match self {
            Vat::None => "none",
            Vat::Vat0 => "vat0",
            Vat::Vat5 => "vat5",
            Vat::Vat7 => "vat7",
            Vat::Vat10 => "vat10",
            Vat::Vat20 => "vat20",
            Vat::Vat22 => "vat22",
        }
    }
}

/// One line of a receipt: `price` per unit and `amount` in kopecks, `quantity` as a decimal string (`1`, `2.5`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptItem {
    pub name: String,
    pub price: i64,
    pub quantity: String,
    pub amount: i64,
    pub vat: Vat,
    /// A service (delivery), not goods.
    pub service: bool,
}

/// A refund's receipt: its items add up to the refund; the buyer's e-mail or phone (`+7…`) receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub items: Vec<ReceiptItem>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl Receipt {
    pub fn total(&self) -> i64 {
        self.items.iter().map(|i| i.amount).sum()
    }

    /// The phone as digits only (`79000000000`), as YooKassa's `customer.phone` wants it (ITU-T E.164 without `+`).
    pub fn phone_digits(&self) -> Option<String> {
        self.phone
            .as_ref()
            .map(|p| p.chars().filter(char::is_ascii_digit).collect())
    }
}

/// Why no valid receipt can be given; the text is shown to 1C and on the event, in Russian like the rest of 1C's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("чек возврата не сформирован: магазин не передал состав заказа")]
    NoBasket,
    #[error("чек возврата не сформирован: у покупателя нет ни e-mail, ни телефона")]
    NoContact,
    #[error("чек возврата не сформирован: ставка НДС «{0}» не поддерживается")]
    UnknownVat(String),
    #[error("чек возврата не сформирован: цена «{0}» указана без НДС")]
    VatNotIncluded(String),
    #[error("чек возврата не сформирован: сумма {0} не складывается из позиций заказа; укажите возвращаемые товары в документе возврата 1С")]
    NoMatch(String),
    #[error("чек возврата не сформирован: сумму {0} дают разные наборы позиций заказа; укажите возвращаемые товары в документе возврата 1С")]
    Ambiguous(String),
}

fn item(line: &OrderLine) -> Result<ReceiptItem, ReceiptError> {
    let vat = Vat::from_store(line.vat_rate.as_deref())
        .ok_or_else(|| ReceiptError::UnknownVat(line.vat_rate.clone().unwrap_or_default()))?;
    if vat != Vat::None && vat != Vat::Vat0 && line.vat_included == Some(false) {
        return Err(ReceiptError::VatNotIncluded(line.name.clone()));
    }
    Ok(ReceiptItem {
        name: line.name.chars().take(128).collect(),
        price: line.price,
        quantity: line.quantity.clone(),
        amount: line.amount,
        vat,
        service: false,
    })
}

/// `+7XXXXXXXXXX` from what a buyer typed (`8 (916) 123-45-67`, `+7 916 …`); `None` when it is not a Russian mobile
/// or city number of 11 digits.
fn phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let digits = match (digits.len(), digits.chars().next()) {
        (11, Some('7' | '8')) => format!("7{}", &digits[1..]),
        (10, Some('9')) => format!("7{digits}"),
        _ => return None,
    };
    Some(format!("+{digits}"))
}

fn contact(buyer: Option<&Buyer>) -> Result<(Option<String>, Option<String>), ReceiptError> {
    let email = buyer
        .and_then(|b| b.email.as_deref())
        .map(str::trim)
        .filter(|e| e.contains('@') && !e.contains(char::is_whitespace))
        .map(str::to_owned);
    let phone = buyer.and_then(|b| b.phone.as_deref()).and_then(phone);
    if email.is_none() && phone.is_none() {
        return Err(ReceiptError::NoContact);
    }
    Ok((email, phone))
}

/// The receipt of a partial refund of `amount` kopecks of an order with `details` (see the module comment).
pub fn refund_receipt(details: &OrderDetails, amount: i64) -> Result<Receipt, ReceiptError> {
    let words = || super::money::format_minor(amount);
    let mut lines: Vec<ReceiptItem> = details
        .lines
        .iter()
        .filter(|l| l.amount > 0)
        .map(item)
        .collect::<Result<_, _>>()?;
    if let Some((name, price)) = details.delivery.as_ref().filter(|(_, p)| *p > 0) {
        // Delivery is a service at the goods' main rate; without goods its rate is unknown.
        let vat = lines.first().map_or(Vat::None, |l| l.vat);
        lines.push(ReceiptItem {
            name: name.clone(),
            price: *price,
            quantity: "1".into(),
            amount: *price,
            vat,
            service: true,
        });
    }
    if lines.is_empty() {
        return Err(ReceiptError::NoBasket);
    }
    let (email, phone) = contact(details.buyer.as_ref())?;
    let items = whole_lines(&lines, amount)
        .or_else(|| some_units(&lines, amount))
        .ok_or_else(|| ReceiptError::NoMatch(words()))??;
    Ok(Receipt {
        items,
        email,
        phone,
    })
}

type Choice = Option<Result<Vec<ReceiptItem>, ReceiptError>>;

/// The whole lines that add up to `amount`: one set, or one set of goods however the equal lines are picked.
fn whole_lines(lines: &[ReceiptItem], amount: i64) -> Choice {
    if lines.len() > MAX_LINES {
        return None;
    }
    let mut found: Option<Vec<ReceiptItem>> = None;
    for mask in 1u32..(1 << lines.len()) {
        let pick: Vec<&ReceiptItem> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, l)| l)
            .collect();
        if pick.iter().map(|l| l.amount).sum::<i64>() != amount {
            continue;
        }
        let mut set: Vec<ReceiptItem> = pick.into_iter().cloned().collect();
        set.sort_by(|a, b| (&a.name, a.amount).cmp(&(&b.name, b.amount)));
        match &found {
            None => found = Some(set),
            Some(known) if *known == set => {}
            Some(_) => {
                return Some(Err(ReceiptError::Ambiguous(super::money::format_minor(
                    amount,
                ))))
            }
        }
    }
    found.map(Ok)
}

/// Whole units of one line (a line of whole units priced `p`, `amount` a multiple of `p` within its quantity).
fn some_units(lines: &[ReceiptItem], amount: i64) -> Choice {
    let fits: Vec<ReceiptItem> = lines
        .iter()
        .filter_map(|l| {
            let units: i64 = l.quantity.trim_end_matches(".000").parse().ok()?;
            (l.price > 0 && amount % l.price == 0 && amount / l.price <= units).then(|| {
                ReceiptItem {
                    quantity: (amount / l.price).to_string(),
                    amount,
                    ..l.clone()
                }
            })
        })
        .collect();
    match fits.as_slice() {
        [] => None,
        [one] => Some(Ok(vec![one.clone()])),
        [first, rest @ ..]
            if rest
                .iter()
                .all(|r| r.name == first.name && r.price == first.price) =>
        {
            Some(Ok(vec![first.clone()]))
        }
        _ => Some(Err(ReceiptError::Ambiguous(super::money::format_minor(
            amount,
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, price: i64, quantity: &str, vat: Option<&str>) -> OrderLine {
        let units: i64 = quantity.parse().unwrap_or(1);
        OrderLine {
            id: None,
            name: name.into(),
            price,
            quantity: quantity.into(),
            amount: price * units,
            vat_rate: vat.map(str::to_owned),
            vat_included: Some(true),
        }
    }

    fn details(lines: Vec<OrderLine>) -> OrderDetails {
        OrderDetails {
            lines,
            delivery: Some(("Курьер".into(), 30_000)),
            buyer: Some(Buyer {
                email: Some("buyer@example.ru".into()),
                phone: Some("8 (916) 123-45-67".into()),
                ..Buyer::default()
            }),
            ..OrderDetails::default()
        }
    }

    #[test]
    fn a_partial_refund_names_the_returned_goods_exactly() {
        let d = details(vec![
            line("Бумага A4", 25_050, "2", Some("0.22")),
            line("Кабель", 9_900, "1", Some("0.22")),
        ]);
        // The cable: one whole line.
        let r = refund_receipt(&d, 9_900).unwrap();
        assert_eq!(r.items.len(), 1);
        assert_eq!(
            (r.items[0].name.as_str(), r.items[0].amount, r.items[0].vat),
            ("Кабель", 9_900, Vat::Vat22)
        );
        assert_eq!(r.phone.as_deref(), Some("+79161234567"));
        assert_eq!(r.phone_digits().as_deref(), Some("79161234567"));
        // The cable and the delivery.
        let r = refund_receipt(&d, 39_900).unwrap();
        assert_eq!(r.total(), 39_900);
        assert!(r.items.iter().any(|i| i.service && i.name == "Курьер"));
        // One pack of paper out of two.
        let r = refund_receipt(&d, 25_050).unwrap();
        assert_eq!(
            (r.items[0].quantity.as_str(), r.items[0].amount),
            ("1", 25_050)
        );
        // Nothing adds up to 100,00.
        assert_eq!(
            refund_receipt(&d, 10_000),
            Err(ReceiptError::NoMatch("100.00".into()))
        );
    }

    #[test]
    fn what_cannot_be_a_valid_receipt_is_refused_with_the_reason() {
        // Two different sets of goods give 100,00.
        let d = details(vec![
            line("A", 10_000, "1", None),
            line("B", 4_000, "1", None),
            line("C", 6_000, "1", None),
        ]);
        assert!(matches!(
            refund_receipt(&d, 10_000),
            Err(ReceiptError::Ambiguous(_))
        ));
        // Two equal lines are one choice.
        let d = details(vec![
            line("A", 10_000, "1", None),
            line("A", 10_000, "1", None),
        ]);
        assert_eq!(refund_receipt(&d, 10_000).unwrap().items[0].vat, Vat::None);
        let mut no_contact = details(vec![line("A", 10_000, "1", None)]);
        no_contact.buyer = Some(Buyer {
            phone: Some("12".into()),
            ..Buyer::default()
        });
        assert_eq!(
            refund_receipt(&no_contact, 10_000),
            Err(ReceiptError::NoContact)
        );
        let odd = details(vec![line("A", 10_000, "1", Some("0.18"))]);
        assert_eq!(
            refund_receipt(&odd, 10_000),
            Err(ReceiptError::UnknownVat("0.18".into()))
        );
        let mut net = details(vec![line("A", 10_000, "1", Some("0.2"))]);
        net.lines[0].vat_included = Some(false);
        assert_eq!(
            refund_receipt(&net, 10_000),
            Err(ReceiptError::VatNotIncluded("A".into()))
        );
        assert_eq!(
            refund_receipt(&OrderDetails::default(), 10_000),
            Err(ReceiptError::NoBasket)
        );
        assert!(ReceiptError::NoMatch("1.00".into())
            .to_string()
            .contains("документе возврата"));
    }

    #[test]
    fn store_rates_map_to_each_services_codes() {
        for (rate, vat, code, tax) in [
            (None, Vat::None, 1, "none"),
            (Some("0"), Vat::Vat0, 2, "vat0"),
            (Some("0.1"), Vat::Vat10, 3, "vat10"),
            (Some("0.20"), Vat::Vat20, 4, "vat20"),
            (Some("20"), Vat::Vat20, 4, "vat20"),
            (Some("0.05"), Vat::Vat5, 7, "vat5"),
            (Some("0.07"), Vat::Vat7, 8, "vat7"),
            (Some("0.22"), Vat::Vat22, 11, "vat22"),
        ] {
            assert_eq!(Vat::from_store(rate), Some(vat), "{rate:?}");
            assert_eq!((vat.yookassa_code(), vat.tbank_tax()), (code, tax));
        }
        assert_eq!(Vat::from_store(Some("abc")), None);
    }
}
