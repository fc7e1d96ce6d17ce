//! Running cases, and what many of them share: a paired light, a verified controller, the
//! light's iids, and the check that a fresh controller is still served.

use std::any::Any;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use hap_core::controller::{request, Characteristics};
use hap_core::pairing::verify::{PairVerifyClient, VerifyClientOutput};
use hap_core::pairing::AccessoryPairing;
use hap_core::tlv::Tlv;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

use crate::accessory::{Accessory, Target, SETUP_CODE};
use crate::controller::{Controller, Message};

/// What the command line chose.
pub(crate) struct Settings {
    pub(crate) targets: Vec<Target>,
    /// Only cases whose name contains this.
    pub(crate) only: String,
    pub(crate) soak: Duration,
    pub(crate) crash_iterations: usize,
    /// Where data directories go; removed at the end.
    pub(crate) work: PathBuf,
}

/// One case: a name (`group/what`) and what it does, returning what it saw. It fails by
/// panicking, with a message that says what it saw instead.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) run: fn(&Context) -> String,
}

/// What a case runs against.
pub(crate) struct Context {
    pub(crate) target: Target,
    /// A directory of the case's own, empty at the start.
    dir: PathBuf,
    pub(crate) soak: Duration,
    pub(crate) crash_iterations: usize,
}

impl Context {
    pub(crate) fn new(settings: &Settings, target: &Target, case: &str) -> Self {
        let dir = settings
            .work
            .join(format!("{}-{}", target.name, case.replace('/', "-")));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a work directory");
        Self {
            target: target.clone(),
            dir,
            soak: settings.soak,
            crash_iterations: settings.crash_iterations,
        }
    }

    /// A new, empty data directory.
    pub(crate) fn data(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        let _ = std::fs::remove_dir_all(&path);
        path
    }

    /// A fresh, unpaired light.
    pub(crate) fn unpaired(&self) -> Accessory {
        self.unpaired_with(&[])
    }

    /// A fresh, unpaired light started with `extra` flags.
    pub(crate) fn unpaired_with(&self, extra: &[&str]) -> Accessory {
        Accessory::start(&self.target, &self.data("light"), extra)
    }

    /// A fresh light, paired with the admin controller (seed [`ADMIN`]).
    pub(crate) fn paired(&self) -> Paired {
        self.paired_with(&[])
    }

    pub(crate) fn paired_with(&self, extra: &[&str]) -> Paired {
        let accessory = self.unpaired_with(extra);
        let mut admin = Controller::connect(accessory.address, ADMIN);
        let pairing = admin.pair_setup(SETUP_CODE);
        let ids = Ids::of(&accessory.address, &pairing);
        Paired {
            accessory,
            pairing,
            ids,
        }
    }

    pub(crate) fn clean_up(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The content type of pairing messages.
pub(crate) const TLV: &str = "application/pairing+tlv8";

/// The admin controller's seed: its pairing id is `controller-1`.
pub(crate) const ADMIN: u8 = 1;

/// A light paired with the admin.
pub(crate) struct Paired {
    pub(crate) accessory: Accessory,
    /// What the admin keeps.
    pub(crate) pairing: AccessoryPairing,
    pub(crate) ids: Ids,
}

impl Paired {
    /// A new connection of controller `seed` (the admin's, or one added), verified.
    pub(crate) fn verified(&self, seed: u8) -> Controller {
        let mut controller = Controller::connect(self.accessory.address, seed);
        controller.pair_verify(&self.pairing);
        controller
    }

    /// A fresh admin connection verifies, reads On and writes Brightness.
    pub(crate) fn check_served(&self) -> &'static str {
        check_paired_served(self.accessory.address, &self.pairing, &self.ids);
        "a fresh controller then verified, read and wrote"
    }

    /// Restarts the light on its data.
    pub(crate) fn restart(self) -> Self {
        Self {
            accessory: self.accessory.restart(),
            ..self
        }
    }
}

/// The light's characteristics: (aid, iid).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ids {
    pub(crate) identify: (u64, u64),
    pub(crate) name: (u64, u64),
    pub(crate) on: (u64, u64),
    pub(crate) brightness: (u64, u64),
}

impl Ids {
    /// Reads `/accessories` as the admin.
    pub(crate) fn of(address: &SocketAddr, pairing: &AccessoryPairing) -> Self {
        let mut admin = Controller::connect(*address, ADMIN);
        admin.pair_verify(pairing);
        let reply = admin.get("/accessories");
        assert_eq!(reply.status, 200, "/accessories: {}", reply.text());
        let json: Value = serde_json::from_slice(&reply.body).expect("/accessories JSON");
        let find = |kind: &str| -> (u64, u64) {
            for accessory in json["accessories"].as_array().unwrap() {
                for service in accessory["services"].as_array().unwrap() {
                    for c in service["characteristics"].as_array().unwrap() {
                        if c["type"] == kind {
                            return (
                                accessory["aid"].as_u64().unwrap(),
                                c["iid"].as_u64().unwrap(),
                            );
                        }
                    }
                }
            }
            panic!("no characteristic of type {kind} in /accessories");
        };
        Self {
            identify: find("14"),
            name: find("23"),
            on: find("25"),
            brightness: find("8"),
        }
    }
}

/// A fresh connection of the admin verifies, reads On, and writes and reads back
/// Brightness.
pub(crate) fn check_paired_served(address: SocketAddr, pairing: &AccessoryPairing, ids: &Ids) {
    let mut admin = Controller::connect(address, ADMIN);
    admin.pair_verify(pairing);
    let (aid, on) = ids.on;
    let reply = admin.get(&format!("/characteristics?id={aid}.{on}"));
    assert_eq!(reply.status, 200, "the check's read: {}", reply.text());
    let (aid, brightness) = ids.brightness;
    let reply = admin.put(
        "/characteristics",
        &format!(r#"{{"characteristics":[{{"aid":{aid},"iid":{brightness},"value":37}}]}}"#),
    );
    assert_eq!(reply.status, 204, "the check's write: {}", reply.text());
    let reply = admin.get(&format!("/characteristics?id={aid}.{brightness}"));
    let json: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        json["characteristics"][0]["value"], 37,
        "the check's read-back"
    );
}

