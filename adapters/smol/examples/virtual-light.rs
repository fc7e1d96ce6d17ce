//! A virtual light: the brutella/hap tutorial's accessory, done right, on smol.
//!
//! `cargo run -p hap-smol --example virtual-light`, then scan the QR code with the Home
//! app. Type `on`, `off`, `toggle` or `brightness 75` to flip the "physical switch".

#[path = "../../std/examples/support/example.rs"]
mod example;

use std::io::Write as _;
use std::process::ExitCode;

use hap_core::database::OwnedValue;
use smol::io::AsyncBufReadExt as _;
use smol::stream::StreamExt as _;

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
    match smol::block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("virtual-light: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &example::Args) -> Result<(), String> {
    let (setup, database, lamp) = args.prepare_light()?;
    print!(
        "{}",
        example::banner(&args.name, example::LIGHTBULB, &setup)
    );
    let running = hap_smol::serve(
        setup,
        database,
        args.options("VirtualLight", example::LIGHTBULB)?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let handle = running.handle();
    println!("listening on {}", handle.local_addr());
    let _ = std::io::stdout().flush();

    let on_signal = handle.clone();
    ctrlc::set_handler(move || on_signal.shut_down())
        .map_err(|e| format!("cannot handle Ctrl+C: {e}"))?;

    // The "physical switch": commands typed on stdin.
    let typed = handle.clone();
    smol::spawn(async move {
        let mut lines = smol::io::BufReader::new(smol::Unblock::new(std::io::stdin())).lines();
        while let Some(Ok(line)) = lines.next().await {
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
    })
    .detach();

    while let Ok(event) = running.events().recv().await {
        if let Some(line) = lamp.describe(&event) {
            println!("{line}");
        }
    }
    running.wait().await;
    println!("stopped");
    Ok(())
}
