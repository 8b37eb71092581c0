//! Sber callback: form/query parameters, checksum verification, callback fields and the fact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::formats::sber::{Callback, Params};

fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::parse(data) else {
        return;
    };
    let _ = params.signed_string();
    let _ = params.verify("sber-callback-token");
    if let Ok(cb) = Callback::from_params(params) {
        let _ = cb.needs();
        let _ = cb.to_fact(None, &[shared::domain::RefRule::OrderNumber], 0);
    }
});
