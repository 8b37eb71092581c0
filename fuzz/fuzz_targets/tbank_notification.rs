//! T-Bank notification: canonical fields, Token verification, and the fact of a notification whose Token is right.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::formats::tbank::{canonical_fields, to_fact, token, verify};

fuzz_target!(|data: &[u8]| {
    let _ = verify(data, "TestTerminalDEMO", "test-password");
    let Ok(fields) = canonical_fields(data) else {
        return;
    };
    let _ = token(&fields, "test-password");
    // Re-sign the input so the mapping behind the signature check is reached too.
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Some(obj) = value.as_object_mut() {
        obj.insert("TerminalKey".into(), "TestTerminalDEMO".into());
        if let Ok(fields) = canonical_fields(value.to_string().as_bytes()) {
            let signed = token(&fields, "test-password");
            if let Some(obj) = value.as_object_mut() {
                obj.insert("Token".into(), signed.into());
            }
            if let Ok(n) = verify(
                value.to_string().as_bytes(),
                "TestTerminalDEMO",
                "test-password",
            ) {
                let _ = to_fact(&n, &[shared::domain::RefRule::OrderNumber], 0);
            }
        }
    }
});
