//! The client side of the commands `event sign` and `submit`: reading a
//! human-friendly JSON event, signing it, and a minimal HTTP/1.1 client
//! (plain `http://` only, one request per connection) to send it.
//!
//! The server side of HTTP lives in `crate::api`; this is only what a
//! client needs, kept small on purpose: meant for a server on loopback or
//! behind a TLS-terminating proxy on the same host.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::crypto::SecretKey;
use crate::model::{Event, EventBody, ParticipantId, SignedEvent, Timestamp};
use crate::signer::sign_event;

/// An event as a person writes it: the `Event` JSON with `ledger`, `time`
/// and `nonce` optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventInput {
    #[serde(default)]
    ledger: Option<String>,
    signer: ParticipantId,
    #[serde(default)]
    time: Option<Timestamp>,
    #[serde(default)]
    nonce: Option<u64>,
    body: EventBody,
}

/// Parses a human-friendly JSON event. `source` names where it came from in
/// errors; a bad field is named by its JSON path (`body.dispatch.to`).
/// A missing time is now, a missing nonce random; a missing ledger is
/// `ledger`, which must agree with the event's when both are given.
pub fn parse_event(text: &str, source: &str, ledger: Option<&str>) -> anyhow::Result<Event> {
    let mut de = serde_json::Deserializer::from_str(text);
    let input: EventInput = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            anyhow::anyhow!("{source}: not a JSON event: {inner}")
        } else {
            anyhow::anyhow!("{source}: field `{path}`: {inner}")
        }
    })?;
    de.end()
        .map_err(|e| anyhow::anyhow!("{source}: text after the JSON event: {e}"))?;
    let ledger = match (input.ledger, ledger) {
        (Some(own), Some(given)) if own != given => {
            bail!("{source}: the event is for ledger {own:?} but --ledger says {given:?}")
        }
        (Some(own), _) => own,
        (None, Some(given)) => given.to_string(),
        (None, None) => {
            bail!("{source}: the event names no ledger: add \"ledger\" or pass --ledger ORIGIN")
        }
    };
    let nonce = match input.nonce {
        Some(n) => n,
        None => {
            getrandom::u64().map_err(|e| anyhow::anyhow!("no random source for the nonce: {e}"))?
        }
    };
    Ok(Event {
        ledger,
        signer: input.signer,
        time: input.time.unwrap_or_else(Timestamp::now),
        nonce,
        body: input.body,
    })
}

/// Reads an event file (`-` for stdin) and the key file, and signs.
pub fn sign_file(event: &Path, key: &Path, ledger: Option<&str>) -> anyhow::Result<SignedEvent> {
    let (text, source) = if event == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the event from stdin")?;
        (text, "stdin".to_string())
    } else {
        let text = std::fs::read_to_string(event)
            .with_context(|| format!("reading the event file {}", event.display()))?;
        (text, event.display().to_string())
    };
    let event = parse_event(&text, &source, ledger)?;
    let key = SecretKey::read_file(key).context("reading the key file")?;
    sign_event(&event, &key).with_context(|| format!("{source}: encoding the event"))
}

/// The JSON body `POST /v1/events` takes, hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEventBody {
    pub key: String,
    pub signature: String,
    pub event: String,
}

impl From<&SignedEvent> for SignedEventBody {
    fn from(s: &SignedEvent) -> Self {
        Self {
            key: s.key.to_hex(),
            signature: s.signature.to_hex(),
            event: hex::encode(&s.event),
        }
    }
}

/// An HTTP answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `code: message` of a JSON error answer, or the status and raw body.
    pub fn error_line(&self) -> String {
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(v) if v["code"].is_string() => format!(
                "HTTP {} {}: {}",
                self.status,
                v["code"].as_str().unwrap_or_default(),
                v["message"].as_str().unwrap_or_default()
            ),
            _ => format!("HTTP {}: {}", self.status, self.text().trim()),
        }
    }
}

/// A failure to talk to the server at all (as opposed to an error answer).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

/// Where an `http://host:port[/prefix]` URL points.
struct Target {
    authority: String,
    prefix: String,
}

fn parse_url(url: &str) -> anyhow::Result<Target> {
    let Some(rest) = url.strip_prefix("http://") else {
        if url.starts_with("https://") {
            bail!("{url}: only plain http:// is supported (use a TLS-terminating proxy)");
        }
        bail!("{url}: the URL must start with http://");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        bail!("{url}: no host");
    }
    let authority = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(Target {
        authority,
        prefix: path.trim_end_matches('/').to_string(),
    })
}

/// Sends one request (`Connection: close`) and reads the whole answer.
/// Connection failures are `ConnectError`s.
pub fn request(
    base_url: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<Answer> {
    let target = parse_url(base_url)?;
    let url = format!("{}{}", base_url.trim_end_matches('/'), path);
    let io = |e: std::io::Error| ConnectError(format!("{url}: {e}"));
    let mut stream = TcpStream::connect(&target.authority).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(io)?;
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
        target.prefix, target.authority
    );
    if method != "GET" || !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    stream.flush().map_err(io)?;
    let mut reader = BufReader::new(stream);
    read_answer(&mut reader).map_err(|e| ConnectError(format!("{url}: {e}")).into())
}

fn read_answer(reader: &mut impl BufRead) -> std::io::Result<Answer> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("not an HTTP/1.1 answer"))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("the answer ended inside its headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad("bad Content-Length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Answer { status, body })
}

/// `POST URL/v1/events` with one signed event.
pub fn submit(base_url: &str, signed: &SignedEvent) -> anyhow::Result<Answer> {
    let body = serde_json::to_vec(&SignedEventBody::from(signed))?;
    request(base_url, "POST", "/v1/events", Some(&body))
}
