//! The body of `GET /accessories`, read in place: accessories, their services, and the
//! services' characteristics, as nested iterators over the JSON.
//!
//! [`Accessories::parse`] checks the whole body once; the iterators then cannot fail.
//! Keys may come in any order. Keys this reader does not know (`linked`, `valid-values`
//! and others) are skipped.

use super::response::{unsigned, ReportedValue, ResponseError};
use crate::catalog::value::Scalar;
use crate::json::{number_scalar, JsonReader, JsonStr, Token};

/// The accessories of an `/accessories` body.
#[derive(Clone, Debug)]
pub struct Accessories<'a> {
    reader: JsonReader<'a>,
    remaining: usize,
}

/// One accessory.
#[derive(Clone, Debug)]
pub struct AccessoryReport<'a> {
    /// Its id.
    pub aid: u64,
    /// Its services.
    pub services: Services<'a>,
}

/// The services of an accessory.
#[derive(Clone, Debug)]
pub struct Services<'a> {
    reader: JsonReader<'a>,
    remaining: usize,
}

/// One service.
#[derive(Clone, Debug)]
pub struct ServiceReport<'a> {
    /// Its instance id.
    pub iid: u64,
    /// Its type, as sent: a short form such as `"43"` or a full UUID.
    pub service_type: JsonStr<'a>,
    /// Whether it is the accessory's primary service.
    pub primary: bool,
    /// Whether it is hidden from users.
    pub hidden: bool,
    /// Its characteristics.
    pub characteristics: ServiceCharacteristics<'a>,
}

/// The characteristics of a service.
#[derive(Clone, Debug)]
pub struct ServiceCharacteristics<'a> {
    reader: JsonReader<'a>,
    remaining: usize,
}

/// What a characteristic allows (`perms`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Perms {
    /// `pr`: paired read.
    pub read: bool,
    /// `pw`: paired write.
    pub write: bool,
    /// `ev`: events.
    pub events: bool,
    /// `aa`: additional authorization.
    pub additional_authorization: bool,
    /// `tw`: timed write.
    pub timed_write: bool,
    /// `hd`: hidden.
    pub hidden: bool,
    /// `wr`: write response.
    pub write_response: bool,
}

/// One characteristic as `/accessories` describes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CharacteristicInfo<'a> {
    /// Its instance id.
    pub iid: u64,
    /// Its type, as sent.
    pub characteristic_type: JsonStr<'a>,
    /// Its permissions.
    pub perms: Perms,
    /// Its format (`bool`, `uint8`, `float`, `string`, ...), if given.
    pub format: Option<JsonStr<'a>>,
    /// Its value, if readable.
    pub value: Option<ReportedValue<'a>>,
    /// Whether this controller is subscribed, if given.
    pub ev: Option<bool>,
    /// Its description, if given.
    pub description: Option<JsonStr<'a>>,
    /// Its unit, if given.
    pub unit: Option<JsonStr<'a>>,
    /// `minValue`, if given.
    pub min_value: Option<f64>,
    /// `maxValue`, if given.
    pub max_value: Option<f64>,
    /// `minStep`, if given.
    pub min_step: Option<f64>,
    /// `maxLen`, if given.
    pub max_len: Option<u64>,
}

impl<'a> Accessories<'a> {
    /// Checks the whole body and counts its accessories.
    pub fn parse(body: &'a [u8]) -> Result<Self, ResponseError> {
        let text = core::str::from_utf8(body).map_err(|_| ResponseError::UnexpectedShape)?;
        let mut reader = JsonReader::new(text);
        if reader.next_token()? != Some(Token::ObjectStart) {
            return Err(ResponseError::UnexpectedShape);
        }
        let mut found = None;
        while let Some(token) = reader.next_token()? {
            let Token::Key(key) = token else { break };
            let value = reader.next_token()?.ok_or(ResponseError::UnexpectedShape)?;
            if key.eq_str("accessories") && found.is_none() {
                if value != Token::ArrayStart {
                    return Err(ResponseError::UnexpectedShape);
                }
                let start = reader.clone();
                let mut remaining = 0;
                while let Some(accessory) = next_accessory(&mut reader)? {
                    remaining += 1;
                    let mut services = accessory.services;
                    while let Some(service) = services.checked_next()? {
                        let mut characteristics = service.characteristics;
                        while characteristics.checked_next()?.is_some() {}
                    }
                }
                found = Some(Self {
                    reader: start,
                    remaining,
                });
            } else {
                reader.skip_value(value)?;
            }
        }
        while reader.next_token()?.is_some() {}
        found.ok_or(ResponseError::UnexpectedShape)
    }

