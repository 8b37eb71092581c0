//! The console's pages, server-rendered with maud (every interpolation is HTML-escaped; no JavaScript needed).

use maud::{html, Markup, PreEscaped, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use shared::app::console::{may, Action, AttentionList, OrderPage, LIST_LIMIT};
use shared::domain::attention::{Age, Item, Kind};
use shared::domain::daybook::{DayFigures, DayStatus};
use shared::domain::{
    FactKind, OrderEvent, OrderState, PayMethod, PaymentFact, PaymentMethod, Role,
};

use crate::fmt::{date, date_time, money, Lang};
use crate::report;

/// What every page needs: where the console is mounted (`base`: empty in AWS, `/lambda-url/console` under
/// `cargo lambda watch`), the language, and the signed-in user with the session's CSRF token.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    pub base: String,
    pub lang: Lang,
    pub user: Option<(String, Role)>,
    pub csrf: String,
    /// The path and query of this page (where the language switch returns).
    pub here: String,
}

impl Ctx {
    pub fn t<'a>(&self, ru: &'a str, en: &'a str) -> &'a str {
        self.lang.t(ru, en)
    }

    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn order_link(&self, id: &str) -> String {
        self.link(&format!("/orders/{}", segment(id)))
    }

    fn may(&self, action: Action) -> bool {
        self.user.as_ref().is_some_and(|(_, r)| may(*r, action))
    }
}

