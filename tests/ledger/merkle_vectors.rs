//! RFC 6962 / RFC 9162 proof verification vectors from transparency-dev/merkle
//! (see tests/data/rfc6962-merkle/SOURCE.md). Every case must be accepted
//! exactly when `wantErr` is false.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use oretrail::merkle::{Hash, verify_consistency, verify_inclusion};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc6962-merkle");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    #[allow(dead_code)]
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    #[allow(dead_code)]
    desc: String,
    #[serde(rename = "wantErr")]
    want_err: bool,
}

/// Decode one base64 hash; `None` if it is not exactly 32 bytes, which makes
/// the case fail verification.
fn hash(b64: &str) -> Option<Hash> {
    BASE64.decode(b64).ok()?.try_into().ok()
}

/// Decode a proof; `None` if any element is not a 32-byte hash.
fn proof(elements: Option<Vec<String>>) -> Option<Vec<Hash>> {
    elements
        .unwrap_or_default()
        .iter()
        .map(|e| hash(e))
        .collect()
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// Whether the verifier accepts the inclusion case.
fn inclusion_accepted(text: &str) -> (bool, bool) {
    let case: InclusionCase = serde_json::from_str(text).expect("inclusion case JSON");
    let accepted = (|| {
        let leaf = hash(&case.leaf_hash)?;
        let root = hash(&case.root)?;
        let proof = proof(case.proof)?;
        verify_inclusion(&leaf, case.leaf_idx, case.tree_size, &proof, &root).ok()
    })()
    .is_some();
    (accepted, case.want_err)
}

/// Whether the verifier accepts the consistency case.
fn consistency_accepted(text: &str) -> (bool, bool) {
    let case: ConsistencyCase = serde_json::from_str(text).expect("consistency case JSON");
    let accepted = (|| {
        // Roots are passed as the bytes the vector gives; the verifier
        // itself refuses any that must be digests and are not 32 bytes.
        let root1 = BASE64.decode(&case.root1).ok()?;
        let root2 = BASE64.decode(&case.root2).ok()?;
        let proof = proof(case.proof)?;
        verify_consistency(case.size1, case.size2, &root1, &root2, &proof).ok()
    })()
    .is_some();
    (accepted, case.want_err)
}

#[test]
fn all_rfc6962_vectors() {
    let base = Path::new(DATA);
    let mut total = 0;
    let mut accepted_count = 0;
    let mut failures = Vec::new();
    for (kind, check) in [
        ("inclusion", inclusion_accepted as fn(&str) -> (bool, bool)),
        ("consistency", consistency_accepted),
    ] {
        let mut files = Vec::new();
        json_files(&base.join(kind), &mut files);
        files.sort();
        assert_eq!(files.len(), 98, "{kind} case count");
        for file in files {
            let name = file
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {name}: {e}"));
            let (accepted, want_err) = check(&text);
            total += 1;
            accepted_count += usize::from(accepted);
            if accepted == want_err {
                failures.push(format!(
                    "{name}: accepted = {accepted}, wantErr = {want_err}"
                ));
            }
        }
    }
    assert_eq!(total, 196, "total number of cases");
    assert!(
        failures.is_empty(),
        "{} case(s) disagree with the vectors:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Sanity: both outcomes occur, so neither check is vacuous.
    assert!(accepted_count > 0 && accepted_count < total);
}
