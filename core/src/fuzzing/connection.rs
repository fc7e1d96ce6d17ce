//! Whole accessory connections: raw bytes before pair-verify, encrypted requests after
//! it, and the same input fed whole and in random pieces.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use rand_core::RngCore;

use super::pairing::{guest, owner, paired, unpaired};
use super::{FuzzRng, Input};
use crate::catalog::{characteristic as c, service as s, Perms};
use crate::crypto::Key;
use crate::database::builder::{AccessoryInfo, DatabaseBuilder};
use crate::database::fixture::add_gadget;
pub(crate) use crate::database::fixture::ids;
use crate::database::Database;
use crate::pairing::ControllerIdentity;
use crate::server::{
    CloseReason, Config, Connection, Event, Output, OwnedBuffers, Server, MIN_OUTPUT_LEN,
    MIN_SCRATCH_LEN,
};
use crate::session::{FrameEncryptor, Role, Session, SessionKeys, MAX_FRAME_PLAINTEXT};
use crate::time::Instant;
use crate::ConnectionId;

/// Bounds every loop, so that a server that stops making progress fails the run
/// instead of hanging it.
const STEP_LIMIT: usize = 100_000;

/// The fixture: the shared gadget (aid 1) and a plain light (aid 2), so that requests
/// can span accessories.
pub(crate) fn fixture() -> Database<'static> {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    add_gadget(&mut builder);
    builder.accessory(
        "lamp",
        &AccessoryInfo::new("Lamp", "Acme", "L1", "8", "1.0"),
    );
    let lamp = builder.service(&s::LIGHTBULB).primary();
    assert_eq!(lamp.iid_of(&c::ON), Some(LAMP_ON.1));
    builder.build().expect("the fixture is valid")
}

/// The lamp's On characteristic.
pub(crate) const LAMP_ON: (u64, u64) = (2, 9);

/// The first byte of a connection target's input.
pub(crate) mod flags {
    /// The accessory starts paired with an admin and a guest (always, once verified).
    pub(crate) const PAIRED: u8 = 0x01;
    /// Every store fails.
    pub(crate) const STORAGE_FAILS: u8 = 0x02;
    /// The application never answers on-demand reads or write responses.
    pub(crate) const SILENT_APPLICATION: u8 = 0x04;
    /// The verified controller is the guest, not the admin.
    pub(crate) const AS_GUEST: u8 = 0x08;
    /// Two bits choosing the plaintext size of the controller's frames.
    pub(crate) const FRAME_SIZE: u8 = 0x30;
    /// `connection_chunked` only: the connection verifies first.
    pub(crate) const VERIFIED: u8 = 0x80;
}

/// The plaintext size of the controller's frames, from the flags.
fn frame_len(flags: u8) -> usize {
    [MAX_FRAME_PLAINTEXT, 1, 13, 200][usize::from((flags & flags::FRAME_SIZE) >> 4)]
}

/// A connection's buffers at the sizes the std adapters give them.
pub(crate) fn adapter_buffers() -> OwnedBuffers {
    OwnedBuffers::new(
        crate::http::DEFAULT_MAX_REQUEST_LEN + MAX_FRAME_PLAINTEXT,
        MIN_SCRATCH_LEN,
        MIN_OUTPUT_LEN,
        32,
    )
}

/// What feeding a connection produced.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Outcome {
    /// Bytes sent, as on the wire.
    pub(crate) transmitted: Vec<u8>,
    pub(crate) events: Vec<Event>,
    pub(crate) closed: Option<CloseReason>,
}

/// The accessory side: a server over [`fixture`], its clock, randomness and storage.
pub(crate) struct Accessory {
    pub(crate) server: Server<'static>,
    rng: FuzzRng,
    pub(crate) now: Instant,
    storage_fails: bool,
    silent_application: bool,
    next_id: u32,
}

