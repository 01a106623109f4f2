//! A client of `oretrail serve --demo`: the demo's smelter dispatches a
//! cathode lot it holds to a buyer, and the buyer signs its receipt.
//!
//! ```sh
//! cargo run --release -- serve --demo --data ./oretrail-data &
//! cargo run --release --example submit_dispatch -- --url http://127.0.0.1:8080 --data ./oretrail-data
//! ```
//!
//! `--data` is only read for the demo participants' keys
//! (`DATA/keys/demo/<id>.key`) and the smelter's read token
//! (`DATA/keys/demo/smelter.pohjanmeri.token`). The lot is the
//! highest-numbered demo cathode (`PSO-CA-2026-NNNN`) the smelter still
//! holds, found with `GET /v1/lots/{id}` read as the smelter; each run
//! ships the next one down.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use oretrail::cli::client;
use oretrail::crypto::{SecretKey, sha256};
use oretrail::model::{
    CountryCode, Dispatch, DocumentKind, DocumentRef, EventBody, Grams, LotId, LotReceipt,
    ParticipantId, Timestamp,
};
use oretrail::signer::Signer;

const SMELTER: &str = "smelter.pohjanmeri";
const BUYER: &str = "buyer.rheinkabel";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut url = "http://127.0.0.1:8080".to_string();
    let mut data = PathBuf::from("./oretrail-data");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next().context("--url needs a value")?,
            "--data" => data = args.next().context("--data needs a value")?.into(),
            other => bail!("unknown argument {other}; usage: --url URL --data DIR"),
        }
    }
    let keys = data.join("keys").join("demo");
    let signer = |id: &str| -> anyhow::Result<Signer> {
        let key = SecretKey::read_file(&keys.join(format!("{id}.key")))?;
        Ok(Signer::new(
            oretrail::demo::ORIGIN,
            ParticipantId::new(id)?,
            key,
        ))
    };
    let mut smelter = signer(SMELTER)?;
    let mut buyer = signer(BUYER)?;

    let token_file = keys.join(format!("{SMELTER}.token"));
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("reading the smelter's read token {}", token_file.display()))?;
    let reader = client::Client::new(&url)?.with_token(token.trim());
    let (lot, wet) = held_cathode(&reader)?;
    println!("dispatching {lot} ({wet} g) from {SMELTER} to {BUYER}");

    let permit = DocumentRef {
        kind: DocumentKind::ExportPermit,
        sha256: sha256(format!("Intra-EU dispatch declaration, lot {lot}").as_bytes()),
    };
    let dispatch = smelter.sign(
        Timestamp::now(),
        EventBody::Dispatch(Dispatch {
            lot: lot.clone(),
            to: ParticipantId::new(BUYER)?,
            route: vec![CountryCode::new("FI")?, CountryCode::new("DE")?],
            documents: vec![permit],
        }),
    )?;
    println!("dispatch: {}", send(&url, &dispatch)?);

    let receipt = buyer.sign(
        Timestamp::now(),
        EventBody::Receive(LotReceipt {
            lot,
            measured_wet: Grams(wet),
            accepted: true,
            note: String::new(),
            documents: vec![],
        }),
    )?;
    println!("receipt:  {}", send(&url, &receipt)?);
    Ok(())
}

/// The highest-numbered demo cathode lot the smelter holds, and its wet
/// mass in grams, asked as the smelter (`reader` carries its token): a lot
/// it never held is answered 404, one it held before only as a summary
/// without custodian.
fn held_cathode(reader: &client::Client) -> anyhow::Result<(LotId, u64)> {
    for n in (1..=999).rev() {
        let id = format!("PSO-CA-2026-{n:04}");
        let answer = reader.request("GET", &format!("/v1/lots/{id}"), None)?;
        if answer.status == 404 {
            continue;
        }
        if !answer.is_success() {
            bail!("GET /v1/lots/{id}: {}", answer.error_line());
        }
        let lot: serde_json::Value = serde_json::from_slice(&answer.body)?;
        if lot["custodian"] == SMELTER && lot["status"] == "Held" {
            let wet = lot["wet"].as_u64().context("the lot has no wet mass")?;
            return Ok((LotId::new(id)?, wet));
        }
    }
    bail!("the smelter holds no demo cathode lot any more")
}

fn send(url: &str, signed: &oretrail::model::SignedEvent) -> anyhow::Result<String> {
    let answer = client::submit(url, signed)?;
    if !answer.is_success() {
        bail!("the server refused the event: {}", answer.error_line());
    }
    Ok(answer.text())
}
