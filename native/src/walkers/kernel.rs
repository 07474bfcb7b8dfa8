//! The booted kernel's identity and the facts discovery found (kernel/discover.rs), each with the source it
//! came from: what `nearfield kernel` (uname) shows; plus its command line (init/main.c saved_command_line),
//! taint mask (kernel/panic.c tainted_mask) and selected sysctls read from the variables behind them.

use schemars::JsonSchema;
use serde::Serialize;

use crate::kernel::Kernel;
use crate::objects::taint::{taint_flags, taint_letters};
use crate::records::Hex;
use crate::walkers::{Context, NoOptions};
use crate::Result;

crate::walker! {
    /// Release, banner, build id, KASLR offset, paging, page-table root, direct-map and vmemmap bases,
    /// symbol and type counts, each with where it came from (vmcoreinfo, kallsyms, btf, …), and how
    /// discovery went (RAM format and layout, profile cache, timings).
    name: "kernel",
    options: NoOptions,
    record: KernelInfo,
    run: walk,
}

/// Where one fact came from.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FactSource {
    pub fact: String,
    /// vmcoreinfo, kallsyms, btf, system-map, vmlinux, isf, scan, elf-note or cache.
    pub source: String,
}

/// How long one discovery step took.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiscoveryStep {
    pub step: String,
    pub ms: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KernelInfo {
    /// The RAM file, as given.
    pub ram: String,
    /// raw, elf-core, lime, kdump or kdump-flattened.
    pub format: String,
    /// The layout used for a raw file (and why, when guessed).
    pub layout: String,
    pub layout_guessed: bool,
    pub release: Option<String>,
    pub banner: Option<String>,
    pub build_id: Option<String>,
    pub kaslr_offset: Hex,
    pub phys_base: Hex,
    /// Physical address of the kernel's top-level page table.
    pub dtb: Hex,
    pub paging_levels: u8,
    pub page_offset_base: Hex,
    pub vmemmap_base: Hex,
    pub vmalloc_base: Hex,
    pub page_size: u64,
    /// Physical address of the VMCOREINFO text when found by scanning RAM.
    pub vmcoreinfo_phys: Option<Hex>,
    pub vmcoreinfo_entries: usize,
    /// VMCOREINFO notes in RAM that did not describe the running kernel (an earlier boot's), passed over.
    pub stale_vmcoreinfo: Vec<Hex>,
    pub symbol_count: usize,
    pub symbol_source: String,
    pub btf_type_count: usize,
    pub type_source: String,
    pub cache_hit: bool,
    pub cache_file: Option<String>,
    pub sources: Vec<FactSource>,
    pub timings: Vec<DiscoveryStep>,
    pub total_ms: f64,
    /// The kernel command line (/proc/cmdline).
    pub command_line: Option<String>,
    /// The taint mask (/proc/sys/kernel/tainted) and its letters (P, O, E, W …) in bit order.
    pub tainted: Option<u64>,
    pub taint_letters: Option<String>,
    /// Selected sysctls as their /proc/sys files print them (kernel.hostname, vm.swappiness …).
    pub sysctls: Vec<Sysctl>,
    pub warnings: Vec<String>,
}

/// One sysctl and the text its /proc/sys file shows.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Sysctl {
    pub name: String,
    pub value: String,
}

