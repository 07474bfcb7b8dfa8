//! Walkers: each file turns a discovered `Kernel` into one finished record, the way the guest's own /proc
//! file (or tool) computes it, and declares itself with `walker! { … }`.
//!
//! Adding a walker is one new file here: build.rs finds every file that declares a walker and registers
//! it in [`ALL`]; its options and record types (serde + schemars) become the JSON Schema in `schema/` and
//! the TypeScript types in `src/generated/` (`npm run build`), and the binding serves it as
//! `Guest.walk(name, options)`. Kernel structures are read through `crate::objects`, never by hand.

use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;

use crate::kernel::discover::DiscoveryReport;
use crate::kernel::Kernel;
use crate::{Error, Result};

/// What a walker reads: the discovered kernel and how discovery went.
pub struct Context<'a> {
    pub kernel: &'a Kernel,
    pub report: &'a DiscoveryReport,
    /// The RAM file's path, as given.
    pub ram: &'a str,
}

/// JSON Schemas of a walker's options and of its record (as a document, with `schemaVersion`).
pub struct WalkerSchemas {
    pub options: Schema,
    pub record: Schema,
}

/// One registered walker.
pub struct Walker {
    pub name: &'static str,
    /// Its doc comment: what it reads and what it mirrors.
    pub about: &'static str,
    pub schemas: fn() -> WalkerSchemas,
    /// Options as JSON (null = defaults) → the record as one JSON document.
    pub run: fn(&Context, serde_json::Value) -> Result<String>,
}

/// Declare this file's walker: `walker! { /// doc  name: "x", options: Opts, record: Rec, run: walk_fn }`,
/// where `walk_fn(&Context, &Opts) -> Result<Rec>`.
#[macro_export]
macro_rules! walker {
    ($(#[doc = $doc:literal])* name: $name:literal, options: $o:ty, record: $r:ty, run: $run:path $(,)?) => {
        /// This file's walker (registered in `walkers::ALL` by build.rs).
        pub const WALKER: $crate::walkers::Walker = $crate::walkers::Walker {
            name: $name,
            about: concat!($($doc, "\n"),*),
            schemas: || $crate::walkers::WalkerSchemas {
                options: $crate::catalog::options_schema::<$o>(),
                record: $crate::catalog::record_schema::<$r>(),
            },
            run: |cx, v| {
                let o: $o = $crate::walkers::parse_options($name, v)?;
                $crate::records::document(&$run(cx, &o)?)
            },
        };
    };
}

/// Walkers without options take this.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// Options from JSON; null or absent means the defaults. Unknown fields are refused.
pub fn parse_options<T: DeserializeOwned>(walker: &str, v: serde_json::Value) -> Result<T> {
    let v = if v.is_null() { serde_json::Value::Object(Default::default()) } else { v };
    serde_json::from_value(v).map_err(|e| Error::Unsupported(format!("options of walker {walker}: {e}")))
}

include!(concat!(env!("OUT_DIR"), "/walkers.rs"));

/// The walker named `name`.
pub fn find(name: &str) -> Result<&'static Walker> {
    ALL.iter().copied().find(|w| w.name == name).ok_or_else(|| {
        Error::NotFound(format!("no walker named {name:?} (known: {})", ALL.iter().map(|w| w.name).collect::<Vec<_>>().join(", ")))
    })
}

/// How many times a walk of a live guest is re-run when it did not hold together.
pub const MAX_RETRIES: u32 = 3;

/// Run a walker by name with options as JSON: the retry policy for live guests lives here, once, rather than in
/// each walker. The object helpers and walkers note what did not hold together (`Kernel::note_torn`); on a live
/// guest such a walk — or one that failed on a fault or bad data, which a torn pointer causes — is re-run, up to
/// `MAX_RETRIES` times. What is still torn after that is recorded (`Kernel::take_consistency`) and flagged by the
/// caller. A paused or copied guest is read once: its damage is in the walkers' own warnings.
pub fn run(cx: &Context, name: &str, options: serde_json::Value) -> Result<String> {
    let w = find(name)?;
    let k = cx.kernel;
    let mut retries = 0u32;
    let mut torn_reads = 0u32;
    loop {
        let live = k.is_live();
        if live {
            k.forget_memo();
        }
        k.take_torn();
        let r = (w.run)(cx, options.clone());
        let mut torn = k.take_torn();
        if !live {
            // A file does not move: what did not hold together is damage, which the walker's own warnings report.
            return r;
        }
        let transient = matches!(&r, Err(Error::Fault { .. } | Error::BadData(_)));
        if !torn.is_empty() || transient {
            torn_reads = torn_reads.saturating_add(1);
        }
        if (torn.is_empty() && !transient) || retries >= MAX_RETRIES {
            if transient && torn.is_empty() {
                if let Err(e) = &r {
                    torn.push(e.to_string());
                }
            }
            k.record_walk(retries, torn_reads, torn.into_iter().map(|t| format!("{name}: {t}")).collect());
            return r;
        }
        retries += 1;
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod testkit;
#[cfg(test)]
mod hostile;
#[cfg(test)]
mod real;
