//! Inputs → Arrow: the start of the flow. Opens export files (NDJSON, gzipped or not, or a
//! JSON array of users; `-` is stdin), decodes every user into the canonical schema and hands
//! the record batches on as one stream, inputs one after another, users in input order.

pub mod decode;
pub mod schema;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::compute::BatchCoalescer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use flate2::bufread::MultiGzDecoder;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use decode::BatchBuilder;

/// Users per record batch.
pub const BATCH_ROWS: usize = 8192;

/// Size of the read buffers.
const READ_BUFFER: usize = 1 << 20;

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

/// A reader that counts the bytes it gives.
struct Counted {
    inner: Box<dyn Read + Send>,
    read: Arc<std::sync::atomic::AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// What a plan does to each decoded batch (a filter, a projection), run by the decoding
/// threads so that it takes all cores.
pub type TransformFn =
    dyn Fn(RecordBatch) -> std::result::Result<RecordBatch, DataFusionError> + Send + Sync;

/// A [`TransformFn`] and the schema of the batches it gives.
#[derive(Clone)]
pub struct Transform {
    /// The work.
    pub run: Arc<TransformFn>,
    /// The schema of its batches.
    pub schema: SchemaRef,
}

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transform({} columns)", self.schema.fields().len())
    }
}

/// The users of one or more inputs, as a stream of record batches of the canonical schema
/// (or of its transform's schema).
#[derive(Debug, Clone)]
pub struct Source {
    inputs: Vec<Input>,
    schema: SchemaRef,
    read: Arc<std::sync::atomic::AtomicU64>,
    mask: u64,
    transform: Option<Transform>,
    /// Whether small batches (a filter's) are gathered into batches of [`BATCH_ROWS`].
    coalesce: bool,
    /// Whether a last column numbers the users in input order, from 1.
    numbered: bool,
    /// The longest line (or user of a JSON array) read, in bytes.
    max_line: usize,
}

/// The longest line (one user) read by default: 64 MiB. A longer one is an error naming its
/// line, found in bounded memory (a file that is not NDJSON, a gzip bomb of one line).
pub const DEFAULT_MAX_LINE: usize = 64 << 20;

/// Checks that every file input can be opened and returns the source over all of them.
pub fn open(inputs: Vec<Input>) -> Result<Source> {
    for input in &inputs {
        if let Input::Path(path) = input {
            File::open(path).map_err(|source| Error::Read {
                path: input.to_string(),
                source,
            })?;
        }
    }
    Ok(Source {
        inputs,
        schema: schema::user_schema(),
        read: Arc::default(),
        mask: decode::ALL_COLUMNS,
        transform: None,
        coalesce: false,
        numbered: false,
        max_line: DEFAULT_MAX_LINE,
    })
}

impl Source {
    /// The same source refusing lines (users) longer than `bytes`.
    pub fn with_max_line(&self, bytes: usize) -> Source {
        Source {
            max_line: bytes,
            ..self.clone()
        }
    }

    /// The same source filling only the columns at `indices` of the schema (the others stay
    /// null and their values are skipped, not decoded).
    pub fn with_columns(&self, indices: &[usize]) -> Source {
        let extra = self.schema.fields().len() - 1;
        let mask = indices.iter().fold(0u64, |mask, &i| {
            mask | if i == extra {
                1 << decode::EXTRA_BIT
            } else {
                1 << i
            }
        });
        Source {
            mask,
            ..self.clone()
        }
    }

    /// The same source with `transform` run on every batch by the decoding threads; its
    /// batches are of the transform's schema, and batches left without rows are dropped.
    pub fn with_transform(&self, transform: Transform) -> Source {
        Source {
            schema: transform.schema.clone(),
            transform: Some(transform),
            ..self.clone()
        }
    }

    /// The same source handing on batches of [`BATCH_ROWS`] rows (gathered in order by the
    /// reader thread), for operators that work better on full batches than on a filter's
    /// small ones (sorts).
    pub fn coalesced(&self) -> Source {
        Source {
            coalesce: true,
            ..self.clone()
        }
    }

    /// The same source with a last column that numbers the users in input order from 1 (as
    /// SQL's `row_number() OVER ()`): `schema` is the batches' schema with that column.
    pub fn numbered(&self, schema: SchemaRef) -> Source {
        Source {
            schema,
            numbered: true,
            ..self.clone()
        }
    }

