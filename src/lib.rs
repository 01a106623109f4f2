//! oretrail: a hash-chained, Ed25519-signed, append-only chain-of-custody
//! ledger for copper and zinc lots. See `ARCHITECTURE.md` for the map.

pub mod access;
pub mod api;
pub mod audit;
pub mod catalog;
pub mod cli;
pub mod codec;
pub mod crypto;
pub mod demo;
pub mod files;
pub mod ledger;
pub mod merkle;
pub mod model;
pub mod progress;
pub mod rules;
pub mod signer;
pub mod store;
pub mod witness;
