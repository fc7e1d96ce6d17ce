//! A HomeKit controller over real TCP, for adapter tests: a blocking driver of the core's
//! controller (`hap_core::controller`). Pair-setup and pair-verify run in its
//! `Connection`; the verified session is then taken over, so that tests can also send
//! what a controller would not (raw bytes, tampered or split frames, many requests at
//! once). Requests are written and answers parsed by the core. It panics with context on
//! anything unexpected, which is what a test wants.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hap_core::controller::{request, response, Connection, Event, Output, OwnedBuffers};
use hap_core::crypto::Ed25519KeyPair;
use hap_core::http::Status;
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, PairingId};
use hap_core::session::{FrameEncryptor, Session};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// One HTTP message from the accessory: a response, or an `EVENT/1.0`.
#[derive(Debug)]
pub struct Message {
    pub status: u16,
    pub event: bool,
    pub body: Vec<u8>,
}

impl Message {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Controller {
    stream: TcpStream,
    identity: ControllerIdentity,
    rng: ChaCha20Rng,
    session: Option<Session>,
    /// Plaintext received and not yet parsed.
    received: Vec<u8>,
    /// Ciphertext received and not yet opened.
    sealed: Vec<u8>,
}

impl Controller {
    pub fn connect(address: SocketAddr, seed: u8) -> Self {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {address}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Small writes go out as they are, so byte-by-byte sends stay byte by byte.
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            identity: Self::identity_for(seed),
            rng: ChaCha20Rng::seed_from_u64(u64::from(seed)),
            session: None,
            received: Vec::new(),
            sealed: Vec::new(),
        }
    }

    /// The identity of controller `seed`: pairing id `controller-{seed}`, and a key
    /// pair from the seed.
    pub fn identity_for(seed: u8) -> ControllerIdentity {
        ControllerIdentity {
            id: PairingId::new(format!("controller-{seed}").as_bytes()).unwrap(),
            keys: Ed25519KeyPair::from_seed(&[seed; 32]),
        }
    }

    /// This connection as another controller identity.
    pub fn with_identity(mut self, identity: ControllerIdentity) -> Self {
        self.identity = identity;
        self
    }

    /// The same controller identity on a new connection.
    pub fn reconnect(&self, address: SocketAddr, seed: u8) -> Self {
        Self::connect(address, seed)
    }

    pub fn pair_setup(&mut self, code: &str) -> AccessoryPairing {
        let code = code.parse().unwrap();
        let identity = self.identity.clone();
        self.pairing_exchange(|conn, now, _| conn.pair_setup(now, code, &identity))
            .0
            .expect("a pairing")
    }

    pub fn pair_verify(&mut self, pairing: &AccessoryPairing) {
        let identity = self.identity.clone();
        let (_, session) =
            self.pairing_exchange(|conn, now, rng| conn.pair_verify(now, &identity, pairing, rng));
        self.session = Some(session.expect("a session"));
    }

    /// Runs a pairing exchange, started by `start`, in a core controller connection
    /// over this socket, until it ends: the pairing for pair-setup, the session for
    /// pair-verify.
    fn pairing_exchange(
        &mut self,
        start: impl FnOnce(
            &mut Connection<'_>,
            hap_core::time::Instant,
            &mut ChaCha20Rng,
        ) -> Result<(), hap_core::controller::RequestError>,
    ) -> (Option<AccessoryPairing>, Option<Session>) {
        assert!(self.session.is_none(), "pairing over a verified session");
        let mut buffers = OwnedBuffers::new(0, 0);
        let host = self
            .stream
            .peer_addr()
            .expect("a connected socket")
            .to_string();
        let mut conn = Connection::new(buffers.borrow(), &host).unwrap();
        let began = Instant::now();
        let now = || hap_core::time::Instant::from_millis(began.elapsed().as_millis() as u64);
        start(&mut conn, now(), &mut self.rng).expect("a pairing exchange starts");
        // Bytes that arrived before, unparsed, belong to this exchange.
        let mut pending = std::mem::take(&mut self.received);
        let mut buf = [0u8; 4096];
        loop {
            while let Some(output) = conn.poll_output(&mut self.rng) {
                match output {
                    Output::Transmit(bytes) => self.stream.write_all(bytes).expect("send"),
                    Output::Event(Event::Paired(pairing)) => return (Some(pairing), None),
                    Output::Event(Event::Verified) => {
                        return (None, Some(conn.into_session().expect("verified")))
                    }
                    Output::Event(Event::PairingFailed { exchange, failure }) => {
                        panic!("{exchange:?} refused: {failure}")
                    }
                    Output::Event(_) => panic!("an answer outside the pairing exchange"),
                    Output::Close(reason) => panic!("closed during pairing: {reason}"),
                    _ => panic!("an output newer than this driver"),
                }
            }
            if pending.is_empty() {
                match self.stream.read(&mut buf) {
                    Ok(0) => conn.connection_lost(),
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(e) if is_timeout(&e) => conn.handle_timeout(now()),
                    Err(_) => conn.connection_lost(),
                }
            }
            let taken = conn.handle_input(now(), &pending);
            pending.drain(..taken);
        }
    }

