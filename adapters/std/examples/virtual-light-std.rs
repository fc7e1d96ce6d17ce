//! A virtual light on threads: the `hap-smol` example's twin, with no async runtime.
//!
//! `cargo run -p hap-std --example virtual-light-std -- --help`

#[path = "support/example.rs"]
mod example;

use std::io::BufRead;
use std::process::ExitCode;

use hap_core::catalog::Category;

fn main() -> ExitCode {
    example::main(&example::VIRTUAL_LIGHT, run)
}

fn run(args: &example::Args) -> Result<(), String> {
    let (setup, database, lamp) = args.prepare_light()?;
    print!(
        "{}",
        example::banner(&args.name, Category::LIGHTBULB, &setup)
    );
    let options = args.options("VirtualLight", Category::LIGHTBULB)?;
    let running = hap_std::serve(setup, database, options).map_err(|e| e.to_string())?;
    let handle = running.handle();
    example::print_listening(handle.local_addr());

    let on_signal = handle.clone();
    ctrlc::set_handler(move || on_signal.shut_down())
        .map_err(|e| format!("cannot handle Ctrl+C: {e}"))?;

    // The "physical switch": commands typed on stdin.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            let value = |aid, iid| handle.value(aid, iid);
            let set = |aid, iid, value| handle.set_value(aid, iid, value);
            if let Some(said) = lamp.obey(&line, value, set) {
                println!("{said}");
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
