//! Binding for kernel discovery: the `Guest` class holds one discovered `Kernel`; walkers add their
//! methods to it in their own files (`impl Guest` blocks) through `kernel()`.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::to_js;
use crate::kernel::discover::{discover, DiscoverOptions, Discovery, DiscoveryReport};
use crate::kernel::Kernel;

#[napi(object)]
pub struct GuestOptions {
    /// Guest RAM: raw memory file, ELF core, LiME or kdump-compressed dump.
    pub ram: String,
    /// Raw RAM layout: auto (default), flat, qemu-pc, qemu-q35, firecracker, firecracker-1.12, NAME:SPLIT.
    pub layout: Option<String>,
    pub system_map: Option<String>,
    pub vmlinux: Option<String>,
    pub isf: Option<String>,
    /// Use and write the kernel profile cache (default true).
    pub use_cache: Option<bool>,
}

#[napi(object)]
pub struct DiscoveryStep {
    pub step: String,
    pub ms: f64,
}

#[napi(object)]
pub struct FactSource {
    pub fact: String,
    /// vmcoreinfo, kallsyms, btf, system-map, vmlinux, isf, scan, elf-note, cache.
    pub source: String,
}

/// Every fact about the booted kernel; addresses are "0x…" strings.
#[napi(object)]
pub struct KernelInfo {
    pub ram: String,
    /// raw, elf-core, lime, kdump or kdump-flattened.
    pub format: String,
    /// The layout used for a raw file (and why, when guessed).
    pub layout: String,
    pub layout_guessed: bool,
    pub release: Option<String>,
    pub banner: Option<String>,
    pub build_id: Option<String>,
    pub kaslr_offset: String,
    pub phys_base: String,
    pub dtb: String,
    pub paging_levels: u32,
    pub page_offset_base: String,
    pub vmemmap_base: String,
    pub vmalloc_base: String,
    pub page_size: u32,
    /// Physical address of the VMCOREINFO text when found by scanning RAM.
    pub vmcoreinfo_phys: Option<String>,
    pub vmcoreinfo_entries: u32,
    pub symbol_count: u32,
    pub symbol_source: String,
    pub btf_type_count: u32,
    pub type_source: String,
    pub cache_hit: bool,
    pub cache_file: Option<String>,
    pub sources: Vec<FactSource>,
    pub timings: Vec<DiscoveryStep>,
    pub total_ms: f64,
    pub warnings: Vec<String>,
}

/// One guest's RAM with its kernel discovered.
#[napi]
pub struct Guest {
    kernel: Kernel,
    report: DiscoveryReport,
    btf: Option<std::sync::Arc<Vec<u8>>>,
    ram: String,
}

impl Guest {
    /// The discovered kernel, for walkers' bindings.
    #[allow(dead_code)]
    pub(crate) fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    #[allow(dead_code)]
    pub(crate) fn report(&self) -> &DiscoveryReport {
        &self.report
    }

    fn from_discovery(d: Discovery, ram: String) -> Guest {
        Guest { kernel: d.kernel, report: d.report, btf: d.btf, ram }
    }
}

