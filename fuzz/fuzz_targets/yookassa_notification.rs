//! YooKassa notification envelope, payment and refund objects, and their facts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::OrderId;
use shared::formats::yookassa::{parse_notification, payment_fact, refund_fact, Subject};

fuzz_target!(|data: &[u8]| {
    let Ok(n) = parse_notification(data) else {
        return;
    };
    let keys = vec!["order_id".to_owned(), "BX_PAYMENT_NUMBER".to_owned()];
    match &n.subject {
        Subject::Payment(p) => {
            let _ = payment_fact(p, &keys, &[shared::domain::RefRule::OrderNumber], 0);
        }
        Subject::Refund(r) => {
            if let Ok(order) = OrderId::parse("fuzz-order") {
                let _ = refund_fact(r, order, 0);
            }
        }
        Subject::Other(_) => {}
    }
});
