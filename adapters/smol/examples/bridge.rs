//! A bridge with four accessories behind it: a light, a switch, a temperature sensor
//! whose value drifts, and a stateless programmable switch pressed from stdin.
//!
//! `cargo run -p hap-smol --example bridge`, then add the bridge in the Home app.
//! `--accessories light,button` serves only some of them; each keeps its aid, and the
//! configuration number changes, so controllers reload the bridge.

use std::time::Duration;

use clap::{CommandFactory as _, Parser as _};
use hap_core::catalog::typed::{self as t, ProgrammableSwitchEvent as Press};
use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::AccessoryInfo;
use hap_core::database::handle::Handle;
use hap_smol::app::{App, AppError, Device, Flags};

/// A bridge with a light, a switch, a temperature sensor and a button. Type light
/// on|off|toggle|brightness N, switch on|off, temperature C, or press|double|long (the
/// button), and Enter.
#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    flags: Flags,
    /// The accessories to serve, from light,switch,sensor,button [default: all]
    #[arg(long, value_delimiter = ',', value_parser = ACCESSORIES)]
    accessories: Vec<String>,
}

/// The keys of the accessories behind the bridge, in order.
const ACCESSORIES: [&str; 4] = ["light", "switch", "sensor", "button"];

/// The light's characteristics.
#[derive(Clone, Copy)]
struct Light {
    on: Handle<bool>,
    brightness: Handle<i32>,
    hue: Handle<f64>,
    saturation: Handle<f64>,
}

/// What is served; `None` for those left out.
#[derive(Default)]
struct Parts {
    light: Option<(Light, u64)>,
    switch: Option<Handle<bool>>,
    temperature: Option<Handle<f64>>,
    button: Option<Handle<Press>>,
}

fn main() -> Result<(), AppError> {
    let args = Args::parse();
    let mut chosen = args.accessories.clone();
    if (1..chosen.len()).any(|i| chosen[..i].contains(&chosen[i])) {
        let message = "an accessory is named twice";
        Args::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit();
    }
    if chosen.is_empty() {
        chosen = ACCESSORIES.map(String::from).to_vec();
    }
    let mut app = App::new(&args.flags, "Virtual Bridge", Category::BRIDGE)?;
    let parts = app.build(|b, name| {
        let info = |name| AccessoryInfo::new(name, "hap-rs", "VirtualBridge", "VB-0001", "0.1.0");
        // The bridge comes first, so it gets aid 1. The others keep their aids, stored with
        // the state, whichever are chosen; the configuration number changes with the choice.
        b.accessory("bridge", &info(name));
        let mut parts = Parts::default();
        for key in &chosen {
            match key.as_str() {
                "light" => {
                    b.accessory(key, &info("Desk Light"));
                    let bulb = b.service(&s::LIGHTBULB).primary();
                    let bulb = bulb.characteristic(&c::BRIGHTNESS).characteristic(&c::HUE);
                    let bulb = bulb.characteristic(&c::SATURATION);
                    let light = Light {
                        on: bulb.handle(t::ON)?,
                        brightness: bulb.handle(t::BRIGHTNESS)?,
                        hue: bulb.handle(t::HUE)?,
                        saturation: bulb.handle(t::SATURATION)?,
                    };
                    parts.light = Some((light, bulb.iid()));
                }
                "switch" => {
                    b.accessory(key, &info("Fan Switch"));
                    parts.switch = b.service(&s::SWITCH).primary().handle(t::ON);
                }
                "sensor" => {
                    b.accessory(key, &info("Room Temperature"));
                    let sensor = b.service(&s::TEMPERATURE_SENSOR).primary();
                    let sensor = sensor.initial(t::CURRENT_TEMPERATURE, 21.0);
                    parts.temperature = sensor.handle(t::CURRENT_TEMPERATURE);
                }
                _ => {
                    b.accessory(key, &info("Doorbell Button"));
                    let button = b.service(&s::STATELESS_PROGRAMMABLE_SWITCH).primary();
                    parts.button = button.handle(t::PROGRAMMABLE_SWITCH_EVENT);
                }
            }
        }
        Some(parts)
    })?;

    if let Some((light, service)) = parts.light {
        // The light's writes arrive together, as HomeSpan's update() sees them: On and
        // Brightness of one request at once.
        app.on_service_write(light.on.aid(), service, move |batch| {
            if let Some(on) = batch.get(light.on) {
                println!("Light {}", if on { "ON" } else { "OFF" });
            }
            if let Some(n) = batch.get(light.brightness) {
                println!("Brightness {n}%");
            }
            if let Some(hue) = batch.get(light.hue) {
                println!("Hue {hue}°");
            }
            if let Some(saturation) = batch.get(light.saturation) {
                println!("Saturation {saturation}%");
            }
            Ok(())
        });
    }
    if let Some(switch) = parts.switch {
        app.on_change(switch, |on| {
            println!("Switch {}", if on { "ON" } else { "OFF" })
        });
    }
    let device = app.device();
    if let Some(temperature) = parts.temperature {
        // The temperature drifts slowly around 21 °C, in steps of 0.1 as the type requires.
        let mut minutes = 0.0f64;
        device.every(Duration::from_secs(10), move |device| {
            minutes += 1.0 / 6.0;
            let tenths = (210.0 + 15.0 * (minutes / 5.0).sin()).round();
            let _ = device.set(temperature, tenths / 10.0);
        });
    }
    app.on_line(move |line| obey(&device, &parts, line.trim()));
    app.run()
}

