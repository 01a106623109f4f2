//! oretrail: a hash-chained, Ed25519-signed, append-only chain-of-custody
//! ledger for copper and zinc lots. See `ARCHITECTURE.md` for the map.

pub mod merkle;
