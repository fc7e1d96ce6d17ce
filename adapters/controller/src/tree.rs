//! An `/accessories` answer as owned data with catalog names, how `hapctl` prints it,
//! and the resolution of a characteristic named on the command line (`1.9`,
//! `Brightness`, `Kitchen/On`, `2/on`).

use std::fmt::Write as _;

use hap_core::catalog::{characteristic, service};
use hap_core::controller::names::{self, name_matches};
use hap_core::controller::{Accessories, CharacteristicId, ResponseError};
use serde_json::{json, Value};

use crate::{decode, json_value, typed_value, Error, ErrorKind};

/// Every accessory of an `/accessories` answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// The accessories, in the accessory's order.
    pub accessories: Vec<AccessoryNode>,
}

/// One accessory.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessoryNode {
    /// Its id.
    pub aid: u64,
    /// The value of its Name in Accessory Information, if it has one.
    pub name: Option<String>,
    /// Its services.
    pub services: Vec<ServiceNode>,
}

/// One service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceNode {
    /// Its instance id.
    pub iid: u64,
    /// Its type as sent.
    pub service_type: String,
    /// The catalog's name for the type, spaced for people ([`display_name`]).
    pub name: Option<String>,
    /// Whether it is primary.
    pub primary: bool,
    /// Whether it is hidden.
    pub hidden: bool,
    /// Its characteristics.
    pub characteristics: Vec<CharacteristicNode>,
}

/// One characteristic.
#[derive(Clone, Debug, PartialEq)]
pub struct CharacteristicNode {
    /// Its instance id.
    pub iid: u64,
    /// Its type as sent.
    pub characteristic_type: String,
    /// The catalog's name for the type, spaced for people ([`display_name`]).
    pub name: Option<String>,
    /// Its format, if sent.
    pub format: Option<String>,
    /// Its permissions' JSON names (`pr`, `pw`, `ev`, ...).
    pub perms: Vec<&'static str>,
    /// Its value, if sent.
    pub value: Option<Value>,
    /// Its unit, if sent.
    pub unit: Option<String>,
    /// `minValue`.
    pub min: Option<f64>,
    /// `maxValue`.
    pub max: Option<f64>,
    /// `minStep`.
    pub step: Option<f64>,
}

impl CharacteristicNode {
    /// The catalog name, or the type as sent.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.characteristic_type)
    }

    /// Whether its permissions include write response (`wr`): a write to it should ask
    /// for the accessory's answer (`"r":true`).
    pub fn has_write_response(&self) -> bool {
        self.perms.contains(&"wr")
    }
}

impl Tree {
    /// Reads an `/accessories` body.
    pub fn parse(body: &[u8]) -> Result<Tree, ResponseError> {
        let mut accessories = Vec::new();
        for accessory in Accessories::parse(body)? {
            let mut node = AccessoryNode {
                aid: accessory.aid,
                name: None,
                services: Vec::new(),
            };
            for s in accessory.services {
                let service_type = names::service_type(s.service_type);
                let information =
                    service_type.is_some_and(|t| t.uuid == service::ACCESSORY_INFORMATION.uuid);
                let mut characteristics = Vec::new();
                for c in s.characteristics {
                    let catalog_type = names::characteristic_type(c.characteristic_type);
                    let format = c.format.map(decode);
                    let value = c
                        .value
                        .map(|v| typed_value(json_value(v), format.as_deref()));
                    if information
                        && catalog_type.is_some_and(|t| t.uuid == characteristic::NAME.uuid)
                    {
                        if let Some(Value::String(name)) = &value {
                            node.name = Some(name.clone());
                        }
                    }
                    characteristics.push(CharacteristicNode {
                        iid: c.iid,
                        name: catalog_type.map(|t| display_name(t.name)),
                        characteristic_type: decode(c.characteristic_type),
                        format,
                        perms: perm_names(c.perms),
                        value,
                        unit: c.unit.map(decode),
                        min: c.min_value,
                        max: c.max_value,
                        step: c.min_step,
                    });
                }
                node.services.push(ServiceNode {
                    iid: s.iid,
                    name: service_type.map(|t| display_name(t.name)),
                    service_type: decode(s.service_type),
                    primary: s.primary,
                    hidden: s.hidden,
                    characteristics,
                });
            }
            accessories.push(node);
        }
        Ok(Tree { accessories })
    }