    pub fn get(&mut self, path: &str) -> Message {
        self.request("GET", path, "", b"")
    }

    pub fn put(&mut self, path: &str, json: &str) -> Message {
        self.request("PUT", path, "application/hap+json", json.as_bytes())
    }

    /// Sends a request and returns its response, skipping no events: an event that
    /// arrives first is a test failure.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Message {
        let (message, events) = self.exchange(method, path, content_type, body);
        assert!(
            events.is_empty(),
            "an event arrived before the response to {method} {path}"
        );
        message
    }

    /// Sends a request and returns its response, and the events that arrived before it.
    /// An empty `content_type` sends none.
    pub fn exchange(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (Message, Vec<Message>) {
        let content_type = Some(content_type).filter(|given| !given.is_empty());
        let mut bytes = vec![0; method.len() + path.len() + 128 + body.len()];
        let len = request::custom(&mut bytes, method, path, content_type, body).unwrap();
        self.send(&bytes[..len]);
        let mut events = Vec::new();
        loop {
            let message = self
                .next_message(Duration::from_secs(15))
                .unwrap_or_else(|| panic!("no response to {method} {path}"));
            if !message.event {
                return (message, events);
            }
            events.push(message);
        }
    }

    /// Sends raw bytes, encrypted if verified.
    pub fn send(&mut self, plaintext: &[u8]) {
        let wire = match self.session {
            None => plaintext.to_vec(),
            Some(_) => self.seal(plaintext),
        };
        self.stream.write_all(&wire).expect("send");
    }

    /// Raw path: seals `plaintext` into frames with the session's next nonces, without
    /// sending, so that a test can tamper with them or send them in pieces.
    pub fn seal(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let session = self.session.as_mut().expect("a verified session");
        let mut wire = vec![0; FrameEncryptor::sealed_len(plaintext.len())];
        let sealed = session.outbound.seal(plaintext, &mut wire).unwrap();
        assert_eq!(sealed.consumed, plaintext.len(), "all of it sealed");
        wire
    }

    /// Raw path: writes bytes as they are, encrypted or not; the accessory may have
    /// closed.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Another handle to the socket, to shut it down from another thread.
    pub fn socket(&self) -> TcpStream {
        self.stream.try_clone().expect("a socket handle")
    }

    /// Ends the sending half, as a peer that stops mid-request.
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// The controller's identity.
    pub fn identity(&self) -> &ControllerIdentity {
        &self.identity
    }

    /// The next message within `limit`, or `None` if none came.
    pub fn next_message(&mut self, limit: Duration) -> Option<Message> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(message) = self.parse() {
                return Some(message);
            }
            if Instant::now() >= deadline {
                return None;
            }
            if !self.receive() {
                return None;
            }
        }
    }

    /// Whether the accessory closed the connection within `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        self.bytes_before_close(limit).is_some()
    }

    /// Whether the accessory closed the connection within `limit` without sending a
    /// single byte first.
    pub fn ends_without_answer(&mut self, limit: Duration) -> bool {
        self.bytes_before_close(limit) == Some(0)
            && self.received.is_empty()
            && self.sealed.is_empty()
    }

    /// Reads until the accessory closes the connection, and returns how many bytes came
    /// first; `None` if it is still open after `limit`.
    fn bytes_before_close(&mut self, limit: Duration) -> Option<usize> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 1024];
        let mut seen = 0;
        while Instant::now() < deadline {
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(seen),
                Ok(n) => seen += n,
                Err(e) if is_timeout(&e) => {}
                Err(_) => return Some(seen),
            }
        }
        None
    }

    /// Reads once; false when the connection ended.
    fn receive(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                let Some(session) = &mut self.session else {
                    self.received.extend_from_slice(&buf[..n]);
                    return true;
                };
                self.sealed.extend_from_slice(&buf[..n]);
                loop {
                    let opened = session.inbound.open(&self.sealed).expect("a valid frame");
                    if let Some(plain) = opened.plaintext {
                        self.received.extend_from_slice(plain);
                    }
                    self.sealed.drain(..opened.consumed);
                    if opened.consumed == 0 || self.sealed.is_empty() {
                        return true;
                    }
                }
            }
            Err(e) => is_timeout(&e),
        }
    }

    /// One complete message from the received bytes, if there is one.
    fn parse(&mut self) -> Option<Message> {
        let message = match response::parse_message(&mut self.received) {
            Ok(Status::Complete(message)) => message,
            Ok(Status::Partial) => return None,
            Err(error) => panic!(
                "{error}: {:?}",
                String::from_utf8_lossy(&self.received[..self.received.len().min(200)])
            ),
        };
        let body = self.received[message.body_start..message.body_end].to_vec();
        self.received.drain(..message.len);
        Some(Message {
            status: message.status,
            event: message.event,
            body,
        })
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
