//! Where a sink's bytes go: stdout, or a file that appears whole or not at all (written to a
//! temporary file beside it and renamed when complete), gzipped when asked.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// The writer a sink writes into.
pub enum Writer {
    /// Standard output.
    Stdout(BufWriter<io::Stdout>),
    /// A temporary file, written by a thread of its own.
    File(Background<File>),
    /// A gzip stream into a temporary file or stdout.
    Gzip(GzEncoder<Box<Writer>>),
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Writer::Stdout(w) => w.write(buf),
            Writer::File(w) => w.write(buf),
            Writer::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Writer::Stdout(w) => w.flush(),
            Writer::File(w) => w.flush(),
            Writer::Gzip(w) => w.flush(),
        }
    }
}

impl Writer {
    /// Ends a gzip stream and flushes everything.
    fn close(self) -> io::Result<()> {
        match self {
            Writer::Gzip(gz) => gz.finish()?.close(),
            Writer::File(w) => match w.finish()?.sync_all() {
                // Pipes and devices cannot be synced (EINVAL): there is nothing to wait for.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
                other => other,
            },
            Writer::Stdout(mut w) => w.flush(),
        }
    }
}

/// Bytes a [`Background`] writer gathers before handing them to its thread.
const BACKGROUND_BUFFER: usize = 1 << 20;

/// Bytes written to a file between two nudges of its [`Flusher`].
const FLUSH_EVERY: usize = 32 << 20;

/// A thread that puts a file's bytes on the disk while the rest is being written: nudged
/// every [`FLUSH_EVERY`] bytes, it syncs the file's data, so the sync before the rename
/// waits only for the last stretch instead of the whole file (the disk works while the
/// cores render). The thread starts at the first nudge: small files never have one.
pub struct Flusher(Flushing);

/// Where a [`Flusher`] stands.
enum Flushing {
    /// Not nudged yet: the handle its thread will sync.
    Idle(File),
    /// Its thread runs: the nudges it waits for, and the thread.
    Running {
        nudge: std::sync::mpsc::SyncSender<()>,
        thread: std::thread::JoinHandle<io::Result<()>>,
    },
}

impl Flusher {
    /// A flusher for `file` (a handle of its own on the same file).
    pub fn new(file: &File) -> io::Result<Flusher> {
        Ok(Flusher(Flushing::Idle(file.try_clone()?)))
    }

    /// Asks for a sync unless one is waiting already; never blocks.
    fn nudge(&mut self) -> io::Result<()> {
        if let Flushing::Idle(file) = &self.0 {
            // The thread gets a handle of its own; the idle one closes as the state changes.
            let file = file.try_clone()?;
            // One nudge waiting is enough: a sync covers everything written before it.
            let (nudge, nudges) = std::sync::mpsc::sync_channel::<()>(1);
            let thread = std::thread::Builder::new()
                .name("userport-flush".into())
                .spawn(move || {
                    for () in nudges {
                        file.sync_data()?;
                    }
                    Ok(())
                })?;
            self.0 = Flushing::Running { nudge, thread };
        }
        if let Flushing::Running { nudge, .. } = &self.0 {
            let _ = nudge.try_send(());
        }
        Ok(())
    }

    /// Waits for the sync under way: its error, if one failed (a failed sync is reported
    /// once, so it must not be lost before the final one).
    fn finish(self) -> io::Result<()> {
        match self.0 {
            Flushing::Idle(_) => Ok(()),
            Flushing::Running { nudge, thread } => {
                // The thread ends once the nudges do.
                drop(nudge);
                thread
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("the flushing thread stopped")))
            }
        }
    }
}

