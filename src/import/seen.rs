//! Duplicate detection over a whole set of users: which emails (without regard to case),
//! `user_id`s and `username`s were seen, and where first.
//!
//! Keys are kept as 64-bit fingerprints (SipHash-2-4 with fixed keys, the kind of key mixed
//! in) in open-addressed tables for all three kinds, each with the number of the note it was
//! first seen with; a user's keys share one note. About 18 bytes a key and 8 a user, whatever
//! the keys' length. The keys are spread over sixteen tables by their fingerprints' top bits,
//! each grown by half when it is four-fifths full: growing one puts a sixteenth of the keys
//! back, so the slots held twice while a table grows are a sixteenth of them, not all (about
//! 27 MB less at the peak of a million users). Two different keys share a fingerprint with a
//! probability of about n²/2⁶⁵ (3·10⁻⁶ for ten million).

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
    /// Every key.
    pub const ALL: [Key; 3] = [Key::Email, Key::UserId, Key::Username];

    /// The property's name.
    pub fn name(self) -> &'static str {
        match self {
            Key::Email => "email",
            Key::UserId => "user_id",
            Key::Username => "username",
        }
    }
}

/// The keys seen so far, each with the note it was first seen with.
pub struct Seen {
    /// The tables, a fingerprint's in the one its top bits number.
    tables: Vec<Table>,
    /// The notes, each once however many keys were inserted with it in a row.
    notes: Vec<u64>,
    /// How many keys are held.
    len: usize,
}

/// How many tables the keys are spread over (the top four bits of a fingerprint).
const TABLES: usize = 16;

impl Default for Seen {
    fn default() -> Self {
        Seen {
            tables: (0..TABLES).map(|_| Table::default()).collect(),
            notes: Vec::new(),
            len: 0,
        }
    }
}

/// One open-addressed table of fingerprints.
#[derive(Default)]
struct Table {
    /// The fingerprints of the keys, 0 for an empty slot (a fingerprint of 0 is kept as 1).
    prints: Vec<u64>,
    /// For each slot taken, the number of its note in [`Seen::notes`].
    places: Vec<u32>,
    /// How many slots are taken.
    len: usize,
}

impl Seen {
    /// Records `value` of `key` with `note` unless it was seen before; then returns the note
    /// it was first seen with (and records nothing).
    pub fn insert(&mut self, key: Key, value: &str, note: u64) -> Option<u64> {
        let firsts = self.insert_user(&[(key, value)], note);
        firsts.first().map(|&(_, first)| first)
    }

    /// Records the keys of one user (`value` of each `key`) with `note`, unless one of them
    /// was seen before: then records none and gives, for each key seen before, the note it
    /// was first seen with. A note given again in a row is kept once.
    pub fn insert_user(&mut self, keys: &[(Key, &str)], note: u64) -> Vec<(Key, u64)> {
        // A user has three keys at most: their fingerprints are kept without an allocation.
        let mut few = [(Key::Email, 0u64); 3];
        let many: Vec<(Key, u64)>;
        let prints: &[(Key, u64)] = if keys.len() <= few.len() {
            for (slot, &(k, v)) in few.iter_mut().zip(keys) {
                *slot = (k, fingerprint(k, v));
            }
            &few[..keys.len()]
        } else {
            many = keys.iter().map(|&(k, v)| (k, fingerprint(k, v))).collect();
            &many
        };
        self.insert_prints(prints, note)
    }

    /// [`Seen::insert_user`] of keys given by their fingerprints ([`fingerprint`]).
    pub fn insert_prints(&mut self, prints: &[(Key, u64)], note: u64) -> Vec<(Key, u64)> {
        let firsts: Vec<(Key, u64)> = prints
            .iter()
            .filter_map(|&(k, print)| Some((k, self.get_print(print)?)))
            .collect();
        if firsts.is_empty() && !prints.is_empty() {
            if self.notes.last() != Some(&note) {
                self.notes.push(note);
            }
            // More than 2³² notes (users) would not fit a u32: no tenant holds that many.
            let place = (self.notes.len() - 1) as u32;
            for &(_, print) in prints {
                // Each kind of key is fingerprinted apart: a user's keys never meet.
                let table = &mut self.tables[table_of(print)];
                if (table.len + 1) * 5 > table.prints.len() * 4 {
                    table.grow();
                }
                if let Err(free) = table.find(print) {
                    table.prints[free] = print;
                    table.places[free] = place;
                    table.len += 1;
                    self.len += 1;
                }
            }
        }
        firsts
    }

    /// The note `value` of `key` was first seen with, if it was.
    pub fn get(&self, key: Key, value: &str) -> Option<u64> {
        self.get_print(fingerprint(key, value))
    }

    /// [`Seen::get`] of a key given by its fingerprint ([`fingerprint`]).
    pub fn get_print(&self, print: u64) -> Option<u64> {
        let table = &self.tables[table_of(print)];
        let taken = table.find(print).ok()?;
        Some(self.notes[table.places[taken] as usize])
    }

