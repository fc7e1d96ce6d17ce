//! Finding accessories with mDNS (`_hap._tcp`), through [`hap_std::mdns::browse`].

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use hap_core::catalog::Category;
use serde_json::{json, Value};

use crate::{Error, ErrorKind};

use hap_std::mdns;

pub use hap_std::mdns::{Found, StopWhen};

/// Listens for `duration` on `interfaces` (empty: every non-loopback interface), and
/// returns what was heard, sorted by name then id; stops early once `stop_when` matches.
/// Interfaces named that are not up are a usage error.
pub fn browse(
    duration: Duration,
    interfaces: &[String],
    stop_when: Option<StopWhen>,
) -> Result<Vec<Found>, Error> {
    let options = mdns::BrowseOptions {
        duration,
        interfaces: interfaces.to_vec(),
        stop_when,
    };
    mdns::browse(options).map_err(|error| {
        let kind = match &error {
            mdns::BrowseError::NoInterface { requested } if !requested.is_empty() => {
                ErrorKind::Usage
            }
            _ => ErrorKind::Failed,
        };
        Error::new(kind, format!("cannot browse mDNS: {error}"))
    })
}

/// The accessory whose device id is `id` (either case), if heard within `duration`.
pub fn find_id(
    id: &str,
    duration: Duration,
    interfaces: &[String],
) -> Result<Option<Found>, Error> {
    let wanted = id.to_ascii_uppercase();
    let matches = move |found: &Found| {
        found
            .id
            .as_deref()
            .is_some_and(|id| id.eq_ignore_ascii_case(&wanted))
    };
    let stop = matches.clone();
    let found = browse(duration, interfaces, Some(Box::new(move |f| stop(f))))?;
    Ok(found.into_iter().find(|f| matches(f)))
}

/// The accessory whose instance name is `name` (either case), if heard within
/// `duration`.
pub fn find_name(
    name: &str,
    duration: Duration,
    interfaces: &[String],
) -> Result<Option<Found>, Error> {
    let wanted = name.to_string();
    let matches = move |found: &Found| found.name.eq_ignore_ascii_case(&wanted);
    let stop = matches.clone();
    let found = browse(duration, interfaces, Some(Box::new(move |f| stop(f))))?;
    Ok(found.into_iter().find(|f| matches(f)))
}

/// Where to connect to `found`: its first address (IPv4 first) and port; a link-local
/// IPv6 address (`fe80::/10`) gets the interface it was heard on as its scope.
pub fn socket_addr(found: &Found) -> Option<SocketAddr> {
    let address = match *found.addresses.first()? {
        IpAddr::V6(ip) if ip.is_unicast_link_local() => {
            SocketAddrV6::new(ip, found.port, 0, found.interface).into()
        }
        ip => SocketAddr::new(ip, found.port),
    };
    Some(address)
}

/// A category's name as people read it (`Lightbulb` for `LIGHTBULB`).
pub fn category_name(number: u16) -> Option<String> {
    let name = Category::new(u8::try_from(number).ok()?).name()?;
    let mut out = String::new();
    for (i, word) in name.split('_').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first);
            out.extend(chars.flat_map(char::to_lowercase));
        }
    }
    Some(out)
}

/// `found` as `discover --json` prints it.
pub fn to_json(found: &Found) -> Value {
    json!({
        "name": found.name, "id": found.id, "host": found.host,
        "addresses": found.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "port": found.port, "config_number": found.config_number,
        "state_number": found.state_number, "status_flags": found.status_flags,
        "paired": found.is_paired(), "category": found.category,
        "category_name": found.category.and_then(category_name), "model": found.model,
        "feature_flags": found.feature_flags, "protocol_version": found.protocol_version,
    })
}

/// `found` as `discover` prints it for people, on one line.
pub fn to_text(found: &Found) -> String {
    let mut line = found.name.clone();
    if let Some(id) = &found.id {
        line += &format!("  id {id}");
    }
    match socket_addr(found) {
        Some(address) => line += &format!("  {address}"),
        None => line += &format!("  {}:{}", found.host, found.port),
    }
    if let Some(config) = found.config_number {
        line += &format!("  c# {config}");
    }
    if let (Some(flags), Some(paired)) = (found.status_flags, found.is_paired()) {
        let paired = if paired { "paired" } else { "not paired" };
        line += &format!("  sf {flags} ({paired})");
    }
    if let Some(category) = found.category {
        match category_name(category) {
            Some(name) => line += &format!("  {name} ({category})"),
            None => line += &format!("  category {category}"),
        }
    }
    if let Some(model) = &found.model {
        line += &format!("  model {model}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(addresses: &[&str]) -> Found {
        Found {
            name: "Light".into(),
            host: "Light.local".into(),
            port: 51826,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            interface: 3,
            id: None,
            config_number: None,
            state_number: None,
            status_flags: Some(1),
            category: None,
            model: None,
            feature_flags: None,
            protocol_version: None,
        }
    }

    #[test]
    fn a_link_local_address_is_scoped_to_the_interface_it_was_heard_on() {
        let link_local = socket_addr(&found(&["fe80::2", "2001:db8::2"])).unwrap();
        let SocketAddr::V6(v6) = link_local else {
            panic!("{link_local}");
        };
        assert_eq!(v6.scope_id(), 3);
        assert_eq!(link_local.to_string(), "[fe80::2%3]:51826");
        let global = socket_addr(&found(&["2001:db8::2"])).unwrap();
        assert_eq!(global.to_string(), "[2001:db8::2]:51826");
        let v4 = socket_addr(&found(&["192.0.2.2", "fe80::2"])).unwrap();
        assert_eq!(v4.to_string(), "192.0.2.2:51826");
        assert_eq!(socket_addr(&found(&[])), None);
    }

    #[test]
    fn the_text_line_says_whether_it_is_paired() {
        let line = to_text(&found(&["192.0.2.2"]));
        assert_eq!(line, "Light  192.0.2.2:51826  sf 1 (not paired)");
        let mut paired = found(&[]);
        paired.status_flags = Some(0);
        assert_eq!(to_text(&paired), "Light  Light.local:51826  sf 0 (paired)");
    }

    #[test]
    fn category_names_read_as_words() {
        assert_eq!(category_name(5).as_deref(), Some("Lightbulb"));
        assert_eq!(category_name(9).as_deref(), Some("Thermostat"));
        assert_eq!(category_name(4000), None);
    }
}
