//! A virtual light on smol: `cargo run -p hap-smol --example virtual-light`, then scan the
//! QR code with the Home app. Type on, off, toggle or brightness N to flip the "switch".

use clap::Parser as _;
use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::AccessoryInfo;
use hap_core::database::OwnedValue;
use hap_smol::app::{App, Flags};

/// A lightbulb with On, Brightness, Hue and Saturation. Type on, off, toggle or
/// brightness N (0-100) and Enter to change it locally.
#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    flags: Flags,
}

fn main() -> Result<(), hap_smol::app::AppError> {
    let mut app = App::new(&Args::parse().flags, "Virtual Light", Category::LIGHTBULB)?;
    let (aid, on, brightness, hue, saturation) = app.build(|b, name| {
        let info = AccessoryInfo::new(name, "hap-rs", "VirtualLight", "VL-0001", "0.1.0");
        let aid = b.accessory("virtual-light", &info);
        let bulb = b.service(&s::LIGHTBULB).primary();
        let bulb = bulb.characteristic(&c::BRIGHTNESS).characteristic(&c::HUE).characteristic(&c::SATURATION);
        let iid = |kind| bulb.iid_of(kind).unwrap_or(0);
        (aid, iid(&c::ON), iid(&c::BRIGHTNESS), iid(&c::HUE), iid(&c::SATURATION))
    })?;
    app.on_change_value(aid, on, |v| println!("Light {}", if *v == OwnedValue::Bool(true) { "ON" } else { "OFF" }));
    app.on_change_value(aid, brightness, |v| if let OwnedValue::Int(n) = v { println!("Brightness {n}%") });
    app.on_change_value(aid, hue, |v| if let OwnedValue::Float(h) = v { println!("Hue {h}°") });
    app.on_change_value(aid, saturation, |v| if let OwnedValue::Float(s) = v { println!("Saturation {s}%") });
    let light = app.device();
    app.on_line(move |line| {
        let is_on = light.value(aid, on) == Some(OwnedValue::Bool(true));
        let (iid, value, said) = match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["on"] | ["off"] | ["toggle"] => {
                let lit = line.trim() == "on" || (line.trim() == "toggle" && !is_on);
                (on, OwnedValue::Bool(lit), format!("Light {}", if lit { "ON" } else { "OFF" }))
            }
            ["brightness", n] => match n.trim_end_matches('%').parse::<i32>() {
                Ok(n) if (0..=100).contains(&n) => (brightness, OwnedValue::Int(n), format!("Brightness {n}%")),
                _ => return println!("brightness must be 0 to 100, not {n:?}"),
            },
            [] => return,
            _ => return println!("commands: on, off, toggle, brightness N"),
        };
        match light.set_value(aid, iid, value) {
            Ok(_) => println!("{said} (local)"),
            Err(e) => println!("cannot set: {e}"),
        }
    });
    app.run()
}
