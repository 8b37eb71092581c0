//! Speed targets of issue #2: verify + parse per provider (goal < 50 µs each) and in-process init.
//! Run with `cargo bench -p shared` (or `make bench`).

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use shared::formats::{sber, tbank, yookassa};
use shared::platform::config::{parse_networks, YOOKASSA_NETWORKS};
use std::hint::black_box;

const TBANK: &str = r#"{"TerminalKey":"1321054611234DEMO","OrderId":"201709","Success":true,"Status":"AUTHORIZED","PaymentId":8742591,"ErrorCode":"0","Amount":9855,"CardId":322264,"Pan":"430000******0777","ExpDate":"1122","RebillId":101709,"Token":"b906d28e76c6428e37b25fcf86c0adc52c63d503013fdd632e300593d165766b"}"#;
const SBER: &str = "mdOrder=06cf5599-3f17-7c86-bdbc-bd7d00a8b38b&operation=approved&orderNumber=2003&status=1&checksum=EAF2FB72CAB99FD5067F4BA493DD84F4D79C1589FDE8ED29622F0F07215AA972";
const YOOKASSA: &str = r#"{"type":"notification","event":"payment.succeeded","object":{"id":"3086206f-000f-5000-8000-1e653030dc24","status":"succeeded","amount":{"value":"1.00","currency":"RUB"},"income_amount":{"value":"0.96","currency":"RUB"},"description":"string","recipient":{"account_id":"1183493","gateway_id":"2557458"},"payment_method":{"type":"bank_card","id":"3086206f-000f-5000-8000-1e653030dc24","saved":false,"status":"inactive","title":"Bank card *4477","card":{"first6":"555555","last4":"4477","expiry_year":"2025","expiry_month":"12","card_type":"MasterCard","card_product":{"code":"E"},"issuer_country":"US"}},"captured_at":"2025-10-18T21:55:24.823Z","created_at":"2025-10-18T21:54:55.346Z","test":true,"refunded_amount":{"value":"0.00","currency":"RUB"},"paid":true,"refundable":true,"metadata":{"order_id":"1001","cms_name":"yookassa_sdk_python"},"authorization_details":{"rrn":"869559887526342","auth_code":"910915","three_d_secure":{"applied":true,"protocol":"v1","method_completed":false,"challenge_completed":true}}}}"#;

fn providers(c: &mut Criterion) {
    c.bench_function("tbank verify+parse+map", |b| {
        b.iter(|| {
            let n = tbank::verify(
                black_box(TBANK.as_bytes()),
                "1321054611234DEMO",
                "Dfsfh56dgKl",
            )
            .unwrap();
            tbank::to_fact(&n, &[shared::domain::RefRule::OrderNumber], 0).unwrap()
        })
    });
    c.bench_function("sber verify+parse+map", |b| {
        let gateway = sber::GatewayStatus {
            approved: Some(100),
            ..Default::default()
        };
        b.iter(|| {
            let p = sber::Params::parse(black_box(SBER.as_bytes())).unwrap();
            p.verify("ooc7slpvc61k7sf7ma7p4hrefr").unwrap();
            sber::Callback::from_params(p)
                .unwrap()
                .to_fact(Some(&gateway), &[shared::domain::RefRule::OrderNumber], 0)
                .unwrap()
        })
    });
    let keys = vec!["order_id".to_owned()];
    let networks = parse_networks(&YOOKASSA_NETWORKS.join(",")).unwrap();
    let ip = "185.71.77.5".parse().unwrap();
    c.bench_function("yookassa ip-check+parse+map", |b| {
        b.iter(|| {
            assert!(yookassa::ip_trusted(black_box(ip), &networks));
            let n = yookassa::parse_notification(black_box(YOOKASSA.as_bytes())).unwrap();
            let yookassa::Subject::Payment(p) = n.subject else {
                unreachable!()
            };
            yookassa::payment_fact(&p, &keys, &[shared::domain::RefRule::OrderNumber], 0).unwrap()
        })
    });
}

/// What `acquiring-callback`'s main does before serving: config from env, SDK config, clients and adapters.
fn init(c: &mut Criterion) {
    for (k, v) in [
        ("LEDGER_TABLE", "paysync-ledger"),
        (
            "EVENTS_QUEUE_URL",
            "https://sqs.eu-central-1.amazonaws.com/123456789012/paysync-events.fifo",
        ),
        ("TBANK_TERMINAL_KEY", "1321054611234DEMO"),
        ("TBANK_PASSWORD", "Dfsfh56dgKl"),
        ("SBER_CALLBACK_TOKEN", "ooc7slpvc61k7sf7ma7p4hrefr"),
        ("YOOKASSA_SHOP_ID", "1"),
        ("YOOKASSA_SECRET_KEY", "k"),
        ("AWS_REGION", "eu-central-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ] {
        std::env::set_var(k, v);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.bench_function("acquiring-callback init (config+sdk+clients)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let config = shared::platform::config::Env::process().callback().unwrap();
                let clients = shared::wiring::Clients::from_env().await.unwrap();
                shared::wiring::acquiring_callback(config, &clients).unwrap()
            })
        })
    });
}

criterion_group!(benches, providers, init);
criterion_main!(benches);
