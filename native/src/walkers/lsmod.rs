//! Loaded modules as /proc/modules prints them (kernel/module/procfs.c m_show, print_unload_info,
//! module_flags): size, references, users, state, address and taint letters, plus each module's memory.

use schemars::JsonSchema;
use serde::Serialize;

use crate::objects::modules::{module_list, module_table, read_module};
use crate::objects::taint::{taint_flags, taint_letters};
use crate::objects::{list_entries, Object};
use crate::records::Hex;
use crate::walkers::{Context, NoOptions};
use crate::Result;

crate::walker! {
    /// Every loaded module as /proc/modules and lsmod show it, with its memory layout and symbol count.
    name: "modules",
    options: NoOptions,
    record: ModuleList,
    run: walk,
}

/// MODULE_REF_BASE (kernel/module/main.c): a live module's refcnt starts at 1.
const MODULE_REF_BASE: i64 = 1;
/// Modules using one module: bounded like the module list itself.
const MAX_USERS: usize = 65_536;

/// One region of a module's memory.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryRegion {
    /// text, rodata, ro_after_init, data, or init_* of the same (freed after init: size 0).
    pub kind: String,
    pub base: Hex,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadedModule {
    pub name: String,
    /// The size /proc/modules prints: every region, core and init.
    pub size_bytes: u64,
    /// module_refcount(): references held (/proc/modules' third field).
    pub refcount: i64,
    /// Modules that use this one (the "used by" list), as the kernel lists them.
    pub used_by: Vec<String>,
    /// Has an init but no exit function: can never be unloaded ("[permanent]").
    pub permanent: bool,
    /// Live, Loading or Unloading.
    pub state: String,
    /// Where its text starts (/proc/modules' address).
    pub address: Hex,
    /// Taint letters the module carries (O out-of-tree, E unsigned, P proprietary …).
    pub taints: String,
    pub memory: Vec<MemoryRegion>,
    /// Symbols in its own kallsyms.
    pub symbols: usize,
    /// Kernel address of its struct module.
    pub struct_address: Hex,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ModuleList {
    /// Newest first, as /proc/modules lists them.
    pub modules: Vec<LoadedModule>,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<ModuleList> {
    let k = cx.kernel;
    let t = k.struct_type("module")?;
    let (state, taints, refcnt) = (t.field("state")?, t.field("taints")?, t.field_any(&["refcnt.counter", "refcnt"])?);
    let (init, exit) = (t.field("init")?, t.opt_field("exit"));
    let (source_list, use_source_list, use_source) = (t.field("source_list")?, k.member("module_use", "source_list")?, k.member("module_use", "source")?);
    let name_of = |m: u64| Object::read(k, m, t.size).and_then(|o| o.cstr(t.field("name")?));
    let enumerator = |e: &str| k.enumerator(e).ok();
    let (going, coming) = (enumerator("MODULE_STATE_GOING"), enumerator("MODULE_STATE_COMING"));
    let flags = taint_flags(k);
    let symbols = module_table(k);
    let mut out = ModuleList::default();
    for addr in module_list(k)?.into_items(&mut out.warnings) {
        let one = || -> Result<LoadedModule> {
            let m = read_module(k, addr)?;
            let o = k.object(addr, &t)?;
            // print_unload_info(): each module_use on source_list names a module that uses this one
            let users = list_entries(k, addr.wrapping_add(source_list.offset), use_source_list.offset, MAX_USERS, "module users (source_list)").all()?;
            let used_by = users.iter().map(|&u| name_of(k.read_member(u, use_source)?)).collect::<Result<Vec<_>>>()?;
            let st = o.int(state)?;
            let st_name = if Some(st) == going { "Unloading" } else if Some(st) == coming { "Loading" } else { "Live" };
            let memory = m.memory.iter().map(|r| MemoryRegion { kind: r.kind.clone(), base: Hex(r.base), size_bytes: r.size }).collect();
            let text = m.text().next().map_or(0, |r| r.base);
            Ok(LoadedModule {
                size_bytes: m.memory.iter().map(|r| r.size).sum(),
                refcount: o.int(refcnt)? - MODULE_REF_BASE,
                used_by,
                permanent: o.get(init)? != 0 && exit.is_some_and(|e| o.get(e).is_ok_and(|v| v == 0)),
                state: st_name.into(),
                address: Hex(text),
                taints: taint_letters(&flags, o.get(taints)?, true),
                memory,
                symbols: symbols.modules.iter().find(|(s, _)| s.address == addr).map_or(0, |(_, s)| s.len()),
                struct_address: Hex(addr),
                name: m.name,
            })
        };
        match one() {
            Ok(m) => out.modules.push(m),
            Err(e) => out.warnings.push(format!("module at {addr:#x} skipped: {e}")),
        }
    }
    Ok(out)
}
