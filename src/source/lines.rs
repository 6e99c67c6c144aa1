//! Newline-delimited JSON: one user a line, blank lines skipped, the last newline optional.
//! A stream is read in chunks cut at line ends; a regular file is mapped into memory a
//! window at a time. Either way the chunks are decoded on all cores (see [`super::pool`]).

use std::fs::File;
use std::io::{self, BufRead};
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::record_batch::RecordBatch;

use super::batches::read_error;
use super::pool::{Bytes, CHUNK, Dispatch, Pool};
use crate::error::Result;

/// Reads the lines of `reader` (input number `input`, whose users start `start` bytes in);
/// `false` when the consumer left.
pub fn read_lines(
    name: &str,
    input: usize,
    start: u64,
    reader: &mut dyn BufRead,
    pool: &Pool,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<bool> {
    let mut dispatch = Dispatch::new(name, input, pool, emit);
    let mut offset = start;
    let mut carry: Vec<u8> = Vec::new();
    // How many bytes at the start of `carry` are known to hold no line end: a long line
    // is searched once, not again with every chunk read.
    let mut clean = 0usize;
    loop {
        let mut bytes = std::mem::take(&mut carry);
        let from = std::mem::take(&mut clean);
        bytes.reserve(CHUNK);
        let eof = fill(reader, &mut bytes, CHUNK).map_err(read_error(name))?;
        // A line carried over ends at the first line end after what was searched.
        if from > 0 {
            let end = memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |e| from + e);
            if end > pool.max_line() {
                return Err(dispatch.too_long());
            }
        }
        if !eof {
            match memchr::memrchr(b'\n', &bytes[from..]) {
                Some(end) => carry = bytes.split_off(from + end + 1),
                // One line longer than a chunk: read on until its end.
                None => {
                    if bytes.len() > pool.max_line() {
                        return Err(dispatch.too_long());
                    }
                    clean = bytes.len();
                    carry = bytes;
                    continue;
                }
            }
        }
        let size = bytes.len() as u64;
        if !bytes.is_empty() && !dispatch.send(Bytes::Owned(bytes), offset)? {
            return Ok(false);
        }
        offset += size;
        if eof {
            break;
        }
    }
    dispatch.finish()
}

/// Maps `size` bytes of `file` from `offset`, read-only.
pub fn map(file: &File, offset: u64, size: usize) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is only read. A file truncated or rewritten by another process while
    // it is read gives wrong users or a fault, as it would to any mapping reader; input
    // files are not expected to change under a running job.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(size)
            .populate()
            .map(file)
    }
}

/// The lines of a regular file of `len` bytes whose users start `start` bytes in (after a
/// byte-order mark), mapped a window at a time (each window cut at its last line end)
/// instead of copied through read buffers; each window is unmapped once decoded.
#[allow(clippy::too_many_arguments)]
pub fn map_lines(
    name: &str,
    input: usize,
    file: &File,
    len: u64,
    start: u64,
    read: &AtomicU64,
    pool: &Pool,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<bool> {
    read.fetch_add(start, Ordering::Relaxed);
    let mut dispatch = Dispatch::new(name, input, pool, emit);
    let (mut offset, mut want) = (start, CHUNK);
    while offset < len {
        let size = want.min((len - offset) as usize);
        let window = map(file, offset, size).map_err(read_error(name))?;
        let last = offset + size as u64 == len;
        let end = match memchr::memrchr(b'\n', &window) {
            _ if last => size,
            Some(end) => end + 1,
            // One line longer than the window: map a larger one.
            None if size > pool.max_line() => return Err(dispatch.too_long()),
            None => {
                want *= 2;
                continue;
            }
        };
        let at = offset;
        offset += end as u64;
        want = CHUNK;
        read.fetch_add(end as u64, Ordering::Relaxed);
        if !dispatch.send(Bytes::Mapped(window, end), at)? {
            return Ok(false);
        }
    }
    dispatch.finish()
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
