//! Users on their way into record batches: a decoder of the scan's columns, the position
//! of each user (its ordinal, when the scan asks for one) and the scan's work on each batch.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, FixedSizeBinaryArray, StringViewBuilder, UInt64Array,
};
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;

use super::decode::{BatchBuilder, Path, renew};
use crate::error::{Error, Result};

/// What a scan does to each decoded batch (a filter, a projection), run by the thread that
/// decoded it, so that it takes all cores.
pub type WorkFn =
    dyn Fn(RecordBatch) -> std::result::Result<RecordBatch, DataFusionError> + Send + Sync;

/// How the users of one scan become batches: which columns are decoded, which columns
/// about each user follow them (its ordinal, digest, text), the work run on each batch, and
/// the rows of a batch.
#[derive(Clone)]
pub struct Decoding {
    /// The decoded columns (see [`BatchBuilder::with_mask`]).
    pub mask: u64,
    /// When columns about each user follow the canonical ones: the table's schema (the
    /// canonical columns, then the ordinal, the digest, the text and the layout, those asked
    /// for, in that order, then the paths).
    pub extended: Option<SchemaRef>,
    /// Whether each user's ordinal follows (UInt64, see [`ordinal`]).
    pub ordinal: bool,
    /// Whether each user's digest follows: the 128-bit XXH3 of its text as the input holds
    /// it, so that users can be told equal by their digests without being read again.
    pub digest: bool,
    /// Whether each user's text follows, as the input holds it (Utf8View: a view of the bytes
    /// read, not a copy, when they are a chunk of the input): for the commands that
    /// read a user's own members (prepare's conversion) rather than decoded columns.
    pub text: bool,
    /// When each user's layout follows the text (Binary, null for a text too long): its
    /// members as the decoder's checking pass found them ([`crate::json::skim::Laid`]), so
    /// that what reads the text finds them without a second scan; the value is the mask of
    /// the columns whose values are looked at for repeated and marked keys (see
    /// [`BatchBuilder::with_layout`]).
    pub layout: Option<u64>,
    /// Paths into JSON columns read out of each user, columns after the text and layout.
    pub paths: Vec<Path>,
    /// Run on each batch (after the ordinal is added).
    pub work: Option<Arc<WorkFn>>,
    /// Users per batch.
    pub batch_rows: usize,
    /// The longest line (one user) accepted, in bytes.
    pub max_line: usize,
}

/// The ordinal of the user that starts `position` bytes into input number `input`: it grows
/// with the input order, across inputs.
pub fn ordinal(input: usize, position: u64) -> u64 {
    ((input as u64) << 48) | (position & ((1 << 48) - 1))
}

/// The input number and the position of the user whose ordinal is `ordinal` (the inverse
/// of [`ordinal`]).
pub fn place(ordinal: u64) -> (usize, u64) {
    ((ordinal >> 48) as usize, ordinal & ((1 << 48) - 1))
}

/// The digest of a user's text (see [`Decoding::digest`]).
pub fn digest(text: &[u8]) -> [u8; 16] {
    twox_hash::XxHash3_128::oneshot(text).to_le_bytes()
}

/// A batch builder, the ordinals, digests and texts of its users and the scan's work on
/// each of its batches.
pub struct Builder {
    inner: BatchBuilder,
    decoding: Arc<Decoding>,
    ordinals: Vec<u64>,
    digests: Vec<[u8; 16]>,
    /// The users' texts: views of the bytes they were read from when those are shared
    /// ([`Builder::view`]), copies otherwise.
    texts: StringViewBuilder,
    /// The shared bytes the users appended next are read from, and the number of their
    /// block in `texts` once a text of the batch views them.
    viewed: Option<(Buffer, Option<u32>)>,
    layouts: BinaryBuilder,
    input: usize,
}

