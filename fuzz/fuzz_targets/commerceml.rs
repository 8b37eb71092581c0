//! CommerceML reader, then what each document means for the ledger and the query writer's round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::OrderId;
use shared::app::exchange_1c::apply;
use shared::formats::commerceml::read;

fuzz_target!(|data: &[u8]| {
    let Ok(exchange) = read::read(data) else {
        return;
    };
    let Ok(order) = OrderId::parse("fuzz-order") else {
        return;
    };
    for doc in &exchange.documents {
        let _ = apply::order_of(doc, None);
        let _ = apply::facts_for(doc, &order, None, 180, 0, true);
        for sub in &doc.subordinates {
            let _ = apply::facts_for(sub, &order, None, 180, 0, true);
        }
    }
});
