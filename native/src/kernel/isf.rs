//! Volatility 3 Intermediate Symbol Format (volatility3/schemas/schema-6.x.json): export from kallsyms+BTF, import as a fallback.
//!
//! Volatility's linux automagic matches an ISF to a memory image by `symbols.linux_banner.constant_data`
//! (base64 of the banner bytes, searched for verbatim in RAM), then finds the KASLR shift itself, so
//! symbol addresses are written unrelocated (runtime − KERNELOFFSET).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::btf::{self, Btf};
use super::system_map::SystemMap;
use super::{Member, Source, Symbols, Types};
use crate::{Error, Result};

/// Addresses below the kernel text mapping (per-cpu offsets) are not shifted by KASLR.
const KERNEL_MAP_START: u64 = 0xffff_ffff_8000_0000;
/// Deepest type descriptor we emit or follow (pointer-to-array-of-pointer… chains are short).
const MAX_DEPTH: usize = 32;
/// An ISF larger than this (decompressed) is refused.
const MAX_ISF_BYTES: u64 = 1 << 30;

// ---------------------------------------------------------------------------------------------
// Export

struct Exporter<'a> {
    btf: &'a Btf,
    base_types: Map<String, Value>,
    /// Names given to anonymous aggregates/enums, by type id.
    anon: HashMap<u32, String>,
}

fn base_type(kind: &str, size: u64, signed: bool) -> Value {
    json!({ "kind": kind, "size": size, "signed": signed, "endian": "little" })
}

impl<'a> Exporter<'a> {
    fn name_of(&self, id: u32) -> Option<String> {
        let r = self.btf.type_rec(id)?;
        if r.name_off != 0 {
            return self.btf.name(r.name_off).ok().map(str::to_string);
        }
        self.anon.get(&id).cloned()
    }

    /// Name of the integer base type with this size/signedness, registering it if needed.
    fn int_base(&mut self, size: u64, signed: bool) -> String {
        let name = match (size, signed) {
            (1, true) => "char",
            (1, false) => "unsigned char",
            (2, true) => "short int",
            (2, false) => "short unsigned int",
            (4, true) => "int",
            (4, false) => "unsigned int",
            (8, true) => "long int",
            _ => "long unsigned int",
        };
        self.base_types
            .entry(name.to_string())
            .or_insert_with(|| base_type(if size == 1 { "char" } else { "int" }, size, signed));
        name.to_string()
    }

