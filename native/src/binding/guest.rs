//! Binding for kernel discovery and the walkers: the `Guest` class holds one discovered `Kernel`, and
//! `walk(name, options)` runs any registered walker, returning its record as one JSON document (V8's
//! JSON.parse builds the objects far faster than napi property sets would).

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::to_js;
use crate::kernel::discover::{discover, DiscoverOptions, Discovery, DiscoveryReport, ProcessSource};
use crate::mem::Segment;
use crate::kernel::Kernel;
use crate::walkers::Context;

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
    /// Read a running QEMU process instead of `ram`: its pid …
    pub pid: Option<i32>,
    /// … and QEMU's guest-physical → host-virtual map as JSON text, `[{"gpa":"0x…","hva":"0x…","len":"0x…"}]`
    /// (from `info mtree -f` + `gpa2hva`); absent: /proc/PID/maps and QEMU's command line are used.
    pub process_map: Option<String>,
    /// How `process_map` was learnt, shown as the layout.
    pub process_map_source: Option<String>,
}

/// One guest's RAM with its kernel discovered; `close()` unmaps it.
#[napi]
pub struct Guest {
    open: Option<Opened>,
}

struct Opened {
    kernel: Kernel,
    report: DiscoveryReport,
    btf: Option<crate::kernel::btf::BtfBytes>,
    ram: String,
}

impl Guest {
    fn from_discovery(d: Discovery, ram: String) -> Guest {
        Guest { open: Some(Opened { kernel: d.kernel, report: d.report, btf: d.btf, ram }) }
    }

    fn opened(&self) -> napi::Result<&Opened> {
        self.open.as_ref().ok_or_else(|| to_js(crate::Error::Unsupported("the guest was closed".into())))
    }
}

fn hex_field(v: &serde_json::Value, key: &str) -> crate::Result<u64> {
    let text = v.get(key).and_then(|x| x.as_str()).ok_or_else(|| crate::Error::bad(format!("process map entry without \"{key}\"")))?;
    u64::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|_| crate::Error::bad(format!("process map: {key} \"{text}\" is not hex")))
}

fn process_source(o: &GuestOptions) -> crate::Result<Option<ProcessSource>> {
    let Some(pid) = o.pid else { return Ok(None) };
    let segments = match &o.process_map {
        None => None,
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| crate::Error::bad(format!("process map is not JSON: {e}")))?;
            let list = v.as_array().ok_or_else(|| crate::Error::bad("process map is not a list"))?;
            let mut out = Vec::with_capacity(list.len());
            for e in list.iter().take(4096) {
                out.push(Segment { gpa: hex_field(e, "gpa")?, file_offset: hex_field(e, "hva")?, len: hex_field(e, "len")? });
            }
            Some(out)
        }
    };
    Ok(Some(ProcessSource { pid, segments, describe: o.process_map_source.clone().unwrap_or_else(|| "qmp".into()) }))
}

fn to_options(o: &GuestOptions) -> crate::Result<DiscoverOptions> {
    Ok(DiscoverOptions {
        ram: PathBuf::from(&o.ram),
        layout: o.layout.clone().unwrap_or_else(|| "auto".into()),
        system_map: o.system_map.as_ref().map(PathBuf::from),
        vmlinux: o.vmlinux.as_ref().map(PathBuf::from),
        isf: o.isf.as_ref().map(PathBuf::from),
        use_cache: o.use_cache.unwrap_or(true),
        process: process_source(o)?,
    })
}

#[napi]
impl Guest {
    /// Open the RAM file and discover its kernel (synchronously).
    #[napi(factory)]
    pub fn open(options: GuestOptions) -> napi::Result<Guest> {
        let d = discover(&to_options(&options).map_err(to_js)?).map_err(to_js)?;
        Ok(Guest::from_discovery(d, options.ram))
    }

    /// Async twin of `open`, off the JS thread.
    #[napi(ts_return_type = "Promise<Guest>")]
    pub fn open_async(options: GuestOptions) -> napi::Result<AsyncTask<OpenTask>> {
        Ok(AsyncTask::new(OpenTask { opts: to_options(&options).map_err(to_js)?, ram: options.ram }))
    }

    /// Run the walker `name` with `options` (JSON text, or null for the defaults); its record as JSON text.
    #[napi]
    pub fn walk(&self, name: String, options: Option<String>) -> napi::Result<String> {
        let options = match options.as_deref() {
            None | Some("") => serde_json::Value::Null,
            Some(text) => serde_json::from_str(text)
                .map_err(|e| to_js(crate::Error::Unsupported(format!("options of walker {name} are not JSON: {e}"))))?,
        };
        let g = self.opened()?;
        let cx = Context { kernel: &g.kernel, report: &g.report, ram: &g.ram };
        crate::walkers::run(&cx, &name, options).map_err(to_js)
    }

