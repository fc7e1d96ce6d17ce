//! Accessory and service names that iOS accepts.
//!
//! The Home app refuses names that do not start and end with a letter or digit or that
//! contain anything but letters, digits, spaces and ASCII apostrophes (HAP-NodeJS #1008
//! and its rule `^[\p{L}\p{N}][\p{L}\p{N} ']*[\p{L}\p{N}]$`); such
//! an accessory fails to add, or shows a generic name. Checking when the accessory is
//! built turns that into a clear error.

use super::value::DEFAULT_MAX_LEN;

/// Why iOS would refuse a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than 64 bytes.
    TooLong,
    /// The first or last character is not a letter or digit.
    BadEnds,
    /// A character other than a letter, digit, space or apostrophe, at this byte offset.
    BadCharacter {
        /// Byte offset of the character.
        offset: usize,
        /// The character.
        character: char,
    },
}

impl core::fmt::Display for NameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NameError::Empty => f.write_str("name is empty"),
            NameError::TooLong => write!(f, "name is longer than {DEFAULT_MAX_LEN} bytes"),
            NameError::BadEnds => f.write_str("name must start and end with a letter or digit"),
            NameError::BadCharacter { offset, character } => write!(
                f,
                "name contains {character:?} at byte {offset}; iOS accepts only letters, digits, spaces and apostrophes"
            ),
        }
    }
}

impl core::error::Error for NameError {}

/// Checks that iOS will accept `name` for an accessory or service.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return Err(NameError::Empty);
    };
    if name.len() > usize::from(DEFAULT_MAX_LEN) {
        return Err(NameError::TooLong);
    }
    if let Some((offset, character)) = name
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == ' ' || *c == '\''))
    {
        return Err(NameError::BadCharacter { offset, character });
    }
    if !first.is_alphanumeric() || !last.is_alphanumeric() {
        return Err(NameError::BadEnds);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ios_accepts() {
        for name in ["Light", "Kitchen Light 2", "Tom's Lamp", "Küche", "灯", "A"] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_ios_refuses() {
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(" Light"), Err(NameError::BadEnds));
        assert_eq!(check_name("Light'"), Err(NameError::BadEnds));
        assert_eq!(
            check_name("Light-1"),
            Err(NameError::BadCharacter {
                offset: 5,
                character: '-'
            })
        );
        assert_eq!(
            check_name("Light (hall)"),
            Err(NameError::BadCharacter {
                offset: 6,
                character: '('
            })
        );
        assert_eq!(
            check_name("Light 💡"),
            Err(NameError::BadCharacter {
                offset: 6,
                character: '💡'
            })
        );
        // Only the ASCII apostrophe, as HAP-NodeJS's rule has it.
        assert_eq!(
            check_name("Tom’s Lamp"),
            Err(NameError::BadCharacter {
                offset: 3,
                character: '’'
            })
        );
        assert_eq!(check_name(&"a".repeat(65)), Err(NameError::TooLong));
        assert_eq!(check_name(&"a".repeat(64)), Ok(()));
    }
}