    /// Fetches into the cache where the key of fingerprint `print` is looked for: a hint,
    /// for the keys of a user a few before its turn (the tables outgrow the cache, and
    /// look-ups waiting for memory took half of the time duplicates took).
    pub fn prefetch(&self, print: u64) {
        let table = &self.tables[table_of(print)];
        if let Some(slot) = table.home(print) {
            prefetch(&table.prints[slot]);
            prefetch(&table.places[slot]);
        }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The table a fingerprint is kept in: its top four bits.
fn table_of(print: u64) -> usize {
    (print >> 60) as usize
}

impl Table {
    /// The slot that holds `print` (`Ok`), or the free slot where it would go (`Err`): the
    /// slots from its home on (scaled from the fingerprint's bits below the four that chose
    /// the table, which are uniform), in turn. The table is never full; an empty one (no
    /// slot yet) holds nothing.
    fn find(&self, print: u64) -> Result<usize, usize> {
        let size = self.prints.len();
        let Some(mut slot) = self.home(print) else {
            return Err(0);
        };
        loop {
            match self.prints[slot] {
                0 => return Err(slot),
                p if p == print => return Ok(slot),
                _ => slot = if slot + 1 == size { 0 } else { slot + 1 },
            }
        }
    }

    /// The slot `print`'s search starts at: scaled from the fingerprint's bits below the
    /// four that chose the table, which are uniform. `None` while the table has no slot.
    fn home(&self, print: u64) -> Option<usize> {
        let size = self.prints.len();
        (size > 0).then(|| ((u128::from(print << 4) * size as u128) >> 64) as usize)
    }

    /// Makes the table half as large again (1,024 slots at first) and puts every key back.
    fn grow(&mut self) {
        let size = (self.prints.len() + self.prints.len() / 2).max(1024);
        let prints = std::mem::replace(&mut self.prints, vec![0; size]);
        let places = std::mem::replace(&mut self.places, vec![0; size]);
        for (print, place) in prints.into_iter().zip(places).filter(|(p, _)| *p != 0) {
            let Err(free) = self.find(print) else {
                continue;
            };
            self.prints[free] = print;
            self.places[free] = place;
        }
    }
}

/// Asks the processor to fetch `at` into its caches, without waiting for it.
#[inline]
fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that reads nothing the program sees and never faults;
    // `at` is a reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((at as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// The fingerprint of a key's value; emails are compared in lower case.
pub fn fingerprint(key: Key, value: &str) -> u64 {
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(0x7573_6572_706f_7274, key as u64);
    // An ASCII email (nearly all) is looked at byte by byte.
    let upper = |value: &str| match value.is_ascii() {
        true => value.bytes().any(|b| b.is_ascii_uppercase()),
        false => value.chars().any(char::is_uppercase),
    };
    if key == Key::Email && upper(value) {
        hasher.write(value.to_lowercase().as_bytes());
    } else {
        hasher.write(value.as_bytes());
    }
    // 0 marks an empty slot.
    hasher.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_given_by_fingerprints_are_the_keys_given_by_value() {
        let (mut by_value, mut by_print) = (Seen::default(), Seen::default());
        for n in 0..5_000u64 {
            let keys = [
                (Key::Email, format!("U{}@x.co", n % 4_000)),
                (Key::UserId, format!("{n}")),
            ];
            let keys: Vec<(Key, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let prints: Vec<(Key, u64)> =
                keys.iter().map(|&(k, v)| (k, fingerprint(k, v))).collect();
            // A hint only: it changes nothing.
            prints.iter().for_each(|&(_, p)| by_print.prefetch(p));
            assert_eq!(
                by_print.insert_prints(&prints, n),
                by_value.insert_user(&keys, n)
            );
            let lower = format!("u{}@x.co", n % 4_000);
            let print = fingerprint(Key::Email, &lower);
            assert_eq!(by_print.get_print(print), by_value.get(Key::Email, &lower));
        }
        assert_eq!((by_print.len(), by_value.len()), (8_000, 8_000));
    }

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

    #[test]
    fn a_growing_table_keeps_every_key_and_its_note() {
        let mut seen = Seen::default();
        for n in 0..50_000u64 {
            // Three keys of one user share a note.
            assert_eq!(seen.insert(Key::Email, &format!("u{n}@x.co"), n), None);
            assert_eq!(seen.insert(Key::UserId, &format!("{n}"), n), None);
            assert_eq!(seen.insert(Key::Username, &format!("{n}"), n), None);
        }
        assert_eq!(seen.len(), 150_000);
        assert_eq!(seen.notes.len(), 50_000);
        for n in (0..50_000u64).step_by(997) {
            assert_eq!(
                seen.insert(Key::Email, &format!("U{n}@X.co"), 1 << 50),
                Some(n)
            );
            assert_eq!(seen.get(Key::Username, &format!("{n}")), Some(n));
        }
        assert_eq!(seen.get(Key::UserId, "50000"), None);
        assert_eq!(seen.len(), 150_000);
    }

    #[test]
    fn a_user_is_recorded_whole_or_not_at_all() {
        let mut seen = Seen::default();
        let ana = [
            (Key::Email, "ana@x.co"),
            (Key::UserId, "1"),
            (Key::Username, "ana"),
        ];
        assert_eq!(seen.insert_user(&ana, 10), []);
        // One key taken: the others are not recorded.
        let bob = [
            (Key::Email, "bob@x.co"),
            (Key::UserId, "2"),
            (Key::Username, "ana"),
        ];
        assert_eq!(seen.insert_user(&bob, 11), [(Key::Username, 10)]);
        assert_eq!(seen.get(Key::Email, "bob@x.co"), None);
        let bob = [(Key::Email, "BOB@x.co"), (Key::UserId, "2")];
        assert_eq!(seen.insert_user(&bob, 12), []);
        assert_eq!(seen.get(Key::Email, "bob@x.co"), Some(12));
        assert_eq!(seen.len(), 5);
        for n in 1000..11_000 {
            let id = n.to_string();
            let keys = [(Key::UserId, id.as_str()), (Key::Username, id.as_str())];
            assert_eq!(seen.insert_user(&keys, 100 + n), []);
        }
        assert_eq!(
            seen.insert_user(&[(Key::UserId, "2")], 1),
            [(Key::UserId, 12)]
        );
        assert_eq!(seen.get(Key::Username, "10999"), Some(11_099));
    }
}
