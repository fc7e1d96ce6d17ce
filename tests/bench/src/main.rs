//! Load generator for the side-by-side benchmark (`tests/bench/run.sh`): N controllers,
//! each on its own connection and thread, pair-verify with one stored pairing and then
//! alternate GET and PUT `/characteristics` as fast as the accessory answers, one request
//! in flight per connection, as a controller does.
//!
//! ```text
//! hap-load --address 127.0.0.1:PORT --pairing PAIRING.json --aid 1 --read IID --write IID
//!          [--controllers 16] [--seconds 5]
//! ```
//!
//! `PAIRING.json` is aiohomekit's pairing data (`iOSPairingId`, `iOSDeviceLTSK`,
//! `AccessoryPairingID`, `AccessoryLTPK`). It prints one JSON line:
//! `{"controllers":16,"operations":N,"seconds":S}`; every response must be a success, or
//! it exits with an error. The caller measures the accessory's CPU around the run.

#[path = "../../../adapters/std/tests/support/controller.rs"]
mod controller;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use controller::Controller;
use hap_core::crypto::Ed25519KeyPair;
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, PairingId};

struct Args {
    address: SocketAddr,
    pairing: std::path::PathBuf,
    aid: u64,
    read: u64,
    write: u64,
    controllers: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut address, mut pairing, mut aid, mut read, mut write) = (None, None, None, None, None);
    let (mut controllers, mut seconds) = (16, 5.0f64);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--address" => address = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--pairing" => pairing = Some(value()?.into()),
            "--aid" => aid = Some(number(value()?)?),
            "--read" => read = Some(number(value()?)?),
            "--write" => write = Some(number(value()?)?),
            "--controllers" => controllers = number(value()?)? as usize,
            "--seconds" => seconds = value()?.parse().map_err(|e| format!("{e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let missing = |name: &str| format!("--{name} is required");
    Ok(Args {
        address: address.ok_or_else(|| missing("address"))?,
        pairing: pairing.ok_or_else(|| missing("pairing"))?,
        aid: aid.ok_or_else(|| missing("aid"))?,
        read: read.ok_or_else(|| missing("read"))?,
        write: write.ok_or_else(|| missing("write"))?,
        controllers: controllers.clamp(1, 64),
        seconds: seconds.clamp(0.1, 600.0),
    })
}

/// The controller identity and the accessory from aiohomekit's pairing data.
fn load_pairing(path: &std::path::Path) -> Result<(ControllerIdentity, AccessoryPairing), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        data[name]
            .as_str()
            .ok_or(format!("{name} is missing from the pairing data"))
    };
    let key = |name: &str| -> Result<[u8; 32], String> {
        hex::decode(field(name)?)
            .map_err(|e| format!("{name}: {e}"))?
            .try_into()
            .map_err(|_| format!("{name} is not 32 bytes"))
    };
    let id = |name: &str| {
        PairingId::new(field(name)?.as_bytes()).ok_or(format!("{name} is not a pairing id"))
    };
    Ok((
        ControllerIdentity {
            id: id("iOSPairingId")?,
            keys: Ed25519KeyPair::from_seed(&key("iOSDeviceLTSK")?),
        },
        AccessoryPairing {
            id: id("AccessoryPairingID")?,
            public_key: key("AccessoryLTPK")?,
        },
    ))
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("hap-load: {e}");
        std::process::exit(2);
    });
    let (identity, accessory) = load_pairing(&args.pairing).unwrap_or_else(|e| {
        eprintln!("hap-load: {e}");
        std::process::exit(2);
    });
    let read = format!("/characteristics?id={}.{}", args.aid, args.read);
    let writes = [0, 1].map(|v| {
        format!(
            r#"{{"characteristics":[{{"aid":{},"iid":{},"value":{}}}]}}"#,
            args.aid,
            args.write,
            30 + v
        )
    });
    // Every controller verifies first; the clock starts when all have.
    let ready = Arc::new(Barrier::new(args.controllers + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..args.controllers)
        .map(|index| {
            let (ready, stop) = (ready.clone(), stop.clone());
            let (identity, accessory) = (identity.clone(), accessory.clone());
            let (read, writes, address) = (read.clone(), writes.clone(), args.address);
            std::thread::spawn(move || {
                let mut controller =
                    Controller::connect(address, index as u8).with_identity(identity);
                controller.pair_verify(&accessory);
                ready.wait();
                let mut operations = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let reply = if operations.is_multiple_of(2) {
                        controller.get(&read)
                    } else {
                        controller.put("/characteristics", &writes[(operations / 2 % 2) as usize])
                    };
                    assert!(
                        reply.status == 200 || reply.status == 204,
                        "controller {index}: {} {}",
                        reply.status,
                        reply.text()
                    );
                    operations += 1;
                }
                operations
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut operations = 0;
    let mut failed = false;
    for worker in workers {
        match worker.join() {
            Ok(count) => operations += count,
            Err(_) => failed = true,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if failed {
        eprintln!("hap-load: a controller failed");
        std::process::exit(1);
    }
    println!(
        r#"{{"controllers":{},"operations":{operations},"seconds":{seconds:.3}}}"#,
        args.controllers
    );
}
