//! T-Bank Business API statement page and its operations as bank operations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::formats::tbank_statement::{from_tbank, parse_page};

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = parse_page(data) {
        for op in &page.operations {
            if let Ok(b) = from_tbank(op, "40702810900000012345") {
                let _ = b.key();
            }
        }
    }
});
