//! The booted kernel's identity and the facts discovery found (kernel/discover.rs), each with the source it
//! came from: what `nearfield kernel` (uname) shows.

use schemars::JsonSchema;
use serde::Serialize;

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
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<KernelInfo> {
    let k = cx.kernel;
    let f = &k.facts;
    let r = cx.report;
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
        warnings: r.warnings.clone(),
    })
}