    /// `value` read from `id`, typed by its format ([`typed_value`]).
    pub fn typed(&self, id: CharacteristicId, value: Value) -> Value {
        let format = self.find(id).and_then(|(_, c)| c.format.as_deref());
        typed_value(value, format)
    }

    /// The characteristic at `id`, with its accessory.
    pub fn find(&self, id: CharacteristicId) -> Option<(&AccessoryNode, &CharacteristicNode)> {
        let accessory = self.accessories.iter().find(|a| a.aid == id.aid)?;
        accessory
            .services
            .iter()
            .flat_map(|s| &s.characteristics)
            .find(|c| c.iid == id.iid)
            .map(|c| (accessory, c))
    }

    /// The characteristic `selector` names: exactly one, or a not-found error that says
    /// why (none, or the candidates).
    pub fn resolve(&self, selector: &Selector) -> Result<Resolved, Error> {
        match selector {
            Selector::Id(id) => match self.find(*id) {
                Some((_, c)) => Ok(Resolved {
                    id: *id,
                    name: c.label().to_string(),
                }),
                None => Err(Error::new(
                    ErrorKind::NotFound,
                    format!("the accessory has no characteristic {}.{}", id.aid, id.iid),
                )),
            },
            Selector::Name { accessory, name } => {
                let mut found = Vec::new();
                for a in &self.accessories {
                    let wanted = match accessory {
                        None => true,
                        Some(AccessoryRef::Aid(aid)) => a.aid == *aid,
                        Some(AccessoryRef::Name(text)) => a
                            .name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(text)),
                    };
                    if !wanted {
                        continue;
                    }
                    for c in a.services.iter().flat_map(|s| &s.characteristics) {
                        if c.name.as_deref().is_some_and(|n| name_matches(n, name)) {
                            found.push((a, c));
                        }
                    }
                }
                match found.as_slice() {
                    [(a, c)] => Ok(Resolved {
                        id: CharacteristicId {
                            aid: a.aid,
                            iid: c.iid,
                        },
                        name: c.label().to_string(),
                    }),
                    [] => Err(Error::new(
                        ErrorKind::NotFound,
                        format!("no characteristic named {:?}", selector.to_string()),
                    )),
                    many => {
                        let list: Vec<String> = many
                            .iter()
                            .map(|(a, c)| {
                                let owner = a.name.as_deref().unwrap_or("?");
                                format!("{}.{} ({owner})", a.aid, c.iid)
                            })
                            .collect();
                        Err(Error::new(
                            ErrorKind::NotFound,
                            format!(
                                "{:?} is ambiguous: {}; name one as AID.IID or ACCESSORY/NAME",
                                selector.to_string(),
                                list.join(", ")
                            ),
                        ))
                    }
                }
            }
        }
    }

    /// The tree as `--json` prints it.
    pub fn to_json(&self) -> Value {
        let accessories: Vec<Value> = self
            .accessories
            .iter()
            .map(|a| {
                let services: Vec<Value> = a
                    .services
                    .iter()
                    .map(|s| {
                        let characteristics: Vec<Value> = s
                            .characteristics
                            .iter()
                            .map(|c| {
                                json!({
                                    "iid": c.iid, "type": c.characteristic_type, "name": c.name,
                                    "format": c.format, "perms": c.perms, "value": c.value,
                                    "unit": c.unit, "min": c.min, "max": c.max, "step": c.step,
                                })
                            })
                            .collect();
                        json!({
                            "iid": s.iid, "type": s.service_type, "name": s.name,
                            "primary": s.primary, "hidden": s.hidden,
                            "characteristics": characteristics,
                        })
                    })
                    .collect();
                json!({"aid": a.aid, "name": a.name, "services": services})
            })
            .collect();
        json!({ "accessories": accessories })
    }

    /// The tree as people read it, one line per accessory, service and characteristic.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for a in &self.accessories {
            let _ = writeln!(out, "{} {}", a.aid, a.name.as_deref().unwrap_or(""));
            for s in &a.services {
                let _ = write!(out, "  {}.{} ", a.aid, s.iid);
                match &s.name {
                    Some(name) => {
                        let _ = write!(out, "{name} ({})", s.service_type);
                    }
                    None => out.push_str(&s.service_type),
                }
                if s.primary {
                    out.push_str(" primary");
                }
                if s.hidden {
                    out.push_str(" hidden");
                }
                out.push('\n');
                for c in &s.characteristics {
                    let _ = write!(out, "    {}.{} ", a.aid, c.iid);
                    match &c.name {
                        Some(name) => {
                            let _ = write!(out, "{name} ({})", c.characteristic_type);
                        }
                        None => out.push_str(&c.characteristic_type),
                    }
                    if let Some(format) = &c.format {
                        let _ = write!(out, "  {format}");
                    }
                    let _ = write!(out, "  {}", c.perms.join(" "));
                    if let Some(value) = &c.value {
                        let _ = write!(out, "  = {value}");
                    }
                    if c.min.is_some() || c.max.is_some() || c.step.is_some() {
                        let bound = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
                        let _ = write!(out, "  [{}..{}", bound(c.min), bound(c.max));
                        if let Some(step) = c.step {
                            let _ = write!(out, " step {step}");
                        }
                        if let Some(unit) = &c.unit {
                            let unit = if unit == "percentage" { "%" } else { unit };
                            let _ = write!(out, " {unit}");
                        }
                        out.push(']');
                    } else if let Some(unit) = &c.unit {
                        let _ = write!(out, "  {unit}");
                    }
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// A catalog name as people read it: `AccessoryInformation` becomes `Accessory
/// Information` (a space before each capital that follows a small letter).
pub fn display_name(catalog: &str) -> String {
    let mut out = String::with_capacity(catalog.len() + 4);
    let mut previous_lower = false;
    for c in catalog.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push(' ');
        }
        previous_lower = c.is_ascii_lowercase();
        out.push(c);
    }
    out
}