    /// How many accessories remain.
    pub fn len(&self) -> usize {
        self.remaining
    }

    /// Whether none remain.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for Accessories<'a> {
    type Item = AccessoryReport<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Checked by `Accessories::parse`.
        next_accessory(&mut self.reader).ok().flatten()
    }
}

/// Reads an object whose first token was just read, calling `field` for each key with
/// its first value token; `field` consumes the value (or skips it) and may keep a copy of
/// the reader to come back to an array.
fn read_object<'a>(
    reader: &mut JsonReader<'a>,
    mut field: impl FnMut(&mut JsonReader<'a>, JsonStr<'a>, Token<'a>) -> Result<(), ResponseError>,
) -> Result<(), ResponseError> {
    loop {
        match reader.next_token()? {
            Some(Token::ObjectEnd) => return Ok(()),
            Some(Token::Key(key)) => {
                let value = reader.next_token()?.ok_or(ResponseError::UnexpectedShape)?;
                field(reader, key, value)?;
            }
            _ => return Err(ResponseError::UnexpectedShape),
        }
    }
}

/// Keeps a reader positioned inside the array that `value` opens, and skips the array.
fn array_here<'a>(
    reader: &mut JsonReader<'a>,
    value: Token<'a>,
) -> Result<JsonReader<'a>, ResponseError> {
    if value != Token::ArrayStart {
        return Err(ResponseError::UnexpectedShape);
    }
    let inside = reader.clone();
    reader.skip_value(value)?;
    Ok(inside)
}

/// Counts the objects of the array `inside` is positioned in.
fn count_objects(mut inside: JsonReader<'_>) -> Result<usize, ResponseError> {
    let mut count = 0;
    loop {
        match inside.next_token()? {
            Some(Token::ArrayEnd) => return Ok(count),
            Some(token @ Token::ObjectStart) => {
                inside.skip_value(token)?;
                count += 1;
            }
            _ => return Err(ResponseError::UnexpectedShape),
        }
    }
}

/// Opens the next object of an array, or `None` at its end.
fn open_next(reader: &mut JsonReader<'_>) -> Result<bool, ResponseError> {
    match reader.next_token()? {
        Some(Token::ArrayEnd) => Ok(false),
        Some(Token::ObjectStart) => Ok(true),
        _ => Err(ResponseError::UnexpectedShape),
    }
}

fn next_accessory<'a>(
    reader: &mut JsonReader<'a>,
) -> Result<Option<AccessoryReport<'a>>, ResponseError> {
    if !open_next(reader)? {
        return Ok(None);
    }
    let (mut aid, mut services) = (None, None);
    read_object(reader, |reader, key, value| {
        if key.eq_str("aid") {
            aid = Some(unsigned(value)?);
        } else if key.eq_str("services") {
            services = Some(array_here(reader, value)?);
        } else {
            reader.skip_value(value)?;
        }
        Ok(())
    })?;
    match (aid, services) {
        (Some(aid), Some(inside)) => Ok(Some(AccessoryReport {
            aid,
            services: Services {
                remaining: count_objects(inside.clone())?,
                reader: inside,
            },
        })),
        _ => Err(ResponseError::UnexpectedShape),
    }
}

impl<'a> Services<'a> {
    fn checked_next(&mut self) -> Result<Option<ServiceReport<'a>>, ResponseError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        if !open_next(&mut self.reader)? {
            return Err(ResponseError::UnexpectedShape);
        }
        let (mut iid, mut service_type, mut characteristics) = (None, None, None);
        let (mut primary, mut hidden) = (false, false);
        read_object(&mut self.reader, |reader, key, value| {
            if key.eq_str("iid") {
                iid = Some(unsigned(value)?);
            } else if key.eq_str("type") {
                service_type = Some(string(value)?);
            } else if key.eq_str("primary") {
                primary = boolean(value)?;
            } else if key.eq_str("hidden") {
                hidden = boolean(value)?;
            } else if key.eq_str("characteristics") {
                characteristics = Some(array_here(reader, value)?);
            } else {
                reader.skip_value(value)?;
            }
            Ok(())
        })?;
        match (iid, service_type, characteristics) {
            (Some(iid), Some(service_type), Some(inside)) => Ok(Some(ServiceReport {
                iid,
                service_type,
                primary,
                hidden,
                characteristics: ServiceCharacteristics {
                    remaining: count_objects(inside.clone())?,
                    reader: inside,
                },
            })),
            _ => Err(ResponseError::UnexpectedShape),
        }
    }

    /// How many services remain.
    pub fn len(&self) -> usize {
        self.remaining
    }

    /// Whether none remain.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for Services<'a> {
    type Item = ServiceReport<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Checked by `Accessories::parse`.
        self.checked_next().ok().flatten()
    }
}

