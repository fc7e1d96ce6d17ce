//! What an accessory advertises over multicast DNS, and the trait a responder implements.
//!
//! Controllers find an IP accessory by browsing DNS-SD for [`SERVICE_TYPE`]. The TXT
//! record tells them whether it is paired (`sf`), which configuration they cached (`c#`)
//! and how to match it to a setup code (`sh`). The core only describes the record; a
//! [`Responder`] publishes it. Publish again whenever [`Advertisement::txt`] changes: when
//! the accessory is paired or unpaired ([`Event::PairingsChanged`]) and when the
//! configuration number changes; [`Advertiser`] does this for every adapter. Send the
//! bytes of the exchange that paired the accessory before announcing its new `sf`: iOS
//! abandons a pair-setup whose `sf` clears before M6 arrives (HAP-Java #95, HAP-python
//! #246).
//!
//! [`wire`] parses and writes the DNS messages a responder exchanges; [`browser`] finds
//! accessories, as a controller does.

use core::fmt::Write as _;
use core::time::Duration;

use crate::catalog::Category;
use crate::server::Event;
use crate::setup::{setup_hash_base64, DeviceId, SetupId};
use crate::time::Instant;

pub mod browser;
pub mod responder;
pub mod wire;

pub use responder::{
    host_label_checked, next_host_name, next_instance_name, Destination, Family, InterfaceId,
    MdnsError, MdnsEvent, MdnsResponder, NameKind, Transmit,
};

/// The DNS-SD service type of HAP over IP.
pub const SERVICE_TYPE: &str = "_hap._tcp.local";

/// The protocol version advertised as `pv`.
pub const PROTOCOL_VERSION: &str = "1.1";

/// The longest TXT value, in bytes; a longer model name is cut at a character boundary.
pub const MAX_TXT_VALUE_LEN: usize = 64;

/// The number of keys in the TXT record.
pub const TXT_KEYS: usize = 9;

/// One `key=value` pair of the TXT record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxtEntry {
    /// The key, such as `c#`.
    pub key: &'static str,
    /// The value, as text.
    pub value: heapless::String<MAX_TXT_VALUE_LEN>,
}

/// Everything a responder needs to advertise one accessory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advertisement<'a> {
    /// The instance name, usually the accessory's name.
    pub name: &'a str,
    /// The TCP port the accessory listens on.
    pub port: u16,
    /// The model, advertised as `md`.
    pub model: &'a str,
    /// The pairing identifier, advertised as `id`.
    pub device_id: DeviceId,
    /// The configuration number, advertised as `c#`.
    pub config_number: u16,
    /// The accessory category, advertised as `ci` by its number.
    pub category: Category,
    /// Whether a controller is paired; `sf` is 1 while unpaired.
    pub paired: bool,
    /// The setup id, from which `sh` is derived; without it `sh` is left out.
    pub setup_id: Option<SetupId>,
}

impl Advertisement<'_> {
    /// The TXT record: `c#`, `ff`, `id`, `md`, `pv`, `s#`, `sf`, `ci`, and `sh` when a
    /// setup id is known.
    pub fn txt(&self) -> heapless::Vec<TxtEntry, TXT_KEYS> {
        let mut entries = heapless::Vec::new();
        let mut add = |key: &'static str, value: core::fmt::Arguments<'_>| {
            let mut text = heapless::String::new();
            // Every value but the model is a few characters; the model is cut below.
            let _ = text.write_fmt(value);
            let _ = entries.push(TxtEntry { key, value: text });
        };
        add("c#", format_args!("{}", self.config_number));
        // Feature flags: 0, no hardware authentication.
        add("ff", format_args!("0"));
        add("id", format_args!("{}", self.device_id));
        add("md", format_args!("{}", truncate(self.model)));
        add("pv", format_args!("{PROTOCOL_VERSION}"));
        // The state number is 1 and never changes over IP.
        add("s#", format_args!("1"));
        add("sf", format_args!("{}", u8::from(!self.paired)));
        add("ci", format_args!("{}", self.category.number()));
        if let Some(setup_id) = &self.setup_id {
            add(
                "sh",
                format_args!("{}", setup_hash_base64(setup_id, &self.device_id)),
            );
        }
        entries
    }
}

