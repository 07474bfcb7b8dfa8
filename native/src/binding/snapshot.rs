//! Binding for snapshot capture: a file copy that runs on the libuv thread pool and can be polled and cancelled.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::snapshot::copy::{copy_file, CopyControl};

#[napi(object)]
pub struct CopyResult {
    /// "reflink" or "sparse-copy".
    pub method: String,
    pub size: f64,
    pub data_bytes: f64,
    pub millis: f64,
}

/// One file copy (RAM file or disk image) into a snapshot directory.
#[napi]
pub struct FileCopy {
    src: PathBuf,
    dst: PathBuf,
    control: Arc<CopyControl>,
}

#[napi]
impl FileCopy {
    #[napi(constructor)]
    pub fn new(src: String, dst: String) -> Self {
        FileCopy { src: src.into(), dst: dst.into(), control: Arc::new(CopyControl::default()) }
    }

    /// Start the copy off the JS thread; resolves when done.
    #[napi(ts_return_type = "Promise<CopyResult>")]
    pub fn start(&self) -> AsyncTask<CopyTask> {
        AsyncTask::new(CopyTask { src: self.src.clone(), dst: self.dst.clone(), control: self.control.clone() })
    }

    /// Bytes of the source handled so far (for a progress bar).
    #[napi]
    pub fn bytes_done(&self) -> f64 {
        self.control.bytes_done.load(Ordering::Relaxed) as f64
    }

    #[napi]
    pub fn cancel(&self) {
        self.control.cancel.store(true, Ordering::Relaxed);
    }
}

pub struct CopyTask {
    src: PathBuf,
    dst: PathBuf,
    control: Arc<CopyControl>,
}

impl Task for CopyTask {
    type Output = (crate::snapshot::copy::CopyStats, f64);
    type JsValue = CopyResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let t = std::time::Instant::now();
        let stats = copy_file(&self.src, &self.dst, &self.control)
            .map_err(|e| Error::new(Status::GenericFailure, format!("{}: {e}", e.code())))?;
        Ok((stats, t.elapsed().as_secs_f64() * 1000.0))
    }

    fn resolve(&mut self, _env: Env, (stats, millis): Self::Output) -> Result<Self::JsValue> {
        Ok(CopyResult {
            method: stats.method.as_str().to_string(),
            size: stats.size as f64,
            data_bytes: stats.data_bytes as f64,
            millis,
        })
    }
}