    /// The source as `parts` partitions fed by one reader: batch `i` (in input order) goes to
    /// partition `i % parts`, so that operators over each (sorts) run on all cores.
    pub fn split(&self, parts: usize) -> Vec<Arc<dyn PartitionStream>> {
        let shared = Arc::new(Shared {
            source: self.clone(),
            parts,
            receivers: std::sync::Mutex::new(None),
        });
        (0..parts)
            .map(|index| {
                Arc::new(Part {
                    shared: Arc::clone(&shared),
                    index,
                }) as Arc<dyn PartitionStream>
            })
            .collect()
    }

    /// The transform run on every batch, if any.
    pub fn transform(&self) -> Option<&Transform> {
        self.transform.as_ref()
    }

    /// The bytes read so far from the inputs (before decompression), for progress bars.
    pub fn bytes_read(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.read.clone()
    }

    /// The size of the inputs when all are files (before decompression).
    pub fn total_bytes(&self) -> Option<u64> {
        self.inputs
            .iter()
            .map(|input| match input {
                Input::Path(path) => std::fs::metadata(path).ok().map(|m| m.len()),
                _ => None,
            })
            .sum()
    }

    /// The canonical schema of the batches.
    pub fn schema_ref(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Reads every input on a thread of its own and returns the batches as a stream. The
    /// reader stops when the stream is dropped.
    pub fn stream(&self) -> SendableRecordBatchStream {
        let (tx, rx) = mpsc::channel::<Result<RecordBatch, DataFusionError>>(2);
        self.start(vec![tx]);
        self.receive(rx)
    }

    /// A stream of the batches that come through `rx`.
    fn receive(&self, rx: Receiver) -> SendableRecordBatchStream {
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }

    /// Starts the reader thread, which sends batch `i` to `senders[i % senders.len()]` (an
    /// error to the first) and stops when they are all gone.
    fn start(&self, senders: Vec<Sender>) {
        let inputs = self.inputs.clone();
        let read = self.read.clone();
        let mask = self.mask;
        let max_line = self.max_line;
        let transform = self.transform.clone();
        // The batches before they are numbered: the transform's, or the canonical ones.
        let decoded = self
            .transform
            .as_ref()
            .map_or_else(schema::user_schema, |t| t.schema.clone());
        let mut coalescer = self
            .coalesce
            .then(|| BatchCoalescer::new(decoded, BATCH_ROWS));
        let numbered = self.numbered.then(|| self.schema.clone());
        std::thread::Builder::new()
            .name("userport-read".into())
            .spawn(move || {
                let mut builder = Builder::new(mask, transform.clone());
                let (mut sent, mut rows) = (0usize, 0u64);
                let mut open = vec![true; senders.len()];
                // Errors go to the first partition: the plan fails with them, whichever
                // partition it was reading.
                let tx = &senders[0];
                // Numbers the rows (in input order), then hands the batch to its partition;
                // `false` once every partition's consumer is gone.
                let mut send = |batch: RecordBatch| -> bool {
                    let batch = match &numbered {
                        Some(schema) => {
                            let n = batch.num_rows() as u64;
                            let numbers = datafusion::arrow::array::UInt64Array::from_iter_values(
                                rows + 1..=rows + n,
                            );
                            rows += n;
                            let mut columns = batch.columns().to_vec();
                            columns.push(Arc::new(numbers));
                            match RecordBatch::try_new(schema.clone(), columns) {
                                Ok(batch) => batch,
                                Err(e) => {
                                    let _ = tx.blocking_send(Err(e.into()));
                                    return false;
                                }
                            }
                        }
                        None => batch,
                    };
                    let part = sent % senders.len();
                    sent += 1;
                    if open[part] && senders[part].blocking_send(Ok(batch)).is_err() {
                        open[part] = false;
                    }
                    open.iter().any(|&o| o)
                };
                let mut sink = |batch: RecordBatch| match coalescer.as_mut() {
                    None => (send)(batch),
                    Some(coalescer) => {
                        if let Err(e) = coalescer.push_batch(batch) {
                            let _ = tx.blocking_send(Err(e.into()));
                            return false;
                        }
                        std::iter::from_fn(|| coalescer.next_completed_batch()).all(&mut send)
                    }
                };
                let pool = Pool::new(mask, transform, max_line);
                for input in &inputs {
                    match read_input(input, &read, &mut builder, &mut sink, &pool) {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(into_datafusion(e)));
                            return;
                        }
                    }
                }
                match builder.take() {
                    Ok(Some(batch)) => {
                        if !sink(batch) {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(into_datafusion(e)));
                        return;
                    }
                }
                if let Some(coalescer) = coalescer.as_mut() {
                    if let Err(e) = coalescer.finish_buffered_batch() {
                        let _ = tx.blocking_send(Err(e.into()));
                        return;
                    }
                    std::iter::from_fn(|| coalescer.next_completed_batch()).all(&mut send);
                }
            })
            .expect("spawning the reader thread");
    }
}

