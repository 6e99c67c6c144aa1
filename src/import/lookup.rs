//! NDJSON lines found again by key, in bounded memory: each key of each line is kept as a
//! 64-bit fingerprint (SipHash-2-4 with fixed keys) pointing at the line's place in the
//! file, and a lookup reads the line back and lets the caller check that it really holds the
//! key. About 20 bytes a key and 8 a line, whatever the lines hold; a gzipped file is
//! inflated once into the run's temporary folder so that its lines can be read at random.
//!
//! `prepare --hashes` finds a profile's password hash this way, and `migrate` the target's
//! user of a source user.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufRead;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::source::input::Plain;

/// A hasher for keys that are fingerprints already.
#[derive(Default)]
pub struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by 64-bit fingerprints (which need no more hashing).
pub type Map<V> = HashMap<u64, V, BuildHasherDefault<Identity>>;

/// Bits of a line's place that hold its length (lines up to 16 MiB; longer ones are refused).
const LENGTH_BITS: u32 = 24;

/// The lines of one or more NDJSON files, indexed by keys of several kinds.
pub struct Lines {
    /// Per file: how messages name it, and the plain file read back.
    files: Vec<Plain>,
    /// Per entry: its offset, its file number and length packed, and its line number.
    entries: Vec<(u64, u32, u32)>,
    /// Fingerprint of (kind, key) → the first entry with it.
    first: Map<u32>,
    /// More entries of a fingerprint held by several (the same key on several lines, or two
    /// keys that share a fingerprint).
    more: Map<Vec<u32>>,
}

/// One line as read back.
pub struct Line {
    /// The entry's number (0-based, across the files).
    pub entry: u32,
    /// The file it is in, as messages name it.
    pub file: String,
    /// Its 1-based line number.
    pub line: u32,
    /// Its bytes, without the line end.
    pub bytes: Vec<u8>,
}

impl Lines {
    /// Reads `paths` line by line; `keys` gives the keys of each non-blank line (kind
    /// number, key) or an error message for a line that is not what it should be (reported
    /// with the file and line).
    pub fn index(
        paths: &[PathBuf],
        mut keys: impl FnMut(&[u8], &mut Vec<(u8, String)>) -> std::result::Result<(), String>,
    ) -> Result<Lines> {
        let mut lines = Lines {
            files: Vec::new(),
            entries: Vec::new(),
            first: Map::default(),
            more: Map::default(),
        };
        let mut found = Vec::new();
        for path in paths {
            let name = path.display().to_string();
            let plain = Plain::open(&crate::source::Input::Path(path.clone()))?;
            let number = lines.files.len() as u32;
            let mut reader = std::io::BufReader::with_capacity(1 << 20, &plain.file);
            let mut buffer = Vec::new();
            let (mut offset, mut line_no) = (0u64, 0u32);
            loop {
                buffer.clear();
                let read = reader
                    .read_until(b'\n', &mut buffer)
                    .map_err(|source| Error::Read {
                        path: name.clone(),
                        source,
                    })?;
                if read == 0 {
                    break;
                }
                line_no += 1;
                let start = offset;
                offset += read as u64;
                let mut text = &buffer[..];
                if line_no == 1 {
                    text = crate::source::input::without_bom(text);
                }
                let skipped = read - text.len();
                while let [rest @ .., b'\n' | b'\r'] = text {
                    text = rest;
                }
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let at_line = |message: String| Error::Input {
                    path: name.clone(),
                    line: u64::from(line_no),
                    column: 1,
                    message,
                };
                if text.len() >= 1 << LENGTH_BITS || number >= 1 << 8 {
                    return Err(at_line("the line is too long (16 MiB at most)".into()));
                }
                found.clear();
                keys(text, &mut found).map_err(at_line)?;
                let entry = lines.entries.len() as u32;
                let packed = (number << LENGTH_BITS) | text.len() as u32;
                lines
                    .entries
                    .push((start + skipped as u64, packed, line_no));
                for (kind, key) in &found {
                    let print = fingerprint(*kind, key);
                    match lines.first.entry(print) {
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            slot.insert(entry);
                        }
                        std::collections::hash_map::Entry::Occupied(_) => {
                            lines.more.entry(print).or_default().push(entry);
                        }
                    }
                }
            }
            lines.files.push(plain);
        }
        Ok(lines)
    }

    /// How many lines are indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no line is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries that may hold `key` of `kind` (read each with [`Lines::read`] and check).
    pub fn candidates(&self, kind: u8, key: &str) -> impl Iterator<Item = u32> + '_ {
        let print = fingerprint(kind, key);
        let first = self.first.get(&print).copied();
        let more = self.more.get(&print).into_iter().flatten().copied();
        first.into_iter().chain(more)
    }

    /// Reads entry `entry` back.
    pub fn read(&self, entry: u32) -> Result<Line> {
        let (offset, packed, line) = self.entries[entry as usize];
        let number = (packed >> LENGTH_BITS) as usize;
        let length = (packed & ((1 << LENGTH_BITS) - 1)) as usize;
        let plain = &self.files[number];
        let name = plain.name().to_string();
        let mut bytes = vec![0; length];
        match plain.read_at(&mut bytes, offset) {
            Ok(n) if n == length => {}
            Ok(_) => {
                return Err(Error::Read {
                    path: name,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
            Err(source) => return Err(Error::Read { path: name, source }),
        }
        Ok(Line {
            entry,
            file: name,
            line,
            bytes,
        })
    }
}

/// The fingerprint of a key of a kind.
fn fingerprint(kind: u8, key: &str) -> u64 {
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(0x6c69_6e65_7320_6b65, u64::from(kind));
    hasher.write(key.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;

    #[test]
    fn lines_are_found_by_their_keys_in_plain_and_gzipped_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.ndjson");
        std::fs::write(
            &plain,
            "{\"id\":\"a\"}\n\n{\"id\":\"b\"}\r\n{\"id\":\"a\"}\n",
        )
        .unwrap();
        let gz = dir.path().join("b.ndjson.gz");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        encoder.write_all(b"{\"id\":\"c\"}\n").unwrap();
        encoder.finish().unwrap();
        let lines = Lines::index(&[plain, gz], |line, keys| {
            let value: serde_json::Value =
                serde_json::from_slice(line).map_err(|e| e.to_string())?;
            keys.push((0, value["id"].as_str().unwrap().to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(lines.len(), 4);
        let a: Vec<u32> = lines.candidates(0, "a").collect();
        assert_eq!(a.len(), 2);
        let second = lines.read(a[1]).unwrap();
        assert_eq!(second.line, 4);
        assert_eq!(second.bytes, b"{\"id\":\"a\"}");
        let c = lines
            .read(lines.candidates(0, "c").next().unwrap())
            .unwrap();
        assert_eq!((c.line, c.bytes.as_slice()), (1, &b"{\"id\":\"c\"}"[..]));
        assert!(c.file.ends_with("b.ndjson.gz"));
        assert_eq!(
            lines
                .read(lines.candidates(0, "b").next().unwrap())
                .unwrap()
                .line,
            3
        );
        assert!(lines.candidates(1, "a").next().is_none());
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.ndjson");
        std::fs::write(&path, "{}\nnot json\n").unwrap();
        let error = Lines::index(&[path], |line, _| {
            serde_json::from_slice::<serde_json::Value>(line)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("h.ndjson:2:1"), "{error}");
    }
}
