//! Auth0 bulk-import files: the end of the flow that goes back into a tenant.
//!
//! [`prepare`] turns users (an export, or a query's result) into import rows
//! ([`convert`]), refuses the ones Auth0 would refuse, and writes them as JSON-array files
//! under Auth0's size limit with a manifest; [`validate`] checks any import file against
//! the [`rules`] the way Auth0's server will, duplicates across files included ([`seen`]).

pub mod checks;
pub mod convert;
pub mod files;
pub mod hashes;
pub mod lookup;
pub mod manifest;
pub mod mapping;
pub mod prepare;
pub mod rules;
pub mod seen;
pub mod update;
pub mod upload;
pub mod validate;