fn perm_names(perms: hap_core::controller::Perms) -> Vec<&'static str> {
    [
        (perms.read, "pr"),
        (perms.write, "pw"),
        (perms.events, "ev"),
        (perms.additional_authorization, "aa"),
        (perms.timed_write, "tw"),
        (perms.hidden, "hd"),
        (perms.write_response, "wr"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// A characteristic resolved from a [`Selector`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Where it is.
    pub id: CharacteristicId,
    /// Its catalog name, or its type.
    pub name: String,
}

/// Which accessory a [`Selector`] looks in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessoryRef {
    /// By aid.
    Aid(u64),
    /// By the Name in its Accessory Information (case-insensitive).
    Name(String),
}

/// A characteristic as named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// `AID.IID`.
    Id(CharacteristicId),
    /// `NAME`, `ACCESSORY_NAME/NAME` or `AID/NAME`.
    Name {
        /// The accessory, if named.
        accessory: Option<AccessoryRef>,
        /// The characteristic's catalog name, as typed.
        name: String,
    },
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Id(id) => write!(f, "{}.{}", id.aid, id.iid),
            Selector::Name { accessory, name } => match accessory {
                None => f.write_str(name),
                Some(AccessoryRef::Aid(aid)) => write!(f, "{aid}/{name}"),
                Some(AccessoryRef::Name(owner)) => write!(f, "{owner}/{name}"),
            },
        }
    }
}

