//! System.map (`nm -n vmlinux` output: "ffffffff81000000 T _text"), relocated by the KASLR offset.

use std::collections::HashMap;

use super::{Source, Symbols};
use crate::{Error, Result};

/// Refuse files that claim more symbols than a kernel could have.
const MAX_SYMBOLS: usize = 4_000_000;
/// Addresses below the kernel text mapping are absolute (per-cpu offsets) and are not relocated.
const KERNEL_MAP_START: u64 = 0xffff_ffff_8000_0000;

/// A name → address table from a text symbol list or an ELF .symtab.
pub struct SystemMap {
    /// (name, type letter, runtime address) in file order.
    symbols: Vec<(String, char, u64)>,
    by_name: HashMap<String, usize>,
    source: Source,
}

impl SystemMap {
    /// Parse System.map text; `kaslr_offset` is added to addresses in the kernel mapping.
    pub fn parse(text: &str, kaslr_offset: u64) -> Result<SystemMap> {
        if text.contains("The real System.map is in the") || (text.lines().count() <= 3 && text.contains("-dbg")) {
            return Err(Error::bad(
                "this System.map is Debian's stub; the real one ships in the ~850 MB linux-image-…-dbg package. \
                 nearfield does not need it: leave out --system-map and symbols are decoded from kallsyms in RAM",
            ));
        }
        let mut entries = Vec::new();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(Error::bad(format!("System.map line {}: expected \"address type name\"", lineno + 1)));
            };
            let addr = u64::from_str_radix(addr, 16)
                .map_err(|_| Error::bad(format!("System.map line {}: {addr:?} is not a hex address", lineno + 1)))?;
            let mut kc = kind.chars();
            let (Some(kind), None) = (kc.next(), kc.next()) else {
                return Err(Error::bad(format!("System.map line {}: type {kind:?} is not one letter", lineno + 1)));
            };
            entries.push((name.to_string(), kind, addr));
            if entries.len() > MAX_SYMBOLS {
                return Err(Error::bad(format!("System.map has more than {MAX_SYMBOLS} symbols")));
            }
        }
        if entries.is_empty() {
            return Err(Error::bad("System.map has no symbols"));
        }
        Ok(SystemMap::from_entries(entries, kaslr_offset, Source::SystemMap))
    }

    /// Build from (name, type, link-time address) entries, relocating kernel-mapping addresses.
    pub fn from_entries(entries: Vec<(String, char, u64)>, kaslr_offset: u64, source: Source) -> SystemMap {
        let mut symbols = entries;
        for s in symbols.iter_mut() {
            if s.2 >= KERNEL_MAP_START {
                s.2 = s.2.wrapping_add(kaslr_offset);
            }
        }
        let mut by_name: HashMap<String, usize> = HashMap::with_capacity(symbols.len());
        for (i, (name, kind, _)) in symbols.iter().enumerate() {
            match by_name.get(name) {
                // A global definition beats an earlier static one of the same name.
                Some(&j) if !kind.is_ascii_uppercase() || symbols.get(j).is_some_and(|s| s.1.is_ascii_uppercase()) => {}
                _ => {
                    by_name.insert(name.clone(), i);
                }
            }
        }
        SystemMap { symbols, by_name, source }
    }

    pub fn kind_of(&self, name: &str) -> Option<char> {
        self.by_name.get(name).and_then(|&i| self.symbols.get(i)).map(|s| s.1)
    }
}

impl Symbols for SystemMap {
    fn address_of(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).and_then(|&i| self.symbols.get(i)).map(|s| s.2)
    }
    fn len(&self) -> usize {
        self.symbols.len()
    }
    fn all(&self) -> Vec<(String, u64)> {
        self.symbols.iter().map(|(n, _, a)| (n.clone(), *a)).collect()
    }
    fn source(&self) -> Source {
        self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_relocates() {
        let text = "0000000000000000 D __per_cpu_start\n\
                    ffffffff81000000 T _text\n\
                    ffffffff81000000 T startup_64\n\
                    ffffffff81001000 t dup\n\
                    ffffffff81002000 T dup\n\
                    ffffffff82a0e2c0 D init_uts_ns\n";
        let m = SystemMap::parse(text, 0x1e00_0000).unwrap();
        assert_eq!(m.len(), 6);
        assert_eq!(m.source(), Source::SystemMap);
        assert_eq!(m.address_of("_text"), Some(0xffffffff9f000000));
        assert_eq!(m.address_of("__per_cpu_start"), Some(0));
        assert_eq!(m.address_of("dup"), Some(0xffffffff9f002000));
        assert_eq!(m.kind_of("init_uts_ns"), Some('D'));
        assert_eq!(m.address_of("nope"), None);
    }

    #[test]
    fn refuses_debian_stub_and_garbage() {
        let stub = "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n";
        let e = SystemMap::parse(stub, 0).err().unwrap();
        assert_eq!(e.code(), "BAD_DATA");
        assert!(e.to_string().starts_with("this System.map is Debian's stub;"), "{e}");
        assert_eq!(SystemMap::parse("", 0).err().unwrap().code(), "BAD_DATA");
        assert_eq!(SystemMap::parse("zz T x\n", 0).err().unwrap().code(), "BAD_DATA");
        assert_eq!(SystemMap::parse("ffffffff81000000 TT x\n", 0).err().unwrap().code(), "BAD_DATA");
        assert_eq!(SystemMap::parse("ffffffff81000000\n", 0).err().unwrap().code(), "BAD_DATA");
    }
}
