//! The kernel profile cache: decoded symbols (+ raw BTF) of one kernel build, keyed by its BUILD-ID, in memory
//! for this process and on disk under $XDG_CACHE_HOME/nearfield (never next to the images). Symbols are stored
//! at their link-time addresses and relocated by each boot's KASLR offset when loaded, so every VM running
//! the same kernel shares one file.
//!
//! File format (little-endian, ours): magic "NFPROF\0\0", version u32, reserved u32, payload length u64,
//! checksum of the payload u64 (see `checksum`), payload = symbol source u8, symbol count u32, BTF type
//! count u32, names blob length u32, then per symbol sorted by name (name offset u32, name length u16,
//! pad u16, address u64), the names blob, BTF length u32 + bytes (0 = none), BTF index length u32 + bytes
//! (`btf::Btf::index_bytes`: its type table and sorted name indexes). Lookups binary-search the file's own
//! bytes, and BTF is opened from its stored index when a type is first asked for: a warm run parses nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use super::btf::BtfBytes;
use super::{Source, Symbols, Types};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"NFPROF\0\0";
const VERSION: u32 = 4;
/// The kernel image's virtual range (arch/x86 __START_KERNEL_map + KERNEL_IMAGE_SIZE, 1 GiB with KASLR): only
/// these addresses move with KASLR; per-CPU offsets and absolute symbols do not.
const IMAGE_START: u64 = 0xffff_ffff_8000_0000;
const IMAGE_END: u64 = IMAGE_START + (1 << 30);
/// Profiles and VMCOREINFO places kept on disk; older ones are removed when a new one is written.
const KEEP_PROFILES: usize = 16;
const KEEP_HINTS: usize = 512;

/// Move a kernel-image address by `delta` (KASLR applied or removed); others stay.
fn relocate(addr: u64, delta: u64) -> u64 {
    if (IMAGE_START..IMAGE_END).contains(&addr) { addr.wrapping_add(delta) } else { addr }
}
const ENTRY_LEN: usize = 16;
const HEADER_LEN: usize = 32;
const MAX_SYMBOLS: u32 = 4_000_000;
const MAX_BTF: u32 = 256 << 20;

/// What discovery decoded once and every later open of the same boot reuses.
pub struct Profile {
    pub symbols: Arc<dyn Symbols>,
    pub symbols_source: Source,
    pub types: Option<Arc<dyn Types>>,
    /// Raw vmlinux BTF, kept so the on-disk cache can rebuild `types`.
    pub btf: Option<BtfBytes>,
}

/// A profile file's bytes: mapped read-only from the cache (no copy; pages shared with the page cache), or
/// owned. The cache is replaced by rename, never rewritten in place, so a mapping stays whole.
pub enum Blob {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        match self {
            Blob::Mapped(m) => m,
            Blob::Owned(v) => v,
        }
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Blob {
        Blob::Owned(v)
    }
}

/// Cache key: the build id, restricted to safe file-name characters.
pub fn key(build_id: &str) -> String {
    build_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(80).collect()
}

/// Profiles of this process, by key and KASLR offset (their symbols are relocated for that boot).
fn memo() -> &'static Mutex<HashMap<(String, u64), Arc<Profile>>> {
    static MEMO: OnceLock<Mutex<HashMap<(String, u64), Arc<Profile>>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The cache directory: $NEARFIELD_CACHE_DIR, else $XDG_CACHE_HOME/nearfield, else ~/.cache/nearfield.
pub fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("NEARFIELD_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("nearfield"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".cache").join("nearfield"))
}

fn file_for(key: &str) -> Option<PathBuf> {
    dir().map(|d| d.join(format!("{key}.nfprof")))
}

/// Forget the in-process copies (benchmarks use it for "cold").
pub fn clear_memory() {
    if let Ok(mut m) = memo().lock() {
        m.clear();
    }
}

