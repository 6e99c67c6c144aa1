//! Where users come from (a file, stdin, bytes arriving from elsewhere), and what their first
//! bytes say they are: gzip, a byte-order mark, a JSON array or lines. Every reader asks
//! [`sniff`]; nothing else looks at those bytes.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A reader that can be taken once (a download, read as it arrives).
pub type OneShot = Arc<std::sync::Mutex<Option<Box<dyn Read + Send>>>>;

/// Where users come from.
#[derive(Clone)]
pub enum Input {
    /// Standard input (`-` on the command line).
    Stdin,
    /// A file.
    Path(PathBuf),
    /// Bytes that arrive from elsewhere (a tenant's export), readable once.
    Reader {
        /// How messages name it.
        name: String,
        /// The reader.
        reader: OneShot,
    },
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Input({self})")
    }
}

impl PartialEq for Input {
    fn eq(&self, other: &Input) -> bool {
        match (self, other) {
            (Input::Stdin, Input::Stdin) => true,
            (Input::Path(a), Input::Path(b)) => a == b,
            (Input::Reader { reader: a, .. }, Input::Reader { reader: b, .. }) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Input {
    /// `-` is stdin, anything else a path.
    pub fn parse(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(arg))
        }
    }

    /// An input that reads `reader` once, named `name` in messages.
    pub fn reader(name: impl Into<String>, reader: Box<dyn Read + Send>) -> Input {
        Input::Reader {
            name: name.into(),
            reader: Arc::new(std::sync::Mutex::new(Some(reader))),
        }
    }

    /// Opens the input for reading (a one-shot reader can be opened once).
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Input::Stdin => Box::new(io::stdin()),
            Input::Path(path) => Box::new(File::open(path)?),
            Input::Reader { reader, .. } => reader
                .lock()
                .map_err(|_| io::Error::other("the reader was poisoned"))?
                .take()
                .ok_or_else(|| io::Error::other("this input can be read only once"))?,
        })
    }

    /// The input's size in bytes when it is a file.
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Path(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            _ => None,
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("-"),
            Input::Path(path) => write!(f, "{}", path.display()),
            Input::Reader { name, .. } => f.write_str(name),
        }
    }
}

/// The gzip magic number.
const GZIP: [u8; 2] = [0x1f, 0x8b];

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the first bytes of an input say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A gzip stream (what it holds is sniffed again once inflated).
    Gzip,
    /// A JSON array of users; `bom` bytes of byte-order mark come first.
    Array {
        /// Length of the byte-order mark (0 or 3).
        bom: usize,
    },
    /// Newline-delimited JSON (or nothing yet); `bom` bytes of byte-order mark come first.
    Lines {
        /// Length of the byte-order mark (0 or 3).
        bom: usize,
    },
}

impl Kind {
    /// Bytes to skip before the users.
    pub fn bom(self) -> usize {
        match self {
            Kind::Gzip => 0,
            Kind::Array { bom } | Kind::Lines { bom } => bom,
        }
    }
}

/// What `head` (the first bytes of an input) holds.
pub fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(&GZIP) {
        return Kind::Gzip;
    }
    let bom = if head.starts_with(BOM) { BOM.len() } else { 0 };
    match head[bom..].iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Kind::Array { bom },
        _ => Kind::Lines { bom },
    }
}

/// Size of the read buffers.
const READ_BUFFER: usize = 1 << 20;

/// `reader`'s bytes, buffered, and inflated when they are gzip (as [`sniff`] tells).
pub fn inflated(reader: Box<dyn Read + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    let mut buffered = BufReader::with_capacity(READ_BUFFER, reader);
    Ok(match sniff(buffered.fill_buf()?) {
        Kind::Gzip => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            GzipErrors(MultiGzDecoder::new(buffered)),
        )),
        _ => Box::new(buffered),
    })
}

/// `bytes` without the byte-order mark they start with, if any.
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    &bytes[sniff(bytes).bom()..]
}

/// A reader that counts the bytes it gives.
pub struct Counted {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
}

impl Counted {
    /// `inner`, adding every byte read to `read`.
    pub fn new(inner: Box<dyn Read + Send>, read: Arc<AtomicU64>) -> Counted {
        Counted { inner, read }
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Names gzip failures as such (a truncated or corrupt stream is an error, never a short read).
pub struct GzipErrors<R>(pub R);

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("gzip stream is truncated or corrupt: {e}"),
            )
        })
    }
}

/// An input's bytes (inflated) in a plain file that can be read at any offset: a file that
/// is not gzipped is read in place; a gzipped file, standard input and a one-shot reader are
/// copied once, inflated, into the run's temporary folder (removed with it). Offsets into it
/// are the positions the readers give users (see [`super::batches::ordinal`]).
pub struct Plain {
    /// The plain bytes, open for reading at offsets.
    pub file: File,
    /// The copy, when the input was not a plain file (removed when dropped).
    copy: Option<tempfile::NamedTempFile>,
    /// How messages name the input.
    name: String,
    /// What the plain bytes hold (lines or an array; never gzip).
    kind: Kind,
}

