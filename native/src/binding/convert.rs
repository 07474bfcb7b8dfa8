//! Binding for `nearfield convert`: a RAM source rewritten as an ELF core or raw file on the libuv thread pool,
//! polled for progress and cancellable.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::mem::convert::{convert, ConvertControl, ConvertStats, Target};

#[napi(object)]
pub struct ConvertResult {
    /// The input's format: raw, elf-core, lime, kdump or kdump-flattened.
    pub input_format: String,
    pub ranges: u32,
    pub memory_bytes: f64,
    /// Bytes written (non-zero pages); the rest of the output is holes.
    pub data_bytes: f64,
    pub output_bytes: f64,
    pub excluded_pages: f64,
    pub unreadable_pages: f64,
    pub has_vmcoreinfo: bool,
    pub warnings: Vec<String>,
    pub millis: f64,
}

/// One conversion of a RAM file (raw, ELF core, LiME or kdump) into a new ELF core or raw file.
#[napi]
pub struct RamConvert {
    input: PathBuf,
    output: PathBuf,
    to: String,
    layout: String,
    control: Arc<ConvertControl>,
}

#[napi]
impl RamConvert {
    /// `to` is "elf" or "raw"; `layout` is the raw input's layout (auto, flat, qemu-pc, …).
    #[napi(constructor)]
    pub fn new(input: String, output: String, to: String, layout: Option<String>) -> Self {
        RamConvert {
            input: input.into(),
            output: output.into(),
            to,
            layout: layout.unwrap_or_else(|| "auto".into()),
            control: Arc::new(ConvertControl::default()),
        }
    }

    /// Start the conversion off the JS thread; resolves when done, rejects with "CODE: message".
    #[napi(ts_return_type = "Promise<ConvertResult>")]
    pub fn start(&self) -> AsyncTask<ConvertTask> {
        AsyncTask::new(ConvertTask {
            input: self.input.clone(),
            output: self.output.clone(),
            to: self.to.clone(),
            layout: self.layout.clone(),
            control: self.control.clone(),
        })
    }

    /// Bytes of guest memory handled so far.
    #[napi]
    pub fn bytes_done(&self) -> f64 {
        self.control.bytes_done.load(Ordering::Relaxed) as f64
    }

    /// Bytes of guest memory to handle (0 until the input is open).
    #[napi]
    pub fn total_bytes(&self) -> f64 {
        self.control.total.load(Ordering::Relaxed) as f64
    }

    #[napi]
    pub fn cancel(&self) {
        self.control.cancel.store(true, Ordering::Relaxed);
    }
}

pub struct ConvertTask {
    input: PathBuf,
    output: PathBuf,
    to: String,
    layout: String,
    control: Arc<ConvertControl>,
}

impl Task for ConvertTask {
    type Output = (ConvertStats, f64);
    type JsValue = ConvertResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let t = std::time::Instant::now();
        let fail = |e: crate::Error| Error::new(Status::GenericFailure, format!("{}: {e}", e.code()));
        let to = Target::parse(&self.to).map_err(fail)?;
        let stats = convert(&self.input, &self.layout, &self.output, to, &self.control).map_err(fail)?;
        Ok((stats, t.elapsed().as_secs_f64() * 1000.0))
    }

    fn resolve(&mut self, _env: Env, (s, millis): Self::Output) -> Result<Self::JsValue> {
        Ok(ConvertResult {
            input_format: s.input_format,
            ranges: s.ranges as u32,
            memory_bytes: s.memory_bytes as f64,
            data_bytes: s.data_bytes as f64,
            output_bytes: s.output_bytes as f64,
            excluded_pages: s.excluded_pages as f64,
            unreadable_pages: s.unreadable_pages as f64,
            has_vmcoreinfo: s.has_vmcoreinfo,
            warnings: s.warnings,
            millis,
        })
    }
}
