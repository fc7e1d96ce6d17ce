//! A bridge to a garage door controller that is sometimes unreachable, as a real one
//! behind a flaky radio link is: the bridge is accessory 1, the garage door opener
//! accessory 2, each with its own Accessory Information.
//!
//! `cargo run -p hap-smol --example garage-door`, then add the bridge in the Home app.
//! Opening or closing the door moves it over three seconds (Opening, then Open). Type
//! `unreachable` and the Home app shows "No Response": writes and reads fail with -70402
//! until you type `reachable`. `open` and `close` are the button on the wall.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser as _;
use hap_core::catalog::typed::{self as t, CurrentDoorState as Current, TargetDoorState as Target};
use hap_core::catalog::{service as s, Category};
use hap_core::database::builder::AccessoryInfo;
use hap_core::database::handle::Handle;
use hap_core::status::HapStatus;
use hap_smol::app::{App, AppError, Device, Flags, TimerId};

/// A bridge to a garage door opener. Type open, close, unreachable or reachable and Enter.
#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    flags: Flags,
    /// Start with the door controller unreachable
    #[arg(long)]
    unreachable: bool,
}

/// How long the door takes to open or close.
const TRAVEL: Duration = Duration::from_secs(3);

/// The door controller, as far as the bridge knows it.
struct Door {
    reachable: bool,
    position: Current,
    /// The motion under way, to cancel if the door is sent the other way.
    moving: Option<TimerId>,
    current: Handle<Current>,
}

fn main() -> Result<(), AppError> {
    let args = Args::parse();
    let mut app = App::new(&args.flags, "Garage Bridge", Category::BRIDGE)?;
    let (target, current) = app.build(|b, name| {
        let info = |name, model, serial| AccessoryInfo::new(name, "hap-rs", model, serial, "0.1.0");
        // The bridge comes first, so it gets aid 1; the door behind it gets aid 2.
        b.accessory("bridge", &info(name, "GarageBridge", "GB-0001"));
        b.accessory("garage-door", &info("Garage Door", "GarageDoor", "GD-0001"));
        let opener = b.service(&s::GARAGE_DOOR_OPENER).primary();
        let opener = opener.initial(t::CURRENT_DOOR_STATE, Current::Closed);
        let opener = opener.initial(t::TARGET_DOOR_STATE, Target::Closed);
        Some((
            opener.handle(t::TARGET_DOOR_STATE)?,
            opener.handle(t::CURRENT_DOOR_STATE)?,
        ))
    })?;
    let door = Arc::new(Mutex::new(Door {
        reachable: !args.unreachable,
        position: Current::Closed,
        moving: None,
        current,
    }));
    let device = app.device();

    // A controller opens or closes: the write succeeds only if the door controller takes
    // the command; otherwise the Home app shows "No Response" and the value stays.
    let (shared, motor) = (door.clone(), device.clone());
    app.on_write(target, move |wanted| {
        if !shared.lock().unwrap().reachable {
            return Err(HapStatus::ServiceCommunicationFailure);
        }
        operate(&shared, &motor, wanted);
        Ok(())
    });
    // Reads ask the door controller too.
    let shared = door.clone();
    app.on_read(current, move || {
        let door = shared.lock().unwrap();
        door.reachable
            .then_some(door.position)
            .ok_or(HapStatus::ServiceCommunicationFailure)
    });
    let (shared, reader) = (door.clone(), device.clone());
    app.on_read(target, move || match shared.lock().unwrap().reachable {
        true => reader.get(target).ok_or(HapStatus::ResourceDoesNotExist),
        false => Err(HapStatus::ServiceCommunicationFailure),
    });

    app.on_line(move |line| match line.trim() {
        "" => {}
        "unreachable" | "reachable" => {
            let reachable = line.trim() == "reachable";
            door.lock().unwrap().reachable = reachable;
            match reachable {
                true => println!("Door controller reachable"),
                false => println!("Door controller unreachable: writes and reads get -70402"),
            }
        }
        // The button on the wall: the door moves, and controllers hear of the new target.
        "open" | "close" => {
            let wanted = if line.trim() == "open" {
                Target::Open
            } else {
                Target::Closed
            };
            if let Err(e) = device.set(target, wanted) {
                println!("cannot set: {e}");
            }
            operate(&door, &device, wanted);
        }
        _ => println!("commands: open, close, unreachable, reachable"),
    });
    app.run()
}

/// Starts the door towards `wanted`: Opening or Closing now, Open or Closed after
/// [`TRAVEL`]. A motion under way is replaced by this one.
fn operate(door: &Arc<Mutex<Door>>, device: &Device, wanted: Target) {
    let (moving, done) = match wanted {
        Target::Open => (Current::Opening, Current::Open),
        Target::Closed => (Current::Closing, Current::Closed),
    };
    let mut state = door.lock().unwrap();
    if let Some(motion) = state.moving.take() {
        device.cancel(motion);
    }
    if state.position == done {
        return;
    }
    state.position = moving;
    let _ = device.set(state.current, moving);
    println!("Door {}", name(moving));
    let shared = door.clone();
    state.moving = Some(device.after(TRAVEL, move |device| {
        let mut state = shared.lock().unwrap();
        state.position = done;
        state.moving = None;
        let _ = device.set(state.current, done);
        println!("Door {}", name(done));
    }));
}

/// A door state as printed: "open", "closing".
fn name(state: Current) -> String {
    format!("{state:?}").to_lowercase()
}