/// An error for a stream of batches: DataFusion's own as it was (a plan's expression that
/// failed in a decoding thread reads as it would from DataFusion), ours wrapped.
fn into_datafusion(e: Error) -> DataFusionError {
    match e {
        Error::DataFusion(e) => e,
        e => DataFusionError::External(Box::new(e)),
    }
}

/// The channel a reader thread sends batches through.
type Sender = mpsc::Sender<Result<RecordBatch, DataFusionError>>;
/// The other end of a [`Sender`].
type Receiver = mpsc::Receiver<Result<RecordBatch, DataFusionError>>;

/// What the partitions of a split source share: the reader starts when the first partition
/// is read, and each partition takes its own end of the channels.
#[derive(Debug)]
struct Shared {
    source: Source,
    parts: usize,
    receivers: std::sync::Mutex<Option<Vec<Option<Receiver>>>>,
}

/// One partition of a split source (see [`Source::split`]).
#[derive(Debug)]
struct Part {
    shared: Arc<Shared>,
    index: usize,
}

impl PartitionStream for Part {
    fn schema(&self) -> &SchemaRef {
        &self.shared.source.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let source = &self.shared.source;
        let mut receivers = match self.shared.receivers.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let receivers = receivers.get_or_insert_with(|| {
            let (senders, receivers): (Vec<_>, Vec<_>) =
                (0..self.shared.parts).map(|_| mpsc::channel(2)).unzip();
            source.start(senders);
            receivers.into_iter().map(Some).collect()
        });
        match receivers[self.index].take() {
            Some(rx) => source.receive(rx),
            None => {
                // A partition read twice: its batches went to the first reading.
                let (tx, rx) = mpsc::channel(1);
                let _ = tx.try_send(Err(DataFusionError::Internal(
                    "a partition of the users was read twice".into(),
                )));
                source.receive(rx)
            }
        }
    }
}

impl PartitionStream for Source {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        self.stream()
    }
}

/// Reads one input into `builder`, handing every full batch to `emit`. Returns `Ok(false)`
/// when `emit` said to stop (the consumer is gone).
fn read_input(
    input: &Input,
    read: &Arc<std::sync::atomic::AtomicU64>,
    builder: &mut Builder,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
    pool: &Pool,
) -> Result<bool> {
    let name = input.to_string();
    if let Input::Path(path) = input {
        let file = File::open(path).map_err(read_error(&name))?;
        let meta = file.metadata().map_err(read_error(&name))?;
        let len = meta.len();
        if meta.is_file() && len > 0 {
            // Users decoded so far (an earlier JSON array) go first.
            if let Some(batch) = builder.take()?
                && !emit(batch)
            {
                return Ok(false);
            }
            if let Mapped::Read(more) = map_lines(&name, &file, len, read, pool, emit)? {
                return Ok(more);
            }
        }
    }
    let counted = Counted {
        inner: input.open().map_err(read_error(&name))?,
        read: read.clone(),
    };
    let mut raw = BufReader::with_capacity(READ_BUFFER, counted);
    let gzip = raw
        .fill_buf()
        .map_err(read_error(&name))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            READ_BUFFER,
            GzipErrors(MultiGzDecoder::new(raw)),
        ))
    } else {
        Box::new(raw)
    };
    let mut users = Users {
        name: &name,
        builder,
        emit,
    };
    let head = reader.fill_buf().map_err(read_error(&name))?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => read_array(&mut users, &mut reader, pool.max_line),
        _ => {
            // Users decoded so far (an earlier JSON array) go first.
            if !users.flush()? {
                return Ok(false);
            }
            read_lines(&name, &mut reader, pool, users.emit)
        }
    }
}

