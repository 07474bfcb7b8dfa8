//! Loaded modules as kernel/module/ keeps them: the `modules` list of struct module, each module's memory
//! (core_layout/init_layout until 6.3, mem[MOD_*] since 6.4) and its own kallsyms (struct mod_kallsyms).

use std::sync::Arc;

use super::{latin1, list_entries, Walk};
use crate::bytes::{le_u16, le_u32, le_u64};
use crate::kernel::Kernel;
use crate::{Error, Result};

/// Modules a walk believes in (Debian loads ~100 on a desktop; the kernel has no fixed limit).
pub const MAX_MODULES: usize = 65_536;
/// Symbols of one module (ext4 has ~3 000, the largest drivers ~30 000).
const MAX_MODULE_SYMBOLS: u64 = 1 << 20;
/// KSYM_NAME_LEN (include/linux/kallsyms.h, 6.1+).
const KSYM_NAME_LEN: usize = 512;
/// A module's string table is read in one piece up to this size.
const MAX_STRTAB: u64 = 32 << 20;
/// sizeof(Elf64_Sym): st_name u32, st_info u8, st_other u8, st_shndx u16, st_value u64, st_size u64.
const ELF64_SYM: u64 = 24;
const SHN_UNDEF: u16 = 0;

/// One region of a module's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleMemory {
    /// text, rodata, ro_after_init, data, init_text, init_rodata, init_data (6.4+ enum mod_mem_type names).
    pub kind: String,
    pub base: u64,
    pub size: u64,
}

/// One module symbol, as module kallsyms lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSymbol {
    pub address: u64,
    pub name: String,
    /// The /proc/kallsyms type letter (t, T, d, …).
    pub kind: char,
}

/// A loaded module: where its struct module is, its name and its memory.
#[derive(Debug, Clone)]
pub struct Module {
    pub address: u64,
    pub name: String,
    pub memory: Vec<ModuleMemory>,
}

impl Module {
    /// The module's text (core, then init) as one range each: where its functions are.
    pub fn text(&self) -> impl Iterator<Item = &ModuleMemory> {
        self.memory.iter().filter(|m| m.kind.ends_with("text"))
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.memory.iter().any(|m| m.size > 0 && addr >= m.base && addr - m.base < m.size)
    }
}

/// The struct module addresses on the `modules` list, in list order (newest first, as lsmod prints).
pub fn module_list(k: &Kernel) -> Result<Walk<u64>> {
    let head = k.symbol("modules")?;
    let link = k.offset("module", "list")?;
    Ok(list_entries(k, head, link, MAX_MODULES, "module list (modules)"))
}

/// include/linux/module.h MODULE_NAME_LEN is 64 − sizeof(unsigned long); the member's own size is used.
pub fn read_module(k: &Kernel, addr: u64) -> Result<Module> {
    let t = k.struct_type("module")?;
    let o = k.object(addr, &t)?;
    let name = o.cstr(t.field("name")?)?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::bad(format!("struct module at {addr:#x} has no plausible name ({name:?})")));
    }
    let mut memory = Vec::new();
    if let Some(mem) = t.opt_field("mem") {
        // 6.4+: struct module_memory mem[MOD_MEM_NUM_TYPES], indexed by enum mod_mem_type
        let size = k.size_of("module_memory")?;
        let (base, len) = (k.member("module_memory", "base")?, k.member("module_memory", "size")?);
        let count = mem.array_len.unwrap_or(0).min(16);
        for (kind, e) in [("text", "MOD_TEXT"), ("data", "MOD_DATA"), ("rodata", "MOD_RODATA"), ("ro_after_init", "MOD_RO_AFTER_INIT"), ("init_text", "MOD_INIT_TEXT"), ("init_data", "MOD_INIT_DATA"), ("init_rodata", "MOD_INIT_RODATA")] {
            let Ok(i) = u64::try_from(k.enumerator(e)?) else { continue };
            if i >= count {
                continue;
            }
            let at = mem.offset + i * size;
            memory.push(ModuleMemory { kind: kind.into(), base: o.uint_at(at + base.offset, base.size)?, size: o.uint_at(at + len.offset, len.size)? });
        }
    } else {
        // 6.1–6.3: core_layout and init_layout, each text | rodata | ro_after_init | data from its base
        let l = |p: &str| k.member("module_layout", p);
        let (base, size, text, ro, ro_after) = (l("base")?, l("size")?, l("text_size")?, l("ro_size")?, l("ro_after_init_size")?);
        for (layout, prefix) in [("core_layout", ""), ("init_layout", "init_")] {
            let at = t.field(layout)?.offset;
            let get = |m: crate::kernel::Member| o.uint_at(at + m.offset, m.size);
            let (b, s, tx, r, ra) = (get(base)?, get(size)?, get(text)?, get(ro)?, get(ro_after)?);
            if !(tx <= r && r <= ra && ra <= s) {
                return Err(Error::bad(format!("module {name}: {layout} sizes out of order (text {tx}, ro {r}, ro_after_init {ra}, size {s})")));
            }
            for (kind, from, to) in [("text", 0, tx), ("rodata", tx, r), ("ro_after_init", r, ra), ("data", ra, s)] {
                memory.push(ModuleMemory { kind: format!("{prefix}{kind}"), base: b.wrapping_add(from), size: to - from });
            }
        }
    }
    Ok(Module { address: addr, name, memory })
}

