//! napi-rs v3 binding: thin wrappers that turn core results into JS values and errors.

use napi_derive::napi;

mod convert;
mod disk;
mod guest;
mod snapshot;
mod walkers;

/// Turn a core error into a JS Error whose `code` is the closed error code (FAULT, BAD_DATA, …).
pub(crate) fn to_js(e: crate::Error) -> napi::Error<&'static str> {
    napi::Error::new(e.code(), e.to_string())
}

pub(crate) type JsResult<T> = std::result::Result<T, napi::Error<&'static str>>;

/// Version of the native core, to check that the addon and the JS side match.
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
