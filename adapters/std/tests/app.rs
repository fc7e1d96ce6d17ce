//! The application layer over real loopback TCP: handlers answer writes and reads
//! through the pending operations, a handler's error becomes the item's status, a batch
//! reaches a service's handler at once, and timers run on the app's loop.

#[path = "support/controller.rs"]
mod controller;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use controller::{Controller, Message};
use hap_core::catalog::typed::{self as t, CurrentDoorState, TargetDoorState};
use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::AccessoryInfo;
use hap_core::status::HapStatus;
use hap_std::app::{App, Device, Flags};

const CODE: &str = "314-15-926";

fn flags(data: &std::path::Path) -> Flags {
    Flags {
        pin: CODE.parse().ok(),
        bind: Some([127, 0, 0, 1].into()),
        port: 0,
        data: Some(data.to_owned()),
        no_mdns: true,
        ..Flags::default()
    }
}

/// Runs `app` on a thread of its own until the device shuts it down; returns the
/// controller paired and verified with it.
fn serve(app: App, device: &Device) -> (std::thread::JoinHandle<()>, Controller) {
    let running = std::thread::spawn(move || app.run().expect("the app runs"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let address = loop {
        if let Some(address) = device.local_addr() {
            break address;
        }
        assert!(Instant::now() < deadline, "the app did not start");
        std::thread::sleep(Duration::from_millis(2));
    };
    let pairing = Controller::connect(address, 1).pair_setup(CODE);
    let mut home = Controller::connect(address, 1);
    home.pair_verify(&pairing);
    (running, home)
}

fn put(home: &mut Controller, items: &str) -> Message {
    home.put(
        "/characteristics",
        &format!(r#"{{"characteristics":[{items}]}}"#),
    )
}

#[test]
fn handlers_confirm_and_fail_writes_and_reads_and_timers_run_on_the_loop() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::new(
        &flags(data.path()),
        "Test Door",
        Category::GARAGE_DOOR_OPENER,
    )
    .expect("the app starts");
    let (target, current, obstruction) = app
        .build(|b, name| {
            b.accessory("door", &AccessoryInfo::new(name, "Acme", "D", "1", "1.0"));
            let door = b.service(&s::GARAGE_DOOR_OPENER).primary();
            Some((
                door.handle(t::TARGET_DOOR_STATE)?,
                door.handle(t::CURRENT_DOOR_STATE)?,
                door.handle(t::OBSTRUCTION_DETECTED)?,
            ))
        })
        .unwrap();
    let reachable = Arc::new(AtomicBool::new(true));
    let (heard, changes) = mpsc::channel();
    let asked = reachable.clone();
    app.on_write(target, move |_| match asked.load(Ordering::SeqCst) {
        true => Ok(()),
        false => Err(HapStatus::ServiceCommunicationFailure),
    });
    app.on_change(target, move |state| heard.send(state).unwrap());
    let asked = reachable.clone();
    app.on_read(current, move || match asked.load(Ordering::SeqCst) {
        true => Ok(CurrentDoorState::Opening),
        false => Err(HapStatus::ServiceCommunicationFailure),
    });
    let device = app.device();
    device.after(Duration::from_millis(20), move |device| {
        device.set(obstruction, true).unwrap();
    });
    let (running, mut home) = serve(app, &device);
    let (aid, target_iid, current_iid) = (target.aid(), target.iid(), current.iid());

    // Confirmed: stored, answered 204, and the change handler hears of it.
    let write = put(
        &mut home,
        &format!(r#"{{"aid":{aid},"iid":{target_iid},"value":0}}"#),
    );
    assert_eq!(write.status, 204, "{}", write.text());
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(5)),
        Ok(TargetDoorState::Open)
    );
    assert_eq!(device.get(target), Some(TargetDoorState::Open));
    // A read on demand answers with the handler's value.
    let read = home.get(&format!("/characteristics?id={aid}.{current_iid}"));
    assert_eq!(read.status, 200, "{}", read.text());
    assert!(read.text().contains(r#""value":2"#), "{}", read.text());

    // Failed: the handler's status, the value kept, no change heard.
    reachable.store(false, Ordering::SeqCst);
    let write = put(
        &mut home,
        &format!(r#"{{"aid":{aid},"iid":{target_iid},"value":1}}"#),
    );
    assert_eq!(write.status, 207, "{}", write.text());
    assert!(
        write.text().contains(r#""status":-70402"#),
        "{}",
        write.text()
    );
    assert_eq!(device.get(target), Some(TargetDoorState::Open));
    assert!(changes.try_recv().is_err(), "a failed write was heard");
    let read = home.get(&format!("/characteristics?id={aid}.{current_iid}"));
    assert_eq!(read.status, 207, "{}", read.text());
    assert!(
        read.text().contains(r#""status":-70402"#),
        "{}",
        read.text()
    );

    // The timer ran on the app's loop and its value reached the database.
    let deadline = Instant::now() + Duration::from_secs(5);
    while device.get(obstruction) != Some(true) {
        assert!(Instant::now() < deadline, "the timer did not run");
        std::thread::sleep(Duration::from_millis(5));
    }

    device.shut_down();
    running.join().expect("run returns after shut_down");
    assert!(home.closed_within(Duration::from_secs(5)));
}

#[test]
fn a_service_handler_gets_one_request_as_a_batch_and_its_error_fails_every_item() {
    let data = tempfile::tempdir().unwrap();
    let mut app =
        App::new(&flags(data.path()), "Test Lamp", Category::LIGHTBULB).expect("the app starts");
    let (service, on, brightness) = app
        .build(|b, name| {
            b.accessory("lamp", &AccessoryInfo::new(name, "Acme", "L", "1", "1.0"));
            let bulb = b
                .service(&s::LIGHTBULB)
                .primary()
                .characteristic(&c::BRIGHTNESS);
            Some((bulb.iid(), bulb.handle(t::ON)?, bulb.handle(t::BRIGHTNESS)?))
        })
        .unwrap();
    let (seen, batches) = mpsc::channel();
    app.on_service_write(on.aid(), service, move |batch| {
        let (lit, level) = (batch.get(on), batch.get(brightness));
        seen.send((lit, level)).unwrap();
        // The lamp refuses to be dimmed below 10% while on.
        match (lit, level) {
            (Some(true), Some(level)) if level < 10 => Err(HapStatus::NotAllowedInCurrentState),
            _ => Ok(()),
        }
    });
    let device = app.device();
    let (running, mut home) = serve(app, &device);
    let (aid, on_iid, level_iid) = (on.aid(), on.iid(), brightness.iid());
    let both = |lit: bool, level: i32| {
        format!(
            r#"{{"aid":{aid},"iid":{on_iid},"value":{lit}}},{{"aid":{aid},"iid":{level_iid},"value":{level}}}"#
        )
    };

    let write = put(&mut home, &both(true, 5));
    assert_eq!(write.status, 207, "{}", write.text());
    assert_eq!(
        write.text().matches(r#""status":-70412"#).count(),
        2,
        "{}",
        write.text()
    );
    assert_eq!(batches.recv().unwrap(), (Some(true), Some(5)));
    assert_eq!(
        (device.get(on), device.get(brightness)),
        (Some(false), Some(0))
    );

    let write = put(&mut home, &both(true, 40));
    assert_eq!(write.status, 204, "{}", write.text());
    assert_eq!(batches.recv().unwrap(), (Some(true), Some(40)));
    assert_eq!(
        (device.get(on), device.get(brightness)),
        (Some(true), Some(40))
    );

    device.shut_down();
    running.join().expect("run returns after shut_down");
}