impl Builder {
    /// A builder for the scan `decoding` describes.
    pub fn new(decoding: Arc<Decoding>) -> Builder {
        let mut inner = BatchBuilder::with_mask(decoding.mask).with_paths(decoding.paths.clone());
        if let Some(checked) = decoding.layout {
            inner = inner.with_layout(checked);
        }
        Builder {
            inner,
            decoding,
            ordinals: Vec::new(),
            digests: Vec::new(),
            texts: StringViewBuilder::new(),
            viewed: None,
            layouts: BinaryBuilder::new(),
            input: 0,
        }
    }

    /// Whether the batches hold each user's text (see [`Decoding::text`]).
    pub fn holds_texts(&self) -> bool {
        self.decoding.text
    }

    /// The users appended next are read from `bytes` (or from elsewhere, `None`): their
    /// texts, when the batches hold them, are views of it rather than copies.
    pub fn view(&mut self, bytes: Option<Buffer>) {
        self.viewed = bytes.map(|b| (b, None));
    }

    /// Appends a user's text to the text column: a view of the shared bytes it lies in, or
    /// a copy.
    fn push_text(&mut self, text: &str) {
        let Builder { texts, viewed, .. } = self;
        if let Some((bytes, block)) = viewed {
            let start = (text.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
            if start <= bytes.len()
                && text.len() <= bytes.len() - start
                && bytes.len() < u32::MAX as usize
            {
                let block = *block.get_or_insert_with(|| texts.append_block(bytes.clone()));
                // SAFETY: the block was appended to this builder (above or for an earlier user
                // of the batch: `take` forgets it with the batch); the text's bytes lie
                // within it (checked above, both under 4 GiB) and are UTF-8 (a `str`).
                unsafe { texts.append_view_unchecked(block, start as u32, text.len() as u32) };
                return;
            }
        }
        texts.append_value(text);
    }

    /// The users appended next come from input number `input`.
    pub fn set_input(&mut self, input: usize) {
        self.input = input;
    }

    /// The users appended so far as a batch, with their ordinals, after the scan's work;
    /// `None` when no row is left.
    pub fn take(&mut self) -> Result<Option<RecordBatch>> {
        if self.inner.is_empty() {
            return Ok(None);
        }
        let mut batch = self.inner.finish()?;
        if let Some(schema) = &self.decoding.extended {
            let mut columns = batch.columns().to_vec();
            if self.decoding.ordinal {
                let ordinals = std::mem::take(&mut self.ordinals);
                columns.push(Arc::new(UInt64Array::from(ordinals)) as ArrayRef);
            }
            if self.decoding.digest {
                let digests = std::mem::take(&mut self.digests);
                let digests = FixedSizeBinaryArray::try_from_iter(digests.iter())?;
                columns.push(Arc::new(digests));
            }
            // The texts are views of their chunk where they can be (copies go to the
            // builder's own blocks); the layouts' builder starts the next batch a little
            // over this one's size (`renew`).
            if self.decoding.text {
                columns.push(Arc::new(self.texts.finish()));
                if let Some((_, block)) = &mut self.viewed {
                    *block = None;
                }
            }
            if self.decoding.layout.is_some() {
                columns.push(Arc::new(renew(&mut self.layouts)));
            }
            columns.extend(self.inner.finish_paths());
            batch = RecordBatch::try_new(schema.clone(), columns)?;
        }
        let batch = match &self.decoding.work {
            Some(work) => work(batch).map_err(Error::from_datafusion)?,
            None => batch,
        };
        Ok((batch.num_rows() > 0).then_some(batch))
    }
}

/// The users of one input on their way into batches.
pub struct Rows<'a> {
    /// How messages name the input.
    pub name: &'a str,
    /// Where the users go.
    pub builder: &'a mut Builder,
    /// Takes each batch; `false` when the consumer left.
    pub emit: &'a mut dyn FnMut(RecordBatch) -> bool,
}

