//! Load: many controllers at once, and the connection limit.

use std::sync::{Arc, Barrier};
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
];

fn twenty_concurrent(context: &Context) -> String {
    // The core's default is 16 connections; this light takes 20.
    let paired = context.paired_with(&["--max-connections", "20"]);
    let (aid, on) = paired.ids.on;
    let path = format!("/characteristics?id={aid}.{on}");
    let start = Arc::new(Barrier::new(20));
    let started = Instant::now();
    let workers: Vec<_> = (0..20)
        .map(|_| {
            let (address, pairing, path, start) = (
                paired.accessory.address,
                paired.pairing.clone(),
                path.clone(),
                start.clone(),
            );
            std::thread::spawn(move || {
                let mut controller = Controller::connect(address, ADMIN);
                start.wait();
                controller.pair_verify(&pairing);
                for _ in 0..50 {
                    let reply = controller.get(&path);
                    assert_eq!(reply.status, 200, "a read: {}", reply.text());
                }
            })
        })
        .collect();
    for worker in workers {
        join(worker);
    }
    format!(
        "20 connections verified at once and each read 50 times in {} ms; {}",
        started.elapsed().as_millis(),
        paired.check_served()
    )
}

fn connection_limit(context: &Context) -> String {
    // The core's default: 16.
    let paired = context.paired();
    let address = paired.accessory.address;
    let mut open: Vec<Controller> = (0..16)
        .map(|_| Controller::connect(address, ADMIN))
        .collect();
    // The slots fill as the accessory accepts; give it a moment.
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = Controller::connect(address, ADMIN);
    assert!(
        extra.closed_within(Duration::from_secs(2)),
        "a 17th connection stayed open"
    );
    // The 16 are still served.
    for controller in open.iter_mut().take(2) {
        controller.pair_verify(&paired.pairing);
    }
    // Closing four frees four slots.
    open.truncate(12);
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
        "16 open: a 17th closed at once, the 16 still served; 4 closed, 4 new ones verified and read; {}",
        paired.check_served()
    )
}
