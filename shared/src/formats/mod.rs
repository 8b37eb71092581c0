//! One module per external format. Pure: bytes in, typed values out, no I/O.

pub mod bitrix;
pub mod client_bank_exchange;
pub mod commerceml;
pub mod purpose;
pub mod sber;
pub mod tbank;
pub mod tbank_statement;
pub mod yookassa;