/// A writer whose writes happen on a thread of its own: the caller fills a buffer, the
/// thread copies full buffers into `W` (on a slow disk the system calls cost as much as
/// rendering the report), and the buffers come back to be filled again.
pub struct Background<W: Write + Send + 'static> {
    buf: Vec<u8>,
    full: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> Background<W> {
    /// Starts the thread that writes into `inner`, nudging `flusher` as the bytes go out.
    pub fn new(mut inner: W, mut flusher: Option<Flusher>) -> Self {
        let (full, work) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let (recycle, empty) = std::sync::mpsc::channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("userport-write".into())
            .spawn(move || {
                let mut unflushed = 0;
                for mut buf in work {
                    inner.write_all(&buf)?;
                    unflushed += buf.len();
                    if unflushed >= FLUSH_EVERY {
                        unflushed = 0;
                        if let Some(flusher) = &mut flusher {
                            flusher.nudge()?;
                        }
                    }
                    buf.clear();
                    // The writer may be gone already (it stops after an error).
                    let _ = recycle.send(buf);
                }
                inner.flush()?;
                if let Some(flusher) = flusher {
                    flusher.finish()?;
                }
                Ok(inner)
            })
            .expect("spawning the writer thread");
        Background {
            buf: Vec::with_capacity(BACKGROUND_BUFFER),
            full: Some(full),
            empty,
            thread: Some(thread),
        }
    }

    /// Hands the buffer to the thread; on failure, the thread's error.
    fn send(&mut self) -> io::Result<()> {
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BACKGROUND_BUFFER));
        let buf = std::mem::replace(&mut self.buf, next);
        let sent = match &self.full {
            Some(full) => full.send(buf).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped: its error says why.
        Err(match self.join() {
            Err(e) => e,
            Ok(_) => io::Error::other("the writing thread stopped"),
        })
    }

    /// Closes the channel and waits for the thread: the inner writer, or why it stopped.
    fn join(&mut self) -> io::Result<W> {
        self.full = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            _ => Err(io::Error::other("the writing thread stopped")),
        }
    }

    /// Writes what is left, waits for the thread and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl<W: Write + Send + 'static> Write for Background<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > BACKGROUND_BUFFER && !self.buf.is_empty() {
            self.send()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Buffers reach the file in order; `finish` waits for all of them.
        Ok(())
    }
}

/// Writes `bytes` to `path` (`-` is stdout) whole or not at all.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let (destination, mut writer) = Destination::create(Some(path), false)?;
    writer.write_all(bytes).map_err(|source| Error::Write {
        path: destination.name(),
        source,
    })?;
    destination.commit(writer)
}

/// Writes `value` as pretty JSON to `path`, whole or not at all (state files, plans,
/// reports).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("{} does not serialize: {e}", path.display())))?;
    text.push(b'\n');
    write_whole(path, &text)
}

/// Reads back a JSON file that [`write_json`] wrote (`None` when there is none); a file
/// that is not `what` is an error naming its line and column.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Input {
                path: path.display().to_string(),
                line: e.line() as u64,
                column: e.column() as u64,
                message: format!("not {what}: {e}"),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// An output being written: stdout, a device or pipe written in place, or a temporary file
/// to be renamed to its path.
pub struct Destination {
    path: Option<PathBuf>,
    temp: Option<NamedTempFile>,
    /// The temporary file's entry in the register of what a signal removes.
    _tracked: Option<crate::temp::Tracked>,
}

/// What `-o PATH` names.
enum Kind {
    /// Nothing yet, or a regular file (replaced whole by a rename).
    File,
    /// A FIFO, a character device or a socket: written in place, streamed.
    Stream,
}

fn kind_of(path: &Path) -> Kind {
    // `/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`: whatever they lead to, in place.
    if path.starts_with("/dev") || path.starts_with("/proc") {
        return Kind::Stream;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let t = meta.file_type();
            if t.is_fifo() || t.is_char_device() || t.is_socket() || t.is_block_device() {
                return Kind::Stream;
            }
        }
    }
    Kind::File
}

