//! A virtual light: the brutella/hap tutorial's accessory, done right, on smol.
//!
//! `cargo run -p hap-smol --example virtual-light`, then scan the QR code with the Home
//! app. Type `on`, `off`, `toggle` or `brightness 75` to flip the "physical switch".

#[path = "../../std/examples/support/example.rs"]
mod example;

use std::io::BufRead as _;
use std::process::ExitCode;

use hap_core::catalog::Category;

fn main() -> ExitCode {
    example::main(&example::VIRTUAL_LIGHT, |args| {
        smol::future::block_on(run(args))
    })
}

async fn run(args: &example::Args) -> Result<(), String> {
    let (setup, database, lamp) = args.prepare_light()?;
    print!(
        "{}",
        example::banner(&args.name, Category::LIGHTBULB, &setup)
    );
    let options = args.options("VirtualLight", Category::LIGHTBULB)?;
    let running = hap_smol::serve(setup, database, options)
        .await
        .map_err(|e| e.to_string())?;
    let handle = running.handle();
    example::print_listening(handle.local_addr());

    let on_signal = handle.clone();
    ctrlc::set_handler(move || on_signal.shut_down())
        .map_err(|e| format!("cannot handle Ctrl+C: {e}"))?;

    // The "physical switch": commands typed on stdin, read on a thread of its own. smol's
    // blocking pool would do it too, but keeps an idle thread that wakes twice a second
    // for as long as the process runs once stdin has ended (as /dev/null does at once).
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            let value = |aid, iid| handle.value(aid, iid);
            let set = |aid, iid, value| handle.set_value(aid, iid, value);
            if let Some(said) = lamp.obey(&line, value, set) {
                println!("{said}");
            }
        }
    });

    // On the executor's thread, with the connections: an event then costs no wake-up of
    // another thread.
    let events = running.events().clone();
    smol::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let Some(line) = lamp.describe(&event) {
                println!("{line}");
            }
        }
    })
    .await;
    running.wait().await;
    println!("stopped");
    Ok(())
}
