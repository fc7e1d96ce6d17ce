//! A HomeKit controller over real TCP, for adapter tests: pair-setup, pair-verify, and
//! HTTP requests, encrypted once verified. Built on the core's controller-side
//! exchanges; it trusts nothing the accessory sends and panics with context on anything
//! unexpected, which is what a test wants.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hap_core::crypto::Ed25519KeyPair;
use hap_core::pairing::setup::{PairSetupClient, SetupClientOutput, MAX_SETUP_MESSAGE_LEN};
use hap_core::pairing::verify::{PairVerifyClient, VerifyClientOutput};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, PairingId};
use hap_core::session::{FrameEncryptor, Role, Session};
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
        let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
        let (mut client, len) = PairSetupClient::start(code.parse().unwrap(), 0, &mut out).unwrap();
        let mut request = out[..len].to_vec();
        loop {
            let reply = self.request("POST", "/pair-setup", "application/pairing+tlv8", &request);
            assert_eq!(reply.status, 200, "pair-setup: {}", reply.text());
            match client
                .handle_response(&reply.body, &self.identity, &mut self.rng, &mut out)
                .unwrap_or_else(|e| panic!("pair-setup refused: {e:?}"))
            {
                SetupClientOutput::Send(len) => request = out[..len].to_vec(),
                SetupClientOutput::Paired(pairing) => return pairing,
                SetupClientOutput::Transient(_) => panic!("not a transient setup"),
            }
        }
    }

    pub fn pair_verify(&mut self, pairing: &AccessoryPairing) {
        let mut out = [0u8; 512];
        let (mut client, len) = PairVerifyClient::start(&mut self.rng, &mut out).unwrap();
        let mut request = out[..len].to_vec();
        loop {
            let reply = self.request("POST", "/pair-verify", "application/pairing+tlv8", &request);
            assert_eq!(reply.status, 200, "pair-verify: {}", reply.text());
            match client
                .handle_response(&reply.body, &self.identity, pairing, &mut out)
                .unwrap_or_else(|e| panic!("pair-verify refused: {e:?}"))
            {
                VerifyClientOutput::Send(len) => request = out[..len].to_vec(),
                VerifyClientOutput::Verified(keys) => {
                    self.session = Some(Session::new(keys, Role::Controller));
                    return;
                }
            }
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
    pub fn exchange(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (Message, Vec<Message>) {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: accessory\r\n");
        if !content_type.is_empty() {
            request += &format!("Content-Type: {content_type}\r\n");
        }
        if method != "GET" {
            request += &format!("Content-Length: {}\r\n", body.len());
        }
        request += "\r\n";
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.send(&bytes);
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

    /// Seals `plaintext` into frames with the session's next nonces, without sending.
    pub fn seal(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let session = self.session.as_mut().expect("a verified session");
        let mut wire = Vec::new();
        let mut rest = plaintext;
        while !rest.is_empty() {
            let mut frame = vec![0; FrameEncryptor::sealed_len(rest.len().min(1024))];
            let sealed = session.outbound.seal(rest, &mut frame).unwrap();
            wire.extend_from_slice(&frame[..sealed.written]);
            rest = &rest[sealed.consumed..];
        }
        wire
    }

    /// Writes bytes as they are, encrypted or not; the accessory may have closed.
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
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
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
                match &mut self.session {
                    None => self.received.extend_from_slice(&buf[..n]),
                    Some(session) => {
                        self.sealed.extend_from_slice(&buf[..n]);
                        loop {
                            let opened = session.inbound.open(&self.sealed).expect("a valid frame");
                            if let Some(plain) = opened.plaintext {
                                self.received.extend_from_slice(plain);
                            }
                            self.sealed.drain(..opened.consumed);
                            if opened.consumed == 0 || self.sealed.is_empty() {
                                break;
                            }
                        }
                    }
                }
                true
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                true
            }
            Err(_) => false,
        }
    }

    /// One complete message from the received bytes, if there is one.
    fn parse(&mut self) -> Option<Message> {
        let head_end = self.received.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.received[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?;
        let event = status_line.starts_with("EVENT/1.0");
        let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse::<usize>().ok();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let rest = &self.received[head_end..];
        let (body, used) = if chunked {
            let mut body = Vec::new();
            let mut at = 0;
            loop {
                let line_end = rest[at..].windows(2).position(|w| w == b"\r\n")? + at;
                let size = usize::from_str_radix(
                    std::str::from_utf8(&rest[at..line_end]).ok()?.trim(),
                    16,
                )
                .ok()?;
                let data = line_end + 2;
                if rest.len() < data + size + 2 {
                    return None;
                }
                body.extend_from_slice(&rest[data..data + size]);
                at = data + size + 2;
                if size == 0 {
                    break (body, at);
                }
            }
        } else {
            let length = length.unwrap_or(0);
            if rest.len() < length {
                return None;
            }
            (rest[..length].to_vec(), length)
        };
        self.received.drain(..head_end + used);
        Some(Message {
            status,
            event,
            body,
        })
    }
}
