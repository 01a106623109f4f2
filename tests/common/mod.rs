//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use oretrail::crypto::SecretKey;
use oretrail::ledger::{GenesisParams, Ledger, OPERATOR_KEY_FILE, Options};
use oretrail::model::{
    CountryCode, EventBody, ParticipantId, ParticipantKind, Registration, Role, Timestamp,
};
use oretrail::signer::Signer;

pub const ORIGIN: &str = "test.oretrail.example/ledger";
/// 2026-01-01T00:00:00Z.
pub const START_MS: u64 = 1_767_225_600_000;

/// A simulated clock the test moves by hand.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub fn new() -> Self {
        Self(Arc::new(AtomicU64::new(START_MS)))
    }
    pub fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn options(&self) -> Options {
        let c = self.0.clone();
        Options {
            clock: Arc::new(move || Timestamp::from_millis(c.load(Ordering::SeqCst))),
            ..Options::default()
        }
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ledger: Option<Ledger>,
    pub clock: TestClock,
    pub operator: Signer,
}

pub fn pid(id: &str) -> ParticipantId {
    ParticipantId::new(id).unwrap()
}

/// A deterministic key from a small number.
pub fn key(n: u32) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    seed[31] = 0x5a;
    SecretKey::from_seed(&seed)
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = TestClock::new();
        let ledger = Ledger::create(dir.path(), genesis(), clock.options()).unwrap();
        let operator_key =
            SecretKey::read_file(&dir.path().join("keys").join(OPERATOR_KEY_FILE)).unwrap();
        let operator = Signer::with_first_nonce(ORIGIN, pid("operator"), operator_key, 1);
        Self {
            dir,
            ledger: Some(ledger),
            clock,
            operator,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    pub fn ledger(&self) -> &Ledger {
        self.ledger.as_ref().unwrap()
    }

    pub fn close(&mut self) {
        if let Some(l) = self.ledger.take() {
            l.close().unwrap();
        }
    }

    pub fn reopen(&mut self) {
        self.close();
        self.ledger = Some(Ledger::open(self.dir.path(), self.clock.options()).unwrap());
    }

    /// Registers a participant with one deterministic key; returns its signer.
    pub fn register(&mut self, id: &str, n: u32, roles: Vec<Role>) -> Signer {
        let k = key(n);
        let body = EventBody::RegisterParticipant(Registration {
            participant: pid(id),
            legal_name: format!("{id} Ltd"),
            country: CountryCode::new("ZM").unwrap(),
            kinds: vec![ParticipantKind::Trader],
            roles,
            keys: vec![k.public()],
        });
        let signed = self.operator.sign(self.clock.now(), body).unwrap();
        self.ledger().append(signed).unwrap();
        Signer::with_first_nonce(ORIGIN, pid(id), k, 1)
    }
}

/// Issues a bearer token for `participant` in the token file of the data
/// folder `data` (as `oretrail token issue` does); returns the token. A
/// server watching that folder accepts it from its next look at the file
/// (its first request, or within a second).
pub fn issue_token(data: &Path, participant: &str) -> String {
    let (token, _) = oretrail::access::tokens::TokenFile::of(data)
        .update(|t| t.issue(pid(participant), "test", Timestamp::now(), None))
        .unwrap();
    token.as_str().to_string()
}

pub fn genesis() -> GenesisParams {
    GenesisParams {
        origin: ORIGIN.into(),
        operator: pid("operator"),
        operator_name: "Test Operator AG".into(),
        operator_country: CountryCode::new("CH").unwrap(),
    }
}

/// `oretrail serve --demo` on a free loopback port, for tests of the
/// binary over a real socket.
pub struct ServedDemo {
    pub child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// What the server printed up to and including its address line.
    pub printed: String,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl ServedDemo {
    /// Starts the server on `data` (building the demo ledger there when
    /// the folder holds none) and waits until it listens.
    pub fn start(data: &Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oretrail"))
            .args(["serve", "--demo", "--data", data.to_str().unwrap()])
            .env("ORETRAIL_ADDR", "127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut printed = String::new();
        let addr = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("serve exited early: {printed}");
            }
            printed.push_str(&line);
            if let Some(addr) = line.trim().strip_prefix("listening on http://") {
                break addr.to_string();
            }
        };
        Self {
            child,
            addr,
            printed,
            stdout,
        }
    }

    /// Sends SIGTERM and waits (at most 30 s) for the server to stop;
    /// returns its exit status and what it printed after the address line.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut waited = 0;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if waited == 300 {
                let _ = self.child.kill();
                panic!("serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            waited += 1;
        };
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        (status, rest)
    }
}

/// A scratch folder for this test process under the target's temporary
/// folder, named `<prefix><pid>`, for fixtures that outlive any one test
/// (a demo ledger shared through a `static`). Folders of the same prefix
/// left by processes that have ended are removed; those of running
/// processes (another test run on the same machine) are left alone.
pub fn scratch_folder(prefix: &str) -> PathBuf {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(scratch) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(prefix) else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    scratch.join(format!("{prefix}{}", std::process::id()))
}
