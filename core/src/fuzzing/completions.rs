//! The application's completions arriving at any point: two verified controllers send
//! writes to confirmed characteristics and reads on demand, while the application
//! completes them (in time or late, with success or a status, with stale tokens), sets
//! values, lets time pass and loses connections, in the order the input chooses.
//!
//! The harness polls only the connections [`Server::poll_wake`] names (and the one fed),
//! as an adapter on the documented run loop would, and checks that no other connection
//! had anything to say; that completions of stale tokens are refused (including reads
//! a value set or read meanwhile answered); that a failed write leaves its values and a
//! confirmed one stores them; and that every byte sent parses.

use std::vec::Vec;

use super::connection::{adapter_buffers, messages, Controller, Message, Outcome};
use super::pairing::{guest, owner, paired};
use super::{FuzzRng, Input};
use crate::catalog::{characteristic as c, service as s};
use crate::database::builder::{AccessoryInfo, DatabaseBuilder};
use crate::database::fixture::{CONTROL_POINT, VAULT_DOOR, VENDOR};
use crate::database::{Database, OwnedValue};
use crate::server::{
    CompleteError, Config, Connection, Event, HapStatus, Output, OwnedBuffers, Server, Token,
};
use crate::session::MAX_FRAME_PLAINTEXT;
use crate::time::Instant;
use crate::ConnectionId;

/// Bounds every loop, so that a server that stops making progress fails the run.
const STEP_LIMIT: usize = 10_000;

/// How many connections a run may open: two at first, and one for each lost one.
const POOL: usize = 4;

/// The most operations one input runs.
const MAX_OPERATIONS: usize = 64;

/// A lamp whose On and Brightness are confirmed (Hue is not), a temperature read on
/// demand, a confirmed timed-write characteristic and a confirmed control point
/// (accessory 1), and a second confirmed light (accessory 2).
fn fixture() -> Database<'static> {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "lamp",
        &AccessoryInfo::new("Lamp", "Acme", "L1", "1", "1.0"),
    );
    builder
        .service(&s::LIGHTBULB)
        .primary()
        .configure(&c::ON, |d| d.confirmed())
        .configure(&c::BRIGHTNESS, |d| d.confirmed())
        .characteristic(&c::HUE);
    builder
        .service(&s::TEMPERATURE_SENSOR)
        .configure(&c::CURRENT_TEMPERATURE, |d| d.on_demand());
    builder
        .service(&VENDOR)
        .configure(&VAULT_DOOR, |d| d.confirmed())
        .configure(&CONTROL_POINT, |d| d.confirmed());
    builder.accessory("fan", &AccessoryInfo::new("Fan", "Acme", "F1", "2", "1.0"));
    builder
        .service(&s::LIGHTBULB)
        .primary()
        .configure(&c::ON, |d| d.confirmed());
    builder.build().expect("the fixture is valid")
}

/// Write items the requests choose from: `(aid, iid, JSON values by the input byte)`.
const WRITABLE: [(u64, u64); 7] = [(1, 9), (1, 10), (1, 11), (1, 15), (1, 16), (2, 9), (1, 13)];

/// Ids the reads choose from, one of which does not exist.
const READABLE: [(u64, u64); 5] = [(1, 13), (1, 9), (1, 10), (2, 9), (1, 99)];

/// The JSON of a value for `(aid, iid)` chosen by `byte`: mostly valid, sometimes not.
fn json_value(id: (u64, u64), byte: u8) -> std::string::String {
    use std::format;
    match (id, byte % 8) {
        (_, 7) => "\"x\"".into(),
        ((1, 16), _) => ["\"AQE=\"", "\"AgEB\"", "\"\""][usize::from(byte % 3)].into(),
        ((_, 9), _) => ["true", "false", "1", "0"][usize::from(byte % 4)].into(),
        _ => format!("{}", byte % 120),
    }
}

/// A value the application may set or read for `(aid, iid)`, chosen by `byte`.
fn owned_value(id: (u64, u64), byte: u8) -> OwnedValue {
    match id {
        (_, 9) => OwnedValue::Bool(byte & 1 == 1),
        (1, 10) => OwnedValue::Int(i32::from(byte) - 10),
        (1, 15) => OwnedValue::Uint8(byte % 3),
        (1, 16) => OwnedValue::tlv8(&[byte, 1, 1]).unwrap_or(OwnedValue::Bool(false)),
        _ => OwnedValue::Float(f64::from(byte) - 60.0),
    }
}

