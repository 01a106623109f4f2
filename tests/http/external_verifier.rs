//! The log API verified from outside the Rust code: `tests/log_verifier.py`
//! (Python standard library only, written from RFC 9162 and the C2SP specs)
//! checks a served demo ledger, checks it again after it grew, and fails,
//! naming the problem, on every answer a tampering proxy falsifies.
//!
//! python3 is required: without it these tests fail rather than skip, so a
//! CI machine that lost it cannot pass quietly.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oretrail::cli::client::Client;
use oretrail::crypto::SecretKey;
use oretrail::model::{
    DocumentAttachment, DocumentKind, DocumentRef, EventBody, LotId, ParticipantId, Timestamp,
};
use oretrail::signer::Signer;
use serde_json::Value;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/log_verifier.py")
}

/// Runs the verifier with `args`; fails the test when python3 is missing.
fn verifier(args: &[&str]) -> Output {
    match Command::new("python3").arg(script()).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "python3 is not installed: the outside verifier of the log API \
             (tests/log_verifier.py) needs it; install Python 3.11 or later"
        ),
        Err(e) => panic!("cannot run python3: {e}"),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a run passed and returns its summary line.
fn passed(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "the verifier failed:\n{}{}",
        stdout(o),
        stderr(o)
    );
    let out = stdout(o);
    assert_eq!(out.lines().count(), 1, "one summary line: {out}");
    out
}

/// Asserts a run failed with exit status 1 and named `problem`.
fn failed_naming(o: &Output, problem: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "the verifier should have failed on {problem:?}:\n{}{}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert!(
        err.starts_with("log_verifier: FAILED: ") && err.contains(problem),
        "expected {problem:?} in: {err}"
    );
}

#[test]
fn the_python_verifier_passes_every_rfc_9162_vector() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc6962-merkle");
    let o = verifier(&["--self-test", vectors.to_str().unwrap()]);
    assert_eq!(
        passed(&o).trim(),
        "self-test: 196 RFC 9162 vector cases behave as the vectors say"
    );
}

/// The demo ledger served on a real socket: verified, grown by a batch of
/// events and verified again (consistency with the earlier checkpoint),
/// then falsified answer by answer through a proxy.
#[test]
fn the_python_verifier_checks_the_served_log_and_names_each_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let served = common::ServedDemo::start(&data);
    let url = format!("http://{}", served.addr);
    let state = tmp.path().join("verified.json");
    let state_arg = state.to_str().unwrap();

    // What is public: the checkpoint, the key, leaf hashes and proofs.
    let first = passed(&verifier(&[&url, "--state", state_arg]));
    let size = checkpoint_size(&url);
    assert!(
        first.starts_with(&format!(
            "log verified: {} size {size} root ",
            oretrail::demo::ORIGIN
        )),
        "{first}"
    );
    assert!(
        first.contains("entry bytes not shown (public view)")
            && first.contains("checkpoint signature NOT checked"),
        "{first}"
    );
    // As the auditor: every leaf hash recomputed from the entry bytes too.
    let auditor = demo_token(&data, "auditor.trailcheck");
    let audited = passed(&verifier(&[&url, "--token", &auditor, "--auditor"]));
    assert!(
        audited.contains(&format!(
            "all {size} entries re-hashed from their bytes and chain-linked"
        )),
        "{audited}"
    );
    // A buyer's token shows the entries of its lots; those are checked.
    let buyer = demo_token(&data, "buyer.rheinkabel");
    let bought = passed(&verifier(&[&url, "--token", &buyer]));
    assert!(
        bought.contains(&format!(" of {size} entries (those shown to this token)")),
        "{bought}"
    );

    append_attachments(&url, &data, 5);
    let grown = checkpoint_size(&url);
    assert_eq!(grown, size + 5);
    let second = passed(&verifier(&[&url, "--state", state_arg]));
    assert!(
        second.contains(&format!(" size {grown} "))
            && second.contains(&format!("grew from {size} (last verified) consistently")),
        "{second}"
    );

    tampered_answers_are_named(&url, size + 5, &auditor);
    forged_histories_are_named(&url, &state);

    let (status, _) = served.stop();
    assert!(status.success());
}