/// The bytes [`Plain::open`] looks at to tell what a file holds.
const PLAIN_HEAD: usize = 1 << 16;

impl Plain {
    /// The bytes of `input` as a plain file; a read error names the input.
    pub fn open(input: &Input) -> crate::error::Result<Plain> {
        let name = input.to_string();
        let read_error = super::batches::read_error(&name);
        // A regular file that is not gzipped is read in place. Anything else is opened once
        // only (a named pipe gives its bytes to one reader), to be copied.
        if let Input::Path(path) = input
            && std::fs::metadata(path).is_ok_and(|m| m.is_file())
        {
            let file = File::open(path).map_err(&read_error)?;
            let mut plain = Plain {
                file,
                copy: None,
                name: name.clone(),
                kind: Kind::Lines { bom: 0 },
            };
            let mut head = vec![0u8; PLAIN_HEAD];
            let n = plain.read_at(&mut head, 0).map_err(&read_error)?;
            plain.kind = sniff(&head[..n]);
            if plain.kind != Kind::Gzip {
                return Ok(plain);
            }
        }
        let dir = crate::temp::spill_dir().unwrap_or_else(std::env::temp_dir);
        let mut copy = tempfile::Builder::new()
            .prefix("plain-")
            .tempfile_in(&dir)
            .map_err(|source| crate::error::Error::Write {
                path: dir.display().to_string(),
                source,
            })?;
        let mut inflated = inflated(input.open().map_err(&read_error)?).map_err(&read_error)?;
        let kind = sniff(inflated.fill_buf().map_err(&read_error)?);
        if kind == Kind::Gzip {
            return Err(crate::error::Error::usage(
                name.clone(),
                "holds a gzip stream inside a gzip stream: inflate it once first",
            ));
        }
        io::copy(&mut inflated, copy.as_file_mut())
            .and_then(|_| std::io::Write::flush(copy.as_file_mut()))
            .map_err(&read_error)?;
        let file = copy.reopen().map_err(&read_error)?;
        Ok(Plain {
            file,
            copy: Some(copy),
            name: name.clone(),
            kind,
        })
    }

    /// The input to scan for the same users at the same positions: the input itself when it
    /// is read in place, else its copy, named as the input in messages.
    pub fn input(&self, input: &Input) -> io::Result<Input> {
        Ok(match &self.copy {
            None => input.clone(),
            Some(copy) => Input::reader(self.name.clone(), Box::new(copy.reopen()?)),
        })
    }

    /// How messages name the input.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the bytes are a JSON array of users (else lines).
    pub fn is_array(&self) -> bool {
        matches!(self.kind, Kind::Array { .. })
    }

    /// Reads `buffer.len()` bytes at `offset`, or fewer at the end of the file; returns how
    /// many were read.
    pub fn read_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buffer.len() {
            match read_at(&self.file, &mut buffer[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buffer, offset)
}

#[cfg(not(unix))]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::Seek;
    let mut file = file;
    file.seek(io::SeekFrom::Start(offset))?;
    file.read(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_gzip_marks_arrays_and_lines() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Kind::Gzip);
        assert_eq!(sniff(b"\xEF\xBB\xBF [{}]"), Kind::Array { bom: 3 });
        assert_eq!(sniff(b"\n\t[ {}]"), Kind::Array { bom: 0 });
        assert_eq!(sniff(b"\xEF\xBB\xBF{\"a\":1}\n"), Kind::Lines { bom: 3 });
        assert_eq!(sniff(b""), Kind::Lines { bom: 0 });
    }

    #[cfg(unix)]
    #[test]
    fn plain_files_are_read_in_place_and_pipes_and_gzip_copied_whole() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text = b"{\"user_id\":\"a\"}\n{\"user_id\":\"b\"}\n";
        let plain = dir.path().join("users.ndjson");
        std::fs::write(&plain, text).unwrap();
        let gz = dir.path().join("users.ndjson.gz");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap();
        // A named pipe: its first bytes must not be lost to a look at them.
        let fifo = dir.path().join("pipe");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
        };
        for path in [&plain, &gz, &fifo] {
            let input = Input::Path(path.clone());
            let opened = Plain::open(&input).unwrap();
            assert_eq!(opened.copy.is_some(), path != &plain, "{}", path.display());
            let mut back = vec![0u8; 64];
            let n = opened.read_at(&mut back, 0).unwrap();
            assert_eq!(&back[..n], text, "{}", path.display());
            let mut second = vec![0u8; 3];
            assert_eq!(opened.read_at(&mut second, 16).unwrap(), 3);
            assert_eq!(&second, b"{\"u");
            assert_eq!(opened.name(), path.display().to_string());
            assert!(!opened.is_array());
        }
        writer.join().unwrap();
        let array = dir.path().join("users.json");
        std::fs::write(&array, b"\xEF\xBB\xBF\n [{\"user_id\":\"a\"}]").unwrap();
        assert!(Plain::open(&Input::Path(array)).unwrap().is_array());
    }
}
