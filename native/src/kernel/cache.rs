//! The kernel profile cache: decoded symbols (+ raw BTF) of one boot, keyed by BUILD-ID + KERNELOFFSET,
//! in memory for this process and on disk under $XDG_CACHE_HOME/nearfield (never next to the images).
//!
//! File format (little-endian, ours): magic "NFPROF\0\0", version u32, reserved u32, payload length u64,
//! FNV-1a 64 of the payload u64, payload = symbol source u8, symbol count u32, per symbol
//! (address u64, name length u16, name), BTF length u32 + bytes (0 = none).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use super::discover::SymbolList;
use super::{Source, Symbols, Types};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"NFPROF\0\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 32;
const MAX_SYMBOLS: u32 = 4_000_000;
const MAX_BTF: u32 = 256 << 20;

/// What discovery decoded once and every later open of the same boot reuses.
pub struct Profile {
    pub symbols: Arc<dyn Symbols>,
    pub symbols_source: Source,
    pub types: Option<Arc<dyn Types>>,
    /// Raw vmlinux BTF, kept so the on-disk cache can rebuild `types`.
    pub btf: Option<Arc<Vec<u8>>>,
}

/// Cache key: "<build-id>-<kaslr offset hex>", restricted to safe file-name characters.
pub fn key(build_id: &str, kaslr_offset: u64) -> String {
    let id: String = build_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(80).collect();
    format!("{id}-{kaslr_offset:x}")
}

fn memo() -> &'static Mutex<HashMap<String, Arc<Profile>>> {
    static MEMO: OnceLock<Mutex<HashMap<String, Arc<Profile>>>> = OnceLock::new();
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
pub fn load(key: &str) -> Result<Option<(Arc<Profile>, Option<String>)>> {
    if let Some(p) = memo().lock().ok().and_then(|m| m.get(key).cloned()) {
        return Ok(Some((p, Some("memory".into()))));
    }
    let Some(path) = file_for(key) else { return Ok(None) };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
    };
    let p = Arc::new(decode(&bytes).map_err(|e| e.context(path.display()))?);
    if let Ok(mut m) = memo().lock() {
        m.insert(key.to_string(), p.clone());
    }
    Ok(Some((p, Some(path.display().to_string()))))
}

/// Keep the profile in memory and write it to disk (atomically: temp file + rename).
pub fn store(key: &str, p: &Arc<Profile>) -> Result<Option<String>> {
    if let Ok(mut m) = memo().lock() {
        m.insert(key.to_string(), p.clone());
    }
    let Some(path) = file_for(key) else { return Ok(None) };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::Io(format!("{}: {e}", parent.display())))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, encode(p)).map_err(|e| Error::Io(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io(format!("{}: {e}", path.display()))
    })?;
    Ok(Some(path.display().to_string()))
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
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
        _ => return None,
    })
}

pub fn encode(p: &Profile) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.push(source_code(p.symbols_source));
    let all = p.symbols.all();
    let all: Vec<_> = all.into_iter().filter(|(n, _)| n.len() <= u16::MAX as usize).collect();
    payload.extend((all.len() as u32).to_le_bytes());
    for (name, addr) in &all {
        payload.extend(addr.to_le_bytes());
        payload.extend((name.len() as u16).to_le_bytes());
        payload.extend(name.as_bytes());
    }
    let btf = p.btf.as_deref().map(Vec::as_slice).unwrap_or(&[]);
    payload.extend((btf.len() as u32).to_le_bytes());
    payload.extend(btf);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend(MAGIC);
    out.extend(VERSION.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend((payload.len() as u64).to_le_bytes());
    out.extend(fnv1a(&payload).to_le_bytes());
    out.extend(payload);
    out
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let s = self.b.get(self.pos..self.pos.saturating_add(n)).ok_or_else(|| Error::bad(format!("cache file cut short at {}", self.pos)))?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| Error::bad("cache"))?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| Error::bad("cache"))?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| Error::bad("cache"))?))
    }
}