/// How a sysctl's variable is stored.
enum Var {
    Int(&'static str),
    Uint(&'static str),
    Ulong(&'static str),
    Uts(&'static str),
}

/// Sysctls read from their variables (kernel/sysctl.c, kernel/hung_task.c, kernel/panic.c, mm/*.c,
/// drivers/tty/sysrq.c, kernel/printk; types as in 6.1 – 6.12).
const SYSCTLS: [(&str, Var); 16] = [
    ("kernel.hostname", Var::Uts("nodename")),
    ("kernel.domainname", Var::Uts("domainname")),
    ("kernel.osrelease", Var::Uts("release")),
    ("kernel.tainted", Var::Ulong("tainted_mask")),
    ("kernel.pid_max", Var::Int("pid_max")),
    ("kernel.hung_task_timeout_secs", Var::Ulong("sysctl_hung_task_timeout_secs")),
    ("kernel.hung_task_warnings", Var::Int("sysctl_hung_task_warnings")),
    ("kernel.hung_task_check_interval_secs", Var::Ulong("sysctl_hung_task_check_interval_secs")),
    ("kernel.hung_task_panic", Var::Uint("sysctl_hung_task_panic")),
    ("kernel.panic", Var::Int("panic_timeout")),
    ("kernel.panic_on_oops", Var::Int("panic_on_oops")),
    ("vm.overcommit_memory", Var::Int("sysctl_overcommit_memory")),
    ("vm.swappiness", Var::Int("vm_swappiness")),
    ("vm.min_free_kbytes", Var::Int("min_free_kbytes")),
    ("vm.watermark_scale_factor", Var::Int("watermark_scale_factor")),
    ("vm.compaction_proactiveness", Var::Uint("sysctl_compaction_proactiveness")),
];

fn sysctl(k: &Kernel, v: &Var) -> Result<String> {
    Ok(match v {
        Var::Int(s) => (k.read_u32(k.symbol(s)?)? as i32).to_string(),
        Var::Uint(s) => k.read_u32(k.symbol(s)?)?.to_string(),
        Var::Ulong(s) => k.read_u64(k.symbol(s)?)?.to_string(),
        Var::Uts(field) => {
            let at = k.symbol("init_uts_ns")?.wrapping_add(k.offset("uts_namespace", "name")?).wrapping_add(k.offset("new_utsname", field)?);
            k.read_cstr(at, 65)?
        }
    })
}

/// kernel.sysrq (sysrq_sysctl_handler: 1 when forced on at boot, else sysrq_enabled) and kernel.printk
/// (console_printk[4], tab-separated).
fn extra_sysctls(k: &Kernel) -> Vec<(&'static str, Result<String>)> {
    let sysrq = (|| -> Result<String> {
        let always = k.symbol("sysrq_always_enabled").and_then(|a| k.read_u8(a)).unwrap_or(0);
        Ok(if always != 0 { "1".into() } else { (k.read_u32(k.symbol("sysrq_enabled")?)? as i32).to_string() })
    })();
    let printk = (|| -> Result<String> {
        let a = k.symbol("console_printk")?;
        Ok((0..4).map(|i| k.read_u32(a + 4 * i).map(|v| (v as i32).to_string())).collect::<Result<Vec<_>>>()?.join("\t"))
    })();
    vec![("kernel.sysrq", sysrq), ("kernel.printk", printk)]
}

/// A fact whose symbol the profile lacks (this kernel has no such variable, or a partial System.map) is left out;
/// one that cannot be read is left out with a warning.
fn soft<T>(warnings: &mut Vec<String>, what: &str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(crate::Error::NotFound(_)) => None,
        Err(e) => {
            warnings.push(format!("{what}: {e}"));
            None
        }
    }
}

fn walk(cx: &Context, _: &NoOptions) -> Result<KernelInfo> {
    let k = cx.kernel;
    let f = &k.facts;
    let r = cx.report;
    let mut warnings = r.warnings.clone();
    let command_line = soft(&mut warnings, "command line", k.symbol("saved_command_line").and_then(|p| k.read_u64(p)).and_then(|s| k.read_cstr(s, 65536)));
    let tainted = soft(&mut warnings, "taint mask", k.symbol("tainted_mask").and_then(|a| k.read_u64(a)));
    let mut sysctls = Vec::new();
    let all = SYSCTLS.iter().map(|(n, v)| (*n, sysctl(k, v))).chain(extra_sysctls(k));
    for (name, value) in all {
        if let Some(value) = soft(&mut warnings, &format!("sysctl {name}"), value) {
            sysctls.push(Sysctl { name: name.into(), value });
        }
    }
    let source = |fact: &str, fallback: crate::kernel::Source| f.sources.get(fact).copied().unwrap_or(fallback).as_str().to_string();
    Ok(KernelInfo {
        ram: cx.ram.to_string(),
        format: r.format.clone(),
        layout: r.layout.clone(),
        layout_guessed: r.layout_guessed,
        release: f.release.clone(),
        banner: f.banner.clone(),
        build_id: f.build_id.clone(),
        kaslr_offset: Hex(f.kaslr_offset),
        phys_base: Hex(f.phys_base),
        dtb: Hex(f.dtb),
        paging_levels: f.paging_levels,
        page_offset_base: Hex(f.page_offset_base),
        vmemmap_base: Hex(f.vmemmap_base),
        vmalloc_base: Hex(f.vmalloc_base),
        page_size: f.page_size,
        vmcoreinfo_phys: r.vmcoreinfo_phys.map(Hex),
        vmcoreinfo_entries: f.vmcoreinfo.len(),
        stale_vmcoreinfo: r.stale_vmcoreinfo.iter().copied().map(Hex).collect(),
        symbol_count: k.symbols.len(),
        symbol_source: source("symbols", k.symbols.source()),
        btf_type_count: k.types.type_count(),
        type_source: source("types", k.types.source()),
        cache_hit: r.cache_hit,
        cache_file: r.cache_file.clone(),
        sources: f.sources.iter().map(|(k, v)| FactSource { fact: k.clone(), source: v.as_str().to_string() }).collect(),
        timings: r.timings.iter().map(|(s, ms)| DiscoveryStep { step: s.clone(), ms: *ms }).collect(),
        total_ms: r.timings.iter().map(|(_, ms)| ms).sum(),
        command_line,
        tainted,
        taint_letters: tainted.map(|t| taint_letters(&taint_flags(k), t, false)),
        sysctls,
        warnings,
    })
}
