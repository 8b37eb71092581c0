//! Bitrix REST envelope and every `sale.*` payload we read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::formats::bitrix;

fuzz_target!(|data: &[u8]| {
    for status in [200u16, 400, 503] {
        if let Ok(a) = bitrix::answer("sale.order.list", status, data) {
            let _ = bitrix::orders(&a.result);
            let _ = bitrix::payments(&a.result);
            let _ = bitrix::payment(&a.result);
            let _ = bitrix::property_values(&a.result);
            let _ = bitrix::order_details(&a.result);
            if let Ok((results, _)) = bitrix::batch_results(&a.result) {
                for raw in results.values() {
                    let _ = bitrix::order_details(raw);
                }
            }
        }
    }
});
