//! A virtual light on smol: `cargo run -p hap-smol --example virtual-light`, then scan the
//! QR code with the Home app. Type on, off, toggle or brightness N to flip the "switch".
//!
//! With `--adaptive` it is a white-spectrum light (brightness and colour temperature, no
//! hue) with Adaptive Lighting: the Home app offers it in the light's settings, and the
//! light prints each colour temperature of the curve as it follows it.

use clap::Parser as _;
use hap_core::catalog::{characteristic as c, service as s, typed as t, Category};
use hap_core::database::builder::AccessoryInfo;
use hap_smol::app::{App, AppError, Flags};

/// Virtual Light, a HomeKit accessory.
#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    flags: Flags,
    /// Be a white-spectrum light with Adaptive Lighting (colour temperature, no hue)
    #[arg(long)]
    adaptive: bool,
}

fn main() -> Result<(), AppError> {
    let args = Args::parse();
    let mut app = App::new(&args.flags, "Virtual Light", Category::LIGHTBULB)?;
    let (on, brightness, white, colour) = app.build(|b, name| {
        let info = AccessoryInfo::new(name, "hap-rs", "VirtualLight", "VL-0001", "0.1.0");
        b.accessory("virtual-light", &info);
        let bulb = b.service(&s::LIGHTBULB).primary();
        let (mut white, mut colour) = (None, None);
        let bulb = if args.adaptive {
            let bulb = bulb.adaptive_lighting();
            white = Some((bulb.iid(), bulb.handle(t::COLOR_TEMPERATURE)?));
            bulb
        } else {
            let bulb = bulb.characteristic(&c::BRIGHTNESS).characteristic(&c::HUE);
            let bulb = bulb.characteristic(&c::SATURATION);
            colour = Some((bulb.handle(t::HUE)?, bulb.handle(t::SATURATION)?));
            bulb
        };
        Some((
            bulb.handle(t::ON)?,
            bulb.handle(t::BRIGHTNESS)?,
            white,
            colour,
        ))
    })?;
    let light = |on| if on { "Light ON" } else { "Light OFF" };
    app.on_change(on, move |on| println!("{}", light(on)));
    app.on_change(brightness, |n| println!("Brightness {n}%"));
    if let Some((service, temperature)) = white {
        app.adaptive_lighting(1, service)?;
        app.on_change(temperature, |m| println!("Colour temperature {m} mired"));
    }
    if let Some((hue, saturation)) = colour {
        app.on_change(hue, |h| println!("Hue {h}°"));
        app.on_change(saturation, |s| println!("Saturation {s}%"));
    }
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
