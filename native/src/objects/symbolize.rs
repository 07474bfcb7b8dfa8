//! Address → symbol+offset/size and module, as the kernel's %pS prints it (kernel/kallsyms.c
//! kallsyms_lookup_size_offset, kernel/module/kallsyms.c find_kallsyms_symbol): vmlinux from kallsyms,
//! modules from their own kallsyms.

use std::sync::Arc;

use super::modules::module_table;
use crate::kernel::Kernel;

/// A symbolised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbolized {
    pub name: String,
    pub offset: u64,
    /// Up to the next symbol (what %pS prints after the slash).
    pub size: u64,
    /// The module it lies in; None for vmlinux.
    pub module: Option<String>,
}

impl Symbolized {
    /// "name+0x1f/0x60 [module]" as /proc/PID/stack and %pS print it.
    pub fn display(&self) -> String {
        let m = self.module.as_ref().map(|m| format!(" [{m}]")).unwrap_or_default();
        format!("{}+{:#x}/{:#x}{m}", self.name, self.offset, self.size)
    }
}

/// vmlinux symbols by address (table order kept among aliases, the first one wins as get_symbol_pos picks).
struct AddressIndex {
    entries: Vec<(u64, String)>,
    /// End of the kernel image: the last symbol's size runs to here (_end with KALLSYMS_ALL).
    end: u64,
    start: u64,
}

/// Indexes of the boots open in this process, by build id and KASLR offset: guests of one boot (an exporter holding
/// the same snapshot many times, or many VMs of one image and one KASLR draw) share one index, held while any uses it.
fn shared_indexes() -> &'static std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<AddressIndex>>> {
    static INDEXES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<AddressIndex>>>> = std::sync::OnceLock::new();
    INDEXES.get_or_init(Default::default)
}

fn build_index(k: &Kernel) -> AddressIndex {
    let mut entries = k.symbols.all();
    entries.sort_by_key(|(_, a)| *a); // stable: aliases keep their table order
    entries.dedup_by_key(|(_, a)| *a);
    let start = k.symbols.address_of("_text").or_else(|| entries.first().map(|e| e.1)).unwrap_or(0);
    let end = k.symbols.address_of("_end").unwrap_or(u64::MAX);
    AddressIndex { entries: entries.into_iter().map(|(n, a)| (a, n)).collect(), end, start }
}

fn address_index(k: &Kernel) -> Arc<AddressIndex> {
    // The index comes from the symbols alone: it holds for the whole boot, and for every guest of the same boot.
    struct Held(Arc<AddressIndex>);
    k.memo_boot(|| {
        let key = k.facts.build_id.as_deref().map(|b| format!("{b}-{:x}-{}", k.facts.kaslr_offset, k.symbols.len()));
        let Some(key) = key else { return Held(Arc::new(build_index(k))) };
        if let Some(i) = shared_indexes().lock().ok().and_then(|m| m.get(&key).and_then(std::sync::Weak::upgrade)) {
            return Held(i);
        }
        let i = Arc::new(build_index(k));
        if let Ok(mut m) = shared_indexes().lock() {
            m.retain(|_, w| w.strong_count() > 0);
            m.insert(key, Arc::downgrade(&i));
        }
        Held(i)
    })
    .0
    .clone()
}

/// The symbol `addr` lies in, or None outside vmlinux and every module's memory.
pub fn symbolize(k: &Kernel, addr: u64) -> Option<Symbolized> {
    let modules = module_table(k);
    if let Some((m, syms)) = modules.module_at(addr) {
        // find_kallsyms_symbol(): the closest preceding symbol; the size runs to the next one or the text end
        let pos = syms.partition_point(|s| s.address <= addr);
        let best = syms.get(pos.checked_sub(1)?)?;
        let text_end = m.text().filter(|t| addr >= t.base && addr - t.base < t.size).map(|t| t.base + t.size).next();
        let next = syms.get(pos).map(|s| s.address).into_iter().chain(text_end).min().unwrap_or(addr.saturating_add(1));
        return Some(Symbolized { name: best.name.clone(), offset: addr - best.address, size: next.saturating_sub(best.address), module: Some(m.name.clone()) });
    }
    let idx = address_index(k);
    if addr < idx.start || addr >= idx.end {
        return None;
    }
    let pos = idx.entries.partition_point(|(a, _)| *a <= addr);
    let (start, name) = idx.entries.get(pos.checked_sub(1)?)?;
    let next = idx.entries.get(pos).map_or(idx.end, |(a, _)| *a);
    Some(Symbolized { name: name.clone(), offset: addr - start, size: next - start, module: None })
}

/// Where a vmlinux symbol lies and how many bytes it spans up to the next symbol (kallsyms has no sizes:
/// the kernel measures them the same way).
pub fn symbol_extent(k: &Kernel, name: &str) -> Option<(u64, u64)> {
    let addr = k.symbols.address_of(name)?;
    let idx = address_index(k);
    let pos = idx.entries.partition_point(|(a, _)| *a <= addr);
    let next = idx.entries.get(pos).map_or(idx.end, |(a, _)| *a);
    Some((addr, next.checked_sub(addr)?))
}
