//! QEMU qcow2 v2/v3 images, read-only (QEMU docs/interop/qcow2.txt): L1→L2 lookup, zero and
//! compressed clusters (deflate, zstd), extended L2 entries with subclusters, backing-file chains.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::block::{be_u32, be_u64, check_range, read_vec, BlockDevice, HostFile};
use crate::{Error, Result};

const QCOW_MAGIC: &[u8; 4] = b"QFI\xfb";
/// QEMU refuses deeper chains too; a loop is caught before this by the visited set.
const MAX_BACKING_DEPTH: usize = 16;
/// QEMU's QCOW_MAX_L1_SIZE: 32 MiB of L1 table.
const MAX_L1_BYTES: u64 = 32 << 20;
/// Bytes of L2 tables kept in memory.
const L2_CACHE_BYTES: u64 = 16 << 20;

const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2E_COMPRESSED: u64 = 1 << 62;
const L2E_ZERO: u64 = 1;

// Incompatible feature bits (header offset 72).
const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 = 0x1F;

// Header extension types.
const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xE279_2ACA;

/// The on-disk header fields (big-endian), v2 (72 bytes) and v3 (≥ 104 bytes).
#[derive(Debug, Clone, Default)]
pub struct QcowHeader {
    pub version: u32,
    pub backing_file_offset: u64,
    pub backing_file_size: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub crypt_method: u32,
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub incompatible_features: u64,
    pub header_length: u32,
    pub compression_type: u8,
}

impl QcowHeader {
    pub fn parse(b: &[u8]) -> Self {
        let version = be_u32(b, 4);
        let v3 = version >= 3;
        let header_length = if v3 { be_u32(b, 100) } else { 72 };
        QcowHeader {
            version,
            backing_file_offset: be_u64(b, 8),
            backing_file_size: be_u32(b, 16),
            cluster_bits: be_u32(b, 20),
            size: be_u64(b, 24),
            crypt_method: be_u32(b, 32),
            l1_size: be_u32(b, 36),
            l1_table_offset: be_u64(b, 40),
            incompatible_features: if v3 { be_u64(b, 72) } else { 0 },
            header_length,
            compression_type: if v3 && header_length > 104 { b.get(104).copied().unwrap_or(0) } else { 0 },
        }
    }
}

struct L2Cache {
    /// (host offset of the table, its entries), most recently used last.
    tables: Vec<(u64, Arc<Vec<u64>>)>,
    max: usize,
    /// The last decompressed cluster: (L2 entry, bytes).
    compressed: Option<(u64, Arc<Vec<u8>>)>,
}

pub struct Qcow2 {
    file: Arc<dyn BlockDevice>,
    path: PathBuf,
    file_size: u64,
    header: QcowHeader,
    cluster_size: u64,
    l2_bits: u32,
    extended_l2: bool,
    l1: Vec<u64>,
    backing: Option<Arc<dyn BlockDevice>>,
    chain: Vec<String>,
    warnings: Vec<String>,
    cache: Mutex<L2Cache>,
}

fn bad(path: &Path, msg: String) -> Error {
    Error::bad(format!("qcow2 {}: {msg}", path.display()))
}

fn unsupported(path: &Path, msg: String) -> Error {
    Error::Unsupported(format!("qcow2 {}: {msg}", path.display()))
}

