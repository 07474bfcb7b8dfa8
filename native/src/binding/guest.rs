//! Binding for kernel discovery and the walkers: the `Guest` class holds one discovered `Kernel`, and
//! `walk(name, options)` runs any registered walker, returning its record as one JSON document (V8's
//! JSON.parse builds the objects far faster than napi property sets would).

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::to_js;
use crate::kernel::discover::{discover, DiscoverOptions, Discovery, DiscoveryReport};
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

#[napi]
impl Guest {
    /// Open the RAM file and discover its kernel (synchronously).
    #[napi(factory)]
    pub fn open(options: GuestOptions) -> napi::Result<Guest> {
        let d = discover(&to_options(&options)).map_err(to_js)?;
        Ok(Guest::from_discovery(d, options.ram))
    }

    /// Async twin of `open`, off the JS thread.
    #[napi(ts_return_type = "Promise<Guest>")]
    pub fn open_async(options: GuestOptions) -> AsyncTask<OpenTask> {
        AsyncTask::new(OpenTask { opts: to_options(&options), ram: options.ram })
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
