//! Creates a ledger in a temporary folder, registers a mine as the
//! operator, and checks the receipt the way an outside verifier would: the
//! checkpoint note against the log's verifier key, then the entry's
//! inclusion proof against the checkpoint's root.
//!
//! Run with `cargo run --example register_and_prove`.

use oretrail::crypto::SecretKey;
use oretrail::ledger::{GenesisParams, KEYS_DIR, Ledger, OPERATOR_KEY_FILE, Options};
use oretrail::merkle::{self, checkpoint};
use oretrail::model::{
    CountryCode, EventBody, ParticipantId, ParticipantKind, Registration, Role, Timestamp,
};
use oretrail::signer::Signer;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let genesis = GenesisParams {
        origin: "example.org/oretrail".into(),
        operator: ParticipantId::new("operator")?,
        operator_name: "Example Ledger Operator AG".into(),
        operator_country: CountryCode::new("CH")?,
    };
    let ledger = Ledger::create(dir.path(), genesis, Options::default())?;
    let operator_key = SecretKey::read_file(&dir.path().join(KEYS_DIR).join(OPERATOR_KEY_FILE))?;
    let mut operator = Signer::new(
        "example.org/oretrail",
        ParticipantId::new("operator")?,
        operator_key,
    );

    let mine_key = SecretKey::generate()?;
    let registration = EventBody::RegisterParticipant(Registration {
        participant: ParticipantId::new("mine.kipushi")?,
        legal_name: "Kipushi Zinc Mining SA".into(),
        country: CountryCode::new("CD")?,
        kinds: vec![ParticipantKind::Mine],
        roles: vec![Role::Producer, Role::Custodian],
        keys: vec![mine_key.public()],
    });
    let receipt = ledger.append(operator.sign(Timestamp::now(), registration)?)?;
    println!(
        "entry {} is durable; checkpoint:\n{}",
        receipt.index, receipt.checkpoint
    );

    // What an outside verifier does with the receipt.
    let verifier = checkpoint::parse_verifier_key(&ledger.log_key_line().unwrap_or_default())?;
    let cp = checkpoint::open(&receipt.checkpoint, &verifier)?;
    let (_, entry_bytes) = ledger.entry(receipt.index)?;
    let proof = ledger.inclusion_proof(receipt.index, cp.size())?;
    merkle::verify_inclusion(
        &merkle::leaf_hash(&entry_bytes),
        receipt.index,
        cp.size(),
        &proof,
        cp.root(),
    )?;
    println!(
        "inclusion of entry {} in the signed tree of {} entries: verified",
        receipt.index,
        cp.size()
    );
    ledger.close()?;
    Ok(())
}
