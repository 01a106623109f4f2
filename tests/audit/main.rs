//! The audit outputs, in one test binary: EPCIS export, audit bundle,
//! reports, audit sample, lot passport and witness. Each module says what
//! it checks.

#[path = "../common/mod.rs"]
mod common;

mod bundle;
mod epcis;
