//! A virtual light on threads: the `hap-smol` example's twin, with no async runtime.
//!
//! `cargo run -p hap-std --example virtual-light-std -- --help`

#[path = "support/example.rs"]
mod example;

use std::io::{BufRead, Write};
use std::process::ExitCode;

use hap_core::database::OwnedValue;

fn main() -> ExitCode {
    let args = match example::Args::parse(
        "virtual-light",
        "Virtual Light",
        "./virtual-light-data",
        "Type on, off, toggle or brightness N (0-100) and Enter to change the light locally.",
        std::env::args().skip(1),
    ) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    args.init_logging();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("virtual-light: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &example::Args) -> Result<(), String> {
    let (setup, database, lamp) = args.prepare_light()?;
    print!(
        "{}",
        example::banner(&args.name, example::LIGHTBULB, &setup)
    );
    let running = hap_std::serve(
        setup,
        database,
        args.options("VirtualLight", example::LIGHTBULB)?,
    )
    .map_err(|e| e.to_string())?;
    let handle = running.handle();
    println!("listening on {}", handle.local_addr());
    let _ = std::io::stdout().flush();

    let on_signal = handle.clone();
    ctrlc::set_handler(move || on_signal.shut_down())
        .map_err(|e| format!("cannot handle Ctrl+C: {e}"))?;

    // The "physical switch": commands typed on stdin.
    let typed = handle.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if line.trim().is_empty() {
                continue;
            }
            let is_on = typed.value(lamp.aid, lamp.on) == Some(OwnedValue::Bool(true));
            match lamp.command(&line, is_on) {
                Ok((iid, value)) => match typed.set_value(lamp.aid, iid, value.clone()) {
                    Ok(_) => println!(
                        "{} (local)",
                        lamp.describe_value(iid, &value).unwrap_or_default()
                    ),
                    Err(e) => println!("cannot set: {e}"),
                },
                Err(message) => println!("{message}"),
            }
        }
    });

    for event in running.events() {
        if let Some(line) = lamp.describe(&event) {
            println!("{line}");
        }
    }
    running.wait();
    println!("stopped");
    Ok(())
}
