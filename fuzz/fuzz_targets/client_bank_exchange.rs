//! 1CClientBankExchange parser (both entry points), bank operations, purpose references and settlement recognition.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use shared::formats::client_bank_exchange::{from_file, parse, parse_with};
use shared::formats::purpose::PurposePatterns;

static PATTERNS: LazyLock<Option<PurposePatterns>> = LazyLock::new(|| PurposePatterns::new().ok());

fuzz_target!(|data: &[u8]| {
    if let Ok(st) = parse(data) {
        for doc in &st.documents {
            let _ = doc.field("Номер");
            if let Some(op) = from_file(doc) {
                let _ = op.key();
                if let Some(p) = PATTERNS.as_ref() {
                    let _ = p.references(&op.purpose);
                }
                let _ = shared::domain::settlement::recognise(&op);
            }
        }
    }
    let _ = parse_with(data, |doc| {
        let _ = from_file(&doc);
    });
});
