//! The reader thread of a scan: reads the inputs one after another (each as its first bytes
//! say: mapped lines, streamed lines or a JSON array, gzipped or not), hands lines to the
//! decoding pool and the batches, in input order, to the scan's partitions.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use datafusion::arrow::compute::BatchCoalescer;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use tokio::sync::mpsc;

use super::array::read_array;
use super::batches::{Builder, Rows, read_error};
use super::input::{Counted, Input, Kind, inflated, sniff};
use super::lines::{map, map_lines, read_lines};
use super::pool::{CHUNK, Pool};
use crate::error::{Error, Result};

/// The channel a reader thread sends batches through.
pub type Sender = mpsc::Sender<std::result::Result<RecordBatch, DataFusionError>>;

/// Where the batches of a scan go: its partitions, in turn (batch `i` to partition
/// `i % parts`), gathered into full batches first when asked, up to a limit of rows.
pub struct Outlet {
    senders: Vec<Sender>,
    open: Vec<bool>,
    sent: usize,
    coalescer: Option<BatchCoalescer>,
    left: Option<usize>,
}

impl Outlet {
    /// Batches go to `senders` in turn; `coalescer` gathers them first; at most `limit` rows.
    pub fn new(
        senders: Vec<Sender>,
        coalescer: Option<BatchCoalescer>,
        limit: Option<usize>,
    ) -> Outlet {
        Outlet {
            open: vec![true; senders.len()],
            senders,
            sent: 0,
            coalescer,
            left: limit,
        }
    }

    /// Takes one batch; `false` once nothing more is wanted (every consumer left, or the
    /// limit was reached).
    fn take(&mut self, batch: RecordBatch) -> bool {
        let batch = match self.left {
            Some(0) => return false,
            Some(n) if batch.num_rows() > n => batch.slice(0, n),
            _ => batch,
        };
        if let Some(left) = &mut self.left {
            *left -= batch.num_rows();
        }
        let more = match self.coalescer.as_mut() {
            None => self.send(batch),
            Some(coalescer) => match coalescer.push_batch(batch) {
                Ok(()) => self.send_completed(),
                Err(e) => {
                    self.fail(e.into());
                    false
                }
            },
        };
        if self.left == Some(0) {
            self.finish();
            return false;
        }
        more
    }

    /// Sends the full batches the coalescer holds.
    fn send_completed(&mut self) -> bool {
        while let Some(batch) = self
            .coalescer
            .as_mut()
            .and_then(|c| c.next_completed_batch())
        {
            if !self.send(batch) {
                return false;
            }
        }
        true
    }

    /// Hands `batch` to its partition; `false` once every partition's consumer is gone.
    fn send(&mut self, batch: RecordBatch) -> bool {
        let part = self.sent % self.senders.len();
        self.sent += 1;
        if self.open[part] && self.senders[part].blocking_send(Ok(batch)).is_err() {
            self.open[part] = false;
        }
        self.open.iter().any(|&o| o)
    }

    /// Sends what the coalescer still holds.
    fn finish(&mut self) {
        if let Some(coalescer) = self.coalescer.as_mut() {
            if let Err(e) = coalescer.finish_buffered_batch() {
                self.fail(e.into());
                return;
            }
            self.send_completed();
        }
    }

    /// Ends the scan with an error, sent to the first partition: the plan fails with it,
    /// whichever partition it was reading.
    fn fail(&self, e: DataFusionError) {
        let _ = self.senders[0].blocking_send(Err(e));
    }
}

/// Reads every input into `outlet`, decoding on `pool`; `read` counts the bytes read.
pub fn run(inputs: &[Input], read: &Arc<AtomicU64>, pool: &Pool, mut outlet: Outlet) {
    let mut builder = Builder::new(Arc::clone(&pool.decoding));
    let mut failed: Option<Error> = None;
    {
        let mut emit = |batch: RecordBatch| outlet.take(batch);
        for (index, input) in inputs.iter().enumerate() {
            match read_input(index, input, read, &mut builder, &mut emit, pool) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // The last users of a JSON array.
        if failed.is_none() {
            match builder.take() {
                Ok(Some(batch)) => {
                    if !emit(batch) {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => failed = Some(e),
            }
        }
    }
    match failed {
        Some(e) => outlet.fail(into_datafusion(e)),
        None => outlet.finish(),
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

/// Reads input number `index` into `builder`, handing every full batch to `emit`. Returns
/// `Ok(false)` when `emit` said to stop.
fn read_input(
    index: usize,
    input: &Input,
    read: &Arc<AtomicU64>,
    builder: &mut Builder,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
    pool: &Pool,
) -> Result<bool> {
    let name = input.to_string();
    builder.set_input(index);
    let mut users = Rows {
        name: &name,
        builder,
        emit,
    };
    if let Input::Path(path) = input {
        let file = File::open(path).map_err(read_error(&name))?;
        let meta = file.metadata().map_err(read_error(&name))?;
        let len = meta.len();
        // A regular file of lines is mapped (a file system that cannot map files, gzip
        // and JSON arrays are read as streams).
        if meta.is_file()
            && len > 0
            && let Ok(head) = map(&file, 0, CHUNK.min(len as usize))
            && let Kind::Lines { bom } = sniff(&head)
        {
            drop(head);
            // Users decoded so far (an earlier JSON array) go first.
            if !users.flush()? {
                return Ok(false);
            }
            return map_lines(&name, index, &file, len, bom as u64, read, pool, users.emit);
        }
    }
    let counted = Counted::new(input.open().map_err(read_error(&name))?, read.clone());
    let mut reader = inflated(Box::new(counted)).map_err(read_error(&name))?;
    // What a gzip stream holds is sniffed once inflated (gzip in gzip is read as lines).
    let kind = sniff(reader.fill_buf().map_err(read_error(&name))?);
    let bom = kind.bom();
    reader.consume(bom);
    match kind {
        Kind::Array { .. } => read_array(&mut users, &mut reader, bom as u64, pool.max_line()),
        _ => {
            // Users decoded so far (an earlier JSON array) go first.
            if !users.flush()? {
                return Ok(false);
            }
            read_lines(&name, index, bom as u64, &mut reader, pool, users.emit)
        }
    }
}
