//! 1CClientBankExchange parsing side by side with odin_palace (tochka-public) on the same files, and a generated
//! 100 000-operation statement parsed, referenced and matched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shared::domain::matching::{Credit, OpenOrder, OpenOrders};
use shared::domain::OrderId;
use shared::formats::client_bank_exchange::from_file;
use shared::formats::client_bank_exchange::{parse, parse_with};
use shared::formats::purpose::PurposePatterns;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/statements")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn side_by_side(c: &mut Criterion) {
    for name in [
        "tochka-public__odin_palace__statement-137442_input.txt",
        "kilylabs__client-bank-exchange-php__one_day.txt",
    ] {
        let bytes = fixture(name);
        let mut g = c.benchmark_group(format!(
            "statement {}",
            &name[..name.find("__").unwrap_or(10)]
        ));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("paysync", |b| b.iter(|| parse(black_box(&bytes)).unwrap()));
        let odin = odin_palace::parser::Parser::default();
        g.bench_function("odin_palace", |b| {
            b.iter(|| odin.parse(black_box(&bytes)).unwrap())
        });
        g.finish();
    }
}

/// A windows-1251 statement with `n` incoming payments, each naming one of 1 000 invoices.
fn generated(n: usize) -> Vec<u8> {
    let mut t = String::with_capacity(n * 700);
    t.push_str("1CClientBankExchange\r\nВерсияФормата=1.03\r\nКодировка=Windows\r\nОтправитель=Сбербанк Бизнес Онлайн\r\nДатаНачала=01.11.2026\r\nДатаКонца=30.11.2026\r\nРасчСчет=40702810900000012345\r\n");
    for i in 0..n {
        let _ = write!(
            t,
            "СекцияДокумент=Платежное поручение\r\nНомер={i}\r\nДата=15.11.2026\r\nСумма={}.{:02}\r\nПлательщикСчет=407028100000{i:08}\r\nДатаСписано=15.11.2026\r\nПлательщик=ИНН 77{i:08} ООО \"Покупатель {i}\"\r\nПлательщикИНН=77{i:08}\r\nПлательщик1=ООО \"Покупатель {i}\"\r\nПлательщикБанк1=ПАО СБЕРБАНК\r\nПлательщикБИК=044525225\r\nПлательщикКорсчет=30101810400000000225\r\nПолучательСчет=40702810900000012345\r\nДатаПоступило=15.11.2026\r\nПолучательИНН=7701234567\r\nПолучатель1=ООО \"Пример Магазин\"\r\nВидОплаты=01\r\nОчередность=5\r\nНазначениеПлатежа=Оплата по счету № ЦБ-{:06} от 10.11.2026 за товар. В т.ч. НДС 20%\r\nКонецДокумента\r\n",
            1000 + i % 5000,
            i % 100,
            i % 1000
        );
    }
    t.push_str("КонецФайла\r\n");
    encoding_rs::WINDOWS_1251.encode(&t).0.into_owned()
}

fn hundred_thousand(c: &mut Criterion) {
    let bytes = generated(100_000);
    let patterns = PurposePatterns::new().unwrap();
    let open: OpenOrders = (0..1000)
        .map(|i| OpenOrder {
            id: OrderId::parse(format!("o{i}")).unwrap(),
            number: Some(format!("o{i}")),
            invoices: vec![format!("ЦБ-{i:06}")],
            payment_numbers: Vec::new(),
            open: 10_000_000,
            buyer_inn: None,
        })
        .collect::<Vec<OpenOrder>>()
        .into();
    let mut g = c.benchmark_group("statement 100k operations");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("parse+reference+match", |b| {
        b.iter(|| {
            // Streaming: one document in memory at a time.
            let mut matched = 0usize;
            let mut each = |op: shared::domain::bank_operation::BankOperation| {
                let refs = patterns.references(&op.purpose);
                let m = open.match_credit(
                    Credit {
                        amount: op.amount,
                        payer_inn: op.counterparty_inn.as_deref(),
                    },
                    &refs,
                );
                matched +=
                    usize::from(matches!(m, shared::domain::matching::Matched::Order { .. }));
            };
            parse_with(black_box(&bytes), |doc| {
                if let Some(op) = from_file(&doc) {
                    each(op);
                }
            })
            .unwrap();
            assert_eq!(matched, 100_000);
        })
    });
    g.finish();
}

criterion_group!(benches, side_by_side, hundred_thousand);
criterion_main!(benches);