impl Accessory {
    pub(crate) fn new(flag_bits: u8) -> Self {
        let state = if flag_bits & (flags::PAIRED | flags::VERIFIED) != 0 {
            paired().clone()
        } else {
            unpaired().clone()
        };
        Self {
            server: Server::new(state, fixture(), Config::default()),
            rng: FuzzRng::new(3),
            now: Instant::from_millis(0),
            storage_fails: flag_bits & flags::STORAGE_FAILS != 0,
            silent_application: flag_bits & flags::SILENT_APPLICATION != 0,
            next_id: 1,
        }
    }

    pub(crate) fn accept<'b>(&mut self, buffers: &'b mut OwnedBuffers) -> Connection<'b> {
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        self.server
            .accept(id, buffers.borrow(), self.now)
            .expect("room for a connection")
    }

    /// Offers `bytes` as an adapter would: what is not taken is offered again after
    /// draining, and a connection that takes nothing while waiting for the application
    /// gets its timeout.
    pub(crate) fn feed(&mut self, conn: &mut Connection<'_>, bytes: &[u8], out: &mut Outcome) {
        let mut rest = bytes;
        for _ in 0..STEP_LIMIT {
            let taken = self
                .server
                .handle_input(conn, self.now, rest, &mut self.rng);
            assert!(taken <= rest.len(), "took more than it was given");
            rest = &rest[taken..];
            let produced = self.drain(conn, out);
            if rest.is_empty() {
                return;
            }
            if taken == 0 && !produced && !self.wait(conn) {
                panic!(
                    "the connection takes no input, produces nothing and has no timeout \
                     ({} bytes left)",
                    rest.len()
                );
            }
        }
        panic!("input was never all taken");
    }

    /// Lets time pass until `conn`'s next deadline; false if it has none.
    fn wait(&mut self, conn: &mut Connection<'_>) -> bool {
        let Some(deadline) = self.server.poll_timeout(conn) else {
            return false;
        };
        self.now = deadline.max(self.now);
        self.server.handle_timeout(conn, self.now);
        true
    }

    /// Lets every deadline pass, draining after each, until the connection has none.
    pub(crate) fn settle(&mut self, conn: &mut Connection<'_>, out: &mut Outcome) {
        for _ in 0..STEP_LIMIT {
            self.drain(conn, out);
            if !self.wait(conn) {
                self.drain(conn, out);
                return;
            }
        }
        panic!("deadlines kept coming");
    }

    /// Polls `conn` until it has nothing more, acting on every output. Returns whether
    /// anything came out.
    pub(crate) fn drain(&mut self, conn: &mut Connection<'_>, out: &mut Outcome) -> bool {
        let mut produced = false;
        for _ in 0..STEP_LIMIT {
            let output = self.server.poll_output(conn, self.now, &mut self.rng);
            let Some(output) = output else {
                return produced;
            };
            produced = true;
            if out.closed.is_some() {
                assert!(
                    matches!(output, Output::Persist),
                    "output after Close: {output:?}"
                );
            }
            match output {
                Output::Transmit(bytes) => {
                    assert!(!bytes.is_empty(), "an empty transmit");
                    out.transmitted.extend_from_slice(bytes);
                }
                Output::Persist => {
                    let stored = !self.storage_fails;
                    self.server
                        .state_persisted(conn, self.now, stored, &mut self.rng);
                    while let Some(event) = self.server.poll_event() {
                        out.events.push(event);
                    }
                }
                Output::Event(event) => {
                    self.answer(&event);
                    out.events.push(event);
                }
                Output::Close => {
                    out.closed = Some(conn.close_reason().expect("closed for a reason"));
                }
            }
        }
        panic!("poll_output never settled");
    }

    /// Answers what the application is asked, unless it is silent.
    fn answer(&mut self, event: &Event) {
        if self.silent_application {
            return;
        }
        let (aid, iid, value) = match event {
            Event::Read { aid, iid, .. } => match self.server.database().get(*aid, *iid) {
                Some(value) => (*aid, *iid, value.clone()),
                None => return,
            },
            Event::Write {
                aid, iid, value, ..
            } => {
                let answers = self
                    .server
                    .database()
                    .characteristic(*aid, *iid)
                    .is_some_and(|def| def.perms.contains(Perms::WRITE_RESPONSE));
                if !answers {
                    return;
                }
                (*aid, *iid, value.clone())
            }
            _ => return,
        };
        // A value the database refuses leaves the read to time out, which is fine.
        let _ = self.server.set_value(aid, iid, value);
    }

    /// Ends the connection as a peer that hangs up would, and checks that the server
    /// forgot it and still serves a fresh connection.
    pub(crate) fn finish(&mut self, mut conn: Connection<'_>, out: &Outcome) {
        if out.closed.is_none() {
            self.server.connection_lost(&mut conn);
            let mut after = Outcome::default();
            self.drain(&mut conn, &mut after);
            assert!(after.transmitted.is_empty(), "sent after the peer was lost");
        }
        drop(conn);
        assert_eq!(
            self.server.connection_count(),
            0,
            "a closed connection still counts"
        );
        let state = self.server.state();
        assert!(
            state.pairings.is_empty() || state.pairings.has_admin(),
            "paired without an admin"
        );

        let mut buffers = adapter_buffers();
        let mut fresh = self.accept(&mut buffers);
        let mut answer = Outcome::default();
        self.feed(
            &mut fresh,
            b"GET /accessories HTTP/1.1\r\nHost: x\r\n\r\n",
            &mut answer,
        );
        assert!(
            answer.transmitted.starts_with(b"HTTP/1.1 470 "),
            "a fresh connection was not asked to verify: {:?}",
            String::from_utf8_lossy(&answer.transmitted)
        );
        self.server.connection_lost(&mut fresh);
        assert_eq!(self.server.connection_count(), 0);
    }
}

