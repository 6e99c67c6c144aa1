//! userport moves Auth0 users in bulk.
//!
//! Data flows one way, each step a module:
//!
//! ```text
//!  export file / stdin            source::open → canonical Arrow schema (source::schema)
//!       ▼
//!  SendableRecordBatchStream      registered as table `users` (pipeline)
//!       │  expr::compile(field) → Expr (one per output column)
//!       ▼
//!  DataFrame (project), run as a stream of batches, never collected whole
//!       ▼
//!  sink::{csv, json, parquet}     reports, written whole or not at all
//! ```

#![warn(missing_docs)]

pub mod auth0;
pub mod cli;
pub mod diff;
pub mod error;
pub mod expr;
pub mod functions;
pub mod import;
pub mod js;
pub mod json;
pub mod pipeline;
pub mod search;
pub mod sink;
pub mod source;
pub mod temp;
