//! The client side of the commands `event sign`, `submit` and `load`:
//! reading a human-friendly JSON event, signing it, and sending requests
//! to a server with `ureq` (blocking HTTP/1.1, plain `http://` only).
//!
//! The server side of HTTP lives in `crate::api`. This build speaks no
//! TLS: it is meant for a server on loopback or behind a TLS-terminating
//! proxy on the same host.

use std::io::Read;
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
            _ => format!("HTTP {}: {}", self.status, excerpt(&self.body)),
        }
    }
}

/// The start of a body that is not what was expected, on one line, for
/// error messages.
fn excerpt(body: &[u8]) -> String {
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None if text.is_empty() => "(empty body)".to_string(),
        None => text,
    }
}

/// A failure to talk to the server at all (as opposed to an error answer).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

/// Longest a request may take, connecting and reading included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest answer body read; the biggest the API sends is a page of 1000
/// entries with their bytes, a few MB.
const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// A connection to one server: keeps its connections open between
/// requests (keep-alive) and sends a bearer token when it has one.
#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    /// A client for the server at `base_url` (`http://host:port`, with an
    /// optional path prefix). Refuses anything but plain `http://`.
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        check_url(base_url)?;
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            // Error statuses are answers to show, not failures to connect.
            .http_status_as_error(false)
            // A redirect is shown as it is rather than followed with the
            // event resent somewhere else.
            .max_redirects(0)
            .user_agent(concat!("oretrail/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            agent: config.into(),
            token: None,
        })
    }

    /// The same client, sending `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sends one request to `path` (under the base URL) and reads the
    /// whole answer. Connection and transport failures are `ConnectError`s;
    /// an error status is an `Answer`.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> anyhow::Result<Answer> {
        let url = format!("{}{}", self.base_url, path);
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", "application/json");
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(body.unwrap_or_default())
            .with_context(|| format!("{method} {url}: not a valid request"))?;
        let failed = |e: ureq::Error| ConnectError(format!("{method} {url}: {}", describe(&e)));
        let mut response = self.agent.run(request).map_err(failed)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(failed)?;
        Ok(Answer { status, body })
    }

    /// `POST /v1/events` with one signed event. Any answer, accepted or
    /// not, must be JSON: anything else is not an oretrail server.
    pub fn submit(&self, signed: &SignedEvent) -> anyhow::Result<Answer> {
        let body = serde_json::to_vec(&SignedEventBody::from(signed))?;
        let answer = self.request("POST", "/v1/events", Some(&body))?;
        if serde_json::from_slice::<serde_json::Value>(&answer.body).is_err() {
            bail!(
                "POST {}/v1/events: the answer (HTTP {}) is not JSON; is this an oretrail \
                 server? It began: {}",
                self.base_url,
                answer.status,
                excerpt(&answer.body)
            );
        }
        Ok(answer)
    }
}

fn check_url(url: &str) -> anyhow::Result<()> {
    let Some(rest) = url.strip_prefix("http://") else {
        if url.starts_with("https://") {
            bail!(
                "{url}: only plain http:// is supported (this build has no TLS; use a \
                 TLS-terminating proxy)"
            );
        }
        bail!("{url}: the URL must start with http://");
    };
    if rest.is_empty() || rest.starts_with('/') {
        bail!("{url}: no host");
    }
    Ok(())
}

/// A transport error in words a user can act on.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the server running, and on this address?)".to_string()
        }
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::Timeout(_) => {
            format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
        }
        other => other.to_string(),
    }
}

/// Sends one request to `base_url` + `path` and reads the whole answer.
/// Connection failures are `ConnectError`s.
pub fn request(
    base_url: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<Answer> {
    Client::new(base_url)?.request(method, path, body)
}

/// `POST URL/v1/events` with one signed event.
pub fn submit(base_url: &str, signed: &SignedEvent) -> anyhow::Result<Answer> {
    Client::new(base_url)?.submit(signed)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    /// A one-shot server on a free loopback port that answers the first
    /// request with `status` and `body`, and returns what it was sent.
    fn answer_once(status: &str, body: &str) -> (String, std::thread::JoinHandle<String>) {
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            reader.get_mut().write_all(answer.as_bytes()).unwrap();
            head + &String::from_utf8(body).unwrap()
        });
        (url, served)
    }

    fn signed() -> SignedEvent {
        SignedEvent {
            key: SecretKey::from_seed(&[7; 32]).public(),
            signature: SecretKey::from_seed(&[7; 32]).sign(b"event"),
            event: b"event".to_vec(),
        }
    }

    #[test]
    fn submit_posts_the_hex_body_and_returns_a_json_error_answer() {
        let (url, served) = answer_once(
            "422 Unprocessable Entity",
            r#"{"code":"NOT_CUSTODIAN","message":"m","details":null}"#,
        );
        let answer = Client::new(&url).unwrap().submit(&signed()).unwrap();
        let sent = served.join().unwrap();
        assert!(sent.starts_with("POST /v1/events HTTP/1.1\r\n"), "{sent}");
        assert!(
            sent.to_ascii_lowercase()
                .contains("content-type: application/json")
        );
        let body: SignedEventBody =
            serde_json::from_str(sent.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body, SignedEventBody::from(&signed()));
        assert!(!answer.is_success());
        assert_eq!(answer.error_line(), "HTTP 422 NOT_CUSTODIAN: m");
    }

    #[test]
    fn an_answer_that_is_not_json_is_an_error_naming_what_came_back() {
        let (url, served) = answer_once("200 OK", "<html>\n  <p>hello</p>\n</html>");
        let e = Client::new(&url).unwrap().submit(&signed()).unwrap_err();
        served.join().unwrap();
        let message = e.to_string();
        assert!(message.contains("(HTTP 200) is not JSON"), "{message}");
        assert!(message.contains("<html> <p>hello</p> </html>"), "{message}");
    }

    #[test]
    fn a_bearer_token_is_sent_when_given() {
        let (url, served) = answer_once("200 OK", "{}");
        let answer = Client::new(&url)
            .unwrap()
            .with_token("t0ken")
            .request("GET", "/v1/flags", None)
            .unwrap();
        assert_eq!((answer.status, answer.text().as_str()), (200, "{}"));
        let sent = served.join().unwrap().to_ascii_lowercase();
        assert!(sent.starts_with("get /v1/flags http/1.1"), "{sent}");
        assert!(sent.contains("authorization: bearer t0ken"), "{sent}");
    }

    #[test]
    fn refused_connections_and_other_schemes_give_clear_errors() {
        // Bind, then drop, so nothing listens on the port.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = request(
            &format!("http://127.0.0.1:{port}"),
            "GET",
            "/v1/checkpoint",
            None,
        )
        .unwrap_err();
        assert!(e.downcast_ref::<ConnectError>().is_some(), "{e}");
        assert!(e.to_string().contains("connection refused"), "{e}");
        let e = Client::new("https://example.org").unwrap_err();
        assert!(e.to_string().contains("only plain http://"), "{e}");
        let e = Client::new("ftp://example.org").unwrap_err();
        assert!(e.to_string().contains("must start with http://"), "{e}");
    }

    #[test]
    fn excerpts_are_one_line_and_cut() {
        assert_eq!(excerpt(b"  a\n\tb  "), "a b");
        assert_eq!(excerpt(b""), "(empty body)");
        let long = "x".repeat(500);
        assert_eq!(excerpt(long.as_bytes()).len(), 203);
    }
}