/// The controller's end of an encrypted session.
pub(crate) struct Controller {
    session: Session,
}

impl Controller {
    /// Verifies `conn` as `identity`, which must be paired, with fixed session keys: the
    /// deterministic crypto configuration of the connection targets. Pair-verify itself
    /// is fuzzed by `pairing_handlers` and, over HTTP, by `connection_unverified`.
    pub(crate) fn verify(
        accessory: &mut Accessory,
        conn: &mut Connection<'_>,
        identity: &ControllerIdentity,
    ) -> Self {
        Self::enter(&accessory.server, conn, identity)
    }

    /// Verifies `conn` on `server` as [`Controller::verify`] does.
    pub(crate) fn enter(
        server: &Server<'_>,
        conn: &mut Connection<'_>,
        identity: &ControllerIdentity,
    ) -> Self {
        assert!(
            server
                .state()
                .pairings
                .get(identity.id.as_bytes())
                .is_some(),
            "the harness verifies only paired controllers"
        );
        let keys = SessionKeys {
            accessory_to_controller: Key::from_bytes([0xA5; 32]),
            controller_to_accessory: Key::from_bytes([0xC5; 32]),
        };
        server.enter_session(conn, keys.clone(), identity.id.clone());
        Self {
            session: Session::new(keys, Role::Controller),
        }
    }

    /// Seals `plaintext` in frames of `frame_len` bytes.
    pub(crate) fn seal(&mut self, plaintext: &[u8], frame_len: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        for frame in plaintext.chunks(frame_len) {
            let mut sealed = vec![0; FrameEncryptor::sealed_len(frame.len())];
            self.session
                .outbound
                .seal(frame, &mut sealed)
                .expect("room for the frame");
            wire.extend_from_slice(&sealed);
        }
        wire
    }

    /// Opens what the accessory sent; every byte must belong to a valid frame.
    pub(crate) fn open(&mut self, mut wire: &[u8]) -> Vec<u8> {
        let mut plaintext = Vec::new();
        while !wire.is_empty() {
            let opened = self
                .session
                .inbound
                .open(wire)
                .expect("the accessory's frames open");
            plaintext.extend_from_slice(opened.plaintext.unwrap_or_default());
            wire = &wire[opened.consumed..];
        }
        assert!(
            !self.session.inbound.has_partial_frame(),
            "the accessory sent part of a frame"
        );
        plaintext
    }
}

