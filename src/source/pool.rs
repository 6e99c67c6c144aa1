//! The decoding pool: threads (one per core, at most four) that decode chunks of whole lines
//! into batches and run the scan's work on them; the reader hands chunks out through a
//! [`Dispatch`] and gets the batches back in input order, with a bounded number of chunks
//! in flight (and their bytes reserved from the session's memory pool).

use std::collections::{BTreeMap, VecDeque};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::memory_pool::{MemoryPool, MemoryReservation};
use datafusion::physical_plan::metrics::Time;

use super::batches::{Builder, Decoding, Rows};
use crate::error::{Error, Result};

/// Bytes of NDJSON handed to a decoding thread at a time (cut at a line end).
pub const CHUNK: usize = 2 << 20;

/// How many threads decode (and sort parts there are): one per core, at most four.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
}

/// The bytes of a chunk: copied out of a reader, or a window of a file mapped into memory
/// (unmapped when the chunk is dropped, so memory stays bounded on any file size), or
/// either of them shared with the batches whose text columns view them ([`Bytes::share`]).
pub enum Bytes {
    /// Copied out of a reader.
    Owned(Vec<u8>),
    /// The first bytes of a mapped window.
    Mapped(memmap2::Mmap, usize),
    /// Shared as an Arrow buffer: freed (or unmapped) with the last batch that views it.
    Shared(Buffer),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(bytes) => bytes,
            Bytes::Mapped(map, len) => &map[..*len],
            Bytes::Shared(buffer) => buffer,
        }
    }
}

impl Bytes {
    /// The bytes as an Arrow buffer that batches may hold on to, without a copy: a mapped
    /// window stays mapped until the last holder is dropped.
    pub fn share(&mut self) -> Buffer {
        let shared = match std::mem::replace(self, Bytes::Owned(Vec::new())) {
            Bytes::Owned(bytes) => Buffer::from_vec(bytes),
            Bytes::Mapped(map, len) => match NonNull::new(map.as_ptr().cast_mut()) {
                // SAFETY: the mapping is `map.len()` bytes from its pointer, read-only, and
                // lives as long as its owner, the `Arc` the buffer holds; `len` is within it.
                Some(at) if len <= map.len() => unsafe {
                    Buffer::from_custom_allocation(at, len, Arc::new(map))
                },
                _ => Buffer::from_slice_ref(&map[..len.min(map.len())]),
            },
            Bytes::Shared(buffer) => buffer,
        };
        *self = Bytes::Shared(shared.clone());
        shared
    }
}

/// A run of whole lines of one input, numbered from 1 (the reader knows where it starts).
struct Chunk {
    seq: u64,
    name: Arc<str>,
    input: usize,
    /// Where the chunk starts in its input, in bytes.
    offset: u64,
    bytes: Bytes,
}

/// What a decoding thread made of a chunk: its batches and the line ends it holds, or an
/// error whose line is counted from the chunk's first line.
type Decoded = (u64, Result<(Vec<RecordBatch>, u64)>);

/// What the pool measures and reserves for a scan.
#[derive(Clone, Default)]
pub struct Meters {
    /// Time spent decoding (and running the scan's work), summed over the threads.
    pub decode_time: Option<Time>,
    /// The bytes of chunks in flight, reserved from the session's memory pool.
    pub reservation: Option<Arc<MemoryReservation>>,
    /// The session's memory pool, and how full it may be after a chunk is reserved: past
    /// that, chunks go unreserved, so that the scan never takes the memory that the
    /// operators above it (a sort, the merge of its spilled runs) cannot do without.
    pub room: Option<(Arc<dyn MemoryPool>, usize)>,
}

/// Threads that decode chunks of NDJSON into batches, on all cores.
pub struct Pool {
    work: Option<std::sync::mpsc::SyncSender<Chunk>>,
    done: std::sync::mpsc::Receiver<Decoded>,
    threads: usize,
    /// How the scan's users become batches.
    pub decoding: Arc<Decoding>,
    reservation: Option<Arc<MemoryReservation>>,
    room: Option<(Arc<dyn MemoryPool>, usize)>,
}