    /// A kernel symbol's address ("0x…"), or null.
    #[napi]
    pub fn symbol(&self, name: String) -> napi::Result<Option<String>> {
        Ok(self.opened()?.kernel.symbols.address_of(&name).map(|v| format!("{v:#x}")))
    }

    /// Write a Volatility 3 ISF (JSON) of this kernel to `path`; returns the bytes written.
    #[napi]
    pub fn export_isf(&self, path: String) -> napi::Result<f64> {
        let g = self.opened()?;
        let json = crate::kernel::discover::export_isf(&g.kernel, g.btf.as_deref()).map_err(to_js)?;
        std::fs::write(&path, json.as_bytes()).map_err(|e| to_js(crate::Error::Io(format!("cannot write {path}: {e}"))))?;
        Ok(json.len() as f64)
    }

    /// Raw VMCOREINFO lines as [key, value] pairs.
    #[napi]
    pub fn vmcoreinfo(&self) -> napi::Result<Vec<Vec<String>>> {
        Ok(self.opened()?.kernel.facts.vmcoreinfo.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect())
    }

    /// Guest memory the RAM file lacks (a truncated file), one sentence each: what every reader's output may miss.
    #[napi]
    pub fn damage(&self) -> napi::Result<Vec<String>> {
        Ok(self.opened()?.report.damage.clone())
    }

    /// How the walks since the last call held together, as JSON text: `{"live", "walks", "retries", "tornReads",
    /// "torn": [..]}` (`torn`: what was still torn after the last retry). Resets the count.
    #[napi]
    pub fn take_consistency(&self) -> napi::Result<String> {
        let c = self.opened()?.kernel.take_consistency();
        Ok(serde_json::json!({ "live": c.live, "walks": c.walks, "retries": c.retries, "tornReads": c.torn_reads, "torn": c.torn }).to_string())
    }

    /// Say whether the guest's RAM may change while read (false while the VM is paused for the read).
    #[napi]
    pub fn set_live(&self, live: bool) -> napi::Result<()> {
        self.opened()?.kernel.set_live(live);
        Ok(())
    }

    /// The boot this guest is in, read again from its RAM now: "BUILD-ID/KERNELOFFSET" from the VMCOREINFO note
    /// discovery found (a reboot changes the KASLR offset, a new kernel the build id). For a note that came from
    /// a dump's header, the identity discovery saw.
    #[napi]
    pub fn boot_identity(&self) -> napi::Result<String> {
        let g = self.opened()?;
        let facts = &g.kernel.facts;
        let Some(at) = g.report.vmcoreinfo_phys else {
            return Ok(format!("{}/{:x}", facts.build_id.as_deref().unwrap_or("?"), facts.kaslr_offset));
        };
        let v = crate::kernel::vmcoreinfo::read_note_at(g.kernel.phys.as_ref(), at).map_err(to_js)?;
        let offset = v.kernel_offset().map_err(to_js)?.unwrap_or(0);
        Ok(format!("{}/{offset:x}", v.build_id().unwrap_or("?")))
    }

    /// Facts about the RAM source: format ("raw", "elf-core", "kdump", "qemu-process" …), layout, and the
    /// discovery warnings (a guessed live map says so here).
    #[napi]
    pub fn source_info(&self) -> napi::Result<String> {
        let g = self.opened()?;
        Ok(serde_json::json!({ "format": g.report.format, "layout": g.report.layout, "layoutGuessed": g.report.layout_guessed, "warnings": g.report.warnings }).to_string())
    }

    /// Drop the RAM pages this guest keeps mapped in (a RAM file's), keeping it open: the exporter does so after each
    /// collection so its RSS stays bounded however many VMs it holds.
    #[napi]
    pub fn release_memory(&self) -> napi::Result<()> {
        self.opened()?.kernel.phys.release_resident();
        Ok(())
    }

    /// Release the RAM mapping and the profile now rather than at garbage collection; later calls fail.
    #[napi]
    pub fn close(&mut self) {
        self.open = None;
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
        discover(&self.opts).map_err(to_js)
    }

    fn resolve(&mut self, _env: Env, d: Self::Output) -> Result<Self::JsValue> {
        Ok(Guest::from_discovery(d, std::mem::take(&mut self.ram)))
    }
}

/// Check a raw RAM layout (`--ram-layout`: auto, flat, qemu-pc, qemu-q35, firecracker, firecracker-1.12,
/// NAME:SPLIT) before anything is opened, so a typo is a usage error; returns how it reads.
#[napi]
pub fn check_ram_layout(spec: String) -> napi::Result<String> {
    crate::mem::layout::RawLayout::parse(&spec, 0).map(|l| l.describe()).map_err(to_js)
}
