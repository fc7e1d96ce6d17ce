//! Soak: 16 controllers subscribe, read and write for a while, and the light changes
//! itself from its stdin. No session may drop, every controller must end up with the
//! final values (events coalesce, but the last value always arrives), and the
//! accessory's memory and file descriptors must stay flat.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::Value;

use crate::controller::{Controller, Message};
use crate::harness::{add_body, join, json, Case, Context, Ids, ADMIN, TLV};

pub(crate) const CASES: &[Case] = &[Case {
    name: "soak/16-controllers",
    run: soak,
}];

const CONTROLLERS: u8 = 16;

/// What one controller saw.
#[derive(Default)]
struct Tally {
    requests: usize,
    events: usize,
    /// The last value it knows of On and Brightness, in the order the accessory sent.
    on: Option<Value>,
    brightness: Option<Value>,
}

impl Tally {
    /// Takes in the events that arrived, in order.
    fn hear(&mut self, ids: &Ids, events: &[Message]) {
        for event in events {
            self.events += 1;
            for item in json(event)["characteristics"].as_array().unwrap() {
                let at = (item["aid"].as_u64().unwrap(), item["iid"].as_u64().unwrap());
                if at == ids.on {
                    self.on = Some(item["value"].clone());
                } else if at == ids.brightness {
                    self.brightness = Some(item["value"].clone());
                }
            }
        }
    }
}

fn soak(context: &Context) -> String {
    let mut paired = context.paired();
    let ids = paired.ids;
    // One admin and 15 users, each its own pairing.
    let mut admin = paired.verified(ADMIN);
    for seed in 2..=CONTROLLERS {
        let identity = Controller::identity_for(seed);
        let body = add_body(identity.id.as_bytes(), &identity.keys.public_key(), false);
        let reply = admin.request("POST", "/pairings", TLV, &body);
        assert_eq!(reply.status, 200);
    }
    drop(admin);
    std::thread::sleep(Duration::from_millis(100));

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (1..=CONTROLLERS)
        .map(|seed| {
            let (address, pairing, stop) = (
                paired.accessory.address,
                paired.pairing.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || run_controller(seed, address, &pairing, ids, &stop))
        })
        .collect();

    // The light changes itself too, and the process is sampled as it goes.
    let started = Instant::now();
    let warm_up = Duration::from_secs(5).min(context.soak / 4);
    let mut rng = ChaCha20Rng::seed_from_u64(16);
    let mut baseline = None;
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut typed = 0;
    while started.elapsed() < context.soak {
        let command = match rng.next_u32() % 3 {
            0 => "toggle".to_owned(),
            _ => format!("brightness {}", rng.next_u32() % 101),
        };
        paired.accessory.type_line(&command);
        typed += 1;
        std::thread::sleep(Duration::from_millis(250));
        if baseline.is_none() && started.elapsed() >= warm_up {
            baseline = Some((paired.accessory.rss_kib(), paired.accessory.open_fds()));
        }
        if started.elapsed() >= next_sample {
            next_sample += Duration::from_secs(5);
            samples.push((
                started.elapsed(),
                paired.accessory.rss_kib(),
                paired.accessory.open_fds(),
            ));
        }
    }
    let (rss_end, fds_end) = (paired.accessory.rss_kib(), paired.accessory.open_fds());
    stop.store(true, Ordering::SeqCst);
    let tallies: Vec<Tally> = workers.into_iter().map(join).collect();
    let (rss_start, fds_start) = baseline.expect("a baseline sample");
    let peak = samples
        .iter()
        .map(|(_, rss, _)| *rss)
        .max()
        .unwrap_or(rss_end);

    // Everyone ends with the values a fresh read shows.
    let mut reader = paired.verified(ADMIN);
    let read = |reader: &mut Controller, (aid, iid): (u64, u64)| -> Value {
        json(&reader.get(&format!("/characteristics?id={aid}.{iid}")))["characteristics"][0]
            ["value"]
            .clone()
    };
    let (on, brightness) = (read(&mut reader, ids.on), read(&mut reader, ids.brightness));
    drop(reader);
    for (seed, tally) in (1..).zip(&tallies) {
        assert_eq!(tally.on.as_ref(), Some(&on), "controller {seed}'s last On");
        assert_eq!(
            tally.brightness.as_ref(),
            Some(&brightness),
            "controller {seed}'s last Brightness"
        );
    }
    let requests: usize = tallies.iter().map(|t| t.requests).sum();
    let events: usize = tallies.iter().map(|t| t.events).sum();
    let fd_delta = fds_end as i64 - fds_start as i64;
    let rss_delta = rss_end as i64 - rss_start as i64;
    assert_eq!(
        fd_delta, 0,
        "open file descriptors went from {fds_start} to {fds_end}"
    );
    // Allocator noise is a few hundred KiB; a leak per request would be far more.
    assert!(
        rss_delta < 1024,
        "RSS grew by {rss_delta} KiB ({rss_start} -> {rss_end}; samples {samples:?})"
    );
    paired = paired.restart();
    format!(
        "{} s, 16 controllers: {requests} requests, {events} events, {typed} local changes, no session dropped, all ended with On {on} and Brightness {brightness}; RSS {rss_start} -> {rss_end} KiB ({rss_delta:+} KiB, peak {peak}), fds {fds_start} -> {fds_end} ({fd_delta:+}); {}",
        context.soak.as_secs(),
        paired.check_served()
    )
}

