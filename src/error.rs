//! The library's error type: every failure names the file, line and column, or the argument.

use std::io;

/// What went wrong, with enough context for a person to find it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input could not be opened or read (missing file, truncated gzip stream, …).
    #[error("cannot read {path}")]
    Read {
        /// The input's name (`-` is stdin).
        path: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// An input is not what userport reads: bad JSON, a line that is not a user, bad UTF-8.
    #[error("{path}:{line}:{column}: {message}")]
    Input {
        /// The input's name.
        path: String,
        /// 1-based line.
        line: u64,
        /// 1-based column, in characters.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// A command-line argument or an option file is not valid.
    #[error("{context}: {message}")]
    Usage {
        /// The argument or file at fault, as the user wrote it.
        context: String,
        /// What is wrong, possibly over several lines (a caret under the culprit).
        message: String,
    },
    /// An output could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The output's name (`-` is stdout).
        path: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The Management API answered with an error (after any retries).
    #[error("{what}: HTTP {status}: {message}")]
    Api {
        /// The call, as `METHOD /path`.
        what: String,
        /// The HTTP status.
        status: u16,
        /// Auth0's error body, summarized (`statusCode error: message (errorCode …)`).
        message: String,
        /// The whole body, as Auth0 wrote it.
        body: String,
    },
    /// A call could not be made or its answer not read (connection refused, timeout, …).
    #[error("{what}: {message}")]
    Http {
        /// The call, as `METHOD /path`.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// A call failed every time it was tried.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// How many times it was tried.
        attempts: u32,
        /// The last failure.
        last: Box<Error>,
    },
    /// A job of the tenant ended badly.
    #[error("job {id} {status}{details}")]
    Job {
        /// The job id.
        id: String,
        /// `failed` or `expired`.
        status: String,
        /// `status_details`, when Auth0 gave them (with a leading `: `).
        details: String,
    },
    /// The run went through and found problems that fail it (exit 1), such as a password
    /// that does not match its converted hash; nothing was written.
    #[error("{0}")]
    Failed(String),
    /// Something userport should never do happened (a bug): reported as such.
    #[error("internal error (a bug in userport): {0}")]
    Internal(String),
    /// DataFusion or Arrow failed while planning or running.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Arrow failed while building or converting a batch.
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// The Parquet writer failed.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
}

impl Error {
    /// A usage error about `context` (an argument or a file).
    pub fn usage(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Usage {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Turns an error that travelled through DataFusion back into the library error that
    /// caused it, when there is one.
    pub fn from_datafusion(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError;
        let root = match e.find_root() {
            DataFusionError::External(inner) => inner.downcast_ref::<Error>().map(clone_shallow),
            _ => None,
        };
        root.unwrap_or(Error::DataFusion(e))
    }

    /// Whether this error is a write into a closed pipe (`userport … | head`), which is not a
    /// failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Write { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// A copy of an error found behind a shared reference (I/O errors keep kind and text).
fn clone_shallow(e: &Error) -> Error {
    let io_copy = |source: &io::Error| io::Error::new(source.kind(), source.to_string());
    match e {
        Error::Read { path, source } => Error::Read {
            path: path.clone(),
            source: io_copy(source),
        },
        Error::Write { path, source } => Error::Write {
            path: path.clone(),
            source: io_copy(source),
        },
        Error::Input {
            path,
            line,
            column,
            message,
        } => Error::Input {
            path: path.clone(),
            line: *line,
            column: *column,
            message: message.clone(),
        },
        Error::Usage { context, message } => Error::usage(context.clone(), message.clone()),
        Error::Internal(message) => Error::Internal(message.clone()),
        Error::Failed(message) => Error::Failed(message.clone()),
        other => Error::Internal(other.to_string()),
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