/// A cached profile: from this process's memory, else from disk. A corrupt file is an error the caller
/// reports as a warning (and the next store rewrites it).
pub fn load(key: &str, kaslr: u64) -> Result<Option<(Arc<Profile>, Option<String>)>> {
    if let Some(p) = memo().lock().ok().and_then(|m| m.get(&(key.to_string(), kaslr)).cloned()) {
        return Ok(Some((p, Some("memory".into()))));
    }
    let Some(path) = file_for(key) else { return Ok(None) };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
    };
    // SAFETY: the file is only ever replaced by rename (write_atomically), so the mapped inode does not change.
    let bytes = match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => Blob::Mapped(m),
        Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
    };
    let p = Arc::new(decode(bytes, kaslr).map_err(|e| e.context(path.display()))?);
    if let Ok(mut m) = memo().lock() {
        m.insert((key.to_string(), kaslr), p.clone());
    }
    Ok(Some((p, Some(path.display().to_string()))))
}

/// Keep the profile in memory and write it to disk (atomically: temp file + rename).
pub fn store(key: &str, kaslr: u64, p: &Arc<Profile>) -> Result<Option<String>> {
    if let Ok(mut m) = memo().lock() {
        m.insert((key.to_string(), kaslr), p.clone());
    }
    let Some(path) = file_for(key) else { return Ok(None) };
    write_atomically(&path, &encode(p, kaslr))?;
    if let Some(d) = dir() {
        evict(&d, ".nfprof", KEEP_PROFILES);
    }
    Ok(Some(path.display().to_string()))
}

/// Keep the `keep` newest files of the cache directory whose names end (or start) with `pattern`.
fn evict(dir: &std::path::Path, pattern: &str, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(pattern) || n.starts_with(pattern)))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= keep {
        return;
    }
    files.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, f) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(f);
    }
}

/// Write beside `path`, then rename: a reader never sees half a file.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Io(format!("{}: {e}", parent.display())))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::Io(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io(format!("{}: {e}", path.display()))
    })
}

/// Word-wise multiply-xor hash: catches torn or corrupted files at memory speed (not cryptographic).
fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ data.len() as u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn source_code(s: Source) -> u8 {
    match s {
        Source::Vmcoreinfo => 0,
        Source::Kallsyms => 1,
        Source::Btf => 2,
        Source::SystemMap => 3,
        Source::Vmlinux => 4,
        Source::Isf => 5,
        Source::Scan => 6,
        Source::ElfNote => 7,
        Source::Cache => 8,
        Source::DumpHeader => 9,
    }
}

fn source_from(c: u8) -> Option<Source> {
    Some(match c {
        0 => Source::Vmcoreinfo,
        1 => Source::Kallsyms,
        2 => Source::Btf,
        3 => Source::SystemMap,
        4 => Source::Vmlinux,
        5 => Source::Isf,
        6 => Source::Scan,
        7 => Source::ElfNote,
        8 => Source::Cache,
        9 => Source::DumpHeader,
        _ => return None,
    })
}