/// A POST with a pairing body.
pub(crate) fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/pairing+tlv8\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// One message the accessory sent: a response or an EVENT.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Splits the accessory's plaintext into whole responses and events, decoding chunked
/// bodies, and panics on anything a controller could not parse. Only the last message
/// may be cut short, and only if the connection closed.
pub(crate) fn messages(mut bytes: &[u8], closed: bool) -> Vec<Message> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match message(bytes) {
            Some((message, len)) => {
                out.push(message);
                bytes = &bytes[len..];
            }
            None if closed => return out,
            None => panic!(
                "the accessory sent a malformed or partial message: {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ),
        }
    }
    out
}

fn message(bytes: &[u8]) -> Option<(Message, usize)> {
    // httparse reads only HTTP/1.x; "EVENT/1.0" is one byte longer than "HTTP/1.1".
    let skip = if bytes.starts_with(b"EVENT/1.0 ") {
        1
    } else if bytes.starts_with(b"HTTP/1.1 ") {
        0
    } else {
        return None;
    };
    let mut head = b"HTTP/1.1".to_vec();
    head.extend_from_slice(bytes.get(8 + skip..)?);
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = response.parse(&head).ok()? else {
        return None;
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    let status = response.code?;
    assert!(
        matches!(
            status,
            200 | 204 | 207 | 400 | 404 | 405 | 422 | 470 | 500 | 503
        ),
        "a status the accessory never sends: {status}"
    );
    assert!(skip == 0 || status == 200, "an EVENT with status {status}");
    let json = header("content-type") == Some(&b"application/hap+json"[..]);
    let body_start = head_len + skip;
    if header("transfer-encoding") == Some(&b"chunked"[..]) {
        let mut body = Vec::new();
        let mut at = body_start;
        loop {
            let line_end = at + bytes.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            let size_text = core::str::from_utf8(&bytes[at..line_end]).ok()?;
            let size = usize::from_str_radix(size_text, 16).ok()?;
            let data = line_end + 2;
            let chunk = bytes.get(data..data + size)?;
            if bytes.get(data + size..data + size + 2)? != b"\r\n" {
                return None;
            }
            body.extend_from_slice(chunk);
            at = data + size + 2;
            if size == 0 {
                check_body(status, json, &body);
                return Some((Message { status, body }, at));
            }
        }
    }
    let length: usize = core::str::from_utf8(header("content-length")?)
        .ok()?
        .parse()
        .ok()?;
    let body = bytes.get(body_start..body_start + length)?.to_vec();
    check_body(status, json, &body);
    Some((Message { status, body }, body_start + length))
}

/// A 204 is empty, and a JSON body is valid JSON.
fn check_body(status: u16, json: bool, body: &[u8]) {
    assert!(status != 204 || body.is_empty(), "a 204 with a body");
    if json {
        if let Err(error) = serde_json::from_slice::<serde_json::Value>(body) {
            panic!(
                "the accessory sent invalid JSON ({error}): {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

/// One run of a connection target, fed in pieces whose sizes `split` chooses (or
/// whole). Returns what the accessory sent (decrypted, on a verified connection), its
/// events and how it closed.
fn run(flag_bits: u8, stream: &[u8], split: Option<u8>) -> (Vec<u8>, Outcome) {
    let verified = flag_bits & flags::VERIFIED != 0;
    let mut accessory = Accessory::new(flag_bits);
    let mut buffers = adapter_buffers();
    let mut conn = accessory.accept(&mut buffers);
    let mut controller = verified.then(|| {
        let who = if flag_bits & flags::AS_GUEST != 0 {
            guest()
        } else {
            owner()
        };
        Controller::verify(&mut accessory, &mut conn, who)
    });
    let wire = match &mut controller {
        Some(controller) => controller.seal(stream, frame_len(flag_bits)),
        None => stream.to_vec(),
    };
    let mut outcome = Outcome::default();
    match split {
        None => accessory.feed(&mut conn, &wire, &mut outcome),
        Some(seed) => {
            let mut sizes = FuzzRng::new(u64::from(seed));
            let most = [1, 7, 64, 1500][usize::from(seed & 3)];
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let len = (sizes.next_u32() as usize % most + 1).min(rest.len());
                accessory.feed(&mut conn, &rest[..len], &mut outcome);
                rest = &rest[len..];
            }
        }
    }
    accessory.settle(&mut conn, &mut outcome);
    // Only a connection closed for these reasons may stop in the middle of a message.
    let cut_short = matches!(
        outcome.closed,
        Some(CloseReason::Resources | CloseReason::PairingRemoved | CloseReason::Frame(_))
    );
    let sent = match &mut controller {
        Some(controller) => {
            let plaintext = controller.open(&outcome.transmitted);
            messages(&plaintext, cut_short);
            plaintext
        }
        None => {
            // Raw bytes may complete pair-verify (the seeds do); what follows is
            // encrypted with keys the harness does not have, so only the plaintext part
            // is parsed, and the raw bytes are what runs compare.
            if !conn.is_encrypted() {
                messages(&outcome.transmitted, cut_short);
            }
            outcome.transmitted.clone()
        }
    };
    accessory.finish(conn, &outcome);
    (sent, outcome)
}

/// The whole connection before pair-verify, on raw bytes. The first byte holds
/// `flags`; the rest is what the controller sends.
pub fn connection_unverified(data: &[u8]) {
    let mut input = Input::new(data);
    let flag_bits = input.byte() & !flags::VERIFIED;
    run(flag_bits, input.rest(), None);
}

/// The whole connection after pair-verify: the first byte holds `flags`, the rest is
/// the plaintext the verified controller sends, sealed in valid frames. Every byte the
/// accessory sends back must open and parse.
pub fn connection_verified(data: &[u8]) {
    let mut input = Input::new(data);
    let flag_bits = input.byte() | flags::VERIFIED;
    run(flag_bits, input.rest(), None);
}

/// The longest stream `connection_chunked` uses; the rest of its input is ignored.
pub(crate) const MAX_CHUNKED_STREAM: usize = 1280;

/// The same connection fed whole and in random pieces, which must not differ in
/// anything the accessory sends or reports. The first byte holds `flags` (with
/// `flags::VERIFIED` choosing between the two targets above), the second the split.
pub fn connection_chunked(data: &[u8]) {
    let mut input = Input::new(data);
    let flag_bits = input.byte();
    let split = input.byte();
    // Fed byte by byte, a stream costs a poll per byte and runs twice; this much holds a
    // pair-setup and pair-verify, or several requests and every boundary between them.
    let stream = input.take(MAX_CHUNKED_STREAM);
    let whole = run(flag_bits, stream, None);
    let pieces = run(flag_bits, stream, Some(split));
    assert_eq!(
        String::from_utf8_lossy(&whole.0),
        String::from_utf8_lossy(&pieces.0),
        "the accessory answered differently when the input came in pieces"
    );
    assert_eq!(whole.1.events, pieces.1.events);
    assert_eq!(whole.1.closed, pieces.1.closed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_ids_are_the_ones_seeds_use() {
        // `fixture` checks the ids as it builds; this shows they are the catalog's.
        let db = fixture();
        let kind = |(aid, iid): (u64, u64)| db.characteristic(aid, iid).unwrap().kind.name;
        assert_eq!(kind(ids::ON), c::ON.name);
        assert_eq!(kind(ids::SWITCH_EVENT), c::PROGRAMMABLE_SWITCH_EVENT.name);
        assert_eq!(kind(LAMP_ON), c::ON.name);
    }

    #[test]
    fn a_verified_controller_reads_through_the_harness() {
        let request = b"GET /characteristics?id=1.9 HTTP/1.1\r\nHost: x\r\n\r\n";
        let (plaintext, outcome) = run(flags::VERIFIED, request, None);
        let replies = messages(&plaintext, false);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].status, 200);
        assert!(replies[0]
            .body
            .starts_with(b"{\"characteristics\":[{\"aid\":1,\"iid\":9"));
        assert_eq!(outcome.closed, None);
    }
}