/// One verified connection of the run.
struct Live<'b> {
    conn: Connection<'b>,
    controller: Controller,
    /// Bytes it did not take yet (it waits for the application), offered again when it
    /// is polled.
    backlog: Vec<u8>,
    lost: bool,
    outcome: Outcome,
}

/// A token the application was given, and what it covers.
struct Issued {
    token: Token,
    write: bool,
    /// The items under it, in order: for writes, the value written.
    items: Vec<((u64, u64), OwnedValue)>,
    /// Whether it was completed, timed out or lost: a completion must be refused.
    stale: bool,
}

struct Run<'b> {
    server: Server<'static>,
    rng: FuzzRng,
    now: Instant,
    lives: Vec<Live<'b>>,
    issued: Vec<Issued>,
}

impl<'b> Run<'b> {
    fn open(&mut self, buffers: &'b mut OwnedBuffers, guest_controller: bool) {
        let id = ConnectionId(self.lives.len() as u32 + 1);
        let mut conn = self
            .server
            .accept(id, buffers.borrow(), self.now)
            .expect("room for a connection");
        let who = if guest_controller { guest() } else { owner() };
        let controller = Controller::enter(&self.server, &mut conn, who);
        self.lives.push(Live {
            conn,
            controller,
            backlog: Vec::new(),
            lost: false,
            outcome: Outcome::default(),
        });
    }

    /// The index of the `choice`th connection still open, if any.
    fn pick(&self, choice: u8) -> Option<usize> {
        let open: Vec<usize> = (0..self.lives.len())
            .filter(|&k| !self.lives[k].lost && self.lives[k].outcome.closed.is_none())
            .collect();
        (!open.is_empty()).then(|| open[usize::from(choice) % open.len()])
    }

    /// Sends `request` from connection `k`.
    fn send(&mut self, k: usize, request: &[u8]) {
        let live = &mut self.lives[k];
        let wire = live.controller.seal(request, MAX_FRAME_PLAINTEXT);
        live.backlog.extend_from_slice(&wire);
        self.service(k);
    }

    /// Polls connection `k` as an adapter does: drains it, offers its backlog, and
    /// repeats while that makes progress.
    fn service(&mut self, k: usize) {
        for _ in 0..STEP_LIMIT {
            self.drain(k);
            let live = &mut self.lives[k];
            if live.backlog.is_empty() || live.lost || live.outcome.closed.is_some() {
                return;
            }
            let taken =
                self.server
                    .handle_input(&mut live.conn, self.now, &live.backlog, &mut self.rng);
            live.backlog.drain(..taken);
            if taken == 0 {
                // It waits for the application or for time; whatever ends that wakes it.
                self.drain(k);
                return;
            }
        }
        panic!("a connection kept taking input without end");
    }

    /// Drains connection `k`, recording what the application is asked.
    fn drain(&mut self, k: usize) {
        let live = &mut self.lives[k];
        if live.lost {
            return;
        }
        for _ in 0..STEP_LIMIT {
            let Some(output) = self
                .server
                .poll_output(&mut live.conn, self.now, &mut self.rng)
            else {
                return;
            };
            match output {
                Output::Transmit(bytes) => live.outcome.transmitted.extend_from_slice(bytes),
                Output::Persist => {
                    self.server
                        .state_persisted(&mut live.conn, self.now, true, &mut self.rng)
                }
                Output::Event(event) => {
                    record(&mut self.issued, &event);
                    live.outcome.events.push(event);
                }
                Output::Close => {
                    live.outcome.closed = live.conn.close_reason();
                    assert!(live.outcome.closed.is_some(), "closed without a reason");
                }
            }
        }
        panic!("poll_output never settled");
    }