/// RFC 3986's unreserved characters stay as they are; everything else in a path segment is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment (an order id may hold `:`, `#`, `/`), percent-encoded.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none}header .brand{font-weight:700;margin-right:1rem}
header form{margin:0}header .right{margin-left:auto;display:flex;gap:.8rem;align-items:center}
main{padding:1rem 1.4rem;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;background:#fff;margin:.4rem 0 1rem;min-width:40%}
th,td{border:1px solid #d9dde3;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}td.num,th.num{text-align:right;white-space:nowrap}
.card{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:.8rem 1rem;margin:.6rem 0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.cards .card{min-width:12rem}
.count{font-size:1.6rem;font-weight:700}.muted{color:#687385}.ok{color:#1a7f37}.bad{color:#b42318}
.notice{background:#e8f3ea;border:1px solid #a6d3b0;padding:.5rem .8rem;border-radius:4px}
.error{background:#fdecea;border:1px solid #f1aeb5;padding:.5rem .8rem;border-radius:4px}
input,select,button{font:inherit;padding:.25rem .4rem}button{cursor:pointer}
form.inline{display:inline}label{display:block;margin:.3rem 0}
";

/// The frame of every page.
pub fn layout(ctx: &Ctx, title: &str, body: Markup) -> Markup {
    let other = match ctx.lang {
        Lang::Ru => ("en", "English"),
        Lang::En => ("ru", "Русский"),
    };
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — paysync" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a.brand href=(ctx.link("/")) { "paysync" }
                    @if ctx.user.is_some() {
                        a href=(ctx.link("/")) { (ctx.t("Обзор", "Overview")) }
                        a href=(ctx.link("/attention")) { (ctx.t("Требует внимания", "Needs attention")) }
                        a href=(ctx.link("/report")) { (ctx.t("Сверка", "Reconciliation")) }
                        form method="get" action=(ctx.link("/search")) {
                            input type="search" name="q" placeholder=(ctx.t("Заказ, номер, платёж…", "Order, number, payment…")) aria-label=(ctx.t("Поиск", "Search"));
                        }
                    }
                    div.right {
                        a href=(ctx.link(&format!("/lang/{}?back={}", other.0, segment(&ctx.here)))) { (other.1) }
                        @if let Some((login, role)) = &ctx.user {
                            span.muted { (login) " (" (role_name(ctx, *role)) ")" }
                            form method="post" action=(ctx.link("/logout")) {
                                input type="hidden" name="csrf" value=(ctx.csrf);
                                button type="submit" { (ctx.t("Выйти", "Sign out")) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An order's payment state as the store's managers call it.
pub fn state_name(ctx: &Ctx, state: OrderState) -> &'static str {
    let l = ctx.lang;
    match state {
        OrderState::Unpaid => l.t("не оплачен", "unpaid"),
        OrderState::PartiallyPaid => l.t("оплачен частично", "partially paid"),
        OrderState::PaidUnknownTotal => l.t("оплата без суммы заказа", "paid, total unknown"),
        OrderState::Paid => l.t("оплачен", "paid"),
        OrderState::Overpaid => l.t("переплачен", "overpaid"),
        OrderState::Refunded => l.t("возвращён", "refunded"),
        OrderState::Cancelled => l.t("отменён", "cancelled"),
    }
}

pub fn role_name(ctx: &Ctx, role: Role) -> &'static str {
    match role {
        Role::Viewer => ctx.lang.t("наблюдатель", "viewer"),
        Role::Accountant => ctx.lang.t("бухгалтер", "accountant"),
        Role::Manager => ctx.lang.t("менеджер", "manager"),
    }
}

/// A page that says why something was refused or failed (never a stack trace).
pub fn refusal(ctx: &Ctx, title: &str, message: &str) -> Markup {
    layout(
        ctx,
        title,
        html! {
            h1 { (title) }
            p.error { (message) }
            p { a href=(ctx.link("/")) { (ctx.t("На главную", "Back to the console")) } }
        },
    )
}

pub fn sign_in(ctx: &Ctx, token: &str, message: Option<&str>) -> Markup {
    layout(
        ctx,
        ctx.t("Вход", "Sign in"),
        html! {
            h1 { (ctx.t("Вход в консоль paysync", "Sign in to the paysync console")) }
            @if let Some(m) = message { p.error { (m) } }
            form.card method="post" action=(ctx.link("/login")) {
                input type="hidden" name="csrf" value=(token);
                label { (ctx.t("Логин", "Login")) br; input name="login" autocomplete="username" required; }
                label { (ctx.t("Пароль", "Password")) br; input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { (ctx.t("Войти", "Sign in")) }
            }
        },
    )
}

pub fn kind_name(ctx: &Ctx, kind: Kind) -> &'static str {
    let l = ctx.lang;
    match kind {
        Kind::UnmatchedBank => l.t("Нераспознанные поступления банка", "Unmatched bank money"),
        Kind::UnmatchedAcquirer => l.t(
            "Нераспознанные платежи эквайринга",
            "Unmatched acquirer money",
        ),
        Kind::Overpaid => l.t("Переплаченные заказы", "Overpaid orders"),
        Kind::DoublyPaid => l.t(
            "Оплачены дважды (карта и банк)",
            "Paid twice (card and bank)",
        ),
        Kind::RefundDue => l.t("Ждут решения о возврате", "Refunds to decide"),
        Kind::RefundFailed => l.t("Неудачные возвраты", "Failed refunds"),
        Kind::PayoutMismatch => l.t("Расхождения в возмещениях", "Payout mismatches"),
        Kind::UnknownOrder => l.t(
            "Заказы, неизвестные магазину",
            "Orders unknown to the store",
        ),
        Kind::StatusUnknown => l.t("Статус платежа неизвестен", "Payment status unknown"),
    }
}

fn age_name(ctx: &Ctx, age: Age) -> &'static str {
    let l = ctx.lang;
    match age {
        Age::UpToOneDay => l.t("0–1 дн.", "0–1 days"),
        Age::UpToAWeek => l.t("2–7 дн.", "2–7 days"),
        Age::UpToAMonth => l.t("8–30 дн.", "8–30 days"),
        Age::Older => l.t("более 30 дн.", "over 30 days"),
    }
}

fn figures_table(ctx: &Ctx, figures: &[&DayFigures]) -> Markup {
    let rub = shared::domain::Currency::RUB;
    html! {
        table.figures {
            tr {
                th { (ctx.t("Источник", "Source")) }
                th.num { (ctx.t("Оплачено", "Taken")) } th.num { (ctx.t("Возвращено", "Refunded")) }
                th.num { (ctx.t("Комиссия", "Fee")) } th.num { (ctx.t("Возмещено", "Paid out")) }
                th.num { (ctx.t("Разница", "Difference")) } th { (ctx.t("Статус", "Status")) }
            }
            @for f in figures {
                tr {
                    td { (report::source_name(ctx.lang, f.source)) }
                    td.num { (money(ctx.lang, f.taken, rub)) }
                    td.num { (money(ctx.lang, f.refunded, rub)) }
                    td.num { (money(ctx.lang, f.fee, rub)) }
                    td.num { (money(ctx.lang, f.paid_out, rub)) }
                    td.num.bad[f.difference() != 0 && f.status == DayStatus::Mismatch] { (money(ctx.lang, f.difference(), rub)) }
                    td { (report::status_name(ctx.lang, f.status)) }
                }
            }
        }
    }
}

/// The overview: today and yesterday per source, what needs a person, the last days as a chart.
pub fn overview(
    ctx: &Ctx,
    lists: &[AttentionList],
    figures: &[DayFigures],
    today: &str,
    yesterday: &str,
    chart: Option<&str>,
) -> Markup {
    let of_day = |day: &str| figures.iter().filter(|f| f.day == day).collect::<Vec<_>>();
    let show = |day: &str| crate::fmt::iso_to_ru(day);
    layout(
        ctx,
        ctx.t("Обзор", "Overview"),
        html! {
            h1 { (ctx.t("Обзор", "Overview")) }
            h2 { (ctx.t("Сегодня, ", "Today, ")) (show(today)) }
            (figures_table(ctx, &of_day(today)))
            h2 { (ctx.t("Вчера, ", "Yesterday, ")) (show(yesterday)) }
            (figures_table(ctx, &of_day(yesterday)))
            p { a href=(ctx.link("/report")) { (ctx.t("Сверка по дням и выгрузка (CSV, XLSX)", "Reconciliation by day, with CSV and XLSX")) } }
            h2 { (ctx.t("Требует внимания", "Needs attention")) }
            div.cards {
                @for l in lists {
                    a.card href=(ctx.link(&format!("/attention#{}", l.kind))) style="text-decoration:none;color:inherit" {
                        div.count.bad[!l.items.is_empty()].ok[l.items.is_empty()] {
                            (l.items.len()) @if l.more { "+" }
                        }
                        div { (kind_name(ctx, l.kind)) }
                        @if l.total != 0 { div.muted { (money(ctx.lang, l.total, shared::domain::Currency::RUB)) } }
                    }
                }
            }
            h2 { (ctx.t("Последние 30 дней, ₽", "The last 30 days, RUB")) }
            @if let Some(svg) = chart {
                // plotters' own SVG: its text is our labels and dates, never a payer's words.
                div.chart { (PreEscaped(svg)) }
            }
        },
    )
}

/// The reconciliation report page: per source and business day, and the unmatched money by age.
pub fn report_page(
    ctx: &Ctx,
    from: &str,
    to: &str,
    figures: &[DayFigures],
    lists: &[AttentionList],
) -> Markup {
    let rub = shared::domain::Currency::RUB;
    let query = format!("?from={from}&to={to}");
    layout(
        ctx,
        ctx.t("Сверка", "Reconciliation"),
        html! {
            h1 { (ctx.t("Сверка по эквайерам и банку", "Reconciliation per acquirer and bank")) }
            form.card method="get" action=(ctx.link("/report")) {
                label style="display:inline-block" { (ctx.t("с ", "from ")) input type="date" name="from" value=(from); }
                " "
                label style="display:inline-block" { (ctx.t("по ", "to ")) input type="date" name="to" value=(to); }
                " "
                button type="submit" { (ctx.t("Показать", "Show")) }
                " · "
                a.download href=(ctx.link(&format!("/report.csv{query}"))) { "CSV" }
                " · "
                a.download href=(ctx.link(&format!("/report.xlsx{query}"))) { "XLSX" }
            }
            table.report {
                tr { @for h in report::header(ctx.lang) { th { (h) } } }
                @for f in report::rows(figures) {
                    tr {
                        td { (crate::fmt::iso_to_ru(&f.day)) }
                        td { (report::source_name(ctx.lang, f.source)) }
                        td.num { (money(ctx.lang, f.taken, rub)) }
                        td.num { (money(ctx.lang, f.refunded, rub)) }
                        td.num { (money(ctx.lang, f.fee, rub)) }
                        td.num { (money(ctx.lang, f.paid_out, rub)) }
                        td.num { (money(ctx.lang, f.difference(), rub)) }
                        td {
                            (report::status_name(ctx.lang, f.status))
                            @for p in &f.problems { br; span.muted { (p) } }
                        }
                    }
                }
            }
            h2 { (ctx.t("Нераспознанные деньги по возрасту", "Unmatched money by age")) }
            table {
                tr {
                    th { (ctx.t("Вид", "Kind")) }
                    @for age in Age::ALL { th.num { (age_name(ctx, age)) } }
                }
                @for l in lists.iter().filter(|l| report::UNMATCHED.contains(&l.kind)) {
                    tr {
                        td { (kind_name(ctx, l.kind)) }
                        @for (_, count, sum) in &l.buckets {
                            td.num { (count) br; span.muted { (money(ctx.lang, *sum, rub)) } }
                        }
                    }
                }
            }
        },
    )
}

fn item_row(ctx: &Ctx, item: &Item, now_ms: i64) -> Markup {
    let days = (now_ms - item.since_ms).max(0) / 86_400_000;
    html! {
        tr {
            td { (date(item.since_ms)) }
            td.num { (days) }
            td {
                @match &item.order {
                    Some(o) => a href=(ctx.order_link(o.as_str())) { (o.as_str()) },
                    None => span { (item.key) },
                }
            }
            td.num { (money(ctx.lang, item.amount, item.currency)) }
            td {
                @if let Some(name) = &item.payer_name { strong { (name) } " " }
                @if let Some(inn) = &item.payer_inn { span.muted { (ctx.t("ИНН ", "INN ")) (inn) } br; }
                (item.label)
                @if item.kind == Kind::PayoutMismatch && ctx.may(Action::AcceptMismatch) {
                    form.accept method="post" action=(ctx.link("/payouts/accept")) {
                        (hidden(ctx))
                        input type="hidden" name="key" value=(item.key);
                        input name="reason" required placeholder=(ctx.t("Почему принять", "Why it is fine"));
                        button type="submit" { (ctx.t("Принять", "Accept")) }
                    }
                }
            }
        }
    }
}

/// Search results (several orders matched; one goes straight to its page).
pub fn search(ctx: &Ctx, q: &str, hits: &[shared::app::console::Hit]) -> Markup {
    let by = |b: &'static str| -> &'static str {
        match b {
            "order id" => ctx.t("номер в журнале", "order id"),
            "order number" => ctx.t("номер заказа", "order number"),
            "payment" => ctx.t("платёж", "payment"),
            "amount" => ctx.t("сумма", "amount"),
            "payer INN" => ctx.t("ИНН плательщика", "payer INN"),
            "payer name" => ctx.t("плательщик", "payer name"),
            "buyer INN" => ctx.t("ИНН покупателя", "buyer INN"),
            other => other,
        }
    };
    layout(
        ctx,
        ctx.t("Поиск", "Search"),
        html! {
            h1 { (ctx.t("Поиск: ", "Search: ")) (ctx.t("«", "“")) (q) (ctx.t("»", "”")) }
            @if hits.is_empty() {
                p.muted { (ctx.t("Ничего не найдено: ни заказа, ни платежа, ни суммы, ни плательщика.", "Nothing found: no order, payment, amount or payer.")) }
            } @else {
                table.hits {
                    tr { th { (ctx.t("Заказ", "Order")) } th { (ctx.t("Найден по", "Found by")) } th.num { (ctx.t("Сумма", "Amount")) } th {} }
                    @for h in hits {
                        tr {
                            td { a href=(ctx.order_link(h.order.as_str())) { (h.order.as_str()) } }
                            td { (by(h.by)) }
                            td.num { @if let Some(a) = h.amount { (money(ctx.lang, a, shared::domain::Currency::RUB)) } }
                            td { (h.label) }
                        }
                    }
                }
            }
        },
    )
}

pub fn attention(ctx: &Ctx, lists: &[AttentionList], now_ms: i64) -> Markup {
    layout(
        ctx,
        ctx.t("Требует внимания", "Needs attention"),
        html! {
            h1 { (ctx.t("Требует внимания", "Needs attention")) }
            @for l in lists {
                section id=(l.kind.as_str()) {
                    h2 { (kind_name(ctx, l.kind)) " — " (l.items.len()) @if l.more { "+" } }
                    @if l.items.is_empty() {
                        p.muted { (ctx.t("Нет.", "None.")) }
                    } @else {
                        table.buckets {
                            tr {
                                @for (age, _, _) in &l.buckets { th.num { (age_name(ctx, *age)) } }
                                th.num { (ctx.t("Итого", "Total")) }
                            }
                            tr {
                                @for (_, count, sum) in &l.buckets {
                                    td.num { (count) br; span.muted { (money(ctx.lang, *sum, shared::domain::Currency::RUB)) } }
                                }
                                td.num { (l.items.len()) br; strong { (money(ctx.lang, l.total, shared::domain::Currency::RUB)) } }
                            }
                        }
                        @if l.more {
                            p.muted { (ctx.t("Показаны первые ", "Showing the first ")) (LIST_LIMIT) }
                        }
                        table.items {
                            tr {
                                th { (ctx.t("С", "Since")) }
                                th.num { (ctx.t("Дней", "Days")) }
                                th { (ctx.t("Заказ", "Order")) }
                                th.num { (ctx.t("Сумма", "Amount")) }
                                th { (ctx.t("Плательщик, назначение", "Payer, purpose")) }
                            }
                            @for item in &l.items { (item_row(ctx, item, now_ms)) }
                        }
                    }
                }
            }
        },
    )
}

fn source_of(fact: &PaymentFact) -> &str {
    fact.id.as_str().split('#').next().unwrap_or_default()
}

fn fact_amount(ctx: &Ctx, fact: &PaymentFact) -> String {
    fact.kind
        .stated_amount()
        .map(|a| money(ctx.lang, a, fact.currency))
        .unwrap_or_default()
}

/// A fact's own words; the console's own voids (kept in the ledger in English, the audit trail's language) read in
/// the page's language.
fn fact_detail(ctx: &Ctx, fact: &PaymentFact) -> String {
    const OWN: [(&str, &str, &str); 2] = [
        (
            "allocated in the console to order ",
            "распределено в консоли на заказ ",
            "allocated in the console to order ",
        ),
        (
            "reversed in the console: ",
            "сторнировано в консоли: ",
            "reversed in the console: ",
        ),
    ];
    match &fact.kind {
        FactKind::Void { reason } => OWN
            .iter()
            .find_map(|(stored, ru, en)| {
                reason
                    .strip_prefix(stored)
                    .map(|rest| format!("{}{rest}", ctx.t(ru, en)))
            })
            .unwrap_or_else(|| reason.clone()),
        FactKind::FailedAttempt { reason } => reason.clone(),
        FactKind::RefundRequested { reason, .. } => reason.clone(),
        _ => String::new(),
    }
}

fn method_name(ctx: &Ctx, m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::Card => ctx.t("карта", "card"),
        PaymentMethod::BankTransfer => ctx.t("банковский перевод", "bank transfer"),
        PaymentMethod::Cash => ctx.t("наличные", "cash"),
        PaymentMethod::Other => ctx.t("другое", "other"),
    }
}

/// A fact's kind as a person reads it.
fn kind_words(ctx: &Ctx, kind: &FactKind) -> &'static str {
    match kind {
        FactKind::Authorization { .. } => ctx.t("холдирование", "authorization"),
        FactKind::Payment { .. } => ctx.t("оплата", "payment"),
        FactKind::Reversal { .. } => ctx.t("отмена холдирования", "hold released"),
        FactKind::Refund { .. } => ctx.t("возврат", "refund"),
        FactKind::Chargeback { .. } => ctx.t("чарджбэк", "chargeback"),
        FactKind::FailedAttempt { .. } => ctx.t("неудачная попытка", "failed attempt"),
        FactKind::Void { .. } => ctx.t("аннулирование", "void"),
        FactKind::SettledInFull => ctx.t("оплачен полностью (1С)", "settled in full (1C)"),
        FactKind::OrderCancelled => ctx.t("заказ отменён", "order cancelled"),
        FactKind::RefundRequested { .. } => ctx.t("запрос возврата", "refund requested"),
        FactKind::RefundWaived { .. } => ctx.t("отказ в возврате", "refund denied"),
        FactKind::RefundProgress(_) => ctx.t("ход возврата", "refund progress"),
    }
}

/// An event's flag as a person reads it (the code itself for one this page does not know).
fn flag_name<'a>(ctx: &Ctx, flag: &'a str) -> &'a str {
    match flag {
        "unknown_order" => ctx.t("заказ неизвестен магазину", "order unknown to the store"),
        "currency_mismatch" => ctx.t("валюта не совпадает", "currency mismatch"),
        "refund_exceeds_payment" => ctx.t("возвращено больше оплаты", "refunded more than paid"),
        "chargeback" => ctx.t("чарджбэк", "chargeback"),
        "refund_due" => ctx.t("ждёт решения о возврате", "refund to decide"),
        "refund_failed" => ctx.t("возврат не выполнен", "refund failed"),
        other => other,
    }
}

fn pay_method_name<'a>(ctx: &Ctx, m: &'a PayMethod) -> &'a str {
    match m {
        PayMethod::Card => ctx.t("банковская карта", "bank card"),
        PayMethod::Sbp => ctx.t("СБП", "SBP"),
        PayMethod::YooMoney => ctx.t("ЮMoney", "YooMoney"),
        other => other.display_ru(),
    }
}

fn event_row(ctx: &Ctx, e: &OrderEvent) -> Markup {
    html! {
        tr {
            td.num { (e.version) }
            td { (date_time(e.at_ms)) }
            td { code { (e.event_id) } }
            td { (state_name(ctx, e.state)) }
            td.num { (money(ctx.lang, e.paid, e.currency)) }
            td.num { (money(ctx.lang, e.refunded, e.currency)) }
            td { (e.flags.iter().map(|f| flag_name(ctx, f)).collect::<Vec<_>>().join(", ")) }
        }
    }
}

/// The forms' hidden fields: the session's CSRF token and this form's one-time token.
fn hidden(ctx: &Ctx) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(ctx.csrf);
        input type="hidden" name="token" value=(crate::auth::random_token());
    }
}

