//! Identifiers and time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A malformed identifier or time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "participant id {0:?} must be 1 to 64 characters of a-z, 0-9, '.', '-' or '_', starting with a letter or digit"
    )]
    ParticipantId(String),
    #[error("country {0:?} must be an ISO 3166-1 alpha-2 code: two capital letters")]
    Country(String),
    #[error("time {0:?} must be an RFC 3339 UTC time such as 2026-01-31T12:00:00Z")]
    Time(String),
    #[error(
        "{what} id {id:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '-', '_' or '/', starting with a letter or digit"
    )]
    Code { what: &'static str, id: String },
}

/// A participant's identifier on the ledger, chosen by the operator at
/// registration (for example `mine.kansanshi`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ParticipantId(String);

impl ParticipantId {
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        let ok = (1..=64).contains(&id.len())
            && id
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && id.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
            });
        if ok {
            Ok(Self(id))
        } else {
            Err(IdError::ParticipantId(id))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ParticipantId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl From<ParticipantId> for String {
    fn from(id: ParticipantId) -> String {
        id.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ParticipantId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}

/// An ISO 3166-1 alpha-2 country code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    pub fn new(code: impl Into<String>) -> Result<Self, IdError> {
        let code = code.into();
        if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(IdError::Country(code))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CountryCode {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.0
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A point in time: milliseconds since 1970-01-01T00:00:00Z. A `u64` in
/// the binary encoding and an RFC 3339 UTC string in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ToSchema)]
#[schema(value_type = String, format = DateTime)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// The system clock, truncated to milliseconds.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
    pub fn saturating_add_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
    /// Parses an RFC 3339 UTC time (`Z` suffix), with optional fractional
    /// seconds truncated to milliseconds.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let t = humantime::parse_rfc3339(text).map_err(|_| IdError::Time(text.to_string()))?;
        let since = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| IdError::Time(text.to_string()))?;
        u64::try_from(since.as_millis())
            .map(Self)
            .map_err(|_| IdError::Time(text.to_string()))
    }
}

/// The last millisecond RFC 3339 can write: 9999-12-31T23:59:59.999Z. Later
/// times are refused when decoded, since no text form exists for them.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // humantime panics past year 9999; such values are refused when
        // decoded, but a value built in code must still print.
        match UNIX_EPOCH.checked_add(Duration::from_millis(self.0)) {
            Some(t) if self.0 <= MAX_TIME_MS => {
                write!(f, "{}", humantime::format_rfc3339_millis(t))
            }
            _ => write!(f, "@{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_string())
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            Timestamp::parse(&text).map_err(serde::de::Error::custom)
        } else {
            let ms = u64::deserialize(d)?;
            if ms > MAX_TIME_MS {
                return Err(serde::de::Error::custom(format!(
                    "time {ms} ms is after 9999-12-31T23:59:59.999Z"
                )));
            }
            Ok(Timestamp(ms))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_ids_are_validated() {
        assert!(ParticipantId::new("mine.kansanshi-2").is_ok());
        for bad in ["", "Mine", "-x", "a b", &"x".repeat(65)] {
            assert!(ParticipantId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_print_and_parse_rfc3339() {
        let t = Timestamp::parse("2026-01-31T12:00:00.250Z").unwrap();
        assert_eq!(t.as_millis(), 1_769_860_800_250);
        assert_eq!(t.to_string(), "2026-01-31T12:00:00.250Z");
        assert!(Timestamp::parse("yesterday").is_err());
    }
}

#[cfg(test)]
mod time_bounds {
    use super::*;

    #[test]
    fn times_past_year_9999_print_without_panic_and_do_not_decode() {
        assert_eq!(
            Timestamp::from_millis(u64::MAX).to_string(),
            format!("@{}ms", u64::MAX)
        );
        assert_eq!(
            Timestamp::from_millis(MAX_TIME_MS).to_string(),
            "9999-12-31T23:59:59.999Z"
        );
        let config = bincode::config::standard()
            .with_little_endian()
            .with_fixed_int_encoding();
        let bytes = bincode::serde::encode_to_vec(MAX_TIME_MS + 1, config).unwrap();
        let decoded: Result<(Timestamp, usize), _> =
            bincode::serde::decode_from_slice(&bytes, config);
        assert!(decoded.is_err());
    }
}