/// Carries out a typed command and says what it did.
fn obey(device: &Device, parts: &Parts, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (set, said) = match (words.as_slice(), parts) {
        ([], _) => return,
        (
            ["light", command @ ..],
            Parts {
                light: Some((light, _)),
                ..
            },
        ) => match command {
            [word @ ("on" | "off" | "toggle")] => {
                let lit = *word == "on" || *word == "toggle" && device.get(light.on) != Some(true);
                (
                    device.set(light.on, lit),
                    format!("Light {}", if lit { "ON" } else { "OFF" }),
                )
            }
            ["brightness", n] => match n.trim_end_matches('%').parse() {
                Ok(n @ 0..=100) => (device.set(light.brightness, n), format!("Brightness {n}%")),
                _ => return println!("brightness must be 0 to 100, not {n:?}"),
            },
            _ => return println!("light commands: on, off, toggle, brightness N"),
        },
        (
            ["switch", word @ ("on" | "off")],
            Parts {
                switch: Some(switch),
                ..
            },
        ) => {
            let on = *word == "on";
            (
                device.set(*switch, on),
                format!("Switch {}", if on { "ON" } else { "OFF" }),
            )
        }
        (
            ["temperature", celsius],
            Parts {
                temperature: Some(temperature),
                ..
            },
        ) => {
            // The core checks the range and step when the value is set.
            let Ok(celsius) = celsius.parse::<f64>() else {
                return println!("temperature must be a number, not {celsius:?}");
            };
            (
                device.set(*temperature, celsius),
                format!("Temperature {celsius} °C"),
            )
        }
        (
            [word @ ("press" | "double" | "long")],
            Parts {
                button: Some(button),
                ..
            },
        ) => {
            let (press, what) = match *word {
                "press" => (Press::SinglePress, "single"),
                "double" => (Press::DoublePress, "double"),
                _ => (Press::LongPress, "long"),
            };
            return match device.set(*button, press) {
                Ok(_) => println!("Button: {what} press"),
                Err(e) => println!("cannot press: {e}"),
            };
        }
        _ => {
            return println!(
                "Type light on|off|toggle|brightness N, switch on|off, temperature C, \
                 or press|double|long (the button), and Enter."
            )
        }
    };
    match set {
        Ok(_) => println!("{said} (local)"),
        Err(e) => println!("cannot set: {e}"),
    }
}
