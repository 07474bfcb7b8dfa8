//! nearfield core: everything that touches guest bytes in bulk, as pure Rust (ARCHITECTURE.md).
//! The `binding` module is the only part that knows about Node.

pub mod disk;
pub mod bytes;
pub mod catalog;
pub mod error;
pub mod kernel;
pub mod mem;
pub mod objects;
pub mod records;
pub mod walkers;
pub mod snapshot;

pub use error::{Error, Result};

#[doc(hidden)]
pub mod test_support;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

#[cfg(feature = "node")]
mod binding;
