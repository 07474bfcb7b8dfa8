//! napi-rs v3 binding: thin wrappers that turn core results into JS values and errors.

use napi_derive::napi;

mod convert;
mod disk;
mod guest;
mod live;
mod snapshot;

/// The one mapping of core errors to JS: an Error whose message starts with the closed error code
/// ("BAD_DATA: …"). Sync calls and async tasks alike carry it so, and src/native/gateway.ts turns it into
/// a NearfieldError in one place.
pub(crate) fn to_js(e: crate::Error) -> napi::Error {
    napi::Error::new(napi::Status::GenericFailure, format!("{}: {e}", e.code()))
}

/// The schema catalog (catalog.rs) as JSON text: what `npm run build` writes to schema/.
#[napi]
pub fn schema_catalog() -> String {
    crate::catalog::catalog().to_string()
}

/// Version of the native core, to check that the addon and the JS side match.
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
