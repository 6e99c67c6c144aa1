//! Inputs → Arrow: the start of the flow. Opens export files (NDJSON, gzipped or not, or a
//! JSON array of users; `-` is stdin), decodes every user into the canonical schema and hands
//! the record batches on, inputs one after another, users in input order.
//!
//! - [`input`]: the kinds of input, and what their first bytes say they are;
//! - [`lines`] and [`array`]: the two readers (newline-delimited JSON, a JSON array);
//! - [`pool`]: the threads that decode lines on all cores, and the order they come back in;
//! - [`batches`]: users into batches (the decoded columns, the ordinal, the scan's work);
//! - [`reader`]: the thread that runs one scan, from the inputs to the partitions;
//! - [`decode`] and [`schema`]: one user's JSON into one row of the canonical schema.
//!
//! This module knows nothing of plans: the scan of `pipeline` says what to decode and what to
//! run on each batch ([`Scan`]) and gets streams of batches back.

pub mod array;
pub mod batches;
pub mod decode;
pub mod input;
pub mod lines;
pub mod pool;
pub mod reader;
pub mod schema;

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::compute::BatchCoalescer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::Count;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
pub use batches::{Decoding, WorkFn};
pub use input::Input;
pub use pool::{Meters, cores};

/// Users per record batch, by default.
pub const BATCH_ROWS: usize = 8192;

/// The longest line (one user) read by default: 64 MiB. A longer one is an error naming its
/// line, found in bounded memory (a file that is not NDJSON, a gzip bomb of one line).
pub const DEFAULT_MAX_LINE: usize = 64 << 20;

/// The users of one or more inputs.
#[derive(Debug, Clone)]
pub struct Source {
    inputs: Vec<Input>,
    read: Arc<AtomicU64>,
    max_line: usize,
}

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
        read: Arc::default(),
        max_line: DEFAULT_MAX_LINE,
    })
}

/// One scan of a source: how its users become batches and where they go.
pub struct Scan {
    /// The decoded columns, the ordinal, the work on each batch.
    pub decoding: Decoding,
    /// The schema of the batches the work gives.
    pub output: SchemaRef,
    /// Whether small batches (a filter's) are gathered into full ones, in order.
    pub coalesce: bool,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// What the decoding threads measure and reserve.
    pub meters: Meters,
    /// Counts the bytes read from the inputs by this scan.
    pub bytes: Option<Count>,
}

impl Source {
    /// The same source refusing lines (users) longer than `bytes`.
    pub fn with_max_line(&self, bytes: usize) -> Source {
        Source {
            max_line: bytes,
            ..self.clone()
        }
    }

    /// The longest line (one user) accepted.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// The inputs, in order.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// The bytes read so far from the inputs (before decompression), for progress bars.
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }

    /// The size of the inputs when all are files (before decompression).
    pub fn total_bytes(&self) -> Option<u64> {
        self.inputs.iter().map(Input::size).sum()
    }

    /// Starts `scan` on a thread of its own and returns its batches as `parts` streams:
    /// batch `i`, in input order, goes to stream `i % parts`. The reader stops when every
    /// stream is dropped.
    pub fn start(&self, scan: Scan, parts: usize) -> Vec<SendableRecordBatchStream> {
        let parts = parts.max(1);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..parts).map(|_| mpsc::channel(2)).unzip();
        let coalescer = scan
            .coalesce
            .then(|| BatchCoalescer::new(scan.output.clone(), scan.decoding.batch_rows));
        let outlet = reader::Outlet::new(senders, coalescer, scan.limit);
        let inputs = self.inputs.clone();
        let read = self.read.clone();
        let decoding = Arc::new(scan.decoding);
        let meters = scan.meters;
        let bytes = scan.bytes;
        let spawned = std::thread::Builder::new()
            .name("userport-read".into())
            .spawn(move || {
                let before = read.load(Ordering::Relaxed);
                let pool = pool::Pool::new(decoding, &meters);
                reader::run(&inputs, &read, &pool, outlet);
                if let Some(bytes) = bytes {
                    bytes.add(read.load(Ordering::Relaxed).saturating_sub(before) as usize);
                }
            });
        let failed = spawned
            .err()
            .map(|e| format!("cannot start the reader: {e}"));
        receivers
            .into_iter()
            .map(|rx| match &failed {
                None => stream_of(scan.output.clone(), rx),
                Some(why) => {
                    let (tx, rx) = mpsc::channel(1);
                    let _ = tx.try_send(Err(DataFusionError::Execution(why.clone())));
                    stream_of(scan.output.clone(), rx)
                }
            })
            .collect()
    }
}

/// A stream of the batches that come through `rx`.
fn stream_of(
    schema: SchemaRef,
    rx: mpsc::Receiver<std::result::Result<RecordBatch, DataFusionError>>,
) -> SendableRecordBatchStream {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}
