//! The application layer over real loopback TCP: handlers answer writes and reads
//! through the pending operations, a handler's error becomes the item's status, a batch
//! reaches a service's handler at once, and timers run on the app's loop.

#[path = "support/controller.rs"]
mod controller;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use controller::{Controller, Message};
use hap_core::catalog::typed::{
    self as t, CharacteristicValue, CurrentDoorState, TargetDoorState, Tlv8Value,
};
use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::AccessoryInfo;
use hap_core::database::handle::Handle;
use hap_core::database::ValueBytes;
use hap_core::status::HapStatus;
use hap_std::app::{App, Device, Flags, MdnsMode};

const CODE: &str = "314-15-926";

fn flags(data: &std::path::Path) -> Flags {
    Flags {
        pin: CODE.parse().ok(),
        bind: Some([127, 0, 0, 1].into()),
        port: 0,
        data: Some(data.to_owned()),
        mdns: MdnsMode::Off,
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

/// On, Brightness and Hue.
type LampHandles = (Handle<bool>, Handle<i32>, Handle<f64>);

/// A lamp (On, Brightness, Hue) served with `setup`'s handlers; returns the app's
/// thread, the controller, the device and the handles.
fn lamp(
    data: &std::path::Path,
    setup: impl FnOnce(&mut App, Handle<bool>, Handle<i32>, Handle<f64>),
) -> (std::thread::JoinHandle<()>, Controller, Device, LampHandles) {
    let mut app = App::new(&flags(data), "Test Lamp", Category::LIGHTBULB).expect("the app starts");
    let handles = app
        .build(|b, name| {
            b.accessory("lamp", &AccessoryInfo::new(name, "Acme", "L", "1", "1.0"));
            let bulb = b
                .service(&s::LIGHTBULB)
                .primary()
                .characteristic(&c::BRIGHTNESS)
                .characteristic(&c::HUE);
            Some((
                bulb.handle(t::ON)?,
                bulb.handle(t::BRIGHTNESS)?,
                bulb.handle(t::HUE)?,
            ))
        })
        .unwrap();
    setup(&mut app, handles.0, handles.1, handles.2);
    let device = app.device();
    let (running, home) = serve(app, &device);
    (running, home, device, handles)
}

fn write_one<T: CharacteristicValue>(home: &mut Controller, at: Handle<T>, value: &str) -> Message {
    put(
        home,
        &format!(
            r#"{{"aid":{},"iid":{},"value":{value}}}"#,
            at.aid(),
            at.iid()
        ),
    )
}

fn read_one<T: CharacteristicValue>(home: &mut Controller, at: Handle<T>) -> Message {
    home.get(&format!("/characteristics?id={}.{}", at.aid(), at.iid()))
}

/// A handler or timer job that panics fails its operation at once and the loop goes on.
#[test]
fn a_panicking_handler_fails_its_operation_and_the_loop_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let (ran, timers) = mpsc::channel();
    let (running, mut home, device, (on, brightness, _)) =
        lamp(data.path(), |app, on, level, _| {
            app.on_write(on, |lit| match lit {
                true => panic!("the lamp's driver failed"),
                false => Ok(()),
            });
            app.on_read(level, || -> Result<i32, HapStatus> { panic!("no level") });
            let device = app.device();
            device.after(Duration::from_millis(1), |_| panic!("a timer failed"));
            device.after(Duration::from_millis(5), move |_| ran.send(()).unwrap());
        });
    let started = Instant::now();
    let write = write_one(&mut home, on, "true");
    assert_eq!(write.status, 207, "{}", write.text());
    assert!(
        write.text().contains(r#""status":-70402"#),
        "{}",
        write.text()
    );
    let read = read_one(&mut home, brightness);
    assert!(
        read.text().contains(r#""status":-70402"#),
        "{}",
        read.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered only at the timeout"
    );
    // Still looping: the next write is confirmed, and the timer after the panicked one runs.
    let write = write_one(&mut home, on, "false");
    assert_eq!(write.status, 204, "{}", write.text());
    timers
        .recv_timeout(Duration::from_secs(5))
        .expect("the second timer ran");

    device.shut_down();
    running.join().expect("run returns after shut_down");
}

/// A completion the core refuses (a value out of range, a failure with status 0) is
/// answered with a failure at once rather than at the 9 s timeout.
#[test]
fn a_refused_completion_fails_at_once() {
    let data = tempfile::tempdir().unwrap();
    let (running, mut home, device, (on, brightness, hue)) =
        lamp(data.path(), |app, on, level, hue| {
            app.on_read(level, || Ok(500));
            app.on_read(hue, || Err(HapStatus::Success));
            app.on_write(on, |_| Err(HapStatus::Success));
        });
    let started = Instant::now();
    let read = read_one(&mut home, brightness);
    assert!(
        read.text().contains(r#""status":-70410"#),
        "{}",
        read.text()
    );
    let read = read_one(&mut home, hue);
    assert!(
        read.text().contains(r#""status":-70402"#),
        "{}",
        read.text()
    );
    let write = write_one(&mut home, on, "true");
    assert!(
        write.text().contains(r#""status":-70402"#),
        "{}",
        write.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered only at the timeout"
    );
    assert_eq!(device.get(on), Some(false));

    device.shut_down();
    running.join().expect("run returns after shut_down");
}

/// Deferred handlers answer from another thread; one that drops its reply fails at once.
#[test]
fn deferred_handlers_answer_from_another_thread() {
    let data = tempfile::tempdir().unwrap();
    let (heard, changes) = mpsc::channel();
    let (running, mut home, device, (on, brightness, hue)) =
        lamp(data.path(), |app, on, level, hue| {
            app.on_write_deferred(on, |lit, reply| {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    match lit {
                        true => reply.ok(),
                        false => reply.fail(HapStatus::ResourceBusy),
                    }
                });
            });
            app.on_change(on, move |lit| heard.send(lit).unwrap());
            app.on_read_deferred(level, |reply| {
                std::thread::spawn(move || reply.ok(42));
            });
            app.on_read_deferred(hue, drop);
        });
    let started = Instant::now();
    let write = write_one(&mut home, on, "true");
    assert_eq!(write.status, 204, "{}", write.text());
    assert_eq!(changes.recv_timeout(Duration::from_secs(5)), Ok(true));
    assert_eq!(device.get(on), Some(true));
    let write = write_one(&mut home, on, "false");
    assert!(
        write.text().contains(r#""status":-70403"#),
        "{}",
        write.text()
    );
    assert_eq!(device.get(on), Some(true));
    let read = read_one(&mut home, brightness);
    assert!(read.text().contains(r#""value":42"#), "{}", read.text());
    let read = read_one(&mut home, hue);
    assert!(
        read.text().contains(r#""status":-70402"#),
        "{}",
        read.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered only at the timeout"
    );
    assert!(changes.try_recv().is_err(), "a failed write was heard");

    device.shut_down();
    running.join().expect("run returns after shut_down");
}

/// A write-response handler's value answers a write that asked for a response.
#[test]
fn a_write_response_handler_answers_with_its_value() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::new(&flags(data.path()), "Test Lock", Category::DOOR_LOCK).expect("starts");
    let control = app
        .build(|b, name| {
            b.accessory("lock", &AccessoryInfo::new(name, "Acme", "K", "1", "1.0"));
            b.service(&s::ACCESS_CODE)
                .primary()
                .handle(t::ACCESS_CODE_CONTROL_POINT)
        })
        .unwrap();
    app.on_write_response(control, |request| {
        assert_eq!(request.0.as_slice(), [1, 1]);
        Ok(Tlv8Value(ValueBytes::from_slice(&[2, 1, 1]).unwrap()))
    });
    let device = app.device();
    let (running, mut home) = serve(app, &device);
    let started = Instant::now();
    let write = put(
        &mut home,
        &format!(
            r#"{{"aid":{},"iid":{},"value":"AQE=","r":true}}"#,
            control.aid(),
            control.iid()
        ),
    );
    assert_eq!(write.status, 207, "{}", write.text());
    assert!(
        write.text().contains(r#""value":"AgEB""#),
        "{}",
        write.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered only at the timeout"
    );

    device.shut_down();
    running.join().expect("run returns after shut_down");
}

/// Device::shut_down before run shuts the accessory down as soon as it has started.
#[test]
fn a_shut_down_before_run_stops_the_accessory_once_started() {
    let data = tempfile::tempdir().unwrap();
    let mut app = App::new(&flags(data.path()), "Test Lamp", Category::LIGHTBULB).expect("starts");
    app.build(|b, name| {
        b.accessory("lamp", &AccessoryInfo::new(name, "Acme", "L", "1", "1.0"));
        b.service(&s::LIGHTBULB).primary().handle(t::ON)
    })
    .unwrap();
    let device = app.device();
    device.shut_down();
    let (done, ended) = mpsc::channel();
    std::thread::spawn(move || done.send(app.run().is_ok()).unwrap());
    assert_eq!(ended.recv_timeout(Duration::from_secs(10)), Ok(true));
    assert!(device.local_addr().is_some(), "it had started");
}

/// The iid of the Identify characteristic of accessory 1, from `/accessories`.
fn identify_iid(home: &mut Controller) -> u64 {
    let accessories = home.get("/accessories").text();
    // A characteristic's object holds no other object.
    let object = accessories
        .split('{')
        .find(|object| object.contains(r#""type":"14""#))
        .expect("an Identify characteristic");
    let digits = object.split(r#""iid":"#).nth(1).expect("its iid");
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap();
    digits[..end].parse().unwrap()
}

/// The Home app's Identify, a write of the Identify characteristic, reaches on_identify.
#[test]
fn a_write_of_identify_calls_the_identify_handler() {
    let data = tempfile::tempdir().unwrap();
    let (asked, identified) = mpsc::channel();
    let (running, mut home, device, (on, _, _)) = lamp(data.path(), |app, _, _, _| {
        app.on_identify(move |aid| asked.send(aid).unwrap());
    });
    let iid = identify_iid(&mut home);
    let write = put(
        &mut home,
        &format!(r#"{{"aid":{},"iid":{iid},"value":true}}"#, on.aid()),
    );
    assert_eq!(write.status, 204, "{}", write.text());
    assert_eq!(
        identified.recv_timeout(Duration::from_secs(5)),
        Ok(on.aid())
    );

    device.shut_down();
    running.join().expect("run returns after shut_down");
}