impl<'a> ServiceCharacteristics<'a> {
    fn checked_next(&mut self) -> Result<Option<CharacteristicInfo<'a>>, ResponseError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        if !open_next(&mut self.reader)? {
            return Err(ResponseError::UnexpectedShape);
        }
        let mut fields = Fields::default();
        read_object(&mut self.reader, |reader, key, value| {
            if key.eq_str("iid") {
                fields.iid = Some(unsigned(value)?);
            } else if key.eq_str("type") {
                fields.characteristic_type = Some(string(value)?);
            } else if key.eq_str("perms") {
                fields.perms = perms(reader, value)?;
            } else if key.eq_str("format") {
                fields.format = Some(string(value)?);
            } else if key.eq_str("value") {
                fields.value = Some(super::response::reported_value(value)?);
            } else if key.eq_str("ev") {
                fields.ev = Some(boolean(value)?);
            } else if key.eq_str("description") {
                fields.description = Some(string(value)?);
            } else if key.eq_str("unit") {
                fields.unit = Some(string(value)?);
            } else if key.eq_str("minValue") {
                fields.min_value = Some(number(value)?);
            } else if key.eq_str("maxValue") {
                fields.max_value = Some(number(value)?);
            } else if key.eq_str("minStep") {
                fields.min_step = Some(number(value)?);
            } else if key.eq_str("maxLen") {
                fields.max_len = Some(unsigned(value)?);
            } else {
                reader.skip_value(value)?;
            }
            Ok(())
        })?;
        match (fields.iid, fields.characteristic_type) {
            (Some(iid), Some(characteristic_type)) => Ok(Some(CharacteristicInfo {
                iid,
                characteristic_type,
                perms: fields.perms,
                format: fields.format,
                value: fields.value,
                ev: fields.ev,
                description: fields.description,
                unit: fields.unit,
                min_value: fields.min_value,
                max_value: fields.max_value,
                min_step: fields.min_step,
                max_len: fields.max_len,
            })),
            _ => Err(ResponseError::UnexpectedShape),
        }
    }

    /// How many characteristics remain.
    pub fn len(&self) -> usize {
        self.remaining
    }

    /// Whether none remain.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for ServiceCharacteristics<'a> {
    type Item = CharacteristicInfo<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Checked by `Accessories::parse`.
        self.checked_next().ok().flatten()
    }
}

/// A characteristic's fields as they are read, in any order.
#[derive(Default)]
struct Fields<'a> {
    iid: Option<u64>,
    characteristic_type: Option<JsonStr<'a>>,
    perms: Perms,
    format: Option<JsonStr<'a>>,
    value: Option<ReportedValue<'a>>,
    ev: Option<bool>,
    description: Option<JsonStr<'a>>,
    unit: Option<JsonStr<'a>>,
    min_value: Option<f64>,
    max_value: Option<f64>,
    min_step: Option<f64>,
    max_len: Option<u64>,
}

fn number(token: Token<'_>) -> Result<f64, ResponseError> {
    match token {
        Token::Number(text) => match number_scalar(text) {
            // Limits are small integers or decimals; f64 holds them as HAP means them.
            #[allow(clippy::cast_precision_loss)]
            Some(Scalar::Integer(i)) => Ok(i as f64),
            Some(Scalar::Float(f)) => Ok(f),
            _ => Err(ResponseError::UnexpectedShape),
        },
        _ => Err(ResponseError::UnexpectedShape),
    }
}