pub fn decode(bytes: &[u8]) -> Result<Profile> {
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
    if payload.len() as u64 != len || fnv1a(payload) != sum {
        return Err(Error::bad("profile cache checksum mismatch"));
    }
    let mut r = Reader { b: payload, pos: 0 };
    let source = source_from(r.u8()?).ok_or_else(|| Error::bad("profile cache: unknown symbol source"))?;
    let count = r.u32()?;
    if count > MAX_SYMBOLS {
        return Err(Error::bad(format!("profile cache: {count} symbols is absurd")));
    }
    let mut list = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let addr = r.u64()?;
        let n = r.u16()? as usize;
        let name = std::str::from_utf8(r.take(n)?).map_err(|_| Error::bad("profile cache: symbol name not UTF-8"))?;
        list.push((name.to_string(), addr));
    }
    let btf_len = r.u32()?;
    if btf_len > MAX_BTF {
        return Err(Error::bad("profile cache: BTF length absurd"));
    }
    let btf = r.take(btf_len as usize)?.to_vec();
    let btf = (!btf.is_empty()).then(|| Arc::new(btf));
    let types = match &btf {
        Some(b) => super::discover::types_from_btf(b.as_ref().clone()).ok(),
        None => None,
    };
    Ok(Profile { symbols: Arc::new(SymbolList::new(list, source)), symbols_source: source, types, btf })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Profile {
        let list = vec![("init_task".to_string(), 0xffff_ffff_8be1_aa40), ("jiffies_64".to_string(), 0xffff_ffff_8be0_79c0)];
        Profile { symbols: Arc::new(SymbolList::new(list, Source::Kallsyms)), symbols_source: Source::Kallsyms, types: None, btf: None }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample());
        let p = decode(&bytes).unwrap();
        assert_eq!(p.symbols.address_of("init_task"), Some(0xffff_ffff_8be1_aa40));
        assert_eq!(p.symbols.len(), 2);
        assert_eq!(p.symbols_source, Source::Kallsyms);
    }

    #[test]
    fn corrupt_files_are_refused() {
        let bytes = encode(&sample());
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        assert!(decode(&flipped).is_err());
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(decode(&v2).is_err());
        // A consistent checksum over a lying count is still refused without a huge allocation.
        let mut lie = bytes[..HEADER_LEN].to_vec();
        let mut payload = vec![1u8];
        payload.extend(u32::MAX.to_le_bytes());
        lie[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        lie[24..32].copy_from_slice(&fnv1a(&payload).to_le_bytes());
        lie.extend(payload);
        assert!(decode(&lie).is_err());
    }

    #[test]
    fn store_and_load_from_disk() {
        let dir = std::env::temp_dir().join(format!("nearfield-cache-test-{}", std::process::id()));
        std::env::set_var("NEARFIELD_CACHE_DIR", &dir);
        let k = key("ab/../cd", 0x1400000);
        assert_eq!(k, "abcd-1400000");
        let file = store(&k, &Arc::new(sample())).unwrap().unwrap();
        assert!(file.starts_with(dir.to_str().unwrap()));
        clear_memory();
        let (p, from) = load(&k).unwrap().unwrap();
        assert_eq!(from.as_deref(), Some(file.as_str()));
        assert_eq!(p.symbols.address_of("jiffies_64"), Some(0xffff_ffff_8be0_79c0));
        let (_, from) = load(&k).unwrap().unwrap();
        assert_eq!(from.as_deref(), Some("memory"));
        clear_memory();
        std::fs::write(&file, b"NFPROF\0\0garbage").unwrap();
        assert!(load(&k).is_err());
        assert!(load("absent-0").unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Where VMCOREINFO sat in a RAM file, remembered for this process so a warm open skips the scan.
/// Keyed by path + length + mtime; the note is re-validated when used.
fn hints() -> &'static Mutex<HashMap<(PathBuf, u64, std::time::SystemTime), u64>> {
    static HINTS: OnceLock<Mutex<HashMap<(PathBuf, u64, std::time::SystemTime), u64>>> = OnceLock::new();
    HINTS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn hint_key(path: &std::path::Path) -> Option<(PathBuf, u64, std::time::SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((path.to_path_buf(), m.len(), m.modified().ok()?))
}

pub fn vmcoreinfo_hint(path: &std::path::Path) -> Option<u64> {
    let k = hint_key(path)?;
    hints().lock().ok()?.get(&k).copied()
}

pub fn remember_vmcoreinfo(path: &std::path::Path, phys: u64) {
    if let (Some(k), Ok(mut h)) = (hint_key(path), hints().lock()) {
        h.insert(k, phys);
    }
}
