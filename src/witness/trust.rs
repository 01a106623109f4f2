//! The witnesses a log operator trusts: the text of `DATA/witnesses`, one
//! witness key line per line (`<name>+<key id>+<base64(0x04 || key)>`, as
//! `oretrail witness key` prints it), with `#` comments and blank lines.
//! The server accepts cosignatures only from these keys. Pure: the file
//! is read and written by `witness::files`.

use crate::merkle::checkpoint::NoteSignature;
use crate::merkle::cosignature::CosignerVerifier;

/// The comment the file starts with when `oretrail witness trust` writes it.
const PREAMBLE: &str = "# Witnesses whose cosignatures this log accepts and serves: one witness\n\
                        # key line per line. Managed with `oretrail witness trust|untrust|list`.\n";

/// Why a key cannot be trusted or untrusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// Another key is trusted under the same name.
    #[error(
        "a different key is already trusted under the name {name} ({existing}); untrust it first"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The key line trusted now.
        existing: String,
    },
    /// Nothing trusted matches.
    #[error("no trusted witness is named {0:?} or has that key line")]
    Unknown(String),
}

/// The trusted witness keys, in the file's order, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedWitnesses {
    keys: Vec<CosignerVerifier>,
}

impl TrustedWitnesses {
    /// Parses the file's text; every line that is not blank or a comment
    /// must be a witness key line, and no name may appear twice. The error
    /// names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut trusted = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = CosignerVerifier::parse(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            trusted
                .trust(key)
                .map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        Ok(trusted)
    }

    /// The file's text: a comment, then one key line per line.
    pub fn to_text(&self) -> String {
        let mut text = PREAMBLE.to_owned();
        for key in &self.keys {
            text.push_str(&key.key_line());
            text.push('\n');
        }
        text
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[CosignerVerifier] {
        &self.keys
    }

    /// Trusts `key`; `false` when it is trusted already. A second key under
    /// a trusted name is refused, so a name always means one witness.
    pub fn trust(&mut self, key: CosignerVerifier) -> Result<bool, TrustError> {
        match self.keys.iter().find(|k| k.name() == key.name()) {
            Some(existing) if *existing == key => Ok(false),
            Some(existing) => Err(TrustError::NameTaken {
                name: key.name().to_owned(),
                existing: existing.key_line(),
            }),
            None => {
                self.keys.push(key);
                Ok(true)
            }
        }
    }

    /// Stops trusting the witness named `name_or_line` (its name, or its
    /// whole key line); returns its key.
    pub fn untrust(&mut self, name_or_line: &str) -> Result<CosignerVerifier, TrustError> {
        let wanted = name_or_line.trim();
        let at = self
            .keys
            .iter()
            .position(|k| k.name() == wanted || k.key_line() == wanted)
            .ok_or_else(|| TrustError::Unknown(wanted.to_owned()))?;
        Ok(self.keys.remove(at))
    }

    /// The trusted key a signature line claims to be from (same name and
    /// key id), if any.
    pub fn signer_of(&self, line: &NoteSignature) -> Option<&CosignerVerifier> {
        self.keys.iter().find(|k| k.is_signer_of(line))
    }
}