    fn descriptor(&mut self, id: u32, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return json!({ "kind": "base", "name": "void" });
        }
        let id = self.btf.resolve(id);
        let Some(r) = self.btf.type_rec(id).copied() else { return json!({ "kind": "base", "name": "void" }) };
        if id == 0 {
            return json!({ "kind": "base", "name": "void" });
        }
        match r.kind {
            btf::KIND_INT => {
                let name = self.btf.name(r.name_off).unwrap_or("int").to_string();
                let (enc, _, _) = self.btf.int_info(id).unwrap_or((0, 0, 0));
                let kind = if enc & 4 != 0 {
                    "bool"
                } else if name.contains("char") && r.size_or_type == 1 {
                    "char"
                } else {
                    "int"
                };
                self.base_types
                    .entry(name.clone())
                    .or_insert_with(|| base_type(kind, r.size_or_type as u64, enc & 1 != 0));
                json!({ "kind": "base", "name": name })
            }
            btf::KIND_FLOAT => {
                let name = self.btf.name(r.name_off).unwrap_or("double").to_string();
                self.base_types.entry(name.clone()).or_insert_with(|| base_type("float", r.size_or_type as u64, true));
                json!({ "kind": "base", "name": name })
            }
            btf::KIND_PTR => json!({ "kind": "pointer", "subtype": self.descriptor(r.size_or_type, depth + 1) }),
            btf::KIND_ARRAY => {
                let (elem, _, n) = self.btf.array_info(id).unwrap_or((0, 0, 0));
                json!({ "kind": "array", "count": n, "subtype": self.descriptor(elem, depth + 1) })
            }
            btf::KIND_STRUCT | btf::KIND_UNION => {
                let kind = if r.kind == btf::KIND_UNION { "union" } else { "struct" };
                json!({ "kind": kind, "name": self.name_of(id).unwrap_or_else(|| format!("unnamed_btf_{id}")) })
            }
            btf::KIND_FWD => {
                let kind = if r.kflag { "union" } else { "struct" };
                json!({ "kind": kind, "name": self.btf.name(r.name_off).unwrap_or("") })
            }
            btf::KIND_ENUM | btf::KIND_ENUM64 => {
                json!({ "kind": "enum", "name": self.name_of(id).unwrap_or_else(|| format!("unnamed_btf_{id}")) })
            }
            btf::KIND_FUNC_PROTO | btf::KIND_FUNC => json!({ "kind": "function" }),
            _ => json!({ "kind": "base", "name": "void" }),
        }
    }

    /// Fields of aggregate `id`, with members of anonymous members lifted in (offsets added), and the
    /// anonymous member itself kept under a synthetic name marked `anonymous`. `lifted` holds the
    /// aggregates already lifted into `out`: each is lifted once (C cannot repeat one anonymous type in a
    /// struct, its names would clash), so a self-containing or fanned-out type cannot blow the export up.
    fn fields(&mut self, id: u32, base_bits: u64, out: &mut Map<String, Value>, depth: usize, lifted: &mut Vec<u32>) {
        if depth > MAX_DEPTH || lifted.contains(&id) {
            return;
        }
        lifted.push(id);
        let mut unnamed = 0usize;
        for m in self.btf.members(id) {
            let bits = base_bits + m.bit_offset as u64;
            let name = if m.name_off == 0 { None } else { self.btf.name(m.name_off).ok().map(str::to_string) };
            let target = self.btf.resolve(m.type_id);
            let target_kind = self.btf.type_rec(target).map(|r| r.kind).unwrap_or(0);
            let size = self.btf.size_of(m.type_id).unwrap_or(0);
            // Bitfields: kflag width, or an INT narrower than its storage.
            let mut width = m.bitfield_size as u64;
            let mut bits_eff = bits;
            if width == 0 {
                if let Some((_, int_off, nr_bits)) = self.btf.int_info(target) {
                    if (nr_bits as u64) < size * 8 {
                        width = nr_bits as u64;
                        bits_eff += int_off as u64;
                    }
                }
            }
            let field = if width != 0 && size > 0 {
                let unit = size.saturating_mul(8); // a hostile bitfield may claim a type of 2^63 bytes
                let storage = bits_eff / unit * size;
                json!({
                    "offset": storage,
                    "type": {
                        "kind": "bitfield",
                        "bit_position": bits_eff - storage * 8,
                        "bit_length": width,
                        "type": self.descriptor(m.type_id, 0),
                    }
                })
            } else {
                json!({ "offset": bits / 8, "type": self.descriptor(m.type_id, 0) })
            };
            match name {
                Some(n) => {
                    out.insert(n, field);
                }
                None => {
                    let key = format!("unnamed_field_{unnamed}");
                    unnamed += 1;
                    let mut f = field;
                    if let Some(o) = f.as_object_mut() {
                        o.insert("anonymous".into(), Value::Bool(true));
                    }
                    if !out.contains_key(&key) {
                        out.insert(key, f);
                    }
                    if matches!(target_kind, btf::KIND_STRUCT | btf::KIND_UNION) {
                        self.fields(target, bits, out, depth + 1, lifted);
                    }
                }
            }
        }
    }
}

/// Types of well-known variables that BTF (which only records per-cpu variables) does not carry;
/// Volatility's `object_from_symbol` needs a symbol's type.
const KNOWN_VARIABLES: &[(&str, &str)] = &[
    ("init_task", "struct task_struct"),
    ("init_mm", "struct mm_struct"),
    ("init_uts_ns", "struct uts_namespace"),
    ("init_pid_ns", "struct pid_namespace"),
    ("init_files", "struct files_struct"),
    ("modules", "struct list_head"),
    ("jiffies", "unsigned long"),
    ("jiffies_64", "unsigned long"),
    ("page_offset_base", "unsigned long"),
    ("vmemmap_base", "unsigned long"),
    ("vmalloc_base", "unsigned long"),
    ("_totalram_pages", "unsigned long"),
    ("mem_section", "pointer"),
    ("prb", "pointer struct printk_ringbuffer"),
    ("tk_core", "struct tk_core"),
];