/// One controller's loop: subscribe, then reads and writes until `stop`, then wait out
/// the coalescing window and take in the last events.
fn run_controller(
    seed: u8,
    address: std::net::SocketAddr,
    pairing: &hap_core::pairing::AccessoryPairing,
    ids: Ids,
    stop: &AtomicBool,
) -> Tally {
    let mut controller = Controller::connect(address, seed);
    controller.pair_verify(pairing);
    let mut tally = Tally::default();
    let (aid, on) = ids.on;
    let (_, brightness) = ids.brightness;
    let subscribe = format!(
        r#"{{"characteristics":[{{"aid":{aid},"iid":{on},"ev":true}},{{"aid":{aid},"iid":{brightness},"ev":true}}]}}"#
    );
    let (reply, events) = controller.exchange(
        "PUT",
        "/characteristics",
        "application/hap+json",
        subscribe.as_bytes(),
    );
    assert_eq!(reply.status, 204, "controller {seed}'s subscription");
    tally.hear(&ids, &events);
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(seed));
    let read = format!("/characteristics?id={aid}.{on},{aid}.{brightness}");
    while !stop.load(Ordering::SeqCst) {
        let write = match rng.next_u32() % 4 {
            0 => Some((brightness, Value::from(rng.next_u32() % 101))),
            1 => Some((on, Value::from(rng.next_u32() % 2 == 0))),
            _ => None,
        };
        match write {
            Some((iid, value)) => {
                let body = format!(
                    r#"{{"characteristics":[{{"aid":{aid},"iid":{iid},"value":{value}}}]}}"#
                );
                let (reply, events) = controller.exchange(
                    "PUT",
                    "/characteristics",
                    "application/hap+json",
                    body.as_bytes(),
                );
                tally.hear(&ids, &events);
                assert_eq!(reply.status, 204, "controller {seed}'s write");
                // No event comes back for one's own write.
                if iid == on {
                    tally.on = Some(value);
                } else {
                    tally.brightness = Some(value);
                }
            }
            None => {
                let (reply, events) = controller.exchange("GET", &read, "", b"");
                assert_eq!(reply.status, 200, "controller {seed}'s read");
                tally.hear(&ids, &events);
            }
        }
        tally.requests += 1;
        std::thread::sleep(Duration::from_millis(20 + u64::from(rng.next_u32() % 20)));
    }
    // Whatever is still coalescing goes out within the 1 s window.
    let deadline = Instant::now() + Duration::from_millis(2500);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match controller.next_message(left) {
            Some(message) if message.event => tally.hear(&ids, &[message]),
            Some(message) => panic!(
                "controller {seed}: an unexpected response {}",
                message.status
            ),
            None => break,
        }
    }
    // The session is still up.
    let (reply, events) =
        controller.exchange("GET", &format!("/characteristics?id={aid}.{on}"), "", b"");
    assert_eq!(reply.status, 200, "controller {seed}'s last read");
    tally.hear(&ids, &events);
    tally
}
