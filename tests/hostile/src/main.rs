//! The hostile-input, crash-safety and soak suite.
//!
//! It starts the `hap-smol` and `hap-std` virtual lights as child processes on 127.0.0.1
//! (one case on their default `[::]`, over `::1`) and attacks them over TCP with a
//! controller built on `hap-core`'s controller role and raw sockets. Every case prints PASS or FAIL with what it saw, and checks afterwards
//! that the accessory still serves a fresh controller. The run ends with an
//! `N passed, M failed` line and exits non-zero if anything failed.
//!
//! `tests/hostile/run.sh` builds what it needs and runs it; see `--help`.

// The controller is shared with the adapters' tests.
#[path = "../../../adapters/std/tests/support/controller.rs"]
mod controller;

mod accessory;
mod after_verify;
mod before_pairing;
mod crash;
mod harness;
mod load;
mod network;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use accessory::Target;
use harness::{Case, Context, Settings};

const USAGE: &str = "usage: hostile --smol PATH --std PATH [--long] [--soak-seconds N]
               [--crash-iterations N] [--only TEXT] [--target smol|std] [--work DIR]

  --long               100 crash iterations and a 30-minute soak per target
                       (the default is CI's short mode: 20 iterations, 60 s)
  --soak-seconds N     the soak's length per target
  --crash-iterations N kills per crash case and target
  --only TEXT          only the cases whose name contains TEXT
  --target NAME        only this virtual light
  --work DIR           where data directories go (default: a new one under /tmp)";

fn main() -> ExitCode {
    let settings = match parse(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cases: Vec<&Case> = [
        before_pairing::CASES,
        after_verify::CASES,
        load::CASES,
        network::CASES,
        crash::CASES,
        soak::CASES,
    ]
    .into_iter()
    .flatten()
    .collect();
    let waiting: Vec<&Case> = [before_pairing::WAITING, load::WAITING]
        .into_iter()
        .flatten()
        .filter(|c| c.name.contains(&settings.only))
        .collect();
    let started = Instant::now();
    let mut tally = Tally::default();
    harness::capture_panics();
    // Cases that mostly wait in real time run first, all at once, each on its own light.
    run_waiting(&settings, &waiting, &mut tally);
    for target in &settings.targets {
        for case in cases.iter().filter(|c| c.name.contains(&settings.only)) {
            let context = Context::new(&settings, target, case.name);
            let case_started = Instant::now();
            let outcome = harness::run(case, &context);
            tally.report(&target.name, case.name, case_started.elapsed(), outcome);
            context.clean_up();
        }
    }
    let _ = std::fs::remove_dir(&settings.work);
    let Tally { passed, failed } = tally;
    println!(
        "\nhostile: {passed} passed, {failed} failed ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Counts outcomes, printing each.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn report(
        &mut self,
        target: &str,
        case: &str,
        took: Duration,
        outcome: Result<String, String>,
    ) {
        let took = took.as_secs_f64();
        match outcome {
            Ok(saw) => {
                self.passed += 1;
                println!("PASS {target:5} {case} ({took:.1} s): {saw}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {target:5} {case} ({took:.1} s): {why}");
            }
        }
    }
}

/// Runs every waiting case against every target at once, one thread each, and reports
/// each as it ends. They sleep most of the time, so they barely compete for the CPU.
fn run_waiting(settings: &Settings, cases: &[&'static Case], tally: &mut Tally) {
    let (send, results) = mpsc::channel();
    let mut running = 0;
    for target in &settings.targets {
        for &case in cases {
            let context = Context::new(settings, target, case.name);
            let send = send.clone();
            let spawned = std::thread::Builder::new()
                .name(harness::case_thread_name(&target.name, case.name))
                .spawn(move || {
                    let case_started = Instant::now();
                    let outcome = harness::run(case, &context);
                    let took = case_started.elapsed();
                    context.clean_up();
                    let _ = send.send((context.target.name.clone(), case.name, took, outcome));
                });
            match spawned {
                Ok(_) => running += 1,
                Err(e) => tally.report(
                    &target.name,
                    case.name,
                    Duration::ZERO,
                    Err(format!("no thread: {e}")),
                ),
            }
        }
    }
    drop(send);
    // Each case ends by itself (its waits are bounded); a thread that died without a
    // word ends the channel instead.
    let mut reported = 0;
    for (target, case, took, outcome) in results.iter().take(running) {
        tally.report(&target, case, took, outcome);
        reported += 1;
    }
    for _ in reported..running {
        tally.report(
            "?",
            "a waiting case",
            Duration::ZERO,
            Err("its thread ended without a result".into()),
        );
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Settings, String> {
    let mut binaries: Vec<(String, PathBuf)> = Vec::new();
    let mut settings = Settings {
        targets: Vec::new(),
        only: String::new(),
        soak: Duration::from_secs(60),
        crash_iterations: 20,
        work: std::env::temp_dir().join(format!("hap-hostile-{}", std::process::id())),
    };
    let (mut soak, mut iterations, mut only_target) = (None, None, None);
    let mut long = false;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--smol" | "--std" => binaries.push((flag[2..].to_owned(), value()?.into())),
            "--long" => long = true,
            "--soak-seconds" => {
                let text = value()?;
                soak = Some(
                    text.parse()
                        .map_err(|_| format!("bad --soak-seconds {text}"))?,
                );
            }
            "--crash-iterations" => {
                let text = value()?;
                iterations = Some(
                    text.parse()
                        .map_err(|_| format!("bad --crash-iterations {text}"))?,
                );
            }
            "--only" => settings.only = value()?,
            "--target" => only_target = Some(value()?),
            "--work" => settings.work = value()?.into(),
            "-h" | "--help" => return Err("the hostile suite".into()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if long {
        settings.soak = Duration::from_secs(30 * 60);
        settings.crash_iterations = 100;
    }
    if let Some(seconds) = soak {
        settings.soak = Duration::from_secs(seconds);
    }
    if let Some(count) = iterations {
        settings.crash_iterations = count;
    }
    for (name, binary) in binaries {
        if only_target.as_ref().is_some_and(|only| *only != name) {
            continue;
        }
        if !binary.exists() {
            return Err(format!(
                "{} is missing; build it first (tests/hostile/run.sh does)",
                binary.display()
            ));
        }
        settings.targets.push(Target { name, binary });
    }
    if settings.targets.is_empty() {
        return Err("no virtual light to test: give --smol PATH and/or --std PATH".into());
    }
    Ok(settings)
}
