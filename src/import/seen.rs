//! Duplicate detection over a whole set of users: which emails (without regard to case),
//! `user_id`s and `username`s were seen, and where first.
//!
//! Keys are kept as 64-bit fingerprints (SipHash-2-4 with fixed keys) with an 8-byte note of
//! where each was first seen: about 20 bytes a key, whatever the key's length. Two different
//! keys share a fingerprint with a probability of about n²/2⁶⁵ (3·10⁻⁶ for ten million).

use std::hash::Hasher;

/// The keys that must be unique among the users of one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The email address, compared without regard to case.
    Email,
    /// The `user_id` (without the `auth0|` prefix).
    UserId,
    /// The `username`.
    Username,
}

impl Key {
    /// The property's name.
    pub fn name(self) -> &'static str {
        match self {
            Key::Email => "email",
            Key::UserId => "user_id",
            Key::Username => "username",
        }
    }
}

type Map = super::lookup::Map<u64>;

/// The keys seen so far, each with the note it was first seen with.
#[derive(Default)]
pub struct Seen {
    maps: [Map; 3],
}

impl Seen {
    /// Records `value` of `key` with `note` unless it was seen before; then returns the note
    /// it was first seen with (and records nothing).
    pub fn insert(&mut self, key: Key, value: &str, note: u64) -> Option<u64> {
        let fingerprint = fingerprint(key, value);
        match self.maps[key as usize].entry(fingerprint) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(note);
                None
            }
        }
    }

    /// The note `value` of `key` was first seen with, if it was.
    pub fn get(&self, key: Key, value: &str) -> Option<u64> {
        self.maps[key as usize]
            .get(&fingerprint(key, value))
            .copied()
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.maps.iter().map(Map::len).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The fingerprint of a key's value; emails are compared in lower case.
fn fingerprint(key: Key, value: &str) -> u64 {
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(0x7573_6572_706f_7274, key as u64);
    if key == Key::Email && value.chars().any(char::is_uppercase) {
        hasher.write(value.to_lowercase().as_bytes());
    } else {
        hasher.write(value.as_bytes());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_ignore_case_and_kinds_are_apart() {
        let mut seen = Seen::default();
        assert_eq!(seen.insert(Key::Email, "Ana@Example.com", 1), None);
        assert_eq!(seen.insert(Key::Email, "ana@example.COM", 2), Some(1));
        assert_eq!(seen.insert(Key::Username, "ana@example.com", 3), None);
        assert_eq!(seen.insert(Key::UserId, "Ana@Example.com", 4), None);
        assert_eq!(seen.insert(Key::UserId, "ana@example.com", 5), None);
        assert_eq!(seen.get(Key::Email, "ANA@EXAMPLE.COM"), Some(1));
        assert_eq!(seen.len(), 4);
    }
}