/// Names gzip failures as such (a truncated or corrupt stream is an error, never a short read).
struct GzipErrors<R>(R);

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

fn read_error(name: &str) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Read {
        path: name.to_string(),
        source,
    }
}

/// A batch builder and the plan's work on each of its batches.
struct Builder {
    inner: BatchBuilder,
    transform: Option<Transform>,
}

impl Builder {
    fn new(mask: u64, transform: Option<Transform>) -> Builder {
        Builder {
            inner: BatchBuilder::with_mask(mask),
            transform,
        }
    }

    /// The users appended so far as a batch, transformed; `None` when no row is left.
    fn take(&mut self) -> Result<Option<RecordBatch>> {
        if self.inner.is_empty() {
            return Ok(None);
        }
        let batch = self.inner.finish();
        let batch = match &self.transform {
            Some(transform) => (transform.run)(batch).map_err(Error::from_datafusion)?,
            None => batch,
        };
        Ok((batch.num_rows() > 0).then_some(batch))
    }
}

/// The users of one input on their way into batches.
struct Users<'a> {
    name: &'a str,
    builder: &'a mut Builder,
    emit: &'a mut dyn FnMut(RecordBatch) -> bool,
}

impl Users<'_> {
    /// Appends one user whose text starts at `line`:`column`; returns `false` to stop.
    fn push(&mut self, bytes: &[u8], line: u64, column: u64) -> Result<bool> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            self.error(bytes, e.valid_up_to(), line, column, "invalid UTF-8".into())
        })?;
        let escapes = memchr::memchr(b'\\', bytes).is_some();
        self.push_str(text, escapes, line, column)
    }

    /// [`Users::push`] of a text already checked as UTF-8 (`escapes`: whether it holds a
    /// backslash).
    fn push_str(&mut self, text: &str, escapes: bool, line: u64, column: u64) -> Result<bool> {
        self.builder
            .inner
            .append_text(text, escapes)
            .map_err(|e| self.error(text.as_bytes(), e.offset, line, column, e.message))?;
        if self.builder.inner.len() >= BATCH_ROWS {
            return self.flush();
        }
        Ok(true)
    }

    /// Hands on the users appended so far; `false` when the consumer left.
    fn flush(&mut self) -> Result<bool> {
        Ok(match self.builder.take()? {
            Some(batch) => (self.emit)(batch),
            None => true,
        })
    }

    /// An input error at byte `offset` of a user whose text starts at `line`:`column`.
    fn error(&self, bytes: &[u8], offset: usize, line: u64, column: u64, message: String) -> Error {
        let before = &bytes[..offset.min(bytes.len())];
        let (line, column) = match before.iter().rposition(|&b| b == b'\n') {
            Some(nl) => (
                line + memchr::memchr_iter(b'\n', before).count() as u64,
                1 + chars(&before[nl + 1..]),
            ),
            None => (line, column + chars(before)),
        };
        Error::Input {
            path: self.name.to_string(),
            line,
            column,
            message: crate::json::explain(bytes, offset, &message),
        }
    }

    fn input_error(&self, line: u64, column: u64, message: &str) -> Error {
        Error::Input {
            path: self.name.to_string(),
            line,
            column,
            message: message.to_string(),
        }
    }
}

/// Characters in a UTF-8 byte string (bytes that do not continue a character).
fn chars(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count() as u64
}

/// Bytes of NDJSON handed to a decoding thread at a time (cut at a line end).
const CHUNK: usize = 2 << 20;

/// The bytes of a chunk: copied out of a reader, or a window of a file mapped into memory
/// (unmapped when the chunk is dropped, so memory stays bounded on any file size).
enum Bytes {
    Owned(Vec<u8>),
    Mapped(memmap2::Mmap, usize),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(bytes) => bytes,
            Bytes::Mapped(map, len) => &map[..*len],
        }
    }
}

/// A run of whole lines of one input, numbered from 1 (the reader knows where it starts).
struct Chunk {
    seq: u64,
    name: Arc<str>,
    bytes: Bytes,
}

/// What a decoding thread made of a chunk: its batches and the line ends it holds, or an
/// error whose line is counted from the chunk's first line.
type Decoded = (u64, Result<(Vec<RecordBatch>, u64)>);