/// The module's own symbols (mod->kallsyms: symtab, strtab, typetab), defined ones only, sorted by address.
pub fn read_module_symbols(k: &Kernel, module: &Module) -> Result<Vec<ModuleSymbol>> {
    let ks = k.read_u64(module.address.wrapping_add(k.offset("module", "kallsyms")?))?;
    if ks == 0 {
        return Ok(Vec::new());
    }
    let f = |p: &str| k.field(ks, "mod_kallsyms", p);
    let (symtab, num, strtab, typetab) = (f("symtab")?, f("num_symtab")?, f("strtab")?, f("typetab")?);
    if num > MAX_MODULE_SYMBOLS {
        return Err(Error::bad(format!("module {}: {num} symbols is not plausible", module.name)));
    }
    let mut syms = vec![0u8; (num * ELF64_SYM) as usize];
    k.read(symtab, &mut syms).map_err(|e| e.context(format!("module {} symtab", module.name)))?;
    let mut types = vec![0u8; num as usize];
    if typetab != 0 {
        k.read(typetab, &mut types).map_err(|e| e.context(format!("module {} typetab", module.name)))?;
    }
    let name_max = (0..num as usize).filter_map(|i| le_u32(&syms, i * ELF64_SYM as usize)).max().unwrap_or(0) as u64;
    let strtab_len = (name_max + KSYM_NAME_LEN as u64).min(MAX_STRTAB);
    let strings = read_prefix(k, strtab, strtab_len as usize)?;
    let mut out = Vec::new();
    for i in 1..num as usize {
        let at = i * ELF64_SYM as usize;
        let (Some(st_name), Some(shndx), Some(value)) = (le_u32(&syms, at), le_u16(&syms, at + 6), le_u64(&syms, at + 8)) else { continue };
        if shndx == SHN_UNDEF {
            continue;
        }
        let Some(tail) = strings.get(st_name as usize..) else { continue };
        let end = tail.iter().take(KSYM_NAME_LEN).position(|&b| b == 0).unwrap_or(0);
        let name = &tail[..end];
        // unnamed and mapping symbols ($x, $d …) name nothing a reader wants
        if name.is_empty() || name[0] == b'$' {
            continue;
        }
        out.push(ModuleSymbol { address: value, name: latin1(name), kind: types.get(i).copied().map_or('?', |c| c as char) });
    }
    out.sort_by_key(|s| s.address);
    Ok(out)
}

/// As many bytes from `addr` as are readable up to `len` (a string table may end near an unmapped page).
fn read_prefix(k: &Kernel, addr: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0usize;
    while done < len {
        let at = addr.wrapping_add(done as u64);
        let n = ((4096 - (at & 4095)) as usize).min(len - done);
        if k.read(at, &mut buf[done..done + n]).is_err() {
            if done == 0 {
                return Err(Error::fault(at, "module string table"));
            }
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// Every loaded module with its symbols, read once per opened kernel.
#[derive(Debug, Default)]
pub struct ModuleTable {
    pub modules: Vec<(Module, Vec<ModuleSymbol>)>,
    /// Modules skipped or read in part, with why.
    pub warnings: Vec<String>,
}

impl ModuleTable {
    /// The module whose memory holds `addr`.
    pub fn module_at(&self, addr: u64) -> Option<&(Module, Vec<ModuleSymbol>)> {
        self.modules.iter().find(|(m, _)| m.contains(addr))
    }
}

/// The kernel's loaded modules and their symbols (memoised on the Kernel).
pub fn module_table(k: &Kernel) -> Arc<ModuleTable> {
    k.memo(|| {
        let mut t = ModuleTable::default();
        let list = match module_list(k) {
            Ok(w) => w,
            Err(e) => {
                t.warnings.push(format!("modules: {e}"));
                return t;
            }
        };
        for addr in list.into_items(&mut t.warnings) {
            match read_module(k, addr) {
                Ok(m) => {
                    let syms = read_module_symbols(k, &m).unwrap_or_else(|e| {
                        t.warnings.push(format!("module {}: symbols: {e}", m.name));
                        Vec::new()
                    });
                    t.modules.push((m, syms));
                }
                Err(e) => t.warnings.push(format!("module at {addr:#x} skipped: {e}")),
            }
        }
        t
    })
}
