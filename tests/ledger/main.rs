//! The ledger core and the custody rules, in one test binary: appends,
//! recovery and verification (`ledger`), property tests (`properties`,
//! `custody_properties`), the RFC 9162 vectors (`merkle_vectors`), the
//! byte layouts of `schemas/ENCODING.md` (`encoding_spec`), the custody
//! rules (`custody`), the demo (`demo`) and the command line (`cli`).
//! The crash test stays a binary of its own: it re-runs itself as the
//! child it kills.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod custody;
mod custody_properties;
mod demo;
mod encoding_spec;
mod ledger;
mod merkle_vectors;
mod properties;
