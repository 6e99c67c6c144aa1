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

/// Where users come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-` on the command line).
    Stdin,
    /// A file.
    Path(PathBuf),
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

    fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Input::Stdin => Box::new(io::stdin()),
            Input::Path(path) => Box::new(File::open(path)?),
        })
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("-"),
            Input::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The users of one or more inputs, as a stream of record batches of the canonical schema.
#[derive(Debug, Clone)]
pub struct Source {
    inputs: Vec<Input>,
    schema: SchemaRef,
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
        schema: schema::user_schema(),
    })
}

impl Source {
    /// The canonical schema of the batches.
    pub fn schema_ref(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The inputs, in order.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// Reads every input on a thread of its own and returns the batches as a stream. The
    /// reader stops when the stream is dropped.
    pub fn stream(&self) -> SendableRecordBatchStream {
        let (tx, rx) = mpsc::channel::<Result<RecordBatch, DataFusionError>>(2);
        let inputs = self.inputs.clone();
        std::thread::Builder::new()
            .name("userport-read".into())
            .spawn(move || {
                let mut builder = BatchBuilder::new();
                let mut sink = |batch: RecordBatch| tx.blocking_send(Ok(batch)).is_ok();
                for input in &inputs {
                    match read_input(input, &mut builder, &mut sink) {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
                            return;
                        }
                    }
                }
                if !builder.is_empty() {
                    sink(builder.finish());
                }
            })
            .expect("spawning the reader thread");
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
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
    builder: &mut BatchBuilder,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<bool> {
    let name = input.to_string();
    let mut raw = BufReader::with_capacity(READ_BUFFER, input.open().map_err(read_error(&name))?);
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
        Some(b'[') => read_array(&mut users, &mut reader),
        _ => read_lines(&mut users, &mut reader),
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

/// The users of one input on their way into batches.
struct Users<'a> {
    name: &'a str,
    builder: &'a mut BatchBuilder,
    emit: &'a mut dyn FnMut(RecordBatch) -> bool,
}

impl Users<'_> {
    /// Appends one user whose text starts at `line`:`column`; returns `false` to stop.
    fn push(&mut self, bytes: &[u8], line: u64, column: u64) -> Result<bool> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            self.error(bytes, e.valid_up_to(), line, column, "invalid UTF-8".into())
        })?;
        self.builder
            .append(text)
            .map_err(|e| self.error(bytes, e.offset, line, column, e.message))?;
        if self.builder.len() >= BATCH_ROWS {
            return Ok((self.emit)(self.builder.finish()));
        }
        Ok(true)
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
            message,
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

/// Newline-delimited JSON: one user a line; blank lines skipped; the last newline optional.
fn read_lines(users: &mut Users<'_>, reader: &mut dyn BufRead) -> Result<bool> {
    let mut line = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(read_error(users.name))?
            == 0
        {
            return Ok(true);
        }
        number += 1;
        let mut text = line.as_slice();
        if number == 1 {
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        }
        if text.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if !users.push(text, number, 1)? {
            return Ok(false);
        }
    }
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
fn read_array(users: &mut Users<'_>, reader: &mut dyn BufRead) -> Result<bool> {
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