fn reason_field(ctx: &Ctx) -> Markup {
    html! {
        label { (ctx.t("Основание (попадёт в журнал)", "Reason (kept in the audit trail)")) br;
            input name="reason" required size="50"; }
    }
}

pub fn order(ctx: &Ctx, page: &OrderPage, notice: Option<&str>) -> Markup {
    let Some(order) = &page.history.order else {
        return refusal(ctx, ctx.t("Нет такого заказа", "No such order"), "");
    };
    let id = order.id.as_str();
    let t = order.totals();
    let cur = order.currency();
    let title = format!("{} {}", ctx.t("Заказ", "Order"), id);
    layout(
        ctx,
        &title,
        html! {
            h1 { (title) @if let Some(n) = order.info.as_ref().and_then(|i| i.number.as_ref()) { " · № " (n) } }
            @if let Some(n) = notice { p.notice { (n) } }
            div.cards {
                div.card { div.muted { (ctx.t("Состояние", "State")) } div.count { (state_name(ctx, order.state())) } }
                div.card {
                    div.muted { (ctx.t("Оплачено", "Paid")) }
                    div.count { (money(ctx.lang, t.net(), cur)) }
                    @if let Some(total) = order.total() {
                        div { (ctx.t("из ", "of ")) (money(ctx.lang, total, cur))
                            @if let Some(p) = order.paid_percent() { " (" (p) "%)" } }
                    } @else {
                        div.muted { (ctx.t("сумма заказа неизвестна", "order total unknown")) }
                    }
                }
                div.card { div.muted { (ctx.t("Возвращено", "Refunded")) } div.count { (money(ctx.lang, t.refunded, cur)) } }
                div.card {
                    div.muted { "1C" }
                    @match page.waiting_for_1c {
                        Some(v) => div { (ctx.t("ещё не получила версию ", "has not taken version ")) (v) },
                        None => div.ok { (ctx.t("знает последнюю версию ", "has the latest version ")) (order.version) },
                    }
                }
                div.card {
                    div.muted { (ctx.t("Магазин", "Store")) }
                    @match &page.store_told {
                        Some(t) => div {
                            (ctx.t("сообщено: версия ", "told: version ")) (t.version) ", " (money(ctx.lang, t.paid, cur))
                            br; span.muted { (date_time(t.at_ms)) }
                        },
                        None => div.muted { (ctx.t("ещё ничего не сообщали", "told nothing yet")) },
                    }
                    @if let Some((code, name)) = order.info.as_ref().and_then(|i| i.details.status.as_ref()) {
                        div.muted { (ctx.t("статус в магазине: ", "store status: ")) (name) @if name != code { " (" (code) ")" } }
                    }
                    @if let Some(e) = &page.store_error { div.bad { (e) } }
                }
            }
            @if !page.breaks.is_empty() {
                h2 { (ctx.t("Требует внимания", "Needs attention")) }
                ul { @for (kind, item) in &page.breaks { li.bad { (kind_name(ctx, *kind)) ": " (money(ctx.lang, item.amount, item.currency)) } } }
            }
            h2 { (ctx.t("Платежи", "Payments")) }
            table {
                tr {
                    th { (ctx.t("Платёж", "Payment")) } th { (ctx.t("Способ", "Method")) }
                    th.num { (ctx.t("Получено", "Received")) } th.num { (ctx.t("Возвращено", "Refunded")) }
                    th.num { (ctx.t("Комиссия", "Fee")) }
                    th { (ctx.t("Плательщик", "Payer")) } th {}
                }
                @for (p, l) in &order.lines {
                    tr {
                        td { code { (p.as_str()) } @if l.voided { " " span.muted { (ctx.t("(аннулирован)", "(voided)")) } } }
                        td { (method_name(ctx, l.method)) @if let Some(m) = &l.pay_method { ", " (pay_method_name(ctx, m)) } }
                        td.num { (money(ctx.lang, l.captured, l.currency)) }
                        td.num { (money(ctx.lang, l.refunded(), l.currency)) }
                        td.num { @if let Some(fee) = l.fee { (money(ctx.lang, fee, l.currency)) } }
                        td { @if let Some(payer) = &l.payer {
                            @if let Some(n) = &payer.name { (n) " " }
                            @if let Some(inn) = &payer.inn { span.muted { (ctx.t("ИНН ", "INN ")) (inn) } }
                            br; span.muted { (payer.purpose) }
                        } }
                        td {
                            @if p.source() == Some(shared::domain::Source::Console) && !l.voided && ctx.may(Action::Reverse) {
                                form method="post" action=(format!("{}/reverse", ctx.order_link(id))) {
                                    (hidden(ctx))
                                    input type="hidden" name="payment" value=(p.as_str());
                                    input name="reason" required placeholder=(ctx.t("Основание", "Reason"));
                                    button type="submit" { (ctx.t("Сторнировать", "Reverse")) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(receipt) = &page.receipt {
                @if ctx.may(Action::Allocate) {
                    h2 { (ctx.t("Распределить поступление", "Allocate this money")) }
                    form.card.allocate method="post" action=(format!("{}/allocate", ctx.order_link(id))) {
                        (hidden(ctx))
                        p { (ctx.t("Сумма поступления: ", "Amount received: ")) strong { (money(ctx.lang, receipt.amount, cur)) } }
                        table {
                            tr { th { (ctx.t("Заказ", "Order")) } th { (ctx.t("Сумма", "Amount")) } }
                            @for n in 1..=3 {
                                tr {
                                    td { input name=(format!("order_{n}")) required[n == 1] aria-label=(ctx.t("Заказ", "Order")); }
                                    td { input name=(format!("amount_{n}")) required[n == 1]
                                        value=[(n == 1).then(|| shared::domain::money::format_minor(receipt.amount))]
                                        aria-label=(ctx.t("Сумма", "Amount")); }
                                }
                            }
                        }
                        (reason_field(ctx))
                        button type="submit" { (ctx.t("Распределить", "Allocate")) }
                    }
                }
            }
            @if !order.refund_requests.is_empty() || order.refund_due() > 0 {
                h2 { (ctx.t("Возвраты", "Refunds")) }
                @if !order.refund_requests.is_empty() {
                    table.refunds {
                        tr {
                            th { (ctx.t("Запрос", "Request")) } th.num { (ctx.t("Сумма", "Amount")) }
                            th { (ctx.t("Платёж", "Payment")) } th { (ctx.t("Статус", "Status")) } th {}
                        }
                        @for (rid, r) in &order.refund_requests {
                            tr {
                                td { code { (rid) } br; span.muted { (r.reason) } }
                                td.num { (money(ctx.lang, r.amount, cur)) }
                                td { @if let Some(l) = &r.line { code { (l.as_str()) } } }
                                td {
                                    (r.status.as_str())
                                    @if let Some(d) = &r.detail { br; span.muted { (d) } }
                                    @if let Some(by) = &r.retried_by { br; span.muted { (ctx.t("повторён: ", "retried: ")) (by) } }
                                }
                                td {
                                    @if r.needs_a_person() && ctx.may(Action::RetryRefund) {
                                        form.retry method="post" action=(format!("{}/refund/retry", ctx.order_link(id))) {
                                            (hidden(ctx))
                                            input type="hidden" name="request" value=(rid);
                                            input name="reason" required placeholder=(ctx.t("Основание", "Reason"));
                                            // An SBP refund the SBP refused: to another bank of the buyer (T-Bank QrMemberId).
                                            @if r.line.as_ref().and_then(|p| order.lines.get(p)).and_then(|l| l.pay_method.as_ref()).is_some_and(|m| m.is_sbp()) {
                                                input name="to_bank" size="14" placeholder=(ctx.t("Банк СБП (MemberId)", "SBP bank (MemberId)"))
                                                    title=(ctx.t("Код банка покупателя в СБП из QrMembersList, если вернуть в банк оплаты нельзя", "The buyer's bank's SBP code from QrMembersList, when the paying bank cannot take the refund"));
                                            }
                                            button type="submit" { (ctx.t("Повторить", "Retry")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if order.refund_due() > 0 {
                    p.error {
                        (ctx.t("Заказ отменён, а деньги у магазина: ", "The order is cancelled and the shop keeps "))
                        strong { (money(ctx.lang, order.refund_due(), cur)) }
                        (ctx.t(". Вернуть покупателю?", ". Give it back to the buyer?"))
                    }
                    @if ctx.may(Action::DecideRefund) {
                        div.cards {
                            form.card.approve method="post" action=(format!("{}/refund/approve", ctx.order_link(id))) {
                                (hidden(ctx))
                                label { (ctx.t("Сумма возврата (пусто — всё)", "Amount to refund (empty: all of it)")) br;
                                    input name="amount" placeholder=(shared::domain::money::format_minor(order.refund_due())); }
                                (reason_field(ctx))
                                button type="submit" { (ctx.t("Одобрить возврат", "Approve the refund")) }
                            }
                            form.card.deny method="post" action=(format!("{}/refund/deny", ctx.order_link(id))) {
                                (hidden(ctx))
                                (reason_field(ctx))
                                button type="submit" { (ctx.t("Не возвращать", "Keep the money")) }
                            }
                        }
                    } @else {
                        p.muted { (ctx.t("Решение о возврате принимает менеджер.", "A manager decides refunds.")) }
                    }
                }
            }
            @if order.info.is_some() && !order.id.is_unmatched() && ctx.may(Action::RecordPayment) {
                h2 { (ctx.t("Внести оплату вручную", "Record a payment by hand")) }
                form.card method="post" action=(format!("{}/payment", ctx.order_link(id))) {
                    (hidden(ctx))
                    label { (ctx.t("Сумма", "Amount")) br; input name="amount" required; }
                    label { (ctx.t("Способ", "Method")) br;
                        select name="method" {
                            option value="cash" { (ctx.t("наличные / наложенный платёж", "cash / cash on delivery")) }
                        }
                    }
                    (reason_field(ctx))
                    button type="submit" { (ctx.t("Внести", "Record")) }
                }
            }
            h2 { (ctx.t("История фактов", "Timeline of facts")) }
            table.timeline {
                tr {
                    th { (ctx.t("Время (МСК)", "Time (MSK)")) } th { (ctx.t("Источник", "Source")) }
                    th { (ctx.t("Факт", "Fact")) } th.num { (ctx.t("Сумма", "Amount")) }
                    th { (ctx.t("Платёж", "Payment")) } th { (ctx.t("Кто и почему", "Who and why")) }
                }
                @for f in &page.history.facts {
                    tr {
                        td { (date_time(f.at_ms)) }
                        td { (source_of(f)) }
                        td { (kind_words(ctx, &f.kind)) }
                        td.num { (fact_amount(ctx, f)) }
                        td { code { (f.payment.as_str()) } }
                        td {
                            @if let Some(a) = &f.audit { strong { (a.user) } " (" (role_name(ctx, a.role)) "): " (a.reason) br; }
                            span.muted { (fact_detail(ctx, f)) }
                        }
                    }
                }
            }
            h2 { (ctx.t("Отправленные события", "Events sent")) }
            table {
                tr {
                    th.num { (ctx.t("Версия", "Version")) } th { (ctx.t("Время (МСК)", "Time (MSK)")) } th { "id" }
                    th { (ctx.t("Состояние", "State")) } th.num { (ctx.t("Оплачено", "Paid")) }
                    th.num { (ctx.t("Возвращено", "Refunded")) } th { (ctx.t("Флаги", "Flags")) }
                }
                @for e in page.history.events.iter().rev() { (event_row(ctx, e)) }
            }
        },
    )
}