/// Write a Volatility 3 ISF. `banner` is linux_banner's text as in RAM ("Linux version …\n"),
/// `kaslr_offset` the KERNELOFFSET subtracted from runtime addresses.
pub fn export(symbols: &dyn Symbols, types: &Btf, banner: &str, kaslr_offset: u64) -> Result<String> {
    let mut ex = Exporter { btf: types, base_types: Map::new(), anon: HashMap::new() };
    ex.base_types.insert("void".into(), base_type("void", 0, false));
    ex.base_types.insert("pointer".into(), base_type("int", 8, false));
    ex.int_base(8, false);
    ex.int_base(1, true);
    for id in types.type_ids() {
        if let Some(r) = types.type_rec(id) {
            if r.name_off == 0 && matches!(r.kind, btf::KIND_STRUCT | btf::KIND_UNION | btf::KIND_ENUM | btf::KIND_ENUM64) {
                ex.anon.insert(id, format!("unnamed_btf_{id}"));
            }
        }
    }

    // User types: every named aggregate (complete definition) and every anonymous one.
    let mut user_types = Map::new();
    let mut aggregate_ids: Vec<(String, u32)> = types.aggregate_ids().map(|(n, id)| (n.to_string(), id)).collect();
    aggregate_ids.extend(ex.anon.iter().filter_map(|(&id, n)| {
        let k = types.type_rec(id)?.kind;
        matches!(k, btf::KIND_STRUCT | btf::KIND_UNION).then(|| (n.clone(), id))
    }));
    aggregate_ids.sort();
    for (name, id) in &aggregate_ids {
        let Some(r) = types.type_rec(*id).copied() else { continue };
        let mut fields = Map::new();
        ex.fields(*id, 0, &mut fields, 0, &mut Vec::new());
        let kind = if r.kind == btf::KIND_UNION { "union" } else { "struct" };
        user_types.insert(name.clone(), json!({ "kind": kind, "size": r.size_or_type, "fields": fields }));
    }
    // Forward declarations with no definition still need an entry to be referable.
    for id in types.type_ids() {
        if let Some(r) = types.type_rec(id) {
            if r.kind == btf::KIND_FWD {
                if let Ok(n) = types.name(r.name_off) {
                    if !n.is_empty() && !user_types.contains_key(n) {
                        let kind = if r.kflag { "union" } else { "struct" };
                        user_types.insert(n.to_string(), json!({ "kind": kind, "size": 0, "fields": {} }));
                    }
                }
            }
        }
    }

    // Enums.
    let mut enums = Map::new();
    let mut enum_ids: Vec<(String, u32)> = types.enum_ids().map(|(n, id)| (n.to_string(), id)).collect();
    enum_ids.extend(ex.anon.iter().filter_map(|(&id, n)| {
        let k = types.type_rec(id)?.kind;
        matches!(k, btf::KIND_ENUM | btf::KIND_ENUM64).then(|| (n.clone(), id))
    }));
    enum_ids.sort();
    for (name, id) in &enum_ids {
        let Some(r) = types.type_rec(*id).copied() else { continue };
        let values = types.enum_values(*id)?;
        let signed = values.iter().any(|(_, v)| *v < 0);
        let size = (r.size_or_type as u64).clamp(1, 8);
        let base = ex.int_base(size, signed);
        let constants: Map<String, Value> = values.into_iter().map(|(n, v)| (n.to_string(), json!(v))).collect();
        enums.insert(name.clone(), json!({ "size": size, "base": base, "constants": constants }));
    }

    // Symbols, unrelocated; types from BTF VARs (per-cpu) and the well-known list.
    let mut var_types: HashMap<String, u32> = HashMap::new();
    for id in types.type_ids() {
        if let Some(r) = types.type_rec(id) {
            if r.kind == btf::KIND_VAR {
                if let Ok(n) = types.name(r.name_off) {
                    var_types.insert(n.to_string(), r.size_or_type);
                }
            }
        }
    }
    let mut syms = Map::new();
    let mut all = symbols.all();
    all.sort();
    for (name, addr) in all {
        if syms.contains_key(&name) {
            continue;
        }
        let address = if addr >= KERNEL_MAP_START { addr.wrapping_sub(kaslr_offset) } else { addr };
        let mut s = Map::new();
        s.insert("address".into(), json!(address));
        if let Some(&tid) = var_types.get(&name) {
            s.insert("type".into(), ex.descriptor(tid, 0));
        } else if let Some((_, t)) = KNOWN_VARIABLES.iter().find(|(n, _)| *n == name) {
            let d = if let Some(sname) = t.strip_prefix("struct ") {
                user_types.contains_key(sname).then(|| json!({ "kind": "struct", "name": sname }))
            } else if let Some(sname) = t.strip_prefix("pointer struct ") {
                Some(json!({ "kind": "pointer", "subtype": { "kind": "struct", "name": sname } }))
            } else if *t == "pointer" {
                Some(json!({ "kind": "pointer", "subtype": { "kind": "base", "name": "void" } }))
            } else {
                Some(json!({ "kind": "base", "name": "long unsigned int" }))
            };
            if let Some(d) = d {
                s.insert("type".into(), d);
            }
        }
        if name == "linux_banner" {
            let mut bytes = banner.as_bytes().to_vec();
            if bytes.last() != Some(&0) {
                bytes.push(0);
            }
            s.insert("constant_data".into(), json!(base64(&bytes)));
            s.insert(
                "type".into(),
                json!({ "kind": "array", "count": bytes.len(), "subtype": { "kind": "base", "name": "char" } }),
            );
        }
        syms.insert(name, Value::Object(s));
    }
    if !syms.contains_key("linux_banner") {
        return Err(Error::NotFound("linux_banner is not among the symbols; Volatility could not match this ISF".into()));
    }

    let doc = json!({
        "metadata": {
            "format": "6.2.0",
            "producer": { "name": "nearfield", "version": env!("CARGO_PKG_VERSION") },
            "linux": {
                "symbols": [{ "kind": "system-map", "name": "kallsyms (decoded from guest RAM by nearfield)" }],
                "types": [{ "kind": "dwarf", "name": "vmlinux BTF (found in guest RAM by nearfield)" }]
            }
        },
        "base_types": ex.base_types,
        "user_types": user_types,
        "enums": enums,
        "symbols": syms,
    });
    serde_json::to_string(&doc).map_err(|e| Error::bad(format!("serializing ISF: {e}")))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Import

/// Struct layouts and enums from an ISF.
pub struct IsfTypes {
    user_types: Map<String, Value>,
    base_types: Map<String, Value>,
    enums: Map<String, Value>,
    enumerators: HashMap<String, i64>,
}

impl IsfTypes {
    fn size_of(&self, desc: &Value, depth: usize) -> Option<u64> {
        if depth > MAX_DEPTH {
            return None;
        }
        let kind = desc.get("kind")?.as_str()?;
        let name = desc.get("name").and_then(Value::as_str);
        match kind {
            "base" => self.base_types.get(name?)?.get("size")?.as_u64(),
            "pointer" => Some(self.base_types.get("pointer").and_then(|p| p.get("size")?.as_u64()).unwrap_or(8)),
            "array" => {
                let n = desc.get("count")?.as_u64()?;
                n.checked_mul(self.size_of(desc.get("subtype")?, depth + 1)?)
            }
            "struct" | "union" | "class" => self.user_types.get(name?)?.get("size")?.as_u64(),
            "enum" => self.enums.get(name?)?.get("size")?.as_u64(),
            "bitfield" => self.size_of(desc.get("type")?, depth + 1),
            _ => None,
        }
    }

    /// (offset, field) for `name` in user type `ty`, looking inside anonymous fields too. `searched`: the
    /// types already searched in this lookup, each searched once (as Btf::find_member does).
    fn find_field(&self, ty: &str, name: &str, depth: usize, searched: &mut Vec<String>) -> Option<(u64, &Value)> {
        if depth > MAX_DEPTH || searched.iter().any(|s| s == ty) {
            return None;
        }
        searched.push(ty.to_string());
        let fields = self.user_types.get(ty)?.get("fields")?.as_object()?;
        if let Some(f) = fields.get(name) {
            return Some((f.get("offset")?.as_u64()?, f));
        }
        for f in fields.values() {
            if f.get("anonymous").and_then(Value::as_bool) == Some(true) {
                let inner = f.get("type")?.get("name")?.as_str()?;
                if let Some((off, found)) = self.find_field(inner, name, depth + 1, searched) {
                    return Some((f.get("offset")?.as_u64()? + off, found));
                }
            }
        }
        None
    }
}

impl Types for IsfTypes {
    fn struct_size(&self, name: &str) -> Option<u64> {
        self.user_types.get(name)?.get("size")?.as_u64()
    }
    fn member(&self, struct_name: &str, path: &str) -> Option<Member> {
        let mut ty = struct_name.to_string();
        let mut offset = 0u64;
        let mut last: Option<&Value> = None;
        for (i, part) in path.split('.').enumerate() {
            if i > MAX_DEPTH {
                return None;
            }
            if let Some(prev) = last {
                let t = prev.get("type")?;
                if !matches!(t.get("kind")?.as_str()?, "struct" | "union" | "class") {
                    return None;
                }
                ty = t.get("name")?.as_str()?.to_string();
            }
            let (off, f) = self.find_field(&ty, part, 0, &mut Vec::new())?;
            offset = offset.checked_add(off)?;
            last = Some(f);
        }
        let t = last?.get("type")?;
        let kind = t.get("kind")?.as_str()?;
        let size = self.size_of(t, 0)?;
        let (bit_offset, bit_size) = if kind == "bitfield" {
            let pos = t.get("bit_position")?.as_u64()?;
            offset += pos / 8;
            ((pos % 8) as u32, t.get("bit_length")?.as_u64()? as u32)
        } else {
            (0, 0)
        };
        let array_len = if kind == "array" { t.get("count")?.as_u64() } else { None };
        Some(Member { offset, size, bit_offset, bit_size, array_len })
    }
    fn enum_value(&self, enum_name: &str, enumerator: &str) -> Option<i64> {
        self.enums.get(enum_name)?.get("constants")?.get(enumerator)?.as_i64()
    }
    fn enumerator(&self, enumerator: &str) -> Option<i64> {
        self.enumerators.get(enumerator).copied()
    }
    fn type_count(&self) -> usize {
        self.user_types.len() + self.enums.len() + self.base_types.len()
    }
    fn source(&self) -> Source {
        Source::Isf
    }
}

/// A loaded ISF: symbols (relocated by `kaslr_offset`), types, and the banner it was made for.
pub struct Isf {
    pub symbols: SystemMap,
    pub types: IsfTypes,
    pub banner: Option<Vec<u8>>,
}

impl Isf {
    /// Read a .json or .json.xz ISF.
    pub fn load(path: &Path, kaslr_offset: u64) -> Result<Isf> {
        let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("opening {}: {e}", path.display())))?;
        let mut bytes = Vec::new();
        let name = path.to_string_lossy();
        if name.ends_with(".xz") {
            let mut input = std::io::BufReader::new(file);
            let mut out = Vec::new();
            lzma_rs::xz_decompress(&mut input, &mut out)
                .map_err(|e| Error::bad(format!("{}: xz decompression failed: {e}", path.display())))?;
            if out.len() as u64 > MAX_ISF_BYTES {
                return Err(Error::bad(format!("{}: ISF larger than 1 GiB", path.display())));
            }
            bytes = out;
        } else {
            file.take(MAX_ISF_BYTES + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_ISF_BYTES {
                return Err(Error::bad(format!("{}: ISF larger than 1 GiB", path.display())));
            }
        }
        Isf::parse(&bytes, kaslr_offset).map_err(|e| e.context(path.display()))
    }

    pub fn parse(json_bytes: &[u8], kaslr_offset: u64) -> Result<Isf> {
        let mut doc: Value = serde_json::from_slice(json_bytes).map_err(|e| Error::bad(format!("ISF is not JSON: {e}")))?;
        let format = doc.pointer("/metadata/format").and_then(Value::as_str).unwrap_or("");
        let major = format.split('.').next().and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
        if !(4..=6).contains(&major) {
            return Err(Error::Unsupported(format!("ISF format {format:?} (expected 4.x–6.x)")));
        }
        let mut obj = |k: &str| -> Map<String, Value> {
            match doc.get_mut(k).map(Value::take) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            }
        };
        let symbols_obj = obj("symbols");
        let user_types = obj("user_types");
        let base_types = obj("base_types");
        let enums = obj("enums");
        let mut entries = Vec::with_capacity(symbols_obj.len());
        let mut banner = None;
        for (name, s) in &symbols_obj {
            let Some(addr) = s.get("address").and_then(|a| a.as_u64().or_else(|| a.as_f64().map(|f| f as u64))) else {
                continue;
            };
            if name == "linux_banner" {
                banner = s.get("constant_data").and_then(Value::as_str).and_then(unbase64);
            }
            entries.push((name.clone(), 'D', addr));
        }
        let mut enumerators = HashMap::new();
        for e in enums.values() {
            if let Some(c) = e.get("constants").and_then(Value::as_object) {
                for (k, v) in c {
                    if let Some(v) = v.as_i64() {
                        enumerators.entry(k.clone()).or_insert(v);
                    }
                }
            }
        }
        Ok(Isf {
            symbols: SystemMap::from_entries(entries, kaslr_offset, Source::Isf),
            types: IsfTypes { user_types, base_types, enums, enumerators },
            banner,
        })
    }
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let mut map = BTreeMap::new();
    for (i, c) in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".iter().enumerate() {
        map.insert(*c, i as u32);
    }
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()) {
        acc = (acc << 6) | *map.get(&c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::btf::builder::sample;

    fn symbols() -> SystemMap {
        SystemMap::from_entries(
            vec![
                ("init_task".into(), 'D', 0xffff_ffff_92a0_0000),
                ("linux_banner".into(), 'R', 0xffff_ffff_9200_0100),
                ("fixed_percpu_data".into(), 'A', 0),
            ],
            0,
            Source::Kallsyms,
        )
    }

    #[test]
    fn export_then_import_round_trips() {
        let btf = Btf::parse(sample().build()).unwrap();
        let banner = "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP\n";
        let text = export(&symbols(), &btf, banner, 0x1000_0000).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["metadata"]["format"], "6.2.0");
        assert_eq!(doc["base_types"]["pointer"]["size"], 8);
        assert_eq!(doc["symbols"]["init_task"]["address"], 0xffff_ffff_82a0_0000u64);
        assert_eq!(doc["symbols"]["fixed_percpu_data"]["address"], 0);
        assert_eq!(doc["symbols"]["init_task"]["type"]["name"], "task_struct");
        assert_eq!(unbase64(doc["symbols"]["linux_banner"]["constant_data"].as_str().unwrap()).unwrap(), [banner.as_bytes(), b"\0"].concat());
        let task = &doc["user_types"]["task_struct"];
        assert_eq!(task["size"], 128);
        assert_eq!(task["fields"]["comm"]["type"]["kind"], "array");
        assert_eq!(task["fields"]["comm"]["type"]["count"], 16);
        assert_eq!(task["fields"]["mm"]["type"]["kind"], "pointer");
        assert_eq!(task["fields"]["pid"]["type"], json!({ "kind": "base", "name": "int" }));
        assert_eq!(task["fields"]["y"]["offset"], 52); // lifted from the anonymous struct in the union
        assert_eq!(task["fields"]["unnamed_field_0"]["anonymous"], true);
        assert_eq!(task["fields"]["in_iowait"]["type"]["kind"], "bitfield");
        assert_eq!(task["fields"]["in_iowait"]["offset"], 72);
        assert_eq!(task["fields"]["in_iowait"]["type"]["bit_position"], 1);
        assert_eq!(doc["enums"]["zone_stat_item"]["constants"]["NR_NEG"], -5);

        let isf = Isf::parse(text.as_bytes(), 0x1000_0000).unwrap();
        assert_eq!(isf.symbols.address_of("init_task"), Some(0xffff_ffff_92a0_0000));
        assert_eq!(isf.symbols.source(), Source::Isf);
        assert_eq!(isf.banner.as_deref(), Some([banner.as_bytes(), b"\0"].concat().as_slice()));
        let t = &isf.types;
        for (path, _) in [("pid", 0), ("comm", 0), ("tasks.prev", 0), ("se.sum_exec_runtime", 0), ("y", 0), ("in_iowait", 0)] {
            assert_eq!(t.member("task_struct", path), btf.member("task_struct", path), "{path}");
        }
        assert_eq!(t.struct_size("task_struct"), Some(128));
        assert_eq!(t.enumerator("NR_FREE_PAGES"), Some(0));
        assert_eq!(t.enum_value("zone_stat_item", "NR_NEG"), Some(-5));
    }

    /// Found by fuzzing (vmlinux): a bitfield member whose type is 2^63 bytes long overflowed its size in bits.
    #[test]
    fn bitfield_of_a_huge_type_exports_without_overflow() {
        use crate::kernel::btf::{builder::BtfBuilder, KIND_STRUCT};
        let mut b = BtfBuilder::new();
        let long = b.int("long", 8, true);
        let int = b.int("int", 4, true);
        let inner = b.array(long, int, 1 << 30);
        let huge = b.array(inner, int, 1 << 30);
        b.aggregate(KIND_STRUCT, "s", 8, &[("f", huge, 3, 5)]);
        let btf = Btf::parse(b.build()).unwrap();
        let doc: Value = serde_json::from_str(&export(&symbols(), &btf, "Linux version x\n", 0).unwrap()).unwrap();
        let f = &doc["user_types"]["s"]["fields"]["f"];
        assert_eq!((f["offset"].as_u64(), f["type"]["kind"].as_str(), f["type"]["bit_position"].as_u64()), (Some(0), Some("bitfield"), Some(3)));
    }

    #[test]
    fn import_refuses_garbage() {
        assert_eq!(Isf::parse(b"not json", 0).err().unwrap().code(), "BAD_DATA");
        assert_eq!(Isf::parse(br#"{"metadata":{"format":"1.0.0"}}"#, 0).err().unwrap().code(), "UNSUPPORTED");
        // Self-referencing anonymous field: bounded.
        let cyc = br#"{"metadata":{"format":"6.2.0"},"base_types":{},"enums":{},"symbols":{},
            "user_types":{"a":{"kind":"struct","size":8,"fields":{"u":{"offset":0,"anonymous":true,"type":{"kind":"struct","name":"a"}}}}}}"#;
        let isf = Isf::parse(cyc, 0).unwrap();
        assert_eq!(isf.types.member("a", "zzz"), None);
        assert_eq!(Isf::load(Path::new("/nonexistent.json"), 0).err().unwrap().code(), "IO");
    }

    /// Hostile ISF: a type holding three anonymous fields of itself, and a chain of types each holding the
    /// next three times (3^30 paths): each type is searched once per lookup, so lookups end at once.
    #[test]
    fn circular_and_fanned_out_anonymous_fields_are_searched_once() {
        let anon = |ty: &str| json!({ "offset": 0, "anonymous": true, "type": { "kind": "struct", "name": ty } });
        let mut user_types = Map::new();
        user_types.insert("loop".into(), json!({ "kind": "struct", "size": 8, "fields": {
            "a": anon("loop"), "b": anon("loop"), "c": anon("loop"),
            "x": { "offset": 4, "type": { "kind": "base", "name": "int" } } } }));
        for i in 0..30 {
            let fields = if i == 29 {
                json!({ "leaf": { "offset": 0, "type": { "kind": "base", "name": "int" } } })
            } else {
                let next = format!("fan{}", i + 1);
                json!({ "a": anon(&next), "b": anon(&next), "c": anon(&next) })
            };
            user_types.insert(format!("fan{i}"), json!({ "kind": "struct", "size": 4, "fields": fields }));
        }
        let doc = json!({ "metadata": { "format": "6.2.0" }, "symbols": {}, "enums": {},
            "base_types": { "int": { "kind": "int", "size": 4, "signed": true, "endian": "little" } }, "user_types": user_types });
        let isf = Isf::parse(doc.to_string().as_bytes(), 0).unwrap();
        assert_eq!(isf.types.member("loop", "x").map(|m| m.offset), Some(4));
        assert_eq!(isf.types.member("loop", "absent"), None);
        assert_eq!(isf.types.member("fan0", "leaf").map(|m| m.size), Some(4));
        assert_eq!(isf.types.member("fan0", "absent"), None);
    }

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "abcd", "Linux version\n\0"] {
            assert_eq!(unbase64(&base64(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
    }
}