/// A fresh controller pairs with an unpaired light, then verifies, reads and writes.
pub(crate) fn check_unpaired_served(accessory: &Accessory) -> &'static str {
    let mut controller = Controller::connect(accessory.address, 99);
    let pairing = controller.pair_setup(SETUP_CODE);
    let mut verified = Controller::connect(accessory.address, 99);
    verified.pair_verify(&pairing);
    let reply = verified.get("/accessories");
    assert_eq!(reply.status, 200, "the check's /accessories");
    "a fresh controller then paired, verified and read"
}

/// The state and error items of a pairing response.
pub(crate) fn state_and_error(message: &Message) -> (Option<u8>, Option<u8>) {
    let tlv = Tlv::parse(&message.body)
        .unwrap_or_else(|e| panic!("a malformed TLV response ({e:?}): {:02x?}", message.body));
    (tlv.get_u8(0x06), tlv.get_u8(0x07))
}

/// A `/pairings` add of a controller's id and key, admin or not.
pub(crate) fn add_body(controller_id: &[u8], public_key: &[u8; 32], admin: bool) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let len = request::add_pairing_body(&mut buf, controller_id, public_key, admin)
        .expect("a pairings request fits 512 bytes");
    buf[..len].to_vec()
}

/// A `/pairings` remove of a controller's id.
pub(crate) fn remove_body(controller_id: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let len = request::remove_pairing_body(&mut buf, controller_id)
        .expect("a pairings request fits 512 bytes");
    buf[..len].to_vec()
}

/// Runs pair-verify and returns the error item of M4.
pub(crate) fn verify_m4_error(
    mut controller: Controller,
    pairing: &AccessoryPairing,
) -> Option<u8> {
    let mut out = [0u8; 512];
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (mut client, len) = PairVerifyClient::start(&mut rng, &mut out).unwrap();
    let identity = controller.identity().clone();
    let reply = controller.request("POST", "/pair-verify", TLV, &out[..len]);
    assert_eq!(state_and_error(&reply), (Some(2), None), "M2");
    let len = match client.handle_response(&reply.body, &identity, pairing, &mut out) {
        Ok(VerifyClientOutput::Send(len)) => len,
        other => panic!("M2 handled as {other:?}"),
    };
    let reply = controller.request("POST", "/pair-verify", TLV, &out[..len]);
    let (state, error) = state_and_error(&reply);
    assert_eq!(state, Some(4), "M4");
    error
}

/// The JSON body of `message`.
pub(crate) fn json(message: &Message) -> Value {
    serde_json::from_slice(&message.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", message.text()))
}

/// The status of each item of a 207 body, in order.
pub(crate) fn item_statuses(message: &Message) -> Vec<i64> {
    assert_eq!(
        message.status,
        207,
        "a multi-status answer: {}",
        message.text()
    );
    Characteristics::parse(&message.body)
        .unwrap_or_else(|e| panic!("not a characteristics body ({e}): {}", message.text()))
        .map(|item| i64::from(item.status.expect("a status").code()))
        .collect()
}

/// Joins a thread of a case, passing its panic on as the case's.
pub(crate) fn join<T>(handle: JoinHandle<T>) -> T {
    handle
        .join()
        .unwrap_or_else(|payload| panic::resume_unwind(payload))
}

// ---------------------------------------------------------------------------------------
// Running a case.

/// The first panic message of each running case, from any of its threads. A case run on
/// a thread named by [`case_thread_name`] keeps its own; panics on other threads (the
/// case running on the main thread, and threads a case spawns) share the unnamed slot.
/// A waiting case's own threads still pass their message on through [`join`].
static PANIC_MESSAGES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// The name of the thread that runs `case` against `target` alongside other cases.
pub(crate) fn case_thread_name(target: &str, case: &str) -> String {
    format!("case {target} {case}")
}

/// The panic slot of the current thread: its name if it runs a case of its own.
fn panic_slot() -> String {
    std::thread::current()
        .name()
        .filter(|name| name.starts_with("case "))
        .unwrap_or_default()
        .to_owned()
}

/// Takes the first panic message kept for `slot`.
fn take_panic_message(slot: &str) -> Option<String> {
    let mut messages = PANIC_MESSAGES.lock().unwrap_or_else(|e| e.into_inner());
    let index = messages.iter().position(|(s, _)| s == slot)?;
    Some(messages.swap_remove(index).1)
}

/// Keeps panic messages for the case's FAIL line instead of printing them.
pub(crate) fn capture_panics() {
    panic::set_hook(Box::new(|info| {
        let message = match info.payload().downcast_ref::<&str>() {
            Some(text) => (*text).to_owned(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "a panic".into()),
        };
        let at = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        let slot = panic_slot();
        let mut messages = PANIC_MESSAGES.lock().unwrap_or_else(|e| e.into_inner());
        if !messages.iter().any(|(s, _)| *s == slot) {
            messages.push((slot, message + &at));
        }
    }));
}

/// Runs `case`, returning what it saw, or why it failed.
pub(crate) fn run(case: &Case, context: &Context) -> Result<String, String> {
    let slot = panic_slot();
    let _ = take_panic_message(&slot);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (case.run)(context)));
    let first = take_panic_message(&slot);
    outcome.map_err(|payload: Box<dyn Any + Send>| {
        first
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    })
}