impl Pool {
    /// Starts the threads of a scan.
    pub fn new(decoding: Arc<Decoding>, meters: &Meters) -> Pool {
        let threads = cores();
        let (work, queue) = std::sync::mpsc::sync_channel::<Chunk>(threads);
        let queue = Arc::new(Mutex::new(queue));
        let (report, done) = std::sync::mpsc::channel::<Decoded>();
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let report = report.clone();
            let decoding = Arc::clone(&decoding);
            let time = meters.decode_time.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("userport-decode-{i}"))
                .spawn(move || {
                    // A fault for the tests of how a run ends when a thread panics.
                    if std::env::var_os("USERPORT_TEST_PANIC").is_some_and(|v| v == "decode") {
                        panic!("USERPORT_TEST_PANIC=decode");
                    }
                    let mut builder = Builder::new(decoding);
                    loop {
                        let next = queue.lock().map(|q| q.recv());
                        let Ok(Ok(mut chunk)) = next else { return };
                        let timer = time.as_ref().map(Time::timer);
                        let result = decode_chunk(&mut chunk, &mut builder);
                        drop(timer);
                        let seq = chunk.seq;
                        // The chunk's memory goes before the batches travel on (unless their
                        // text columns view it).
                        drop(chunk);
                        if report.send((seq, result)).is_err() {
                            return;
                        }
                    }
                });
            if spawned.is_err() {
                break;
            }
        }
        Pool {
            work: Some(work),
            done,
            threads,
            decoding,
            reservation: meters.reservation.clone(),
            room: meters.room.clone(),
        }
    }

    /// The longest line accepted.
    pub fn max_line(&self) -> usize {
        self.decoding.max_line
    }

    /// Reserves `bytes` for a chunk when the pool has room for it; the bytes reserved.
    fn reserve(&self, bytes: usize) -> usize {
        let Some(reservation) = &self.reservation else {
            return 0;
        };
        let roomy = match &self.room {
            Some((pool, most)) => pool.reserved() + bytes <= *most,
            None => true,
        };
        if roomy && reservation.try_grow(bytes).is_ok() {
            bytes
        } else {
            0
        }
    }

    /// Gives back the reservation of a decoded chunk.
    fn release(&self, bytes: usize) {
        if let Some(r) = &self.reservation {
            r.shrink(bytes.min(r.size()));
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends the threads.
        self.work.take();
    }
}

/// Decodes every line of a chunk (blank lines skipped) into batches; also counts its line
/// ends. Each line is checked as UTF-8 just before it is parsed, while it is in the cache.
/// When the batches hold each user's text, they view it in the chunk's bytes, shared.
fn decode_chunk(chunk: &mut Chunk, builder: &mut Builder) -> Result<(Vec<RecordBatch>, u64)> {
    if builder.holds_texts() {
        builder.view(Some(chunk.bytes.share()));
    }
    let decoded = decode_lines(chunk, builder);
    builder.view(None);
    decoded
}

/// [`decode_chunk`]'s lines.
fn decode_lines(chunk: &Chunk, builder: &mut Builder) -> Result<(Vec<RecordBatch>, u64)> {
    let mut batches = Vec::new();
    let mut emit = |batch: RecordBatch| {
        batches.push(batch);
        true
    };
    builder.set_input(chunk.input);
    let mut users = Rows {
        name: &chunk.name,
        builder,
        emit: &mut emit,
    };
    let bytes: &[u8] = &chunk.bytes;
    let (mut line, mut start) = (0u64, 0usize);
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    for end in ends {
        line += 1;
        let position = chunk.offset + start as u64;
        let text = &bytes[start..end];
        start = end + 1;
        if text.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match simdutf8::basic::from_utf8(text) {
            Ok(text) => users.push_str(text, line, 1, position)?,
            // The slower check says where the bad byte is.
            Err(_) => users.push(text, line, 1, position)?,
        };
    }
    users.flush()?;
    Ok((batches, line - 1))
}