/// Where an image and its backing files are opened from: the host file system, or memory (fuzzing, tests).
pub trait Files {
    fn open(&self, path: &Path, label: &'static str) -> Result<Arc<dyn BlockDevice>>;
    /// The name a file is known by, for spotting a backing chain that loops.
    fn canonical(&self, path: &Path) -> PathBuf;
}

/// The host file system, read with pread (block::HostFile).
pub struct HostFiles;

impl Files for HostFiles {
    fn open(&self, path: &Path, label: &'static str) -> Result<Arc<dyn BlockDevice>> {
        Ok(Arc::new(HostFile::open(path, label)?))
    }
    fn canonical(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Files held in memory by name (fuzzing, tests): a name is its own canonical form.
pub struct MemFiles(pub std::collections::HashMap<PathBuf, Arc<dyn BlockDevice>>);

impl Files for MemFiles {
    fn open(&self, path: &Path, _label: &'static str) -> Result<Arc<dyn BlockDevice>> {
        self.0.get(path).cloned().ok_or_else(|| Error::NotFound(format!("no file {}", path.display())))
    }
    fn canonical(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }
}

impl Qcow2 {
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_in(&HostFiles, path)
    }

    /// Open `path` and its backing chain from `files`.
    pub fn open_in(files: &dyn Files, path: &Path) -> Result<Self> {
        let mut visited = HashSet::new();
        Self::open_depth(files, path, 0, &mut visited)
    }

    fn open_depth(files: &dyn Files, path: &Path, depth: usize, visited: &mut HashSet<PathBuf>) -> Result<Self> {
        let canon = files.canonical(path);
        if !visited.insert(canon.clone()) {
            return Err(bad(path, format!("backing-file chain loops back to {}", canon.display())));
        }
        let file = files.open(path, "qcow2 image")?;
        let file_size = file.size();
        if file_size < 72 {
            return Err(bad(path, format!("{file_size} bytes is too short for a header (truncated?)")));
        }
        let head = read_vec(file.as_ref(), 0, file_size.min(4096) as usize)?;
        if head.get(0..4) != Some(QCOW_MAGIC.as_slice()) {
            return Err(bad(path, "no QFI\\xfb magic".into()));
        }
        let h = QcowHeader::parse(&head);
        if h.version != 2 && h.version != 3 {
            return Err(unsupported(path, format!("version {} (only 2 and 3 exist)", h.version)));
        }
        if !(9..=21).contains(&h.cluster_bits) {
            return Err(bad(path, format!("cluster_bits {} is outside 9..=21", h.cluster_bits)));
        }
        if h.crypt_method != 0 {
            return Err(unsupported(path, format!("encrypted image (crypt_method {}); decrypt it with qemu-img convert", h.crypt_method)));
        }
        let cluster_size = 1u64 << h.cluster_bits;
        if h.version == 3 && (h.header_length < 104 || h.header_length as u64 > cluster_size) {
            return Err(bad(path, format!("header_length {} is outside 104..={cluster_size}", h.header_length)));
        }
        let mut warnings = Vec::new();
        let inc = h.incompatible_features;
        if inc & !INCOMPAT_KNOWN != 0 {
            return Err(unsupported(path, format!("unknown incompatible feature bits {:#x}", inc & !INCOMPAT_KNOWN)));
        }
        if inc & INCOMPAT_CORRUPT != 0 {
            return Err(unsupported(path, "marked corrupt by QEMU (incompatible bit 1); run `qemu-img check` on a copy".into()));
        }
        if inc & INCOMPAT_DATA_FILE != 0 {
            return Err(unsupported(path, "guest data lives in an external data file (incompatible bit 2)".into()));
        }
        if inc & INCOMPAT_DIRTY != 0 {
            // Dirty only means refcounts were not flushed (QEMU has it open, or crashed); the L1/L2
            // tables we read are still authoritative, and we never touch refcounts.
            warnings.push(format!("qcow2 {} is marked dirty (in use by QEMU or not closed cleanly); reading anyway", path.display()));
        }
        if inc & INCOMPAT_COMPRESSION == 0 && h.compression_type != 0 {
            return Err(bad(path, format!("compression_type {} without the compression-type feature bit", h.compression_type)));
        }
        if h.compression_type > 1 {
            return Err(unsupported(path, format!("compression type {}", h.compression_type)));
        }
        let extended_l2 = inc & INCOMPAT_EXTL2 != 0;
        if extended_l2 && h.cluster_bits < 14 {
            return Err(bad(path, format!("extended L2 entries need clusters of 16 KiB or more, not {cluster_size}")));
        }
        let l2_bits = h.cluster_bits - if extended_l2 { 4 } else { 3 };
        // The L1 table must cover the virtual size, fit QEMU's limit, and lie inside the file.
        let per_l1 = 1u128 << (h.cluster_bits + l2_bits);
        let needed = (h.size as u128).div_ceil(per_l1);
        if (h.l1_size as u128) < needed {
            return Err(bad(path, format!("l1_size {} cannot map the virtual size {} (needs {needed})", h.l1_size, h.size)));
        }
        let l1_bytes = h.l1_size as u64 * 8;
        if l1_bytes > MAX_L1_BYTES {
            return Err(bad(path, format!("L1 table of {l1_bytes} bytes is over QEMU's 32 MiB limit")));
        }
        if !h.l1_table_offset.is_multiple_of(cluster_size) && h.l1_size > 0 {
            return Err(bad(path, format!("L1 table offset {:#x} is not cluster-aligned", h.l1_table_offset)));
        }
        if h.l1_table_offset.checked_add(l1_bytes).is_none_or(|end| end > file_size) {
            return Err(bad(path, format!(
                "L1 table at {:#x} ({l1_bytes} bytes) runs past the end of the file ({file_size} bytes; truncated?)",
                h.l1_table_offset
            )));
        }
        let l1_raw = read_vec(file.as_ref(), h.l1_table_offset, l1_bytes as usize)?;
        let l1 = l1_raw.chunks_exact(8).map(|c| be_u64(c, 0)).collect();

        let backing_format = header_extensions(file.as_ref(), &h, cluster_size, path)?;
        let mut chain = Vec::new();
        let backing = if h.backing_file_offset != 0 {
            let name = backing_name(file.as_ref(), &h, cluster_size, path)?;
            if depth + 1 >= MAX_BACKING_DEPTH {
                return Err(bad(path, format!("backing-file chain deeper than {MAX_BACKING_DEPTH}")));
            }
            let resolved = resolve_backing(path, &name)?;
            let dev: Arc<dyn BlockDevice> = match backing_format.as_deref() {
                Some("raw") => files.open(&resolved, "raw backing file").map_err(|e| missing(e, path, &name, &resolved))?,
                Some("qcow2") | None => {
                    let probe = files.open(&resolved, "backing file").map_err(|e| missing(e, path, &name, &resolved))?;
                    let mut m = [0u8; 4];
                    if probe.size() >= 4 {
                        probe.read_at(0, &mut m)?;
                    }
                    if &m == QCOW_MAGIC {
                        let q = Qcow2::open_depth(files, &resolved, depth + 1, visited)?;
                        chain.push(resolved.display().to_string());
                        chain.extend(q.chain.iter().cloned());
                        warnings.extend(q.warnings.iter().cloned());
                        Arc::new(q)
                    } else if backing_format.is_none() {
                        probe
                    } else {
                        return Err(bad(path, format!("backing file {} is declared qcow2 but has no qcow2 magic", resolved.display())));
                    }
                }
                Some(other) => return Err(unsupported(path, format!("backing file format {other:?}"))),
            };
            if chain.is_empty() {
                chain.push(resolved.display().to_string());
            }
            Some(dev)
        } else {
            None
        };
        let max = (L2_CACHE_BYTES / cluster_size).max(2) as usize;
        Ok(Qcow2 {
            file,
            path: path.to_path_buf(),
            file_size,
            header: h,
            cluster_size,
            l2_bits,
            extended_l2,
            l1,
            backing,
            chain,
            warnings,
            cache: Mutex::new(L2Cache { tables: Vec::new(), max, compressed: None }),
        })
    }

    /// Backing files, nearest first.
    pub fn backing_chain(&self) -> Vec<String> {
        self.chain.clone()
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn header(&self) -> &QcowHeader {
        &self.header
    }

    fn l2_table(&self, l2_offset: u64) -> Result<Arc<Vec<u64>>> {
        let mut cache = self.cache.lock().map_err(|_| Error::Io("qcow2 L2 cache lock poisoned".into()))?;
        if let Some(i) = cache.tables.iter().position(|(o, _)| *o == l2_offset) {
            let e = cache.tables.remove(i);
            let t = e.1.clone();
            cache.tables.push(e);
            return Ok(t);
        }
        let path = &self.path;
        if !l2_offset.is_multiple_of(self.cluster_size) {
            return Err(bad(path, format!("L2 table offset {l2_offset:#x} is not cluster-aligned")));
        }
        if l2_offset.checked_add(self.cluster_size).is_none_or(|e| e > self.file_size) {
            return Err(bad(path, format!("L2 table at {l2_offset:#x} runs past the end of the file ({} bytes; truncated?)", self.file_size)));
        }
        let raw = read_vec(self.file.as_ref(), l2_offset, self.cluster_size as usize)?;
        let t = Arc::new(raw.chunks_exact(8).map(|c| be_u64(c, 0)).collect::<Vec<u64>>());
        if cache.tables.len() >= cache.max {
            cache.tables.remove(0);
        }
        cache.tables.push((l2_offset, t.clone()));
        Ok(t)
    }

    fn decompress(&self, entry: u64) -> Result<Arc<Vec<u8>>> {
        {
            let cache = self.cache.lock().map_err(|_| Error::Io("qcow2 cache lock poisoned".into()))?;
            if let Some((e, data)) = &cache.compressed {
                if *e == entry {
                    return Ok(data.clone());
                }
            }
        }
        let path = &self.path;
        let x = 62 - (self.header.cluster_bits - 8);
        let coffset = entry & ((1u64 << x) - 1);
        let nb_sectors = ((entry & !L2E_COMPRESSED & ((1u64 << 62) - 1)) >> x) + 1;
        let csize = (nb_sectors * 512).saturating_sub(coffset & 511);
        // The last compressed cluster may end before its last sector would: clamp to the file.
        let end = coffset.saturating_add(csize).min(self.file_size);
        if coffset >= end {
            return Err(bad(path, format!("compressed cluster at {coffset:#x} lies past the end of the file")));
        }
        let input = read_vec(self.file.as_ref(), coffset, (end - coffset) as usize)?;
        let out = match self.header.compression_type {
            0 => miniz_oxide::inflate::decompress_to_vec_with_limit(&input, self.cluster_size as usize)
                .map_err(|e| bad(path, format!("deflate cluster at {coffset:#x}: {:?}", e.status)))?,
            _ => {
                let mut src = &input[..];
                let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut src)
                    .map_err(|e| bad(path, format!("zstd cluster at {coffset:#x}: {e}")))?;
                let mut out = vec![0u8; self.cluster_size as usize];
                dec.read_exact(&mut out).map_err(|e| bad(path, format!("zstd cluster at {coffset:#x}: {e}")))?;
                out
            }
        };
        if out.len() as u64 != self.cluster_size {
            return Err(bad(path, format!(
                "compressed cluster at {coffset:#x} inflates to {} bytes, not {}",
                out.len(),
                self.cluster_size
            )));
        }
        let out = Arc::new(out);
        if let Ok(mut cache) = self.cache.lock() {
            cache.compressed = Some((entry, out.clone()));
        }
        Ok(out)
    }

    /// Bytes the image does not hold: from the backing file, zeros past its end or without one.
    fn read_unallocated(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        match &self.backing {
            Some(b) if offset < b.size() => {
                let n = ((b.size() - offset).min(buf.len() as u64)) as usize;
                let (head, tail) = buf.split_at_mut(n);
                b.read_at(offset, head)?;
                tail.fill(0);
                Ok(())
            }
            _ => {
                buf.fill(0);
                Ok(())
            }
        }
    }

    /// Read within one cluster.
    fn read_cluster_part(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let cb = self.header.cluster_bits;
        let l1_index = (offset >> (cb + self.l2_bits)) as usize;
        let l2_index = ((offset >> cb) & ((1u64 << self.l2_bits) - 1)) as usize;
        let in_cluster = offset & (self.cluster_size - 1);
        let l1e = *self.l1.get(l1_index).ok_or_else(|| bad(&self.path, format!("L1 index {l1_index} out of range")))?;
        let l2_offset = l1e & OFFSET_MASK;
        if l2_offset == 0 {
            return self.read_unallocated(offset, buf);
        }
        let table = self.l2_table(l2_offset)?;
        let stride = if self.extended_l2 { 2 } else { 1 };
        let entry = *table.get(l2_index * stride).ok_or_else(|| bad(&self.path, "L2 index out of range".into()))?;
        if entry & L2E_COMPRESSED != 0 {
            let data = self.decompress(entry)?;
            let src = data.get(in_cluster as usize..in_cluster as usize + buf.len()).ok_or_else(|| bad(&self.path, "compressed read out of range".into()))?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        let host = entry & OFFSET_MASK;
        if !self.extended_l2 {
            if self.header.version >= 3 && entry & L2E_ZERO != 0 {
                buf.fill(0);
                return Ok(());
            }
            if host == 0 {
                return self.read_unallocated(offset, buf);
            }
            return self.read_host(host, in_cluster, buf);
        }
        // Extended L2: 32 subclusters, bit i allocated, bit 32+i reads as zeros.
        let bitmap = table.get(l2_index * 2 + 1).copied().unwrap_or(0);
        let sc_size = self.cluster_size / 32;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = in_cluster + done as u64;
            let sc = pos / sc_size;
            let n = ((sc + 1) * sc_size - pos).min((buf.len() - done) as u64) as usize;
            let part = &mut buf[done..done + n];
            if bitmap & (1 << sc) != 0 {
                if host == 0 {
                    return Err(bad(&self.path, format!("subcluster {sc} at guest offset {offset:#x} is allocated but has no host cluster")));
                }
                self.read_host(host, pos, part)?;
            } else if bitmap & (1 << (32 + sc)) != 0 {
                part.fill(0);
            } else {
                self.read_unallocated(offset + done as u64, part)?;
            }
            done += n;
        }
        Ok(())
    }

    fn read_host(&self, host: u64, in_cluster: u64, buf: &mut [u8]) -> Result<()> {
        let at = host + in_cluster;
        if at.checked_add(buf.len() as u64).is_none_or(|e| e > self.file_size) {
            return Err(bad(&self.path, format!("data cluster at {host:#x} lies past the end of the file ({} bytes; truncated?)", self.file_size)));
        }
        self.file.read_at(at, buf)
    }
}

fn missing(e: Error, image: &Path, name: &str, resolved: &Path) -> Error {
    match e {
        Error::NotFound(_) => Error::NotFound(format!(
            "backing file \"{name}\" of {} not found (looked for {})",
            image.display(),
            resolved.display()
        )),
        other => other,
    }
}

/// Relative backing names are relative to the image's own directory, as QEMU resolves them.
fn resolve_backing(image: &Path, name: &str) -> Result<PathBuf> {
    if name.starts_with("json:") || name.contains("://") {
        return Err(unsupported(image, format!("backing file {name:?} is not a plain file")));
    }
    let p = Path::new(name);
    Ok(if p.is_absolute() { p.to_path_buf() } else { image.parent().unwrap_or(Path::new(".")).join(p) })
}

fn backing_name(file: &dyn BlockDevice, h: &QcowHeader, cluster_size: u64, path: &Path) -> Result<String> {
    let len = h.backing_file_size as u64;
    if len == 0 || len > 1023 || h.backing_file_offset.checked_add(len).is_none_or(|e| e > cluster_size) {
        return Err(bad(path, format!(
            "backing file name at {:#x} ({len} bytes) is not inside the first cluster",
            h.backing_file_offset
        )));
    }
    let raw = read_vec(file, h.backing_file_offset, len as usize)?;
    String::from_utf8(raw).map_err(|_| bad(path, "backing file name is not UTF-8".into()))
}

/// Walk the header extensions (inside the first cluster) and return the backing format, if named.
fn header_extensions(file: &dyn BlockDevice, h: &QcowHeader, cluster_size: u64, path: &Path) -> Result<Option<String>> {
    let limit = cluster_size.min(file.size());
    let mut off = h.header_length as u64;
    let mut format = None;
    for _ in 0..64 {
        if off + 8 > limit {
            break;
        }
        let hdr = read_vec(file, off, 8)?;
        let (kind, len) = (be_u32(&hdr, 0), be_u32(&hdr, 4) as u64);
        if kind == EXT_END {
            break;
        }
        let data_end = off + 8 + len;
        if data_end > limit {
            return Err(bad(path, format!("header extension {kind:#x} at {off:#x} runs past the first cluster")));
        }
        if kind == EXT_BACKING_FORMAT {
            let raw = read_vec(file, off + 8, len as usize)?;
            format = Some(String::from_utf8_lossy(&raw).trim_end_matches('\0').to_string());
        }
        off = data_end.div_ceil(8) * 8;
    }
    Ok(format)
}

impl BlockDevice for Qcow2 {
    fn size(&self) -> u64 {
        self.header.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(offset, buf.len(), self.header.size, &|| self.describe())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let n = ((self.cluster_size - (pos & (self.cluster_size - 1))) as usize).min(buf.len() - done);
            self.read_cluster_part(pos, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("qcow2 image {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(version: u32, cluster_bits: u32, size: u64, l1_size: u32, l1_off: u64) -> Vec<u8> {
        let mut h = vec![0u8; 1 << cluster_bits.min(16)];
        h[0..4].copy_from_slice(QCOW_MAGIC);
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[20..24].copy_from_slice(&cluster_bits.to_be_bytes());
        h[24..32].copy_from_slice(&size.to_be_bytes());
        h[36..40].copy_from_slice(&l1_size.to_be_bytes());
        h[40..48].copy_from_slice(&l1_off.to_be_bytes());
        if version == 3 {
            h[100..104].copy_from_slice(&104u32.to_be_bytes());
        }
        h
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        p
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nf-qcow2-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_mapped_zero_and_unallocated() {
        let d = tmpdir("map");
        // 64 KiB clusters; L1 at 0x10000, L2 at 0x20000, data at 0x30000; virtual 1 MiB.
        let mut img = header(3, 16, 1 << 20, 1, 0x10000);
        img.resize(0x40000, 0);
        img[0x10000..0x10008].copy_from_slice(&(0x20000u64 | 1 << 63).to_be_bytes());
        img[0x20000..0x20008].copy_from_slice(&(0x30000u64).to_be_bytes()); // cluster 0 → data
        img[0x20008..0x20010].copy_from_slice(&1u64.to_be_bytes()); // cluster 1 → zero flag
        img[0x30000..0x30004].copy_from_slice(b"DATA");
        let p = write(&d, "a.qcow2", &img);
        let q = Qcow2::open(&p).unwrap();
        let mut b = [0xFFu8; 8];
        q.read_at(0, &mut b).unwrap();
        assert_eq!(&b[..4], b"DATA");
        q.read_at(0x10000, &mut b).unwrap();
        assert_eq!(b, [0; 8]);
        q.read_at(0x50000, &mut b).unwrap();
        assert_eq!(b, [0; 8]);
        // A read straddling clusters 0 and 1.
        let mut s = [0xFFu8; 4];
        q.read_at(0xFFFE, &mut s).unwrap();
        assert_eq!(s, [0; 4]);
        assert!(q.read_at((1 << 20) - 2, &mut b).is_err());
    }

    #[test]
    fn tables_and_clusters_past_eof() {
        let d = tmpdir("eof");
        let mut img = header(3, 16, 4 << 20, 1, 0x10000);
        img.resize(0x30000, 0);
        img[0x10000..0x10008].copy_from_slice(&0x20000u64.to_be_bytes());
        img[0x20000..0x20008].copy_from_slice(&0x900000u64.to_be_bytes()); // data past EOF
        let mut compressed = (1u64 << 62) | 0x800000; // compressed cluster past EOF
        compressed |= 3 << (62 - 8);
        img[0x20008..0x20010].copy_from_slice(&compressed.to_be_bytes());
        img[0x10008..0x10010].copy_from_slice(&0u64.to_be_bytes());
        let p = write(&d, "eof.qcow2", &img);
        let q = Qcow2::open(&p).unwrap();
        let mut b = [0u8; 16];
        assert!(q.read_at(0, &mut b).unwrap_err().to_string().contains("past the end"));
        assert!(q.read_at(0x10000, &mut b).unwrap_err().to_string().contains("past the end"));
        // An L2 table past EOF.
        let mut img2 = img.clone();
        img2[0x10000..0x10008].copy_from_slice(&0x700000u64.to_be_bytes());
        let q2 = Qcow2::open(&write(&d, "eof2.qcow2", &img2)).unwrap();
        assert!(q2.read_at(0, &mut b).unwrap_err().to_string().contains("L2 table"));
        // Dirty images open (read-only use is safe) with a warning; corrupt ones do not.
        let mut dirty = img.clone();
        dirty[72..80].copy_from_slice(&INCOMPAT_DIRTY.to_be_bytes());
        assert!(Qcow2::open(&write(&d, "dirty.qcow2", &dirty)).unwrap().warnings()[0].contains("dirty"));
        let mut corrupt = img;
        corrupt[72..80].copy_from_slice(&INCOMPAT_CORRUPT.to_be_bytes());
        assert_eq!(Qcow2::open(&write(&d, "corrupt.qcow2", &corrupt)).err().unwrap().code(), "UNSUPPORTED");
    }

    #[test]
    fn hostile_headers() {
        let d = tmpdir("hostile");
        let err = |bytes: Vec<u8>, name: &str| Qcow2::open(&write(&d, name, &bytes)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(header(3, 40, 1 << 20, 1, 0x10000), "cb.qcow2").contains("cluster_bits 40"));
        // L1 table past EOF.
        assert!(err(header(3, 16, 1 << 20, 1, 0x100000), "l1.qcow2").contains("past the end"));
        // L1 too small for the size.
        assert!(err(header(3, 16, 1 << 40, 1, 0x10000), "small.qcow2").contains("l1_size"));
        let mut enc = header(3, 16, 1 << 20, 1, 0);
        enc[32..36].copy_from_slice(&1u32.to_be_bytes());
        assert!(err(enc, "enc.qcow2").contains("encrypted"));
        let mut unk = header(3, 16, 1 << 20, 1, 0);
        unk[72..80].copy_from_slice(&(1u64 << 9).to_be_bytes());
        assert!(err(unk, "unk.qcow2").contains("unknown incompatible"));
        let mut ext = header(3, 16, 1 << 20, 1, 0);
        ext[72..80].copy_from_slice(&INCOMPAT_DATA_FILE.to_be_bytes());
        assert!(err(ext, "ext.qcow2").contains("external data file"));
        let mut trunc = header(3, 16, 1 << 20, 1, 0);
        trunc.truncate(50);
        assert!(err(trunc, "trunc.qcow2").contains("too short"));
    }

    #[test]
    fn backing_loop_and_missing() {
        let d = tmpdir("loop");
        let with_backing = |name: &str| {
            let mut h = header(3, 16, 1 << 20, 1, 0x10000);
            h.resize(0x20000, 0);
            h[8..16].copy_from_slice(&0x200u64.to_be_bytes());
            h[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
            h[0x200..0x200 + name.len()].copy_from_slice(name.as_bytes());
            h
        };
        write(&d, "x.qcow2", &with_backing("y.qcow2"));
        let p = write(&d, "y.qcow2", &with_backing("x.qcow2"));
        let e = Qcow2::open(&p).err().unwrap();
        assert!(e.to_string().contains("loops"), "{e}");
        let p = write(&d, "m.qcow2", &with_backing("nope.img"));
        let e = Qcow2::open(&p).err().unwrap();
        assert_eq!(e.code(), "NOT_FOUND");
        assert!(e.to_string().contains("nope.img"));
    }
}