fn string(token: Token<'_>) -> Result<JsonStr<'_>, ResponseError> {
    match token {
        Token::Str(text) => Ok(text),
        _ => Err(ResponseError::UnexpectedShape),
    }
}

fn boolean(token: Token<'_>) -> Result<bool, ResponseError> {
    match token {
        Token::Bool(b) => Ok(b),
        _ => Err(ResponseError::UnexpectedShape),
    }
}

/// Reads a `perms` array; unknown permissions are ignored.
fn perms<'a>(reader: &mut JsonReader<'a>, value: Token<'a>) -> Result<Perms, ResponseError> {
    if value != Token::ArrayStart {
        return Err(ResponseError::UnexpectedShape);
    }
    let mut perms = Perms::default();
    loop {
        match reader.next_token()? {
            Some(Token::ArrayEnd) => return Ok(perms),
            Some(Token::Str(code)) => {
                for (name, flag) in [
                    ("pr", &mut perms.read),
                    ("pw", &mut perms.write),
                    ("ev", &mut perms.events),
                    ("aa", &mut perms.additional_authorization),
                    ("tw", &mut perms.timed_write),
                    ("hd", &mut perms.hidden),
                    ("wr", &mut perms.write_response),
                ] {
                    if code.eq_str(name) {
                        *flag = true;
                    }
                }
            }
            _ => return Err(ResponseError::UnexpectedShape),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const BODY: &[u8] = br#"{"accessories":[{"services":[{"type":"3E","iid":1,"characteristics":[{"iid":2,"type":"14","perms":["pw"],"format":"bool"},{"iid":3,"type":"23","perms":["pr"],"format":"string","value":"L\u00e4mp","maxLen":64}]},{"iid":8,"type":"43","primary":true,"linked":[1],"characteristics":[{"iid":9,"type":"25","perms":["pr","pw","ev"],"format":"bool","value":false,"ev":true},{"iid":10,"type":"8","perms":["pr","pw","ev"],"format":"int","unit":"percentage","minValue":0,"maxValue":100,"minStep":1,"value":50,"valid-values":[1,2]}]}],"aid":1},{"aid":2,"services":[]}]}"#;

    #[test]
    fn walks_accessories_services_and_characteristics() {
        let accessories = Accessories::parse(BODY).unwrap();
        assert_eq!(accessories.len(), 2);
        let all: Vec<_> = accessories
            .map(|accessory| {
                let services: Vec<_> = accessory
                    .services
                    .map(|service| {
                        let characteristics: Vec<_> = service.characteristics.collect();
                        (
                            service.iid,
                            service.service_type,
                            service.primary,
                            characteristics,
                        )
                    })
                    .collect();
                (accessory.aid, services)
            })
            .collect();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].0, all[0].1.len()), (1, 2));
        assert_eq!((all[1].0, all[1].1.len()), (2, 0));
        let (iid, service_type, primary, characteristics) = &all[0].1[1];
        assert_eq!(
            (*iid, service_type.as_plain(), *primary),
            (8, Some("43"), true)
        );
        let on = &characteristics[0];
        assert_eq!(
            (on.iid, on.value, on.ev),
            (9, Some(ReportedValue::Bool(false)), Some(true))
        );
        assert!(on.perms.read && on.perms.write && on.perms.events && !on.perms.timed_write);
        let brightness = &characteristics[1];
        assert_eq!(
            (
                brightness.min_value,
                brightness.max_value,
                brightness.min_step
            ),
            (Some(0.0), Some(100.0), Some(1.0))
        );
        assert_eq!(
            brightness.unit.and_then(|u| u.as_plain()),
            Some("percentage")
        );
        let name = &all[0].1[0].3[1];
        let Some(ReportedValue::Str(text)) = name.value else {
            panic!("a name")
        };
        assert_eq!(text.decode_into(&mut [0u8; 16]), Ok("Lämp"));
        assert_eq!(name.max_len, Some(64));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            &br#"{"accessories":[{"services":[]}]}"#[..],
            br#"{"accessories":[{"aid":1,"services":[{"iid":1,"characteristics":[]}]}]}"#,
            br#"{"accessories":[{"aid":1,"services":[{"iid":1,"type":"3E","characteristics":[{"iid":2}]}]}]}"#,
            br#"{"accessories":{}}"#,
            br#"{"other":[]}"#,
            br#"{"accessories":[]"#,
            b"\xff",
        ] {
            assert!(Accessories::parse(bad).is_err(), "{:?}", core::str::from_utf8(bad));
        }
        assert!(Accessories::parse(br#"{"accessories":[]}"#)
            .unwrap()
            .is_empty());
    }
}
