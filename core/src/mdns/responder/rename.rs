//! New names after a conflict (RFC 6762 §9): Apple's "Name (2)" for the instance,
//! "host-2" for the host.

use super::MAX_LABEL;

/// The instance name to try after `current` lost a conflict, as Apple's responder names
/// it: `Virtual Light` becomes `Virtual Light (2)`, `Virtual Light (2)` becomes
/// `Virtual Light (3)`; the base is cut at a character boundary so the result fits
/// [`MAX_LABEL`] bytes. Avahi registrations use it too, so every path renames alike.
pub fn next_instance_name(current: &str) -> heapless::String<MAX_LABEL> {
    // A trailing " (N)" is our own earlier rename: count on from it (mDNSResponder
    // IncrementLabelSuffix, DNSCommon.c, does the same with "(N)").
    let (base, next) = match current
        .strip_suffix(')')
        .and_then(|s| s.rsplit_once(" ("))
        .and_then(|(base, digits)| Some((base, parse_counter(digits)?.checked_add(1)?)))
    {
        Some((base, next)) => (base, next),
        None => (current, 2),
    };
    let mut suffix = heapless::String::<16>::new();
    // A u32 and the brackets always fit 16 bytes.
    let _ = core::fmt::write(&mut suffix, format_args!(" ({next})"));
    join_cut(base, &suffix)
}

/// The host label to try after `current` lost a conflict: `light` becomes `light-2`,
/// `light-2` becomes `light-3`, cut to fit [`MAX_LABEL`] bytes.
pub fn next_host_name(current: &str) -> heapless::String<MAX_LABEL> {
    // A trailing "-N" is an earlier rename (Avahi alternative.c and mDNSResponder both
    // count host names on with a hyphen).
    let (base, next) = match current
        .rsplit_once('-')
        .and_then(|(base, digits)| Some((base, parse_counter(digits)?.checked_add(1)?)))
    {
        Some((base, next)) if !base.is_empty() => (base, next),
        _ => (current, 2),
    };
    let mut suffix = heapless::String::<16>::new();
    let _ = core::fmt::write(&mut suffix, format_args!("-{next}"));
    join_cut(base, &suffix)
}

/// A rename counter: decimal digits without a leading zero, at least 1.
fn parse_counter(digits: &str) -> Option<u32> {
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `base` cut at a character boundary so that `base` + `suffix` fits [`MAX_LABEL`] bytes,
/// then `suffix`.
fn join_cut(base: &str, suffix: &str) -> heapless::String<MAX_LABEL> {
    let mut room = MAX_LABEL.saturating_sub(suffix.len()).min(base.len());
    while !base.is_char_boundary(room) {
        room -= 1;
    }
    let mut out = heapless::String::new();
    // Both pushes fit by construction: room + suffix.len() <= MAX_LABEL.
    let _ = out.push_str(&base[..room]);
    let _ = out.push_str(suffix);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::String;

    #[test]
    fn instance_names_count_on_in_brackets() {
        assert_eq!(next_instance_name("Virtual Light"), "Virtual Light (2)");
        assert_eq!(next_instance_name("Virtual Light (2)"), "Virtual Light (3)");
        assert_eq!(
            next_instance_name("Virtual Light (9)"),
            "Virtual Light (10)"
        );
        // Not our suffix: a bracket that is not a counter stays part of the name.
        assert_eq!(next_instance_name("Lamp (kitchen)"), "Lamp (kitchen) (2)");
        assert_eq!(next_instance_name("Lamp (0)"), "Lamp (0) (2)");
        assert_eq!(
            next_instance_name("Lamp (4294967295)"),
            "Lamp (4294967295) (2)"
        );
        assert_eq!(next_instance_name(""), " (2)");
    }

    #[test]
    fn rename_cut_at_63_bytes() {
        let long = String::from("a").repeat(63);
        let next = next_instance_name(&long);
        assert_eq!(next.len(), 63);
        assert!(next.ends_with("a (2)"));
        // A two-byte character straddling the cut is dropped whole.
        let accented = format!("{}é", String::from("a").repeat(58));
        let next = next_instance_name(&accented);
        assert_eq!(
            next.as_str(),
            format!("{} (2)", String::from("a").repeat(58))
        );
        let next = next_host_name(&String::from("h").repeat(63));
        assert_eq!(next.as_str(), format!("{}-2", String::from("h").repeat(61)));
    }

    #[test]
    fn host_names_count_on_with_a_hyphen() {
        assert_eq!(next_host_name("light"), "light-2");
        assert_eq!(next_host_name("light-2"), "light-3");
        assert_eq!(next_host_name("123456789ABC"), "123456789ABC-2");
        assert_eq!(next_host_name("my-light"), "my-light-2");
        assert_eq!(next_host_name("-5"), "-5-2");
    }
}