fn to_options(o: &GuestOptions) -> DiscoverOptions {
    DiscoverOptions {
        ram: PathBuf::from(&o.ram),
        layout: o.layout.clone().unwrap_or_else(|| "auto".into()),
        system_map: o.system_map.as_ref().map(PathBuf::from),
        vmlinux: o.vmlinux.as_ref().map(PathBuf::from),
        isf: o.isf.as_ref().map(PathBuf::from),
        use_cache: o.use_cache.unwrap_or(true),
    }
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

#[napi]
impl Guest {
    /// Open the RAM file and discover its kernel (synchronously).
    #[napi(factory)]
    pub fn open(options: GuestOptions) -> napi::Result<Guest, &'static str> {
        let d = discover(&to_options(&options)).map_err(to_js)?;
        Ok(Guest::from_discovery(d, options.ram))
    }

    /// Async twin of `open`, off the JS thread. Rejects with an Error whose message starts with the
    /// closed error code ("FAULT: …", "BAD_DATA: …").
    #[napi(ts_return_type = "Promise<Guest>")]
    pub fn open_async(options: GuestOptions) -> AsyncTask<OpenTask> {
        AsyncTask::new(OpenTask { opts: to_options(&options), ram: options.ram })
    }

    /// Every kernel fact with its source, the layout assumed, cache use and per-step timings.
    #[napi]
    pub fn kernel_info(&self) -> KernelInfo {
        let f = &self.kernel.facts;
        let r = &self.report;
        KernelInfo {
            ram: self.ram.clone(),
            format: r.format.clone(),
            layout: r.layout.clone(),
            layout_guessed: r.layout_guessed,
            release: f.release.clone(),
            banner: f.banner.clone(),
            build_id: f.build_id.clone(),
            kaslr_offset: hex(f.kaslr_offset),
            phys_base: hex(f.phys_base),
            dtb: hex(f.dtb),
            paging_levels: f.paging_levels as u32,
            page_offset_base: hex(f.page_offset_base),
            vmemmap_base: hex(f.vmemmap_base),
            vmalloc_base: hex(f.vmalloc_base),
            page_size: f.page_size as u32,
            vmcoreinfo_phys: r.vmcoreinfo_phys.map(hex),
            vmcoreinfo_entries: f.vmcoreinfo.len() as u32,
            symbol_count: self.kernel.symbols.len() as u32,
            symbol_source: f.sources.get("symbols").map_or_else(|| self.kernel.symbols.source().as_str(), |s| s.as_str()).to_string(),
            btf_type_count: self.kernel.types.type_count() as u32,
            type_source: f.sources.get("types").map_or_else(|| self.kernel.types.source().as_str(), |s| s.as_str()).to_string(),
            cache_hit: r.cache_hit,
            cache_file: r.cache_file.clone(),
            sources: f.sources.iter().map(|(k, v)| FactSource { fact: k.clone(), source: v.as_str().to_string() }).collect(),
            timings: r.timings.iter().map(|(s, ms)| DiscoveryStep { step: s.clone(), ms: *ms }).collect(),
            total_ms: r.timings.iter().map(|(_, ms)| ms).sum(),
            warnings: r.warnings.clone(),
        }
    }

    /// A kernel symbol's address ("0x…"), or null.
    #[napi]
    pub fn symbol(&self, name: String) -> Option<String> {
        self.kernel.symbols.address_of(&name).map(hex)
    }

    /// Write a Volatility 3 ISF (JSON) of this kernel to `path`; returns the bytes written.
    #[napi]
    pub fn export_isf(&self, path: String) -> napi::Result<f64, &'static str> {
        let json = crate::kernel::discover::export_isf(&self.kernel, self.btf.as_deref().map(Vec::as_slice)).map_err(to_js)?;
        std::fs::write(&path, json.as_bytes()).map_err(|e| to_js(crate::Error::Io(format!("cannot write {path}: {e}"))))?;
        Ok(json.len() as f64)
    }

    /// Raw VMCOREINFO lines as [key, value] pairs.
    #[napi]
    pub fn vmcoreinfo(&self) -> Vec<Vec<String>> {
        self.kernel.facts.vmcoreinfo.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect()
    }
}

pub struct OpenTask {
    opts: DiscoverOptions,
    ram: String,
}

impl Task for OpenTask {
    type Output = Discovery;
    type JsValue = Guest;

    fn compute(&mut self) -> Result<Self::Output> {
        discover(&self.opts).map_err(|e| Error::new(Status::GenericFailure, format!("{}: {e}", e.code())))
    }

    fn resolve(&mut self, _env: Env, d: Self::Output) -> Result<Self::JsValue> {
        Ok(Guest::from_discovery(d, std::mem::take(&mut self.ram)))
    }
}
