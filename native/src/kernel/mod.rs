//! The kernel profile: what one booted kernel is (facts), its symbols and its types, found in its own RAM.
//!
//! Discovery order (issue #3): VMCOREINFO → kallsyms → BTF, with System.map / vmlinux / ISF fallbacks.
//! Walkers (crate::walkers) receive a `Kernel` and never care where a symbol or offset came from.

/// Where a fact came from, shown by `nearfield kernel` next to each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Vmcoreinfo,
    Kallsyms,
    Btf,
    SystemMap,
    Vmlinux,
    Isf,
    Scan,
    ElfNote,
    Cache,
    /// The dump's own header (a kdump's VMCOREINFO).
    DumpHeader,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Vmcoreinfo => "vmcoreinfo",
            Source::Kallsyms => "kallsyms",
            Source::Btf => "btf",
            Source::SystemMap => "system-map",
            Source::Vmlinux => "vmlinux",
            Source::Isf => "isf",
            Source::Scan => "scan",
            Source::ElfNote => "elf-note",
            Source::Cache => "cache",
            Source::DumpHeader => "dump-header",
        }
    }
}

pub mod cache;
pub mod context;
pub mod discover;
pub mod btf;
pub mod isf;
pub mod kallsyms;
pub mod system_map;
pub mod vmlinux;
pub mod vmcoreinfo;
pub use crate::mem::AddressSpaces;
pub use context::{Kernel, KernelFacts};

/// Kernel symbol addresses (already relocated by the KASLR offset).
pub trait Symbols: Send + Sync {
    fn address_of(&self, name: &str) -> Option<u64>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Every (name, address), for ISF export and caching.
    fn all(&self) -> Vec<(String, u64)>;
    fn source(&self) -> Source;
}

/// One member of a struct/union, with its place resolved through anonymous structs/unions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Byte offset from the start of the outer struct.
    pub offset: u64,
    /// Size in bytes of the member's type (for an array, of the whole array).
    pub size: u64,
    /// For bitfields: bit offset within `offset`'s byte and width; `bit_size == 0` means not a bitfield.
    pub bit_offset: u32,
    pub bit_size: u32,
    /// For array members: the element count.
    pub array_len: Option<u64>,
}

/// Struct layouts and enum values (from BTF, or an ISF).
pub trait Types: Send + Sync {
    fn struct_size(&self, name: &str) -> Option<u64>;
    /// `path` may go through nested (non-pointer) members with dots: "se.sum_exec_runtime".
    /// Members of anonymous structs/unions are found by their own name, as C allows.
    fn member(&self, struct_name: &str, path: &str) -> Option<Member>;
    fn enum_value(&self, enum_name: &str, enumerator: &str) -> Option<i64>;
    /// Value of an enumerator in whichever enum holds it (e.g. "NR_FREE_PAGES").
    fn enumerator(&self, enumerator: &str) -> Option<i64>;
    fn type_count(&self) -> usize;
    fn source(&self) -> Source;
    /// The parsed BTF tables as bytes for the profile cache (`btf::Btf::index_bytes`), when these types are BTF.
    fn btf_index(&self) -> Option<Vec<u8>> {
        None
    }
}
