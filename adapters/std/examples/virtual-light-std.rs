//! The virtual light on threads, with no async runtime: the `hap-smol` example's twin.
//!
//! `cargo run -p hap-std --example virtual-light-std -- --help`

use hap_core::catalog::{characteristic as c, service as s, typed as t, Category};
use hap_core::database::builder::AccessoryInfo;
use hap_std::app::{App, AppError};

fn main() -> Result<(), AppError> {
    let mut app = App::from_args("Virtual Light", Category::LIGHTBULB)?;
    let (on, brightness, hue, saturation) = app.build(|b, name| {
        let info = AccessoryInfo::new(name, "hap-rs", "VirtualLight", "VL-0001", "0.1.0");
        b.accessory("virtual-light", &info);
        let bulb = b.service(&s::LIGHTBULB).primary();
        let bulb = bulb.characteristic(&c::BRIGHTNESS).characteristic(&c::HUE);
        let bulb = bulb.characteristic(&c::SATURATION);
        let (on, hue) = (bulb.handle(t::ON)?, bulb.handle(t::HUE)?);
        let brightness = bulb.handle(t::BRIGHTNESS)?;
        Some((on, brightness, hue, bulb.handle(t::SATURATION)?))
    })?;
    let light = |on| if on { "Light ON" } else { "Light OFF" };
    app.on_change(on, move |on| println!("{}", light(on)));
    app.on_change(brightness, |n| println!("Brightness {n}%"));
    app.on_change(hue, |h| println!("Hue {h}°"));
    app.on_change(saturation, |s| println!("Saturation {s}%"));
    // The "physical switch": typed commands change the light, and controllers hear it.
    let lamp = app.device();
    app.on_line(move |line| {
        let (set, said) = match line.split_whitespace().collect::<Vec<_>>()[..] {
            [] => return,
            [word @ ("on" | "off" | "toggle")] => {
                let lit = word == "on" || word == "toggle" && lamp.get(on) != Some(true);
                (lamp.set(on, lit), light(lit).to_owned())
            }
            ["brightness", n] => match n.trim_end_matches('%').parse() {
                Ok(n @ 0..=100) => (lamp.set(brightness, n), format!("Brightness {n}%")),
                _ => return println!("brightness must be 0 to 100, not {n:?}"),
            },
            _ => return println!("commands: on, off, toggle, brightness N"),
        };
        match set {
            Ok(_) => println!("{said} (local)"),
            Err(e) => println!("cannot set: {e}"),
        }
    });
    app.run()
}