/// The profile as a file, its kernel-image addresses made link-time again (KASLR offset `kaslr` removed).
pub fn encode(p: &Profile, kaslr: u64) -> Vec<u8> {
    let mut all: Vec<(String, u64)> = p.symbols.all().into_iter().filter(|(n, _)| n.len() <= u16::MAX as usize).collect();
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // Names repeat (static symbols): the one the table itself answers with goes first, and lookups
    // take the first of equals, so a cached profile resolves a name exactly as the live one did.
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        if j - i > 1 {
            if let Some(want) = p.symbols.address_of(&all[i].0) {
                if let Some(k) = all[i..j].iter().position(|e| e.1 == want) {
                    all[i..j].swap(0, k);
                }
            }
        }
        i = j;
    }
    let mut names: Vec<u8> = Vec::with_capacity(all.iter().map(|e| e.0.len()).sum());
    let mut entries: Vec<u8> = Vec::with_capacity(all.len() * ENTRY_LEN);
    for (name, addr) in &all {
        let mut e = [0u8; ENTRY_LEN];
        e[0..4].copy_from_slice(&(names.len() as u32).to_le_bytes());
        e[4..6].copy_from_slice(&(name.len() as u16).to_le_bytes());
        e[8..16].copy_from_slice(&relocate(*addr, kaslr.wrapping_neg()).to_le_bytes());
        entries.extend_from_slice(&e);
        names.extend_from_slice(name.as_bytes());
    }
    let btf: &[u8] = p.btf.as_deref().unwrap_or(&[]);
    let index = if btf.is_empty() { Vec::new() } else { p.types.as_ref().and_then(|t| t.btf_index()).unwrap_or_default() };
    let type_count = p.types.as_ref().map_or(0, |t| t.type_count()) as u32;
    let mut payload = Vec::with_capacity(13 + entries.len() + names.len() + 4 + btf.len());
    payload.push(source_code(p.symbols_source));
    payload.extend((all.len() as u32).to_le_bytes());
    payload.extend(type_count.to_le_bytes());
    payload.extend((names.len() as u32).to_le_bytes());
    payload.extend_from_slice(&entries);
    payload.extend_from_slice(&names);
    payload.extend_from_slice(&(btf.len() as u32).to_le_bytes());
    payload.extend_from_slice(btf);
    payload.extend_from_slice(&(index.len() as u32).to_le_bytes());
    payload.extend_from_slice(&index);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend(MAGIC);
    out.extend(VERSION.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend((payload.len() as u64).to_le_bytes());
    out.extend(checksum(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Symbols served straight from the cache file's bytes (entries sorted by name, checked at load).
struct CachedSymbols {
    bytes: Arc<Blob>,
    entries_at: usize,
    names_at: usize,
    count: usize,
    source: Source,
    /// This boot's KASLR offset, added to kernel-image addresses as they are read.
    kaslr: u64,
}

impl CachedSymbols {
    /// Entry `i` (< count, so inside the entries `decode` measured); a name pointing outside the file reads
    /// as empty, never a panic.
    fn entry(&self, i: usize) -> (&[u8], u64) {
        let at = self.entries_at + i * ENTRY_LEN;
        let b: &[u8] = (*self.bytes).as_ref();
        let off = crate::bytes::le_u32(b, at).unwrap_or(0) as usize;
        let len = crate::bytes::le_u16(b, at + 4).unwrap_or(0) as usize;
        let addr = crate::bytes::le_u64(b, at + 8).unwrap_or(0);
        let start = self.names_at.saturating_add(off);
        (b.get(start..start.saturating_add(len)).unwrap_or(&[]), relocate(addr, self.kaslr))
    }
}

impl Symbols for CachedSymbols {
    fn address_of(&self, name: &str) -> Option<u64> {
        // Lower bound: the first of equal names is the preferred one (see `encode`).
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).0 < name.as_bytes() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < self.count).then(|| self.entry(lo)).filter(|(n, _)| *n == name.as_bytes()).map(|(_, a)| a)
    }
    fn len(&self) -> usize {
        self.count
    }
    fn all(&self) -> Vec<(String, u64)> {
        (0..self.count).map(|i| self.entry(i)).map(|(n, a)| (String::from_utf8_lossy(n).into_owned(), a)).collect()
    }
    fn source(&self) -> Source {
        self.source
    }
}

/// vmlinux BTF opened on first use, from the index stored beside it (else parsed, for a file without one);
/// the type count is known from the cache without either.
struct LazyBtfTypes {
    btf: BtfBytes,
    /// Where the stored index sits in the file (empty: none).
    index: BtfBytes,
    count: usize,
    parsed: OnceLock<Option<super::btf::Btf>>,
}

impl LazyBtfTypes {
    fn get(&self) -> Option<&super::btf::Btf> {
        self.parsed
            .get_or_init(|| {
                let data = self.btf.clone();
                if self.index.is_empty() { super::btf::Btf::parse(data) } else { super::btf::Btf::with_index(data, &self.index) }.ok()
            })
            .as_ref()
    }
}

impl Types for LazyBtfTypes {
    fn struct_size(&self, name: &str) -> Option<u64> {
        self.get()?.struct_size(name)
    }
    fn member(&self, struct_name: &str, path: &str) -> Option<super::Member> {
        self.get()?.member(struct_name, path)
    }
    fn enum_value(&self, enum_name: &str, enumerator: &str) -> Option<i64> {
        self.get()?.enum_value(enum_name, enumerator)
    }
    fn enumerator(&self, enumerator: &str) -> Option<i64> {
        self.get()?.enumerator(enumerator)
    }
    fn type_count(&self) -> usize {
        self.count
    }
    fn source(&self) -> Source {
        Source::Btf
    }
    fn btf_index(&self) -> Option<Vec<u8>> {
        (!self.index.is_empty()).then(|| self.index.to_vec()).or_else(|| Some(self.get()?.index_bytes()))
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| Error::bad("cache length overflow"))?;
        let s = self.b.get(self.pos..end).ok_or_else(|| Error::bad(format!("cache file cut short at {}", self.pos)))?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
}

/// A profile file, its symbols relocated for a boot with KASLR offset `kaslr`.
pub fn decode(bytes: impl Into<Blob>, kaslr: u64) -> Result<Profile> {
    let blob: Arc<Blob> = Arc::new(bytes.into());
    let bytes: &[u8] = (*blob).as_ref();
    let mut r = Reader { b: bytes, pos: 0 };
    if r.take(8)? != MAGIC {
        return Err(Error::bad("not a nearfield profile cache file"));
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(Error::bad(format!("profile cache version {version}, expected {VERSION}")));
    }
    r.u32()?;
    let len = r.u64()?;
    let sum = r.u64()?;
    let payload = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    if payload.len() as u64 != len || checksum(payload) != sum {
        return Err(Error::bad("profile cache checksum mismatch"));
    }
    let mut r = Reader { b: bytes, pos: HEADER_LEN };
    let source = source_from(r.u8()?).ok_or_else(|| Error::bad("profile cache: unknown symbol source"))?;
    let count = r.u32()?;
    let type_count = r.u32()? as usize;
    let names_len = r.u32()? as usize;
    if count > MAX_SYMBOLS {
        return Err(Error::bad(format!("profile cache: {count} symbols is absurd")));
    }
    let count = count as usize;
    let entries_at = r.pos;
    r.take(count * ENTRY_LEN)?;
    let names_at = r.pos;
    r.take(names_len)?;
    // Every entry must point inside the names blob (cheap: no string is read). Their order is `encode`'s,
    // vouched for by the checksum and not re-compared on every warm run.
    for i in 0..count {
        let at = entries_at + i * ENTRY_LEN;
        let off = crate::bytes::le_u32(bytes, at).unwrap_or(u32::MAX) as usize;
        let n = crate::bytes::le_u16(bytes, at + 4).unwrap_or(0) as usize;
        if off.checked_add(n).map_or(true, |end| end > names_len) {
            return Err(Error::bad(format!("profile cache: symbol {i} points outside the names")));
        }
    }
    let btf_len = r.u32()?;
    if btf_len > MAX_BTF {
        return Err(Error::bad("profile cache: BTF length absurd"));
    }
    let btf_at = r.pos;
    r.take(btf_len as usize)?;
    let index_len = r.u32()? as usize;
    let index_at = r.pos;
    r.take(index_len)?;
    let shared: Arc<dyn AsRef<[u8]> + Send + Sync> = blob.clone();
    let index = BtfBytes::within(shared.clone(), index_at, index_len);
    let btf = (btf_len > 0).then(|| BtfBytes::within(shared, btf_at, btf_len as usize));
    let types: Option<Arc<dyn Types>> =
        btf.clone().map(|b| Arc::new(LazyBtfTypes { btf: b, index, count: type_count, parsed: OnceLock::new() }) as Arc<dyn Types>);
    let symbols = CachedSymbols { bytes: blob, entries_at, names_at, count, source, kaslr };
    Ok(Profile { symbols: Arc::new(symbols), symbols_source: source, types, btf })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::discover::SymbolList;

    fn sample() -> Profile {
        let list = vec![("init_task".to_string(), 0xffff_ffff_8be1_aa40), ("jiffies_64".to_string(), 0xffff_ffff_8be0_79c0)];
        Profile { symbols: Arc::new(SymbolList::new(list, Source::Kallsyms)), symbols_source: Source::Kallsyms, types: None, btf: None }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample(), 0);
        let p = decode(bytes, 0).unwrap();
        assert_eq!(p.symbols.address_of("jiffies_64"), Some(0xffff_ffff_8be0_79c0));
        assert_eq!(p.symbols.address_of("jiffies"), None);
        assert_eq!(p.symbols.address_of("zzz"), None);
        assert_eq!(p.symbols.address_of("init_task"), Some(0xffff_ffff_8be1_aa40));
        assert_eq!(p.symbols.len(), 2);
        assert_eq!(p.symbols_source, Source::Kallsyms);
    }

    #[test]
    fn one_file_serves_every_boot_of_a_build_relocated_by_its_kaslr_offset() {
        // this boot: KASLR 0x0a600000; a percpu offset and an absolute symbol do not move
        let boot = vec![("init_task".to_string(), 0xffff_ffff_8be1_aa40), ("fixed_percpu_data".to_string(), 0x0), ("jiffies_64".to_string(), 0xffff_ffff_8be0_79c0)];
        let p = Profile { symbols: Arc::new(SymbolList::new(boot, Source::Kallsyms)), symbols_source: Source::Kallsyms, types: None, btf: None };
        let file = encode(&p, 0x0a60_0000);
        let same = decode(file.clone(), 0x0a60_0000).unwrap();
        assert_eq!(same.symbols.address_of("init_task"), Some(0xffff_ffff_8be1_aa40));
        let other = decode(file, 0x1c20_0000).unwrap();
        assert_eq!(other.symbols.address_of("init_task"), Some(0xffff_ffff_8be1_aa40 - 0x0a60_0000 + 0x1c20_0000));
        assert_eq!(other.symbols.address_of("fixed_percpu_data"), Some(0));
    }

    /// A table that prefers the second of two same-named symbols (as kallsyms prefers globals).
    struct Prefers(Vec<(String, u64)>);
    impl Symbols for Prefers {
        fn address_of(&self, name: &str) -> Option<u64> {
            self.0.iter().filter(|(n, _)| n == name).map(|e| e.1).max()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
        fn all(&self) -> Vec<(String, u64)> {
            self.0.clone()
        }
        fn source(&self) -> Source {
            Source::Kallsyms
        }
    }

    #[test]
    fn duplicate_names_resolve_as_the_live_table_did() {
        let mut list = Vec::new();
        for i in 0..50u64 {
            list.push((format!("sym{i:02}"), 0x1000 + i));
        }
        list.push(("sym07".into(), 0x9999));
        list.push(("sym07".into(), 0x0001));
        let p = Profile { symbols: Arc::new(Prefers(list)), symbols_source: Source::Kallsyms, types: None, btf: None };
        let back = decode(encode(&p, 0), 0).unwrap();
        assert_eq!(back.symbols.address_of("sym07"), Some(0x9999));
        assert_eq!(back.symbols.address_of("sym00"), Some(0x1000));
        assert_eq!(back.symbols.address_of("sym49"), Some(0x1000 + 49));
        assert_eq!(back.symbols.address_of("sym"), None);
        assert_eq!(back.symbols.len(), 52);
    }

    #[test]
    fn corrupt_files_are_refused() {
        let bytes = encode(&sample(), 0);
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(decode(bytes[..cut].to_vec(), 0).is_err());
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        assert!(decode(flipped, 0).is_err());
        let mut v2 = bytes.clone();
        v2[8] = 9;
        assert!(decode(v2, 0).is_err());
        // A consistent checksum over a lying count is still refused without a huge allocation.
        let mut lie = bytes[..HEADER_LEN].to_vec();
        let mut payload = vec![1u8];
        payload.extend(3_000_000u32.to_le_bytes());
        payload.extend([0u8; 8]);
        lie[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        lie[24..32].copy_from_slice(&checksum(&payload).to_le_bytes());
        lie.extend(payload);
        assert!(decode(lie, 0).is_err());
        // An entry pointing past the names blob, with a valid checksum.
        let good = encode(&sample(), 0);
        let mut payload = good[HEADER_LEN..].to_vec();
        payload[13..17].copy_from_slice(&1000u32.to_le_bytes());
        let mut bad = good[..HEADER_LEN].to_vec();
        bad[24..32].copy_from_slice(&checksum(&payload).to_le_bytes());
        bad.extend(payload);
        assert!(decode(bad, 0).is_err());
    }

    #[test]
    fn store_and_load_from_disk() {
        let dir = std::env::temp_dir().join(format!("nearfield-cache-test-{}", std::process::id()));
        std::env::set_var("NEARFIELD_CACHE_DIR", &dir);
        let k = key("ab/../cd");
        assert_eq!(k, "abcd");
        let file = store(&k, 0x1400000, &Arc::new(sample())).unwrap().unwrap();
        assert!(file.starts_with(dir.to_str().unwrap()));
        clear_memory();
        let (p, from) = load(&k, 0x1400000).unwrap().unwrap();
        assert_eq!(from.as_deref(), Some(file.as_str()));
        assert_eq!(p.symbols.address_of("jiffies_64"), Some(0xffff_ffff_8be0_79c0));
        let (_, from) = load(&k, 0x1400000).unwrap().unwrap();
        assert_eq!(from.as_deref(), Some("memory"));
        clear_memory();
        std::fs::write(&file, b"NFPROF\0\0garbage").unwrap();
        assert!(load(&k, 0x1400000).is_err());
        assert!(load("absent", 0).unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Where VMCOREINFO sat in a RAM file, remembered per file identity so a warm open reads one page instead of
/// scanning RAM: in this process, and on disk as `vmcoreinfo-<dev>-<inode>-<size>` in the cache directory.
/// Not keyed by mtime: a running VM's RAM file changes all the time while the note stays where it is. A hint
/// is only a place to look: discovery re-validates the note there and the page tables it names, and scans
/// when they do not hold (a rebooted guest, a replaced file).
type HintKey = (u64, u64, u64);

fn hints() -> &'static Mutex<HashMap<HintKey, u64>> {
    static HINTS: OnceLock<Mutex<HashMap<HintKey, u64>>> = OnceLock::new();
    HINTS.get_or_init(|| Mutex::new(HashMap::new()))
}

#[cfg(unix)]
fn hint_key(path: &std::path::Path) -> Option<HintKey> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.len()))
}

#[cfg(not(unix))]
fn hint_key(_path: &std::path::Path) -> Option<HintKey> {
    None
}

fn hint_file(k: HintKey) -> Option<PathBuf> {
    dir().map(|d| d.join(format!("vmcoreinfo-{:x}-{:x}-{:x}", k.0, k.1, k.2)))
}

pub fn vmcoreinfo_hint(path: &std::path::Path) -> Option<u64> {
    let k = hint_key(path)?;
    if let Some(at) = hints().lock().ok()?.get(&k).copied() {
        return Some(at);
    }
    let text = std::fs::read_to_string(hint_file(k)?).ok()?;
    u64::from_str_radix(text.trim().strip_prefix("0x")?, 16).ok()
}

pub fn remember_vmcoreinfo(path: &std::path::Path, phys: u64) {
    let Some(k) = hint_key(path) else { return };
    if let Ok(mut h) = hints().lock() {
        h.insert(k, phys);
    }
    // On disk for the next process; a failure only costs that process a scan.
    if let Some(file) = hint_file(k) {
        if std::fs::read_to_string(&file).ok().as_deref() != Some(&format!("{phys:#x}\n")) && write_atomically(&file, format!("{phys:#x}\n").as_bytes()).is_ok() {
            if let Some(d) = dir() {
                evict(&d, "vmcoreinfo-", KEEP_HINTS);
            }
        }
    }
}

/// Forget a hint that did not hold.
pub fn forget_vmcoreinfo(path: &std::path::Path) {
    let Some(k) = hint_key(path) else { return };
    if let Ok(mut h) = hints().lock() {
        h.remove(&k);
    }
    if let Some(file) = hint_file(k) {
        let _ = std::fs::remove_file(file);
    }
}
