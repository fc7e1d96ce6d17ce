//! A bridge with four accessories behind it: a light, a switch, a temperature sensor
//! whose value drifts, and a stateless programmable switch pressed from stdin.
//!
//! `cargo run -p hap-smol --example bridge`, then add the bridge in the Home app.
//! `--accessories light,button` serves only some of them; each keeps its aid, and the
//! configuration number changes, so controllers reload the bridge.

#[path = "../../std/examples/support/example.rs"]
mod example;

use std::io::BufRead as _;
use std::process::ExitCode;
use std::time::Duration;

use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::OwnedValue;
use hap_core::server::Event;

const HELP: &str = "Type light on|off|toggle|brightness N, switch on|off, temperature C, \
                    or press|double|long (the button), and Enter.";

/// The keys of the accessories behind the bridge, in order.
const ACCESSORIES: [&str; 4] = ["light", "switch", "sensor", "button"];

/// Where each accessory's interesting characteristic is; `None` for those left out.
struct Ids {
    light: Option<example::Light>,
    switch: Option<(u64, u64)>,
    temperature: Option<(u64, u64)>,
    button: Option<(u64, u64)>,
}

fn main() -> ExitCode {
    example::main(
        &example::Program {
            program: "bridge",
            name: "Virtual Bridge",
            data: "./bridge-data",
            help: HELP,
            extra_flags: &[("--accessories", "light,switch,sensor,button")],
        },
        |args| smol::future::block_on(run(args)),
    )
}

/// The accessories chosen with `--accessories` (all by default).
fn chosen(args: &example::Args) -> Result<Vec<&str>, String> {
    let Some(list) = args.extra("--accessories") else {
        return Ok(ACCESSORIES.to_vec());
    };
    let mut keys: Vec<&str> = Vec::new();
    for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        if !ACCESSORIES.contains(&key) {
            return Err(format!(
                "--accessories: unknown accessory {key:?}; choose from {}",
                ACCESSORIES.join(",")
            ));
        }
        if keys.contains(&key) {
            return Err(format!("--accessories: {key:?} is named twice"));
        }
        keys.push(key);
    }
    Ok(keys)
}