/// `text` cut to at most [`MAX_TXT_VALUE_LEN`] bytes, at a character boundary.
fn truncate(text: &str) -> &str {
    let mut end = text.len().min(MAX_TXT_VALUE_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Publishes an [`Advertisement`] over multicast DNS.
///
/// The adapters call it; an embedded application can plug in the responder of its
/// network stack.
pub trait Responder {
    /// Why publishing failed.
    type Error;

    /// Publishes `advertisement`, or replaces the one published, and announces it.
    fn announce(&mut self, advertisement: &Advertisement<'_>) -> Result<(), Self::Error>;

    /// Withdraws the advertisement with a goodbye (records with a TTL of zero).
    fn goodbye(&mut self) -> Result<(), Self::Error>;
}

/// A responder that publishes nothing, for when mDNS is turned off.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResponder;

impl Responder for NoResponder {
    type Error = core::convert::Infallible;

    fn announce(&mut self, _: &Advertisement<'_>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn goodbye(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// How long [`Advertiser`] waits before announcing again after the responder failed.
pub const ANNOUNCE_RETRY: Duration = Duration::from_secs(1);

/// Keeps an accessory's advertisement current through a [`Responder`]: the one
/// re-announce path every adapter uses.
///
/// It announces at the first [`Advertiser::handle_timeout`], again whenever a server
/// event says the paired state changed ([`Advertiser::handle_event`]), and again
/// [`ANNOUNCE_RETRY`] after a failure. The caller builds the [`Advertisement`] when it
/// is due (from its name, model, category, port, configuration number, setup id and
/// the server's state), so that the advertiser borrows nothing.
///
/// ```
/// use hap_core::mdns::{Advertisement, Advertiser, NoResponder};
/// use hap_core::server::Event;
/// use hap_core::time::Instant;
///
/// let mut advertiser = Advertiser::new(NoResponder);
/// # let advertisement = Advertisement {
/// #     name: "Light", port: 51826, model: "L1", device_id: "12:34:56:78:9A:BC".parse().unwrap(),
/// #     config_number: 1, category: hap_core::catalog::Category::LIGHTBULB, paired: false, setup_id: None,
/// # };
/// let now = Instant::from_millis(0);
/// assert_eq!(advertiser.poll_timeout(), Some(now), "announce at start");
/// assert_eq!(advertiser.handle_timeout(now, &advertisement), Ok(true));
/// assert_eq!(advertiser.poll_timeout(), None);
/// // For every event from `Server::poll_event`:
/// advertiser.handle_event(&Event::PairingsChanged { paired: true }, now);
/// assert_eq!(advertiser.poll_timeout(), Some(now), "sf changed: announce again");
/// ```
#[derive(Debug)]
pub struct Advertiser<R> {
    responder: R,
    /// When to announce (again), if there is something new to announce.
    due: Option<Instant>,
    /// Whether [`Advertiser::goodbye`] withdrew the advertisement for good.
    stopped: bool,
}

impl<R: Responder> Advertiser<R> {
    /// An advertiser that announces through `responder` at its first
    /// [`Advertiser::handle_timeout`].
    pub fn new(responder: R) -> Self {
        Self {
            responder,
            due: Some(Instant::from_millis(0)),
            stopped: false,
        }
    }

    /// Looks at an event from [`Server::poll_event`](crate::server::Server::poll_event):
    /// a change of the paired state (`sf`) makes an announcement due at `now`. Ignored
    /// after [`Advertiser::goodbye`].
    pub fn handle_event(&mut self, event: &Event, now: Instant) {
        if let Event::PairingsChanged { .. } = event {
            self.request(now);
        }
    }

    /// Makes an announcement due at `now`, for a change the server does not report,
    /// such as a new configuration number. Ignored after [`Advertiser::goodbye`].
    pub fn request(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        self.due = Some(self.due.map_or(now, |due| due.min(now)));
    }

    /// When [`Advertiser::handle_timeout`] next has work, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    /// Announces `advertisement` if an announcement is due at `now`; returns whether it
    /// announced. On failure the error is returned (to log) and the announcement is due
    /// again [`ANNOUNCE_RETRY`] later.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        advertisement: &Advertisement<'_>,
    ) -> Result<bool, R::Error> {
        if self.due.is_none_or(|due| due > now) {
            return Ok(false);
        }
        match self.responder.announce(advertisement) {
            Ok(()) => {
                self.due = None;
                Ok(true)
            }
            Err(error) => {
                self.due = Some(now + ANNOUNCE_RETRY);
                Err(error)
            }
        }
    }

    /// Withdraws the advertisement, and announces nothing more: later events and
    /// requests are ignored, so a host may go on passing them while it shuts down.
    pub fn goodbye(&mut self) -> Result<(), R::Error> {
        self.due = None;
        self.stopped = true;
        self.responder.goodbye()
    }

    /// The responder, for example to let it answer queries.
    pub fn responder_mut(&mut self) -> &mut R {
        &mut self.responder
    }

    /// The responder, to look at.
    pub fn responder(&self) -> &R {
        &self.responder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advertisement(paired: bool) -> Advertisement<'static> {
        Advertisement {
            name: "Light",
            port: 51826,
            model: "VirtualLight",
            device_id: "12:34:56:78:9A:BC".parse().unwrap(),
            config_number: 3,
            category: Category::LIGHTBULB,
            paired,
            setup_id: Some("7OSX".parse().unwrap()),
        }
    }

    fn render(ad: &Advertisement<'_>) -> std::vec::Vec<std::string::String> {
        use std::string::ToString;
        ad.txt()
            .iter()
            .map(|e| std::format!("{}={}", e.key, e.value))
            .chain(core::iter::once(ad.name.to_string()))
            .collect()
    }

    #[test]
    fn txt_record_has_every_key() {
        let unpaired = render(&advertisement(false));
        assert_eq!(
            unpaired[..8],
            [
                "c#=3",
                "ff=0",
                "id=12:34:56:78:9A:BC",
                "md=VirtualLight",
                "pv=1.1",
                "s#=1",
                "sf=1",
                "ci=5"
            ]
        );
        assert!(unpaired[8].starts_with("sh="));
        assert_eq!(unpaired[8].len(), 3 + 8);
        assert!(render(&advertisement(true)).contains(&"sf=0".into()));
    }

    #[test]
    fn setup_hash_matches_the_setup_module_and_is_optional() {
        let ad = advertisement(false);
        let sh = ad.txt().into_iter().find(|e| e.key == "sh").unwrap();
        let expected = setup_hash_base64(&ad.setup_id.unwrap(), &ad.device_id);
        assert_eq!(sh.value.as_str(), expected.as_str());
        let without = Advertisement {
            setup_id: None,
            ..ad
        };
        assert!(without.txt().iter().all(|e| e.key != "sh"));
    }

    #[test]
    fn long_model_is_cut_at_a_character_boundary() {
        let model = "é".repeat(40); // 80 bytes
        let ad = Advertisement {
            model: &model,
            ..advertisement(false)
        };
        let md = ad.txt().into_iter().find(|e| e.key == "md").unwrap();
        assert_eq!(md.value.len(), 64);
        assert!(model.starts_with(md.value.as_str()));
    }

    /// Counts announcements, and fails while `failing`.
    #[derive(Default)]
    struct Counting {
        announced: usize,
        goodbyes: usize,
        failing: bool,
    }

    impl Responder for Counting {
        type Error = ();

        fn announce(&mut self, _: &Advertisement<'_>) -> Result<(), ()> {
            if self.failing {
                return Err(());
            }
            self.announced += 1;
            Ok(())
        }

        fn goodbye(&mut self) -> Result<(), ()> {
            self.goodbyes += 1;
            Ok(())
        }
    }

    #[test]
    fn the_advertiser_announces_at_start_and_after_a_pairing_change_only() {
        let mut advertiser = Advertiser::new(Counting::default());
        let ad = advertisement(false);
        let at = Instant::from_millis;
        assert_eq!(advertiser.handle_timeout(at(5), &ad), Ok(true));
        assert_eq!(advertiser.handle_timeout(at(6), &ad), Ok(false));
        advertiser.handle_event(&Event::Identify, at(7));
        assert_eq!(advertiser.poll_timeout(), None, "not a pairing change");
        advertiser.handle_event(&Event::PairingsChanged { paired: true }, at(8));
        assert_eq!(advertiser.poll_timeout(), Some(at(8)));
        assert_eq!(
            advertiser.handle_timeout(at(8), &advertisement(true)),
            Ok(true)
        );
        assert_eq!(advertiser.responder_mut().announced, 2);
        advertiser.request(at(9));
        assert_eq!(advertiser.goodbye(), Ok(()));
        assert_eq!(advertiser.poll_timeout(), None, "nothing after the goodbye");
        assert_eq!(advertiser.responder_mut().goodbyes, 1);
    }

    #[test]
    fn nothing_is_announced_after_the_goodbye_whatever_comes_later() {
        let mut advertiser = Advertiser::new(Counting::default());
        let at = Instant::from_millis;
        assert_eq!(
            advertiser.handle_timeout(at(0), &advertisement(false)),
            Ok(true)
        );
        assert_eq!(advertiser.goodbye(), Ok(()));
        advertiser.handle_event(&Event::PairingsChanged { paired: true }, at(5));
        advertiser.request(at(6));
        assert_eq!(advertiser.poll_timeout(), None, "stopped for good");
        assert_eq!(
            advertiser.handle_timeout(at(7), &advertisement(true)),
            Ok(false)
        );
        assert_eq!(advertiser.responder_mut().announced, 1);
    }

    #[test]
    fn a_failed_announcement_is_retried_later() {
        let mut advertiser = Advertiser::new(Counting {
            failing: true,
            ..Counting::default()
        });
        let ad = advertisement(false);
        let at = Instant::from_millis;
        assert_eq!(advertiser.handle_timeout(at(0), &ad), Err(()));
        let retry = at(ANNOUNCE_RETRY.as_millis() as u64);
        assert_eq!(advertiser.poll_timeout(), Some(retry));
        advertiser.responder_mut().failing = false;
        assert_eq!(advertiser.handle_timeout(at(1), &ad), Ok(false), "not yet");
        assert_eq!(advertiser.handle_timeout(retry, &ad), Ok(true));
        assert_eq!(advertiser.poll_timeout(), None);
    }
}
