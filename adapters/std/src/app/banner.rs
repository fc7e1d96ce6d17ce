//! The start-up banner: what a person needs to pair the accessory.

use std::fmt::Write as _;

use hap_core::catalog::Category;
use hap_core::setup::{setup_uri, SetupFlags};

use crate::Setup;

/// The lines printed at start-up: the name, the setup code, the setup URI, a QR code of
/// the URI (with the `qr` feature), whether the accessory is paired already, and where its
/// state is stored.
///
/// ```
/// use hap_core::catalog::Category;
/// use hap_std::{store::MemoryStore, Setup};
///
/// let code = "314-15-926".parse().ok();
/// let setup = Setup::load_or_create(Box::new(MemoryStore::default()), code, "T3ST".parse().ok())?;
/// let banner = hap_std::app::banner("Desk Lamp", Category::LIGHTBULB, &setup);
/// assert!(banner.starts_with("Desk Lamp\nSetup code: 314-15-926\nSetup URI:  X-HM://"));
/// # Ok::<_, hap_std::StartError>(())
/// ```
pub fn banner(name: &str, category: Category, setup: &Setup) -> String {
    let stored = setup.snapshot();
    let paired = stored.state.is_paired();
    let mut out = format!("{name}\n");
    match (stored.setup_code.as_ref(), stored.setup_id.as_ref()) {
        (Some(code), Some(setup_id)) => {
            let flags = SetupFlags {
                paired,
                ip: true,
                ble: false,
            };
            let uri = setup_uri(code, setup_id, category, flags);
            let _ = writeln!(out, "Setup code: {}", code.as_str());
            let _ = writeln!(out, "Setup URI:  {}", uri.as_str());
            out += &qr_code(uri.as_str());
        }
        _ => out += "Setup code: not stored; pass --pin to set one\n",
    }
    if paired {
        out += "Already paired; remove it in the Home app to pair again.\n";
    }
    let _ = writeln!(out, "Data: {}", setup.location());
    out
}

/// The URI as a QR code of Unicode half blocks, two rows of modules per line.
#[cfg(feature = "qr")]
fn qr_code(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(qr) => {
            let mut drawn = qr
                .render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build();
            drawn.push('\n');
            drawn
        }
        Err(e) => format!("(cannot draw the QR code: {e})\n"),
    }
}

/// Without the `qr` feature, no QR code.
#[cfg(not(feature = "qr"))]
fn qr_code(_uri: &str) -> String {
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn setup() -> Setup {
        Setup::load_or_create(
            Box::new(MemoryStore::default()),
            "314-15-926".parse().ok(),
            "T3ST".parse().ok(),
        )
        .unwrap()
    }

    #[test]
    fn the_banner_has_name_code_uri_qr_code_and_data() {
        let setup = setup();
        let text = banner("Garage Door", Category::GARAGE_DOOR_OPENER, &setup);
        let code = "314-15-926".parse().unwrap();
        let id = "T3ST".parse().unwrap();
        let flags = SetupFlags {
            paired: false,
            ip: true,
            ble: false,
        };
        let uri = setup_uri(&code, &id, Category::GARAGE_DOOR_OPENER, flags);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Garage Door");
        assert_eq!(lines[1], "Setup code: 314-15-926");
        assert_eq!(lines[2], format!("Setup URI:  {}", uri.as_str()));
        assert_eq!(
            *lines.last().unwrap(),
            format!("Data: {}", setup.location())
        );
        assert!(!text.contains("Already paired"));
        #[cfg(feature = "qr")]
        {
            // The code's modules with a quiet zone of 4 on each side, two rows per line.
            let width = qrcode::QrCode::new(uri.as_bytes()).unwrap().width() + 8;
            let drawn = &lines[3..lines.len() - 1];
            assert_eq!(drawn.len(), width.div_ceil(2), "{text}");
            assert!(drawn.iter().all(|l| l.chars().count() == width), "{text}");
            assert!(drawn.iter().any(|l| l.contains('█')), "{text}");
        }
    }
}