/// Hands chunks of one input to the pool and the decoded batches on, in input order, with
/// a bounded number of chunks in flight.
pub struct Dispatch<'a> {
    pool: &'a Pool,
    emit: &'a mut dyn FnMut(RecordBatch) -> bool,
    name: Arc<str>,
    input: usize,
    pending: BTreeMap<u64, Result<(Vec<RecordBatch>, u64)>>,
    /// The bytes reserved for each chunk in flight, in order.
    sizes: VecDeque<usize>,
    sent: u64,
    next: u64,
    /// The input's line on which the next chunk to hand on starts.
    line: u64,
}

impl<'a> Dispatch<'a> {
    /// A dispatch of input number `input`, named `name`.
    pub fn new(
        name: &str,
        input: usize,
        pool: &'a Pool,
        emit: &'a mut dyn FnMut(RecordBatch) -> bool,
    ) -> Self {
        Dispatch {
            pool,
            emit,
            name: Arc::from(name),
            input,
            pending: BTreeMap::new(),
            sizes: VecDeque::new(),
            sent: 0,
            next: 0,
            line: 1,
        }
    }

    /// Sends the whole lines `bytes`, which start `offset` bytes into the input, to be
    /// decoded; `false` when the consumer left. Waits while as many chunks as twice the
    /// threads are in flight; the chunk's bytes are reserved while the pool has room.
    pub fn send(&mut self, bytes: Bytes, offset: u64) -> Result<bool> {
        let Some(work) = self.pool.work.as_ref() else {
            return Ok(false);
        };
        while self.sent - self.next >= 2 * self.pool.threads as u64 {
            if !self.wait()? {
                return Ok(false);
            }
        }
        let reserved = self.pool.reserve(bytes.len());
        let chunk = Chunk {
            seq: self.sent,
            name: Arc::clone(&self.name),
            input: self.input,
            offset,
            bytes,
        };
        self.sizes.push_back(reserved);
        if work.send(chunk).is_err() {
            return Ok(false);
        }
        self.sent += 1;
        while let Ok((seq, result)) = self.pool.done.try_recv() {
            self.pending.insert(seq, result);
        }
        self.forward()
    }

    /// Waits for one decoded chunk and hands on what is next in order.
    fn wait(&mut self) -> Result<bool> {
        let Ok((seq, result)) = self.pool.done.recv() else {
            return Ok(false);
        };
        self.pending.insert(seq, result);
        self.forward()
    }

    /// Hands on the decoded chunks that are next in order.
    fn forward(&mut self) -> Result<bool> {
        while let Some(result) = self.pending.remove(&self.next) {
            self.next += 1;
            if let Some(size) = self.sizes.pop_front() {
                self.pool.release(size);
            }
            // Decoding threads count lines from their chunk's first one.
            let (batches, lines) = result.map_err(|mut e| {
                if let Error::Input { line, .. } = &mut e {
                    *line += self.line - 1;
                }
                e
            })?;
            self.line += lines;
            for batch in batches {
                if !(self.emit)(batch) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The error for a line longer than the pool's limit that starts after the chunks sent
    /// so far (they are decoded first: an error before it comes first, and they say which
    /// line it is).
    pub fn too_long(mut self) -> Error {
        if let Err(e) = self.drain() {
            return e;
        }
        Error::Input {
            path: self.name.to_string(),
            line: self.line,
            column: 1,
            message: format!(
                "the line is longer than {} bytes (the limit of one user): not an export, or \
                 a corrupt one; --max-line-bytes raises the limit",
                self.pool.max_line()
            ),
        }
    }

    /// Waits for every chunk sent and hands them on; `false` when the consumer left.
    pub fn finish(mut self) -> Result<bool> {
        self.drain()
    }

    fn drain(&mut self) -> Result<bool> {
        while self.next < self.sent {
            if !self.wait()? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Drop for Dispatch<'_> {
    fn drop(&mut self) {
        // Chunks never handed on (the consumer left, an error) give their bytes back.
        for size in self.sizes.drain(..) {
            self.pool.release(size);
        }
    }
}
