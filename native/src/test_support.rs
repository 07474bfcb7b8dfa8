//! Where tests find a real guest: the committed sample (unpacked by `node images/unpack-sample.mjs`),
//! else NEARFIELD_SAMPLE_DIR, else the guest named by images/FIRST_GUEST_READY.

use std::path::{Path, PathBuf};

/// The first candidate holding ram.raw and truth.json. When NEARFIELD_REQUIRE_SAMPLE is set (as `npm test`
/// sets it, after unpacking), a missing sample is a failure, not a skip: CI must never pass these unread.
pub fn real_guest_dir() -> Option<PathBuf> {
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images");
    let mut candidates = vec![images.join(".cache/sample")];
    if let Some(d) = std::env::var_os("NEARFIELD_SAMPLE_DIR") {
        candidates.insert(0, PathBuf::from(d));
    }
    if let Ok(p) = std::fs::read_to_string(images.join("FIRST_GUEST_READY")) {
        candidates.push(PathBuf::from(p.trim()));
    }
    let found = candidates.into_iter().find(|d| d.join("ram.raw").is_file() && d.join("truth.json").is_file());
    if found.is_none() && std::env::var_os("NEARFIELD_REQUIRE_SAMPLE").is_some() {
        panic!("NEARFIELD_REQUIRE_SAMPLE is set but no real guest was found: run `node images/unpack-sample.mjs`");
    }
    found
}