impl std::str::FromStr for Selector {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let usage = || {
            Error::new(
                ErrorKind::Usage,
                format!("{text:?} is not a characteristic: use AID.IID, NAME, ACCESSORY/NAME or AID/NAME"),
            )
        };
        if let Some((owner, name)) = text.rsplit_once('/') {
            if owner.is_empty() || name.trim().is_empty() {
                return Err(usage());
            }
            let accessory = match owner.parse::<u64>() {
                Ok(aid) => AccessoryRef::Aid(aid),
                Err(_) => AccessoryRef::Name(owner.to_string()),
            };
            return Ok(Selector::Name {
                accessory: Some(accessory),
                name: name.to_string(),
            });
        }
        if let Some((aid, iid)) = text.split_once('.') {
            if let (Ok(aid), Ok(iid)) = (aid.parse(), iid.parse()) {
                return Ok(Selector::Id(CharacteristicId { aid, iid }));
            }
        }
        if text.trim().is_empty() || text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(usage());
        }
        Ok(Selector::Name {
            accessory: None,
            name: text.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"accessories":[
      {"aid":1,"services":[
        {"iid":1,"type":"3E","characteristics":[
          {"iid":2,"type":"14","perms":["pw"],"format":"bool"},
          {"iid":3,"type":"23","perms":["pr"],"format":"string","value":"Kitchen"}]},
        {"iid":8,"type":"00000043-0000-1000-8000-0026BB765291","primary":true,"characteristics":[
          {"iid":9,"type":"25","perms":["pr","pw","ev"],"format":"bool","value":true},
          {"iid":10,"type":"8","perms":["pr","pw","ev"],"format":"int","value":100,
           "minValue":0,"maxValue":100,"minStep":1,"unit":"percentage"}]}]},
      {"aid":2,"services":[
        {"iid":1,"type":"3E","characteristics":[
          {"iid":3,"type":"23","perms":["pr"],"format":"string","value":"Hall"}]},
        {"iid":8,"type":"43","characteristics":[
          {"iid":9,"type":"25","perms":["pr","pw","ev"],"format":"bool","value":false}]}]}]}"#;

    fn tree() -> Tree {
        Tree::parse(BODY.as_bytes()).unwrap()
    }

    fn resolve(text: &str) -> Result<CharacteristicId, Error> {
        tree().resolve(&text.parse()?).map(|r| r.id)
    }

    fn id(aid: u64, iid: u64) -> CharacteristicId {
        CharacteristicId { aid, iid }
    }

    #[test]
    fn names_resolve_by_catalog_name_accessory_and_aid() {
        assert_eq!(resolve("1.10").unwrap(), id(1, 10));
        assert_eq!(resolve("brightness").unwrap(), id(1, 10));
        assert_eq!(resolve("Kitchen/On").unwrap(), id(1, 9));
        assert_eq!(resolve("hall/on").unwrap(), id(2, 9));
        assert_eq!(resolve("2/ON").unwrap(), id(2, 9));
    }

    #[test]
    fn missing_and_ambiguous_names_are_not_found() {
        let ambiguous = resolve("on").unwrap_err();
        assert_eq!(ambiguous.kind, ErrorKind::NotFound);
        assert!(
            ambiguous.message.contains("1.9 (Kitchen), 2.9 (Hall)"),
            "{ambiguous}"
        );
        assert_eq!(resolve("Hue").unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(resolve("3.9").unwrap_err().kind, ErrorKind::NotFound);
        for bad in ["", "1.", "/on", "kitchen/"] {
            assert_eq!(
                bad.parse::<Selector>().unwrap_err().kind,
                ErrorKind::Usage,
                "{bad}"
            );
        }
    }

    #[test]
    fn display_names_are_spaced() {
        assert_eq!(
            display_name("AccessoryInformation"),
            "Accessory Information"
        );
        assert_eq!(display_name("CarbonDioxideLevel"), "Carbon Dioxide Level");
        assert_eq!(display_name("On"), "On");
        assert_eq!(display_name("PM2_5Density"), "PM2_5Density");
    }

    #[test]
    fn the_text_shows_names_values_and_limits() {
        let text = tree().to_text();
        assert!(
            text.starts_with("1 Kitchen\n  1.1 Accessory Information (3E)\n"),
            "{text}"
        );
        assert!(text.contains("    1.2 Identify (14)  bool  pw\n"), "{text}");
        assert!(
            text.contains("    1.3 Name (23)  string  pr  = \"Kitchen\"\n"),
            "{text}"
        );
        assert!(
            text.contains("  1.8 Lightbulb (00000043-0000-1000-8000-0026BB765291) primary\n"),
            "{text}"
        );
        assert!(
            text.contains("    1.10 Brightness (8)  int  pr pw ev  = 100  [0..100 step 1 %]\n"),
            "{text}"
        );
        let json = tree().to_json();
        assert_eq!(
            json["accessories"][0]["services"][1]["characteristics"][1]["name"],
            "Brightness"
        );
        assert_eq!(json["accessories"][1]["name"], "Hall");
    }
}