impl Destination {
    /// Opens `path` (stdout when `None` or `-`), gzipped when `gzip`. A regular file is
    /// written to a temporary file beside it (new files get the umask's permissions, a
    /// replaced file keeps its mode) and renamed when complete; a FIFO or a device
    /// (`/dev/stdout`, a named pipe) is written in place.
    pub fn create(path: Option<&Path>, gzip: bool) -> Result<(Destination, Writer)> {
        let path = path.filter(|p| p.as_os_str() != "-");
        let (destination, writer) = match path {
            None => (
                Destination {
                    path: None,
                    temp: None,
                    _tracked: None,
                },
                Writer::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
            ),
            Some(path) => {
                let write_error = |source| Error::Write {
                    path: path.display().to_string(),
                    source,
                };
                if path.is_dir() {
                    return Err(write_error(io::Error::new(
                        io::ErrorKind::IsADirectory,
                        "is a directory",
                    )));
                }
                if let Kind::Stream = kind_of(path) {
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(write_error)?;
                    return Ok((
                        Destination {
                            path: Some(path.to_path_buf()),
                            temp: None,
                            _tracked: None,
                        },
                        wrap(Writer::File(Background::new(file, None)), gzip),
                    ));
                }
                // A symbolic link stays: the file it leads to is replaced.
                let resolved = std::fs::symlink_metadata(path)
                    .ok()
                    .filter(|m| m.file_type().is_symlink())
                    .and_then(|_| std::fs::canonicalize(path).ok());
                let path = resolved.as_deref().unwrap_or(path);
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                // A new file gets 0666 less the umask; a replaced one keeps its mode.
                let mut builder = crate::temp::builder(dir, 0o666);
                builder.suffix(".partial");
                let (temp, tracked) = crate::temp::Tracked::create(
                    || builder.tempfile_in(dir),
                    |temp: &NamedTempFile| temp.path(),
                )
                .map_err(write_error)?;
                if let Ok(meta) = std::fs::metadata(path)
                    && meta.is_file()
                {
                    std::fs::set_permissions(temp.path(), meta.permissions())
                        .map_err(write_error)?;
                }
                let file = temp.reopen().map_err(write_error)?;
                let flusher = Flusher::new(&file).map_err(write_error)?;
                (
                    Destination {
                        path: Some(path.to_path_buf()),
                        temp: Some(temp),
                        _tracked: Some(tracked),
                    },
                    Writer::File(Background::new(file, Some(flusher))),
                )
            }
        };
        Ok((destination, wrap(writer, gzip)))
    }

    /// The output's name for messages (`-` for stdout).
    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "-".to_string(), |p| p.display().to_string())
    }

    /// Finishes `writer` and, for a file, renames the temporary file to the output's path.
    /// Dropping a destination without committing it removes the temporary file.
    pub fn commit(self, writer: Writer) -> Result<()> {
        let name = self.name();
        let write_error = |source| Error::Write {
            path: name.clone(),
            source,
        };
        writer.close().map_err(write_error)?;
        if let (Some(temp), Some(path)) = (self.temp, self.path) {
            temp.persist(&path).map_err(|e| write_error(e.error))?;
        }
        Ok(())
    }
}

/// `writer`, gzipped when `gzip`.
fn wrap(writer: Writer, gzip: bool) -> Writer {
    if gzip {
        Writer::Gzip(GzEncoder::new(Box::new(writer), Compression::default()))
    } else {
        writer
    }
}

/// A reader that copies what it reads into a file, written whole or not at all: the file
/// is put in place when the reader reaches its end, and left out if reading fails or stops
/// early (a download kept as it arrives).
pub struct Tee<R> {
    inner: R,
    out: Option<(Destination, Writer)>,
}

impl<R: io::Read> Tee<R> {
    /// `inner`, copied into `path`.
    pub fn new(inner: R, path: &Path) -> Result<Tee<R>> {
        Ok(Tee {
            inner,
            out: Some(Destination::create(Some(path), false)?),
        })
    }
}

impl<R: io::Read> io::Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if let Some((destination, writer)) = self.out.take() {
                destination
                    .commit(writer)
                    .map_err(|e| io::Error::other(e.to_string()))?;
            }
        } else if let Some((_, writer)) = self.out.as_mut() {
            writer.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_longer_than_a_flush_stretch_arrives_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        let (destination, mut writer) = Destination::create(Some(&path), false).unwrap();
        // Three flush stretches and a bit, in pieces of every size around the buffer's.
        let piece: Vec<u8> = (0..=255u8).cycle().take(BACKGROUND_BUFFER + 7).collect();
        let mut written = 0;
        let mut i = 0;
        while written < 3 * FLUSH_EVERY + 12345 {
            let take = (i * 131_071) % piece.len() + 1;
            writer.write_all(&piece[..take]).unwrap();
            written += take;
            i += 1;
        }
        assert!(!path.exists(), "the file appears only when committed");
        destination.commit(writer).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), written);
        // Every piece starts at 0 and counts up: each byte is one more than the last, or 0.
        assert!(
            bytes
                .windows(2)
                .all(|w| w[1] == w[0].wrapping_add(1) || w[1] == 0)
        );
    }
}