/// Threads that decode chunks of NDJSON into batches, on all cores; the reader hands out
/// chunks and puts the results back in input order.
struct Pool {
    work: Option<std::sync::mpsc::SyncSender<Chunk>>,
    done: std::sync::mpsc::Receiver<Decoded>,
    threads: usize,
    /// The longest line the readers accept.
    max_line: usize,
}

/// How many threads decode (and sort parts there are): one per core, at most four.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
}

impl Pool {
    fn new(mask: u64, transform: Option<Transform>, max_line: usize) -> Pool {
        let threads = cores();
        let (work, queue) = std::sync::mpsc::sync_channel::<Chunk>(threads);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let (report, done) = std::sync::mpsc::channel::<Decoded>();
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let report = report.clone();
            let transform = transform.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("userport-decode-{i}"))
                .spawn(move || {
                    // A fault for the tests of how a run ends when a thread panics.
                    if std::env::var_os("USERPORT_TEST_PANIC").is_some_and(|v| v == "decode") {
                        panic!("USERPORT_TEST_PANIC=decode");
                    }
                    let mut builder = Builder::new(mask, transform);
                    loop {
                        let next = queue.lock().map(|q| q.recv());
                        let Ok(Ok(chunk)) = next else { return };
                        let result = decode_chunk(&chunk, &mut builder);
                        let seq = chunk.seq;
                        // The chunk's memory goes before the batches travel on.
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
            max_line,
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
/// ends. Each line is checked as UTF-8 just before it is parsed, while it is in the cache;
/// line ends and backslashes are found in one pass, so that lines without escapes (most)
/// are not searched for them again string by string.
fn decode_chunk(chunk: &Chunk, builder: &mut Builder) -> Result<(Vec<RecordBatch>, u64)> {
    let mut batches = Vec::new();
    let mut emit = |batch: RecordBatch| {
        batches.push(batch);
        true
    };
    let mut users = Users {
        name: &chunk.name,
        builder,
        emit: &mut emit,
    };
    let bytes: &[u8] = &chunk.bytes;
    let (mut line, mut start, mut escapes) = (0u64, 0usize, false);
    let stops = memchr::memchr2_iter(b'\n', b'\\', bytes).chain(std::iter::once(bytes.len()));
    for end in stops {
        if bytes.get(end) == Some(&b'\\') {
            escapes = true;
            continue;
        }
        line += 1;
        let text = &bytes[start..end];
        start = end + 1;
        let escaped = std::mem::take(&mut escapes);
        if text.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match simdutf8::basic::from_utf8(text) {
            Ok(text) => users.push_str(text, escaped, line, 1)?,
            // The slower check says where the bad byte is.
            Err(_) => users.push(text, line, 1)?,
        };
    }
    users.flush()?;
    Ok((batches, line - 1))
}

/// Hands chunks of one input to the pool and the decoded batches on, in input order, with
/// a bounded number of chunks in flight.
struct Dispatch<'a> {
    pool: &'a Pool,
    emit: &'a mut dyn FnMut(RecordBatch) -> bool,
    name: Arc<str>,
    pending: std::collections::BTreeMap<u64, Result<(Vec<RecordBatch>, u64)>>,
    sent: u64,
    next: u64,
    /// The input's line on which the next chunk to hand on starts.
    line: u64,
}

impl<'a> Dispatch<'a> {
    fn new(name: &str, pool: &'a Pool, emit: &'a mut dyn FnMut(RecordBatch) -> bool) -> Self {
        Dispatch {
            pool,
            emit,
            name: Arc::from(name),
            pending: Default::default(),
            sent: 0,
            next: 0,
            line: 1,
        }
    }

    /// Sends the whole lines `bytes` to be decoded; `false` when the consumer left.
    fn send(&mut self, bytes: Bytes) -> Result<bool> {
        let Some(work) = self.pool.work.as_ref() else {
            return Ok(false);
        };
        while self.sent - self.next >= 2 * self.pool.threads as u64 {
            if !self.wait()? {
                return Ok(false);
            }
        }
        let chunk = Chunk {
            seq: self.sent,
            name: Arc::clone(&self.name),
            bytes,
        };
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
    fn too_long(mut self) -> Error {
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
                self.pool.max_line
            ),
        }
    }

    /// Waits for every chunk sent; `false` when the consumer left.
    fn finish(mut self) -> Result<bool> {
        self.drain()
    }

    /// Waits for every chunk sent and hands them on; `false` when the consumer left.
    fn drain(&mut self) -> Result<bool> {
        while self.next < self.sent {
            if !self.wait()? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Newline-delimited JSON: one user a line; blank lines skipped; the last newline optional.
/// Chunks of lines are decoded on all cores and come out in input order.
fn read_lines(
    name: &str,
    reader: &mut dyn BufRead,
    pool: &Pool,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<bool> {
    let mut dispatch = Dispatch::new(name, pool, emit);
    let mut carry: Vec<u8> = Vec::new();
    // How many bytes at the start of `carry` are known to hold no line end: a long line
    // is searched once, not again with every chunk read.
    let mut clean = 0usize;
    let mut first = true;
    loop {
        let mut bytes = std::mem::take(&mut carry);
        let from = std::mem::take(&mut clean);
        bytes.reserve(CHUNK);
        let eof = fill(reader, &mut bytes, CHUNK).map_err(read_error(name))?;
        if first {
            if bytes.starts_with(b"\xEF\xBB\xBF") {
                bytes.drain(..3);
            }
            first = false;
        }
        // A line carried over ends at the first line end after what was searched.
        if from > 0 {
            let end = memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |e| from + e);
            if end > pool.max_line {
                return Err(dispatch.too_long());
            }
        }
        if !eof {
            match memchr::memrchr(b'\n', &bytes[from..]) {
                Some(end) => carry = bytes.split_off(from + end + 1),
                // One line longer than a chunk: read on until its end.
                None => {
                    if bytes.len() > pool.max_line {
                        return Err(dispatch.too_long());
                    }
                    clean = bytes.len();
                    carry = bytes;
                    continue;
                }
            }
        }
        if !bytes.is_empty() && !dispatch.send(Bytes::Owned(bytes))? {
            return Ok(false);
        }
        if eof {
            break;
        }
    }
    dispatch.finish()
}

/// What a mapped file turned out to hold.
enum Mapped {
    /// Its users were read (`false`: the consumer left).
    Read(bool),
    /// Not NDJSON in plain text (gzip or a JSON array): to be read as a stream instead.
    NotLines,
}

/// Newline-delimited JSON in a regular file, mapped into memory a window at a time (each
/// window cut at its last line end) instead of copied through read buffers; the windows
/// are decoded on all cores and unmapped once decoded.
fn map_lines(
    name: &str,
    file: &File,
    len: u64,
    read: &std::sync::atomic::AtomicU64,
    pool: &Pool,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<Mapped> {
    let map = |offset: u64, size: usize| {
        // SAFETY: the map is only read. A file truncated or rewritten by another process
        // while it is read gives wrong users or a fault, as it would to any mapping reader;
        // input files are not expected to change under a running job.
        unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(size)
                .populate()
                .map(file)
        }
        .map_err(read_error(name))
    };
    // The head says what the file holds: gzip and JSON arrays are read as streams.
    let head = match map(0, CHUNK.min(len as usize)) {
        Ok(head) => head,
        // A file system that cannot map files: read it as a stream.
        Err(_) => return Ok(Mapped::NotLines),
    };
    let mark = if head.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let first = head[mark..].iter().find(|b| !b.is_ascii_whitespace());
    if head.starts_with(&[0x1f, 0x8b]) || first == Some(&b'[') {
        return Ok(Mapped::NotLines);
    }
    drop(head);
    read.fetch_add(mark as u64, std::sync::atomic::Ordering::Relaxed);
    let mut dispatch = Dispatch::new(name, pool, emit);
    // A byte-order mark is left out by starting the first window after it.
    let (mut offset, mut want) = (mark as u64, CHUNK);
    while offset < len {
        let size = want.min((len - offset) as usize);
        let window = map(offset, size)?;
        let last = offset + size as u64 == len;
        let end = match memchr::memrchr(b'\n', &window) {
            _ if last => size,
            Some(end) => end + 1,
            // One line longer than the window: map a larger one.
            None if size > pool.max_line => return Err(dispatch.too_long()),
            None => {
                want *= 2;
                continue;
            }
        };
        offset += end as u64;
        want = CHUNK;
        read.fetch_add(end as u64, std::sync::atomic::Ordering::Relaxed);
        if !dispatch.send(Bytes::Mapped(window, end))? {
            return Ok(Mapped::Read(false));
        }
    }
    Ok(Mapped::Read(dispatch.finish()?))
}

/// Reads into `bytes` until it holds `want` more bytes or the input ends (`true` at the end).
fn fill(reader: &mut dyn BufRead, bytes: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let target = bytes.len() + want;
    while bytes.len() < target {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(true);
        }
        let n = available.len().min(target - bytes.len());
        bytes.extend_from_slice(&available[..n]);
        reader.consume(n);
    }
    Ok(false)
}

/// Where the JSON-array reader stands between two bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// Before the opening `[`.
    Start,
    /// After `[` (first) or `,`: a user must come (or `]` right after `[`).
    Value { first: bool },
    /// Inside a user object.
    User {
        depth: u32,
        in_string: bool,
        escaped: bool,
    },
    /// After a user: `,` or `]`.
    Next,
    /// After the closing `]`.
    Done,
}

/// A JSON array of users, read as a stream: each element is cut out at its closing brace
/// and decoded like a line, so memory holds one user at a time.
fn read_array(users: &mut Users<'_>, reader: &mut dyn BufRead, max_user: usize) -> Result<bool> {
    let mut state = ArrayState::Start;
    let (mut line, mut column) = (1u64, 0u64);
    let mut user = Vec::new();
    let (mut user_line, mut user_column) = (0u64, 0u64);
    let mut first_chunk = true;
    loop {
        let chunk = reader.fill_buf().map_err(read_error(users.name))?;
        if chunk.is_empty() {
            break;
        }
        let mut bytes = chunk;
        if first_chunk {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            first_chunk = false;
        }
        for &b in bytes {
            if b == b'\n' {
                line += 1;
                column = 0;
            } else if b & 0xC0 != 0x80 {
                column += 1;
            }
            if let ArrayState::User {
                depth,
                in_string,
                escaped,
            } = &mut state
            {
                user.push(b);
                if user.len() > max_user {
                    return Err(users.input_error(
                        user_line,
                        user_column,
                        &format!(
                            "the user is longer than {max_user} bytes (the limit of one user): \
                             a corrupt file?; --max-line-bytes raises the limit"
                        ),
                    ));
                }
                if *in_string {
                    if *escaped {
                        *escaped = false;
                    } else if b == b'\\' {
                        *escaped = true;
                    } else if b == b'"' {
                        *in_string = false;
                    }
                } else {
                    match b {
                        b'"' => *in_string = true,
                        b'{' | b'[' => *depth += 1,
                        b'}' | b']' => *depth -= 1,
                        _ => {}
                    }
                    if *depth == 0 {
                        if !users.push(&user, user_line, user_column)? {
                            return Ok(false);
                        }
                        state = ArrayState::Next;
                    }
                }
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            state = match (state, b) {
                (ArrayState::Start, b'[') => ArrayState::Value { first: true },
                (ArrayState::Start, _) => {
                    return Err(users.input_error(line, column, "expected a JSON array of users"));
                }
                (ArrayState::Value { first: true }, b']') => ArrayState::Done,
                (ArrayState::Value { first: false }, b']') => {
                    return Err(users.input_error(
                        line,
                        column,
                        "invalid JSON: trailing comma before the closing ]",
                    ));
                }
                (ArrayState::Value { .. }, b'{') => {
                    user.clear();
                    user.push(b);
                    (user_line, user_column) = (line, column);
                    ArrayState::User {
                        depth: 1,
                        in_string: false,
                        escaped: false,
                    }
                }
                (ArrayState::Value { .. }, _) => {
                    return Err(users.input_error(
                        line,
                        column,
                        "expected a JSON object (one user) in the array",
                    ));
                }
                (ArrayState::Next, b',') => ArrayState::Value { first: false },
                (ArrayState::Next, b']') => ArrayState::Done,
                (ArrayState::Next, _) => {
                    return Err(users.input_error(
                        line,
                        column,
                        "invalid JSON: expected , or ] after a user",
                    ));
                }
                (ArrayState::Done, _) => {
                    return Err(users.input_error(
                        line,
                        column,
                        "invalid JSON: unexpected text after the closing ]",
                    ));
                }
                (ArrayState::User { .. }, _) => unreachable!("handled above"),
            };
        }
        let consumed = chunk.len();
        reader.consume(consumed);
    }
    if state != ArrayState::Done {
        return Err(users.input_error(
            line,
            column.max(1),
            "invalid JSON: the array of users ends before its closing ]",
        ));
    }
    Ok(true)
}
