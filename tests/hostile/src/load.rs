//! Load: many controllers at once, and the connection limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::controller::Controller;
use crate::harness::{join, Case, Context, ADMIN};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "load/20-concurrent-verify-and-read",
        run: twenty_concurrent,
    },
    Case {
        name: "load/connection-limit",
        run: connection_limit,
    },
    Case {
        name: "load/stuck-reader",
        run: stuck_reader,
    },
];

fn twenty_concurrent(context: &Context) -> String {
    // Exactly as many connections as the light takes.
    let paired = context.paired_with(&["--max-connections", "20"]);
    let (aid, on) = paired.ids.on;
    let path = format!("/characteristics?id={aid}.{on}");
    // All connect first, then go together (a flag, not a barrier: a worker that fails to
    // connect must not leave the others waiting forever).
    let go = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..20)
        .map(|_| {
            let (address, pairing, path, go) = (
                paired.accessory.address,
                paired.pairing.clone(),
                path.clone(),
                go.clone(),
            );
            std::thread::spawn(move || {
                let mut controller = Controller::connect(address, ADMIN);
                let deadline = Instant::now() + Duration::from_secs(10);
                while !go.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                controller.pair_verify(&pairing);
                for _ in 0..50 {
                    let reply = controller.get(&path);
                    assert_eq!(reply.status, 200, "a read: {}", reply.text());
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    go.store(true, Ordering::SeqCst);
    for worker in workers {
        join(worker);
    }
    format!(
        "20 connections verified at once and each read 50 times in {} ms; {}",
        started.elapsed().as_millis(),
        paired.check_served()
    )
}

/// The host adapters' default connection limit (`hap_std::host::MAX_CONNECTIONS`).
const LIMIT: usize = hap_std::host::MAX_CONNECTIONS;

fn connection_limit(context: &Context) -> String {
    // The default limit.
    let paired = context.paired();
    let address = paired.accessory.address;
    // One connection more than the limit, at once. The std light takes each on its own
    // thread, so which one finds the slots full depends on scheduling: exactly one must
    // be closed, at once, before anything is served on it.
    let mut open: Vec<Controller> = (0..=LIMIT)
        .map(|_| Controller::connect(address, ADMIN))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let closed: Vec<usize> = (0..open.len())
        .filter(|&n| open[n].closed_within(Duration::from_millis(100)))
        .collect();
    assert_eq!(closed.len(), 1, "closed of {}: {closed:?}", LIMIT + 1);
    open.remove(closed[0]);
    // The others are still served.
    for controller in &mut open {
        controller.pair_verify(&paired.pairing);
    }
    // Closing four frees four slots.
    open.truncate(LIMIT - 4);
    std::thread::sleep(Duration::from_millis(200));
    let mut later: Vec<Controller> = (0..4)
        .map(|_| Controller::connect(address, ADMIN))
        .collect();
    for controller in &mut later {
        controller.pair_verify(&paired.pairing);
        assert_eq!(controller.get("/accessories").status, 200);
    }
    drop(open);
    drop(later);
    std::thread::sleep(Duration::from_millis(200));
    format!(
        "{} at once: one closed at once, the other {LIMIT} verified; 4 closed, 4 new ones verified and read; {}",
        LIMIT + 1,
        paired.check_served()
    )
}

fn stuck_reader(context: &Context) -> String {
    let paired = context.paired();
    let rss_before = paired.accessory.rss_kib();
    // One connection asks for megabytes of answers and never reads them.
    let mut stuck = paired.verified(ADMIN);
    let request = b"GET /accessories HTTP/1.1\r\nHost: accessory\r\n\r\n";
    let wire = stuck.seal(&request.repeat(400_000));
    let address = paired.accessory.address;
    let socket = stuck.socket();
    // The accessory stops taking input once its output backs up, so this write blocks
    // until the socket is shut down below.
    let writer = std::thread::spawn(move || stuck.send_raw(&wire).is_ok());
    std::thread::sleep(Duration::from_millis(500));
    // Everyone else is served as usual.
    let (aid, on) = paired.ids.on;
    let mut other = Controller::connect(address, ADMIN);
    other.pair_verify(&paired.pairing);
    let mut slowest = Duration::ZERO;
    for _ in 0..200 {
        let sent = Instant::now();
        let reply = other.get(&format!("/characteristics?id={aid}.{on}"));
        assert_eq!(reply.status, 200);
        slowest = slowest.max(sent.elapsed());
    }
    let rss_during = paired.accessory.rss_kib();
    assert!(
        rss_during < rss_before + 2048,
        "RSS grew from {rss_before} to {rss_during} KiB behind a stuck reader"
    );
    drop(other);
    // 21 MB is more than both sockets' buffers hold: the write still waits.
    assert!(
        !writer.is_finished(),
        "the stuck connection's write finished"
    );
    let _ = socket.shutdown(std::net::Shutdown::Both);
    join(writer);
    format!(
        "a connection pipelined 400,000 GET /accessories (21 MB) and read nothing, its write blocked: another verified and read 200 times, the slowest in {} ms; RSS {rss_before} -> {rss_during} KiB; {}",
        slowest.as_millis(),
        paired.check_served()
    )
}