    /// Polls the connections [`Server::poll_wake`] names, then checks that no other
    /// connection had anything to say.
    fn wake(&mut self) {
        for _ in 0..STEP_LIMIT {
            let Some(id) = self.server.poll_wake() else {
                break;
            };
            let k = self
                .lives
                .iter()
                .position(|live| live.conn.id() == id && !live.lost)
                .expect("poll_wake names an open connection");
            self.service(k);
        }
        for k in 0..self.lives.len() {
            let live = &mut self.lives[k];
            if live.lost || live.outcome.closed.is_some() {
                continue;
            }
            let output = self
                .server
                .poll_output(&mut live.conn, self.now, &mut self.rng);
            assert!(
                output.is_none(),
                "connection {k} had output poll_wake did not announce: {output:?}"
            );
        }
    }

    /// Completes the `choice`th token issued with `answer` and checks the outcome.
    fn complete(&mut self, write: bool, choice: u8, answer: u8) {
        if self.issued.is_empty() {
            return;
        }
        let index = usize::from(choice) % self.issued.len();
        let issued = &self.issued[index];
        let token = issued.token;
        let status = HapStatus::ALL[usize::from(answer) % HapStatus::ALL.len()];
        let before: Vec<Option<OwnedValue>> = issued
            .items
            .iter()
            .map(|((aid, iid), _)| self.server.database().get(*aid, *iid).cloned())
            .collect();
        let result = if write {
            let result = if answer & 0x80 == 0 {
                Ok(())
            } else {
                Err(status)
            };
            self.server.complete_write(token, result)
        } else {
            let id = issued.items[0].0;
            let result = if answer & 0x80 == 0 {
                Ok(owned_value(id, answer))
            } else {
                Err(status)
            };
            self.server.complete_read(token, result)
        };
        let issued = &mut self.issued[index];
        let failing = answer & 0x80 != 0;
        match result {
            Err(CompleteError::NotAFailure) => assert!(failing && status == HapStatus::Success),
            Err(CompleteError::WrongKind) => assert_ne!(issued.write, write),
            // Completed, timed out, lost, or its job took another answer (a read that
            // a value set meanwhile answered): it stays refused.
            Err(CompleteError::UnknownToken) => issued.stale = true,
            Err(CompleteError::Value(_)) => assert!(!write && !failing),
            Ok(()) => {
                assert!(!issued.stale, "a stale token was accepted");
                assert_eq!(
                    issued.write, write,
                    "a token of the other kind was accepted"
                );
                assert!(!failing || status != HapStatus::Success);
                issued.stale = true;
                if !write && !failing {
                    // The value answered every read of it waiting.
                    let id = issued.items[0].0;
                    self.answered_reads(id);
                }
                let issued = &mut self.issued[index];
                if write && failing {
                    let after: Vec<Option<OwnedValue>> = issued
                        .items
                        .iter()
                        .map(|((aid, iid), _)| self.server.database().get(*aid, *iid).cloned())
                        .collect();
                    assert_eq!(before, after, "a failed write changed a value");
                } else if write {
                    // Items are committed in order: the last of each characteristic stands.
                    for (id, value) in &issued.items {
                        let last = issued.items.iter().rev().find(|(other, _)| other == id);
                        if last.is_some_and(|(_, last)| last == value) {
                            assert_eq!(
                                self.server.database().get(id.0, id.1),
                                Some(value),
                                "a confirmed write was not stored"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Marks the read tokens of `id` stale: a value supplied answered them.
    fn answered_reads(&mut self, id: (u64, u64)) {
        for issued in &mut self.issued {
            if !issued.write && issued.items[0].0 == id {
                issued.stale = true;
            }
        }
    }

    /// Lets `millis` pass and times out whatever is due, as an adapter's timer does.
    fn advance(&mut self, millis: u64) {
        self.now = self.now + core::time::Duration::from_millis(millis);
        for k in 0..self.lives.len() {
            let live = &mut self.lives[k];
            if live.lost || live.outcome.closed.is_some() {
                continue;
            }
            if self
                .server
                .poll_timeout(&live.conn)
                .is_some_and(|due| due <= self.now)
            {
                self.server.handle_timeout(&mut live.conn, self.now);
                self.service(k);
            }
        }
        // Jobs past their deadline answered their items: those tokens are stale.
        self.refresh_stale();
    }

    /// Marks tokens stale whose jobs have ended: those of lost connections, and those of
    /// connections with no request waiting.
    fn refresh_stale(&mut self) {
        for issued in &mut self.issued {
            let live = &self.lives[issued.token.connection().0 as usize - 1];
            if live.lost
                || live.outcome.closed.is_some()
                || live.backlog.is_empty() && {
                    // Nothing buffered and nothing waiting: its jobs are over.
                    self.server.poll_timeout(&live.conn).is_none()
                }
            {
                issued.stale = true;
            }
        }
    }
}

/// Notes a token the application was given.
fn record(issued: &mut Vec<Issued>, event: &Event) {
    let (token, write, item) = match event {
        Event::WriteRequest {
            token,
            aid,
            iid,
            value,
            ..
        } => (*token, true, ((*aid, *iid), value.clone())),
        Event::Read { token, aid, iid } => (*token, false, ((*aid, *iid), OwnedValue::Bool(false))),
        _ => return,
    };
    match issued.iter_mut().find(|i| i.token == token) {
        Some(existing) => existing.items.push(item),
        None => issued.push(Issued {
            token,
            write,
            items: std::vec![item],
            stale: false,
        }),
    }
}

/// The run, driven by operations the input chooses. The first byte holds flags: bit 0
/// makes the second controller a guest.
pub fn completions(data: &[u8]) {
    drive(data);
}

/// Runs `data` and returns the server and the messages each connection received.
fn drive(data: &[u8]) -> (Server<'static>, Vec<Vec<Message>>) {
    use std::format;
    let mut input = Input::new(data);
    let flag_bits = input.byte();
    let mut pool: Vec<OwnedBuffers> = (0..POOL).map(|_| adapter_buffers()).collect();
    let mut free = pool.iter_mut();
    let mut run = Run {
        server: Server::new(paired().clone(), fixture(), Config::default()),
        rng: FuzzRng::new(5),
        now: Instant::from_millis(0),
        lives: Vec::new(),
        issued: Vec::new(),
    };
    for guest_controller in [false, flag_bits & 1 == 1] {
        let buffers = free.next().expect("the pool has the first two");
        run.open(buffers, guest_controller);
    }
    for _ in 0..MAX_OPERATIONS {
        if input.is_empty() {
            break;
        }
        let op = input.byte();
        let arg = input.byte();
        match op % 9 {
            0 => {
                // Raw plaintext from a controller.
                let len = usize::from(input.byte());
                let bytes = input.take(len).to_vec();
                if let Some(k) = run.pick(arg) {
                    run.send(k, &bytes);
                }
            }
            1 => {
                // A PUT of up to four items, maybe timed, maybe asking for responses,
                // maybe subscribing as well.
                let count = 1 + usize::from(arg % 4);
                let chosen: Vec<((u64, u64), u8)> = (0..count)
                    .map(|_| {
                        let id = WRITABLE[usize::from(input.byte()) % WRITABLE.len()];
                        (id, input.byte())
                    })
                    .collect();
                // The pid choice, and bit 4 to subscribe with every item.
                let extra = input.byte();
                let ev = if extra & 0x10 != 0 {
                    ",\"ev\":true"
                } else {
                    ""
                };
                let items: Vec<std::string::String> = chosen
                    .into_iter()
                    .map(|(id, byte)| {
                        let value = json_value(id, byte);
                        let response = if id == (1, 16) { ",\"r\":true" } else { "" };
                        format!(
                            "{{\"aid\":{},\"iid\":{},\"value\":{value}{response}{ev}}}",
                            id.0, id.1
                        )
                    })
                    .collect();
                let pid = match extra % 3 {
                    0 => std::string::String::new(),
                    n => format!(",\"pid\":{n}"),
                };
                let body = format!("{{\"characteristics\":[{}]{pid}}}", items.join(","));
                let request = format!(
                    "PUT /characteristics HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if let Some(k) = run.pick(arg >> 2) {
                    run.send(k, request.as_bytes());
                }
            }
            2 => {
                // A GET of up to three ids.
                let count = 1 + usize::from(arg % 3);
                let ids: Vec<std::string::String> = (0..count)
                    .map(|_| {
                        let (aid, iid) = READABLE[usize::from(input.byte()) % READABLE.len()];
                        format!("{aid}.{iid}")
                    })
                    .collect();
                let request = format!("GET /characteristics?id={} HTTP/1.1\r\n\r\n", ids.join(","));
                if let Some(k) = run.pick(arg >> 2) {
                    run.send(k, request.as_bytes());
                }
            }
            3 => {
                let answer = input.byte();
                run.complete(true, arg, answer);
            }
            4 => {
                let answer = input.byte();
                run.complete(false, arg, answer);
            }
            5 => run.advance(u64::from(arg) * 100),
            6 => {
                let id = WRITABLE[usize::from(arg) % WRITABLE.len()];
                let set = run
                    .server
                    .set_value(id.0, id.1, owned_value(id, input.byte()));
                if set.is_ok() {
                    // It answered every read of it waiting: their tokens are refused.
                    run.answered_reads(id);
                }
            }
            7 => {
                // The connection is lost; another takes its place while buffers last.
                if let Some(k) = run.pick(arg) {
                    let live = &mut run.lives[k];
                    run.server.connection_lost(&mut live.conn);
                    live.lost = true;
                    for issued in &mut run.issued {
                        if issued.token.connection() == live.conn.id() {
                            issued.stale = true;
                        }
                    }
                    if let Some(buffers) = free.next() {
                        run.open(buffers, arg & 0x80 != 0);
                    }
                }
            }
            _ => {
                // A timed write's preparation.
                let body = format!("{{\"ttl\":{},\"pid\":{}}}", u32::from(arg) * 20, arg % 3);
                let request = format!(
                    "PUT /prepare HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if let Some(k) = run.pick(input.byte()) {
                    run.send(k, request.as_bytes());
                }
            }
        }
        run.wake();
    }
    // Whatever waits times out in the end, and every byte sent parses.
    run.advance(60_000);
    run.wake();
    let mut received = Vec::new();
    for live in &mut run.lives {
        let closed = live.outcome.closed.is_some() || live.lost;
        let plaintext = live.controller.open(&live.outcome.transmitted);
        received.push(messages(&plaintext, closed));
    }
    for k in 0..run.lives.len() {
        if !run.lives[k].lost {
            let live = &mut run.lives[k];
            run.server.connection_lost(&mut live.conn);
        }
    }
    assert_eq!(
        run.server.connection_count(),
        0,
        "a closed connection still counts"
    );
    for issued in &run.issued {
        let refused = if issued.write {
            run.server.complete_write(issued.token, Ok(()))
        } else {
            run.server
                .complete_read(issued.token, Err(HapStatus::ServiceCommunicationFailure))
        };
        assert_eq!(
            refused,
            Err(CompleteError::UnknownToken),
            "a token outlived its connection"
        );
    }
    (run.server, received)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(message: &Message) -> Vec<i64> {
        let json: serde_json::Value = serde_json::from_slice(&message.body).unwrap();
        json["characteristics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["status"].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn the_seeds_reach_the_application_and_back() {
        let seeds = super::super::seeds("completions");
        // Confirmed: both batches succeed.
        let (server, received) = drive(&seeds[0]);
        assert_eq!(received[0].last().map(|m| m.status), Some(204));
        assert_eq!(server.database().get(1, 9), Some(&OwnedValue::Bool(true)));
        assert_eq!(server.database().get(2, 9), Some(&OwnedValue::Bool(true)));
        // Failed: the lamp's items get -70402 and the fan's -70410; Hue was plain.
        let (server, received) = drive(&seeds[1]);
        let reply = received[0].last().unwrap();
        assert_eq!(reply.status, 207);
        assert_eq!(statuses(reply), [-70402, -70402, -70410, 0]);
        assert_eq!(server.database().get(1, 9), Some(&OwnedValue::Bool(false)));
        // A read answered with a value, then one refused, then one left to time out.
        let (_, received) = drive(&seeds[3]);
        let replies: Vec<u16> = received[0].iter().map(|m| m.status).collect();
        assert_eq!(replies, [200, 207, 207]);
        assert_eq!(statuses(&received[0][1])[0], -70402);
        assert_eq!(statuses(&received[0][2])[0], -70408);
        // The timed write stands once confirmed.
        let (server, _) = drive(&seeds[5]);
        assert_eq!(server.database().get(1, 15), Some(&OwnedValue::Uint8(1)));
    }
}