impl Rows<'_> {
    /// Appends one user whose text starts at `line`:`column`, `position` bytes into its
    /// input; returns `false` to stop.
    pub fn push(&mut self, bytes: &[u8], line: u64, column: u64, position: u64) -> Result<bool> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            self.error(bytes, e.valid_up_to(), line, column, "invalid UTF-8".into())
        })?;
        self.push_str(text, line, column, position)
    }

    /// [`Rows::push`] of a text already checked as UTF-8.
    pub fn push_str(&mut self, text: &str, line: u64, column: u64, position: u64) -> Result<bool> {
        self.builder
            .inner
            .append(text)
            .map_err(|e| self.error(text.as_bytes(), e.offset, line, column, e.message))?;
        let builder = &mut *self.builder;
        if builder.decoding.ordinal {
            builder.ordinals.push(ordinal(builder.input, position));
        }
        if builder.decoding.digest {
            builder.digests.push(digest(text.as_bytes()));
        }
        if builder.decoding.text {
            builder.push_text(text);
        }
        if builder.decoding.layout.is_some() {
            builder.layouts.append_option(builder.inner.layout(text));
        }
        if builder.inner.len() >= builder.decoding.batch_rows {
            return self.flush();
        }
        Ok(true)
    }

    /// Hands on the users appended so far; `false` when the consumer left.
    pub fn flush(&mut self) -> Result<bool> {
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

    /// An input error at `line`:`column` of the input.
    pub fn input_error(&self, line: u64, column: u64, message: &str) -> Error {
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

/// The error of a failed read of the input `name`.
pub fn read_error(name: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Read {
        path: name.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// A builder of batches of two users that hold each user's text and nothing decoded.
    fn texts_only() -> Builder {
        let mut fields = super::super::schema::user_schema().fields().to_vec();
        fields.push(Arc::new(Field::new("user text", DataType::Utf8View, false)));
        Builder::new(Arc::new(Decoding {
            mask: 0,
            extended: Some(Arc::new(Schema::new(fields))),
            ordinal: false,
            digest: false,
            text: true,
            layout: None,
            paths: Vec::new(),
            work: None,
            batch_rows: 2,
            max_line: 1 << 20,
        }))
    }

    #[test]
    fn texts_in_shared_bytes_are_viewed_there_and_others_copied() {
        let line = |n: usize| format!("{{\"email\":\"a-long-address-{n}@example.com\"}}");
        let lines: Vec<String> = (0..3).map(line).collect();
        let chunk = Buffer::from_vec(lines.join("\n").into_bytes());
        let text = std::str::from_utf8(chunk.as_slice()).unwrap();
        let mut batches = Vec::new();
        let mut builder = texts_only();
        builder.view(Some(chunk.clone()));
        let mut emit = |batch: RecordBatch| {
            batches.push(batch);
            true
        };
        let mut rows = Rows {
            name: "users.ndjson",
            builder: &mut builder,
            emit: &mut emit,
        };
        // Three users of the chunk (the first batch full after two), then one from elsewhere.
        for (i, user) in text.split('\n').enumerate() {
            rows.push_str(user, i as u64 + 1, 1, 0).unwrap();
        }
        rows.builder.view(None);
        let elsewhere = line(3);
        rows.push_str(&elsewhere, 4, 1, 0).unwrap();
        rows.flush().unwrap();
        assert_eq!(batches.len(), 2);
        let within = |p: *const u8| chunk.as_slice().as_ptr_range().contains(&p);
        let mut read = Vec::new();
        for batch in &batches {
            let texts = batch.column(batch.num_columns() - 1).as_string_view();
            for i in 0..texts.len() {
                read.push((texts.value(i).to_string(), within(texts.value(i).as_ptr())));
            }
        }
        let mut expected: Vec<(String, bool)> = lines.into_iter().map(|l| (l, true)).collect();
        expected.push((elsewhere, false));
        assert_eq!(read, expected);
    }
}