/// Every way the proxy falsifies one answer, and what the verifier must
/// say about it.
fn tampered_answers_are_named(url: &str, size: u64, auditor: &str) {
    // The proxy itself changes nothing unless told to.
    let proxy = TamperingProxy::start(url, |_, body| body);
    passed(&verifier(&[&proxy.url()]));
    drop(proxy);

    // What is falsified, how, what the verifier must say, and whether it
    // runs as the auditor.
    let cases: Vec<(&str, Tamper, String, bool)> = vec![
        (
            "one byte of one inclusion proof",
            |path, body| {
                if !path.starts_with("/v1/proofs/inclusion?index=1&") {
                    return body;
                }
                edit_json(body, |v| flip_b64(&mut v["proof"][0]))
            },
            format!("inclusion proof of entry 1 in tree size {size}"),
            false,
        ),
        (
            "one byte of one consistency proof",
            |path, body| {
                if !path.starts_with("/v1/proofs/consistency?first=2&") {
                    return body;
                }
                edit_json(body, |v| flip_b64(&mut v["proof"][0]))
            },
            format!("consistency proof from size 2 to {size}"),
            false,
        ),
        (
            "one leaf hash, with the entry bytes withheld",
            |path, body| {
                if !path.starts_with("/v1/entries?") {
                    return body;
                }
                let hit = path.starts_with("/v1/entries?start=1000&");
                edit_json(body, |v| {
                    for item in v["entries"].as_array_mut().unwrap() {
                        item.as_object_mut().unwrap().remove("leaf");
                    }
                    if hit {
                        flip_b64(&mut v["entries"][7]["leaf_hash"]);
                    }
                })
            },
            format!("the root recomputed from the {size} leaf hashes is not the checkpoint's root"),
            false,
        ),
        (
            "one byte of one entry's bytes",
            |path, body| {
                if !path.starts_with("/v1/entries?start=0&") {
                    return body;
                }
                edit_json(body, |v| flip_b64(&mut v["entries"][3]["leaf"]))
            },
            "entry 3: the leaf hash is not SHA-256(0x00 || leaf bytes)".into(),
            true,
        ),
        (
            "the checkpoint's root",
            |path, body| {
                if path != "/v1/checkpoint" {
                    return body;
                }
                let note = String::from_utf8(body).unwrap();
                let root = note.lines().nth(2).unwrap().to_string();
                let other = STANDARD.encode([0x42u8; 32]);
                note.replacen(&root, &other, 1).into_bytes()
            },
            "is not the checkpoint's root".into(),
            false,
        ),
        (
            "the key id of the key line",
            |path, body| {
                if path != "/v1/log/key" {
                    return body;
                }
                let line = String::from_utf8(body).unwrap();
                let mut parts: Vec<String> = line.split('+').map(String::from).collect();
                parts[1] = "00000000".into();
                parts.join("+").into_bytes()
            },
            "the key line's key id 00000000 is not the id of its name and key".into(),
            false,
        ),
        (
            "the public view given to the auditor",
            |path, body| {
                if !path.starts_with("/v1/entries?") {
                    return body;
                }
                edit_json(body, |v| {
                    for item in v["entries"].as_array_mut().unwrap() {
                        item.as_object_mut().unwrap().remove("leaf");
                    }
                })
            },
            "entry 0: no leaf bytes shown to the auditor's token".into(),
            true,
        ),
    ];
    // Each case has its own proxy and verifier; they run side by side.
    let outcomes: Vec<(&str, String, Output)> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .into_iter()
            .map(|(what, tamper, problem, as_auditor)| {
                scope.spawn(move || {
                    let proxy = TamperingProxy::start(url, tamper);
                    let proxied = proxy.url();
                    let mut args = vec![proxied.as_str()];
                    if as_auditor {
                        args.extend(["--token", auditor, "--auditor"]);
                    }
                    (what, problem, verifier(&args))
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (what, problem, o) in outcomes {
        assert_eq!(
            o.status.code(),
            Some(1),
            "tampering with {what} went unnoticed:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        failed_naming(&o, &problem);
    }
}

/// A remembered checkpoint that the served log does not extend.
fn forged_histories_are_named(url: &str, state: &Path) {
    let remembered: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let size = remembered["size"].as_u64().unwrap();

    let mut other_root = remembered.clone();
    other_root["size"] = (size - 10).into();
    other_root["root"] = STANDARD.encode([0x17u8; 32]).into();
    std::fs::write(state, other_root.to_string()).unwrap();
    failed_naming(
        &verifier(&[url, "--state", state.to_str().unwrap()]),
        &format!(
            "the first {} leaf hashes no longer give the root verified last time",
            size - 10
        ),
    );

    let mut longer = remembered;
    longer["size"] = (size + 1).into();
    std::fs::write(state, longer.to_string()).unwrap();
    failed_naming(
        &verifier(&[url, "--state", state.to_str().unwrap()]),
        &format!(
            "the log shrank: it had {} entries when last verified, now {size}",
            size + 1
        ),
    );
}

/// The token `serve --demo` issued to a demo participant.
fn demo_token(data: &Path, participant: &str) -> String {
    let path = data.join(format!("keys/demo/{participant}.token"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the demo auditor's token {}: {e}", path.display()))
        .trim()
        .to_string()
}

fn checkpoint_size(url: &str) -> u64 {
    let answer = Client::new(url)
        .unwrap()
        .request("GET", "/v1/checkpoint", None)
        .unwrap();
    answer.text().lines().nth(1).unwrap().parse().unwrap()
}

/// Posts `n` document attachments by the demo smelter in one batch and
/// asserts each was recorded.
fn append_attachments(url: &str, data: &Path, n: u8) {
    let key = SecretKey::read_file(&data.join("keys/demo/smelter.pohjanmeri.key")).unwrap();
    let mut smelter = Signer::new(
        oretrail::demo::ORIGIN,
        ParticipantId::new("smelter.pohjanmeri").unwrap(),
        key,
    );
    let events: Vec<Value> = (0..n)
        .map(|i| {
            let body = EventBody::AttachDocument(DocumentAttachment {
                // The last cathode of the demo year is still at the smelter.
                lot: LotId::new("PSO-CA-2026-0462").unwrap(),
                document: DocumentRef {
                    kind: DocumentKind::WeightCertificate,
                    sha256: oretrail::crypto::sha256(&[i]),
                },
            });
            let signed = smelter.sign(Timestamp::now(), body).unwrap();
            serde_json::to_value(oretrail::cli::client::SignedEventBody::from(&signed)).unwrap()
        })
        .collect();
    let body = serde_json::json!({ "events": events }).to_string();
    let answer = Client::new(url)
        .unwrap()
        .request("POST", "/v1/events/batch", Some(body.as_bytes()))
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let results: Value = serde_json::from_slice(&answer.body).unwrap();
    for r in results["results"].as_array().unwrap() {
        assert_eq!(r["status"], 201, "{r}");
    }
}

/// Rewrites one answer: the request path and the upstream body in, the
/// body to send out.
type Tamper = fn(&str, Vec<u8>) -> Vec<u8>;

fn edit_json(body: Vec<u8>, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// Flips the lowest bit of the first byte of a base64 string.
fn flip_b64(v: &mut Value) {
    let mut bytes = STANDARD.decode(v.as_str().unwrap()).unwrap();
    bytes[0] ^= 1;
    *v = STANDARD.encode(bytes).into();
}

/// An HTTP proxy on a free loopback port in front of the server: each
/// GET is fetched from the server and its body passed through a `Tamper`.
/// One request per connection, one connection at a time (the verifier
/// asks one thing after another). Stops when dropped.
struct TamperingProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TamperingProxy {
    fn start(upstream: &str, tamper: Tamper) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = Client::new(upstream).unwrap();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        relay(stream, &upstream, tamper);
                    }
                }
            })
        };
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TamperingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn relay(stream: TcpStream, upstream: &Client, tamper: Tamper) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut token = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            token = value.trim().strip_prefix("Bearer ").map(str::to_string);
        }
    }
    let Some(path) = request_line.split(' ').nth(1) else {
        return;
    };
    let client = match token {
        Some(t) => upstream.clone().with_token(t),
        None => upstream.clone(),
    };
    let answer = client.request("GET", path, None).unwrap();
    let body = tamper(path, answer.body);
    let head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status,
        body.len()
    );
    let stream = reader.get_mut();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}
