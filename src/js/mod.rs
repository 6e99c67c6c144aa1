//! The JavaScript semantics behind field expressions: values read from JSON, the
//! language's conversions, operators and methods (used by the `js_*` functions that
//! compiled expressions call).

pub mod cell;
pub mod date;
pub mod op;
pub mod ops;
pub mod value;

pub use value::Value;
