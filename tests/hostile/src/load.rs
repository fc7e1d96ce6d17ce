//! Load: many controllers at once, the connection limit, and who makes room when every
//! slot is taken.

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

/// Cases that wait in real time; `main` runs them alongside each other.
pub(crate) const WAITING: &[Case] = &[Case {
    name: "load/16-silent-sessions-then-a-newcomer",
    run: silent_sessions_then_a_newcomer,
}];

/// The limit the eviction case starts the lights with: 16 silent sessions, as the issue
/// that asked for it describes a home.
const SILENT_LIMIT: usize = 16;

fn twenty_concurrent(context: &Context) -> String {
    // Exactly as many connections as the light takes.
    let paired = context.paired_with(&["--max-connections", "20"]);
    // Pairing and reading the ids used two connections, closed just now. Until the
    // light has seen them go, they count against its limit, and one of the twenty
    // would be turned away as the 21st: give its threads a moment (seen on a loaded
    // 2-core CI machine).
    std::thread::sleep(Duration::from_millis(300));
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
const DEFAULT_LIMIT: usize = hap_std::host::MAX_CONNECTIONS;

fn connection_limit(context: &Context) -> String {
    // The default limit.
    let paired = context.paired();
    let address = paired.accessory.address;
    // One connection more than the limit, at once. Nobody has been idle 60 s, so nobody
    // is evicted to make room. The std light takes each on its own thread, so which one
    // finds the slots full depends on scheduling: exactly one must be closed, at once,
    // before anything is served on it.
    let mut open: Vec<Controller> = (0..=DEFAULT_LIMIT)
        .map(|_| Controller::connect(address, ADMIN))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let closed: Vec<usize> = (0..open.len())
        .filter(|&n| open[n].closed_within(Duration::from_millis(100)))
        .collect();
    assert_eq!(
        closed.len(),
        1,
        "closed of {}: {closed:?}",
        DEFAULT_LIMIT + 1
    );
    open.remove(closed[0]);
    // The others are still served.
    for controller in &mut open {
        controller.pair_verify(&paired.pairing);
    }
    // Closing four frees four slots.
    open.truncate(DEFAULT_LIMIT - 4);
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
        "{} at once: one closed at once, the other {DEFAULT_LIMIT} verified; 4 closed, 4 new ones verified and read; {}",
        DEFAULT_LIMIT + 1,
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

/// How long a connection must have been idle before a newcomer may evict it (HomeKitADK,
/// `HAPIPAccessoryServer.c`).
const IDLE_EVICTION: Duration = Duration::from_secs(60);

/// How long the silent connections stay silent before the newcomer: 10 s of margin over
/// [`IDLE_EVICTION`] for a loaded machine.
const SILENCE: Duration = Duration::from_secs(IDLE_EVICTION.as_secs() + 10);

/// Whether the accessory has closed `controller`'s connection, seen without sending or
/// taking anything: a peek that finds the end of the stream (or a reset). A silent
/// connection with no subscription must not be sent anything either.
fn closed_by_accessory(controller: &Controller) -> bool {
    let socket = controller.socket();
    socket.set_nonblocking(true).expect("a non-blocking socket");
    let peeked = socket.peek(&mut [0u8; 1]);
    socket.set_nonblocking(false).expect("a blocking socket");
    match peeked {
        Ok(0) => true,
        Ok(_) => panic!("the accessory sent something on a silent connection"),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// The silent connections the accessory has closed, by index.
fn closed_of(silent: &[Controller]) -> Vec<usize> {
    (0..silent.len())
        .filter(|&n| closed_by_accessory(&silent[n]))
        .collect()
}

fn silent_sessions_then_a_newcomer(context: &Context) -> String {
    let paired = context.paired_with(&["--max-connections", &SILENT_LIMIT.to_string()]);
    let address = paired.accessory.address;
    // The connections that paired and read the ids must be gone before the slots fill.
    std::thread::sleep(Duration::from_millis(300));
    // 16 admin connections verify one after another, then say nothing: the first is idle
    // longest. The gaps keep their idle clocks clearly apart.
    let mut silent: Vec<Controller> = Vec::with_capacity(SILENT_LIMIT);
    for _ in 0..SILENT_LIMIT {
        silent.push(paired.verified(ADMIN));
        std::thread::sleep(Duration::from_millis(20));
    }
    let silent_since = Instant::now();
    // Full, and nobody idle 60 s yet: a 17th is closed at once, without an answer.
    let mut refused = Controller::connect(address, ADMIN);
    let knocked = Instant::now();
    assert!(
        refused.ends_without_answer(Duration::from_secs(2)),
        "a 17th connection with every slot taken and nobody idle 60 s: not closed within 2 s"
    );
    let refused_in = knocked.elapsed();
    drop(refused);
    let closed = closed_of(&silent);
    assert!(
        closed.is_empty(),
        "silent ones closed by the 17th: {closed:?}"
    );
    // Wait in silence until every one of the 16 has been idle past 60 s.
    if let Some(left) = SILENCE.checked_sub(silent_since.elapsed()) {
        std::thread::sleep(left);
    }
    let closed = closed_of(&silent);
    assert!(
        closed.is_empty(),
        "silent ones closed while nobody needed their slot: {closed:?}"
    );
    // A newcomer is served: the idle-longest connection makes room for it.
    let newcomer_at = silent_since.elapsed();
    let mut newcomer = Controller::connect(address, ADMIN);
    newcomer.pair_verify(&paired.pairing);
    let (aid, on) = paired.ids.on;
    let reply = newcomer.get(&format!("/characteristics?id={aid}.{on}"));
    assert_eq!(reply.status, 200, "the newcomer's read: {}", reply.text());
    // The evicted one closes once the accessory gets to it: wait for a first, then a
    // little longer for any other.
    let deadline = Instant::now() + Duration::from_secs(2);
    while closed_of(&silent).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let closed = closed_of(&silent);
    assert_eq!(
        closed,
        [0],
        "closed of the 16 silent ones (0 verified first, so was idle longest)"
    );
    // The other 15 still answer.
    for controller in &mut silent[1..] {
        let reply = controller.get(&format!("/characteristics?id={aid}.{on}"));
        assert_eq!(reply.status, 200, "a silent one's read: {}", reply.text());
    }
    drop(silent);
    drop(newcomer);
    std::thread::sleep(Duration::from_millis(300));
    format!(
        "16 verified and went silent: a 17th was closed in {} ms without an answer; {:.1} s on, a newcomer verified and read, the one idle longest was closed, the other 15 stayed open and then answered reads; {}",
        refused_in.as_millis(),
        newcomer_at.as_secs_f64(),
        paired.check_served()
    )
}
