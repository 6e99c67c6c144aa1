//! userport moves Auth0 users in bulk.
//!
//! Data flows one way (`ARCHITECTURE.md` has the layers and one request end to end):
//!
//! ```text
//!  export files, stdin, a download   source: read, sniffed, decoded on all cores
//!       ▼
//!  UsersTable → UsersExec            pipeline::scan: the projected columns decoded, the
//!       │                            pushed filter and projections run in the decoders
//!       │  expr / search → Expr      field expressions and Auth0 queries, compiled once
//!       ▼                            into a pipeline::Request (or SQL, pipeline::query)
//!  one DataFusion plan               sorts in parts (pipeline::parts), spills past the limit
//!       ▼
//!  sink / import / diff              reports, import folders, changes: whole or not at all
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
pub mod migrate;
pub mod password;
pub mod pipeline;
pub mod search;
pub mod sink;
pub mod source;
pub mod tables;
pub mod temp;
