//! A bridge with four accessories behind it: a light, a switch, a temperature sensor
//! whose value drifts, and a stateless programmable switch pressed from stdin.
//!
//! `cargo run -p hap-smol --example bridge`, then add the bridge in the Home app.

#[path = "../../std/examples/support/example.rs"]
mod example;

use std::process::ExitCode;
use std::time::Duration;

use hap_core::catalog::{characteristic as c, service as s};
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::OwnedValue;
use hap_core::server::Event;
use smol::io::AsyncBufReadExt as _;
use smol::stream::StreamExt as _;

/// The bridge category, for mDNS `ci` and the setup URI.
const BRIDGE: u8 = 2;

const HELP: &str =
    "Type light on|off, switch on|off, or press|double|long (the button), and Enter.";

/// Where each accessory's interesting characteristic is.
struct Ids {
    light: example::Light,
    switch: (u64, u64),
    temperature: (u64, u64),
    button: (u64, u64),
}

fn main() -> ExitCode {
    example::main("bridge", "Virtual Bridge", "./bridge-data", HELP, |args| {
        smol::block_on(run(args))
    })
}

async fn run(args: &example::Args) -> Result<(), String> {
    let mut setup = args.setup()?;
    let mut builder = DatabaseBuilder::new(setup.ids());
    let info = |name| AccessoryInfo::new(name, "hap-rs", "VirtualBridge", "VB-0001", "0.1.0");
    // The bridge comes first, so it gets aid 1.
    builder.accessory("bridge", &info(&args.name));
    let light = example::Light::add(&mut builder, "light", &info("Desk Light"));
    let switch_aid = builder.accessory("switch", &info("Fan Switch"));
    let switch = builder.service(&s::SWITCH).primary().iid_of(&c::ON);
    let sensor_aid = builder.accessory("sensor", &info("Room Temperature"));
    let sensor = builder
        .service(&s::TEMPERATURE_SENSOR)
        .primary()
        .value(&c::CURRENT_TEMPERATURE, OwnedValue::Float(21.0))
        .iid_of(&c::CURRENT_TEMPERATURE);
    let button_aid = builder.accessory("button", &info("Doorbell Button"));
    let button = builder
        .service(&s::STATELESS_PROGRAMMABLE_SWITCH)
        .primary()
        .iid_of(&c::PROGRAMMABLE_SWITCH_EVENT);
    let database = builder.build().map_err(|e| format!("{e:?}"))?;
    let ids = Ids {
        light,
        switch: (switch_aid, switch.unwrap_or(0)),
        temperature: (sensor_aid, sensor.unwrap_or(0)),
        button: (button_aid, button.unwrap_or(0)),
    };

    print!("{}", example::banner(&args.name, BRIDGE, &setup));
    let running = hap_smol::serve(setup, database, args.options("VirtualBridge", BRIDGE)?)
        .await
        .map_err(|e| e.to_string())?;
    let handle = running.handle();
    example::print_listening(handle.local_addr());

    let on_signal = handle.clone();
    ctrlc::set_handler(move || on_signal.shut_down())
        .map_err(|e| format!("cannot handle Ctrl+C: {e}"))?;

    // The temperature drifts slowly around 21 °C, in steps of 0.1 as the type requires.
    let drifting = handle.clone();
    let (aid, iid) = ids.temperature;
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

    let typed = handle.clone();
    let commands = ids_commands(&ids);
    smol::spawn(async move {
        let mut lines = smol::io::BufReader::new(smol::Unblock::new(std::io::stdin())).lines();
        while let Some(Ok(line)) = lines.next().await {
            match commands(line.trim()) {
                Some((aid, iid, value, said)) => match typed.set_value(aid, iid, value) {
                    Ok(_) => println!("{said}"),
                    Err(e) => println!("cannot set: {e}"),
                },
                None if line.trim().is_empty() => {}
                None => println!("{HELP}"),
            }
        }
    })
    .detach();

    while let Ok(event) = running.events().recv().await {
        match &event {
            Event::Write {
                aid, iid, value, ..
            } if (*aid, *iid) == ids.switch => {
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
                if let Some(line) = ids.light.describe(&event) {
                    println!("{line}");
                }
            }
        }
    }
    running.wait().await;
    println!("stopped");
    Ok(())
}

/// What a typed command sets, and the line to print for it.
fn ids_commands(ids: &Ids) -> impl Fn(&str) -> Option<(u64, u64, OwnedValue, String)> {
    let (light, switch, button) = (ids.light, ids.switch, ids.button);
    move |line| {
        let on = |aid, iid, value: bool, what: &str| {
            let said = format!("{what} {} (local)", if value { "ON" } else { "OFF" });
            Some((aid, iid, OwnedValue::Bool(value), said))
        };
        // HAP's programmable switch events: 0 single, 1 double, 2 long press.
        let press = |kind: u8, what: &str| {
            Some((
                button.0,
                button.1,
                OwnedValue::Uint8(kind),
                format!("Button: {what} press"),
            ))
        };
        match line {
            "light on" => on(light.aid, light.on, true, "Light"),
            "light off" => on(light.aid, light.on, false, "Light"),
            "switch on" => on(switch.0, switch.1, true, "Switch"),
            "switch off" => on(switch.0, switch.1, false, "Switch"),
            "press" => press(0, "single"),
            "double" => press(1, "double"),
            "long" => press(2, "long"),
            _ => None,
        }
    }
}