async fn run(args: &example::Args) -> Result<(), String> {
    let chosen = chosen(args)?;
    let mut setup = args.setup()?;
    let mut builder = DatabaseBuilder::new(setup.ids());
    let info = |name| AccessoryInfo::new(name, "hap-rs", "VirtualBridge", "VB-0001", "0.1.0");
    // The bridge comes first, so it gets aid 1. The others keep their aids, stored with
    // the state, whichever are chosen; the configuration number changes with the choice.
    builder.accessory("bridge", &info(&args.name));
    let mut ids = Ids {
        light: None,
        switch: None,
        temperature: None,
        button: None,
    };
    for key in chosen {
        match key {
            "light" => {
                ids.light = Some(example::Light::add(&mut builder, key, &info("Desk Light")));
            }
            "switch" => {
                let aid = builder.accessory(key, &info("Fan Switch"));
                let on = builder.service(&s::SWITCH).primary().iid_of(&c::ON);
                ids.switch = on.map(|iid| (aid, iid));
            }
            "sensor" => {
                let aid = builder.accessory(key, &info("Room Temperature"));
                let temperature = builder
                    .service(&s::TEMPERATURE_SENSOR)
                    .primary()
                    .value(&c::CURRENT_TEMPERATURE, OwnedValue::Float(21.0))
                    .iid_of(&c::CURRENT_TEMPERATURE);
                ids.temperature = temperature.map(|iid| (aid, iid));
            }
            _ => {
                let aid = builder.accessory(key, &info("Doorbell Button"));
                let event = builder
                    .service(&s::STATELESS_PROGRAMMABLE_SWITCH)
                    .primary()
                    .iid_of(&c::PROGRAMMABLE_SWITCH_EVENT);
                ids.button = event.map(|iid| (aid, iid));
            }
        }
    }
    let database = builder.build().map_err(|e| format!("{e:?}"))?;

    print!("{}", example::banner(&args.name, Category::BRIDGE, &setup));
    let running = hap_smol::serve(
        setup,
        database,
        args.options("VirtualBridge", Category::BRIDGE)?,
    )
    .await
    .map_err(|e| e.to_string())?;
    let handle = running.handle();
    example::print_listening(handle.local_addr());

    let on_signal = handle.clone();
    ctrlc::set_handler(move || on_signal.shut_down())
        .map_err(|e| format!("cannot handle Ctrl+C: {e}"))?;

    if let Some((aid, iid)) = ids.temperature {
        // The temperature drifts slowly around 21 °C, in steps of 0.1 as the type requires.
        let drifting = handle.clone();
        smol::spawn(async move {
            let mut minutes = 0.0f64;
            loop {
                smol::Timer::after(Duration::from_secs(10)).await;
                minutes += 1.0 / 6.0;
                let tenths = (210.0 + 15.0 * (minutes / 5.0).sin()).round();
                if drifting
                    .set_value(aid, iid, OwnedValue::Float(tenths / 10.0))
                    .is_err()
                {
                    break;
                }
            }
        })
        .detach();
    }

    let typed = handle.clone();
    let commands = ids_commands(&ids);
    let light = ids.light;
    // Read on a thread of its own, as in the virtual light: smol's blocking pool keeps an
    // idle thread that wakes twice a second once stdin has ended.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            // "light ..." takes the virtual light's own commands.
            if let (Some(light), Some(command)) = (light, line.trim().strip_prefix("light ")) {
                let value = |aid, iid| typed.value(aid, iid);
                let set = |aid, iid, value| typed.set_value(aid, iid, value);
                if let Some(said) = light.obey(command, value, set) {
                    println!("{said}");
                }
                continue;
            }
            match commands(line.trim()) {
                Some((aid, iid, value, said)) => match typed.set_value(aid, iid, value) {
                    Ok(_) => println!("{said}"),
                    Err(e) => println!("cannot set: {e}"),
                },
                None if line.trim().is_empty() => {}
                None => println!("{HELP}"),
            }
        }
    });

    // On the executor's thread, with the connections: an event then costs no wake-up of
    // another thread.
    let events = running.events().clone();
    smol::spawn(async move {
        while let Ok(event) = events.recv().await {
            match &event {
                Event::Write {
                    aid, iid, value, ..
                } if Some((*aid, *iid)) == ids.switch => {
                    println!(
                        "Switch {}",
                        if *value == OwnedValue::Bool(true) {
                            "ON"
                        } else {
                            "OFF"
                        }
                    );
                }
                _ => {
                    let light = ids.light.and_then(|light| light.describe(&event));
                    if let Some(line) = light.or_else(|| example::describe_status(&event)) {
                        println!("{line}");
                    }
                }
            }
        }
    })
    .await;
    running.wait().await;
    println!("stopped");
    Ok(())
}

/// What a typed command sets, and the line to print for it.
fn ids_commands(ids: &Ids) -> impl Fn(&str) -> Option<(u64, u64, OwnedValue, String)> {
    let (switch, temperature, button) = (ids.switch, ids.temperature, ids.button);
    move |line| {
        let on = |(aid, iid), value: bool, what: &str| {
            let said = format!("{what} {} (local)", if value { "ON" } else { "OFF" });
            Some((aid, iid, OwnedValue::Bool(value), said))
        };
        // HAP's programmable switch events: 0 single, 1 double, 2 long press.
        let press = |kind: u8, what: &str| {
            let (aid, iid) = button?;
            let said = format!("Button: {what} press");
            Some((aid, iid, OwnedValue::Uint8(kind), said))
        };
        if let Some(celsius) = line.strip_prefix("temperature ") {
            // The core checks the range and step when the value is set.
            let (aid, iid) = temperature?;
            let celsius: f64 = celsius.trim().parse().ok()?;
            let said = format!("Temperature {celsius} °C (local)");
            return Some((aid, iid, OwnedValue::Float(celsius), said));
        }
        match line {
            "switch on" => on(switch?, true, "Switch"),
            "switch off" => on(switch?, false, "Switch"),
            "press" => press(0, "single"),
            "double" => press(1, "double"),
            "long" => press(2, "long"),
            _ => None,
        }
    }
}
