//! Binding for the walkers: ps/meminfo/buddyinfo/uptime records in one call each, on the `Guest` class.

use napi::bindgen_prelude::BigInt;
use napi_derive::napi;

use super::guest::Guest;
use super::to_js;
use crate::walkers::{buddy, meminfo, tasks, uptime};

#[napi(object)]
pub struct TasksOptions {
    /// Also list every thread of each process (signal->thread_head).
    pub threads: Option<bool>,
    /// Read cmdlines through each process's page tables (default true).
    pub cmdline: Option<bool>,
}

#[napi(object)]
pub struct TaskRecord {
    /// task_struct address, "0x…".
    pub address: String,
    pub pid: i32,
    pub tgid: i32,
    pub ppid: i32,
    pub comm: String,
    /// /proc state letter: R S D T t X Z P I.
    pub state: String,
    pub flags: u32,
    pub kernel_thread: bool,
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// /proc/PID/stat field 18 (prio − 100) and 19 (nice).
    pub priority: i32,
    pub nice: i32,
    pub nr_threads: i32,
    /// start_boottime in ns since boot. Times are plain numbers, not bigints: exact below 2^53 ns
    /// (104 days), and BigInt creation was the largest cost of this call.
    pub start_time_ns: f64,
    /// cputime_adjust'ed user/system time, ns (group totals for a process).
    pub utime_ns: f64,
    pub stime_ns: f64,
    pub runtime_ns: f64,
    pub processor: Option<u32>,
    /// get_mm_rss() in pages and its three counters; null without an mm.
    pub rss_pages: Option<f64>,
    pub rss_file_pages: Option<f64>,
    pub rss_anon_pages: Option<f64>,
    pub rss_shmem_pages: Option<f64>,
    pub vsz_bytes: Option<f64>,
    /// argv; [] without an mm; null when unreadable (see cmdlineError).
    pub cmdline: Option<Vec<String>>,
    pub cmdline_error: Option<String>,
    pub threads: Vec<TaskRecord>,
}

#[napi(object)]
pub struct TaskListRecord {
    pub tasks: Vec<TaskRecord>,
    pub warnings: Vec<String>,
}

#[napi(object)]
pub struct MeminfoField {
    pub name: String,
    pub value: f64,
    /// "kB", or "" for the HugePages_* counts.
    pub unit: String,
}

#[napi(object)]
pub struct MeminfoRecord {
    pub fields: Vec<MeminfoField>,
    pub warnings: Vec<String>,
}

#[napi(object)]
pub struct BuddyZoneRecord {
    pub node: u32,
    pub zone: String,
    /// Free blocks per order 0..MAX_ORDER-1.
    pub free: Vec<f64>,
}

#[napi(object)]
pub struct BuddyinfoRecord {
    pub zones: Vec<BuddyZoneRecord>,
    pub free_pages: f64,
    pub largest_order: Option<u32>,
    /// Orders counted as high in highOrderPercent (9: 2 MiB blocks with 4 KiB pages).
    pub high_order: u32,
    pub high_order_percent: f64,
    pub page_size: u32,
}

#[napi(object)]
pub struct UptimeRecord {
    pub boottime_ns: BigInt,
    pub monotonic_ns: BigInt,
    pub realtime_ns: BigInt,
    pub boot_wall_ns: BigInt,
    pub avenrun: Vec<f64>,
    /// As /proc/loadavg prints them.
    pub loadavg: Vec<String>,
    pub nr_running: Option<f64>,
    pub nr_threads: Option<f64>,
    pub last_pid: Option<f64>,
    pub online_cpus: Vec<u32>,
    pub jiffies: Option<BigInt>,
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
    pub warnings: Vec<String>,
}

fn big_u(v: u64) -> BigInt {
    BigInt::from(v)
}

fn big_i(v: i64) -> BigInt {
    BigInt::from(v)
}

fn task_record(t: tasks::Task) -> TaskRecord {
    TaskRecord {
        address: format!("{:#x}", t.address),
        kernel_thread: t.kernel_thread(),
        pid: t.pid,
        tgid: t.tgid,
        ppid: t.ppid,
        comm: t.comm,
        state: t.state.to_string(),
        flags: t.flags,
        uid: t.uid,
        euid: t.euid,
        suid: t.suid,
        fsuid: t.fsuid,
        gid: t.gid,
        egid: t.egid,
        sgid: t.sgid,
        fsgid: t.fsgid,
        priority: t.priority,
        nice: t.nice,
        nr_threads: t.nr_threads,
        start_time_ns: t.start_boottime_ns as f64,
        utime_ns: t.utime_ns as f64,
        stime_ns: t.stime_ns as f64,
        runtime_ns: t.runtime_ns as f64,
        processor: t.processor,
        rss_pages: t.rss.map(|r| r.total() as f64),
        rss_file_pages: t.rss.map(|r| r.file as f64),
        rss_anon_pages: t.rss.map(|r| r.anon as f64),
        rss_shmem_pages: t.rss.map(|r| r.shmem as f64),
        vsz_bytes: t.vsz_bytes.map(|v| v as f64),
        cmdline: t.cmdline,
        cmdline_error: t.cmdline_error,
        threads: t.threads.into_iter().map(task_record).collect(),
    }
}

#[napi]
impl Guest {
    /// Every process (and with `threads`, every thread), in one call; a damaged list gives warnings, not an error.
    #[napi]
    pub fn tasks(&self, options: Option<TasksOptions>) -> napi::Result<TaskListRecord, &'static str> {
        let o = options.unwrap_or(TasksOptions { threads: None, cmdline: None });
        let opts = tasks::TaskOptions {
            threads: o.threads.unwrap_or(false),
            cmdline: o.cmdline.unwrap_or(true),
            ..Default::default()
        };
        let list = tasks::walk_tasks(self.kernel(), &opts).map_err(to_js)?;
        Ok(TaskListRecord { tasks: list.tasks.into_iter().map(task_record).collect(), warnings: list.warnings })
    }

    /// /proc/meminfo, computed as the guest kernel computes it.
    #[napi]
    pub fn meminfo(&self) -> napi::Result<MeminfoRecord, &'static str> {
        let m = meminfo::meminfo(self.kernel()).map_err(to_js)?;
        Ok(MeminfoRecord {
            fields: m
                .fields
                .into_iter()
                .map(|f| MeminfoField { name: f.name.to_string(), value: f.value as f64, unit: if f.kb { "kB".into() } else { String::new() } })
                .collect(),
            warnings: m.warnings,
        })
    }

    /// /proc/buddyinfo and a fragmentation summary.
    #[napi]
    pub fn buddyinfo(&self) -> napi::Result<BuddyinfoRecord, &'static str> {
        let k = self.kernel();
        let b = buddy::buddyinfo(k).map_err(to_js)?;
        Ok(BuddyinfoRecord {
            zones: b
                .zones
                .into_iter()
                .map(|z| BuddyZoneRecord { node: z.node, zone: z.zone, free: z.free.into_iter().map(|v| v as f64).collect() })
                .collect(),
            free_pages: b.summary.free_pages as f64,
            largest_order: b.summary.largest_order,
            high_order: buddy::HIGH_ORDER,
            high_order_percent: b.summary.high_order_percent,
            page_size: k.facts.page_size.max(4096) as u32,
        })
    }

    /// Uptime, boot time, load averages, tasks, CPUs and utsname.
    #[napi]
    pub fn uptime(&self) -> napi::Result<UptimeRecord, &'static str> {
        let u = uptime::uptime(self.kernel()).map_err(to_js)?;
        Ok(UptimeRecord {
            boottime_ns: big_u(u.boottime_ns),
            monotonic_ns: big_u(u.monotonic_ns),
            realtime_ns: big_i(u.realtime_ns),
            boot_wall_ns: big_i(u.boot_wall_ns),
            avenrun: u.avenrun.iter().map(|&v| v as f64).collect(),
            loadavg: u.loadavg.to_vec(),
            nr_running: u.nr_running.map(|v| v as f64),
            nr_threads: u.nr_threads.map(|v| v as f64),
            last_pid: u.last_pid.map(|v| v as f64),
            online_cpus: u.online_cpus,
            jiffies: u.jiffies.map(big_u),
            sysname: u.sysname,
            nodename: u.nodename,
            release: u.release,
            version: u.version,
            machine: u.machine,
            domainname: u.domainname,
            warnings: u.warnings,
        })
    }
}

#[napi(object)]
pub struct LogRecordJs {
    pub seq: f64,
    /// Timestamp in µs since boot, as /dev/kmsg gives it.
    pub ts_usec: f64,
    pub level: u32,
    pub facility: u32,
    pub flags: u32,
    /// "T123" (thread) or "C1" (CPU).
    pub caller: String,
    pub text: String,
    pub subsystem: String,
    pub device: String,
}

#[napi(object)]
pub struct LogRecordList {
    pub records: Vec<LogRecordJs>,
    pub warnings: Vec<String>,
}

#[napi]
impl Guest {
    /// The kernel log (printk ring buffer), oldest record first.
    #[napi]
    pub fn dmesg(&self) -> napi::Result<LogRecordList, &'static str> {
        let log = crate::walkers::dmesg::dmesg(self.kernel()).map_err(to_js)?;
        Ok(LogRecordList {
            records: log
                .records
                .into_iter()
                .map(|r| LogRecordJs {
                    seq: r.seq as f64,
                    ts_usec: (r.ts_nsec / 1000) as f64,
                    level: r.level as u32,
                    facility: r.facility as u32,
                    flags: r.flags as u32,
                    caller: r.caller,
                    text: r.text,
                    subsystem: r.subsystem,
                    device: r.device,
                })
                .collect(),
            warnings: log.warnings,
        })
    }
}

/// Minimal JSON writer for `tasksJson`: building one string and letting V8's JSON.parse make the objects
/// costs a fraction of setting ~35 properties per task through napi.
struct Json(String);

impl Json {
    fn str(&mut self, s: &str) {
        self.0.push('"');
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => self.0.push_str(&format!("\\u{:04x}", c as u32)),
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }
    fn key(&mut self, k: &str) {
        if !self.0.ends_with('{') {
            self.0.push(',');
        }
        self.str(k);
        self.0.push(':');
    }
    fn num(&mut self, k: &str, v: impl std::fmt::Display) {
        self.key(k);
        self.0.push_str(&v.to_string());
    }
    fn opt<T: std::fmt::Display>(&mut self, k: &str, v: Option<T>) {
        self.key(k);
        match v {
            Some(v) => self.0.push_str(&v.to_string()),
            None => self.0.push_str("null"),
        }
    }
    fn text(&mut self, k: &str, v: &str) {
        self.key(k);
        self.str(v);
    }

    fn task(&mut self, t: &tasks::Task) {
        self.0.push('{');
        self.text("address", &format!("{:#x}", t.address));
        self.num("pid", t.pid);
        self.num("tgid", t.tgid);
        self.num("ppid", t.ppid);
        self.text("comm", &t.comm);
        self.text("state", &t.state.to_string());
        self.num("flags", t.flags);
        self.num("kernelThread", t.kernel_thread());
        for (k, v) in [("uid", t.uid), ("euid", t.euid), ("suid", t.suid), ("fsuid", t.fsuid), ("gid", t.gid), ("egid", t.egid), ("sgid", t.sgid), ("fsgid", t.fsgid)] {
            self.num(k, v);
        }
        self.num("priority", t.priority);
        self.num("nice", t.nice);
        self.num("nrThreads", t.nr_threads);
        self.num("startTimeNs", t.start_boottime_ns);
        self.num("utimeNs", t.utime_ns);
        self.num("stimeNs", t.stime_ns);
        self.num("runtimeNs", t.runtime_ns);
        self.opt("processor", t.processor);
        self.opt("rssPages", t.rss.map(|r| r.total()));
        self.opt("rssFilePages", t.rss.map(|r| r.file));
        self.opt("rssAnonPages", t.rss.map(|r| r.anon));
        self.opt("rssShmemPages", t.rss.map(|r| r.shmem));
        self.opt("vszBytes", t.vsz_bytes);
        self.key("cmdline");
        match &t.cmdline {
            Some(args) => {
                self.0.push('[');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        self.0.push(',');
                    }
                    self.str(a);
                }
                self.0.push(']');
            }
            None => self.0.push_str("null"),
        }
        self.key("cmdlineError");
        match &t.cmdline_error {
            Some(e) => self.str(e),
            None => self.0.push_str("null"),
        }
        self.key("threads");
        self.0.push('[');
        for (i, th) in t.threads.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.task(th);
        }
        self.0.push_str("]}");
    }
}

#[napi]
impl Guest {
    /// `tasks()` as a JSON text of the same shape (TaskListRecord): JSON.parse it. The fast path for big task lists.
    #[napi]
    pub fn tasks_json(&self, options: Option<TasksOptions>) -> napi::Result<String, &'static str> {
        let o = options.unwrap_or(TasksOptions { threads: None, cmdline: None });
        let opts = tasks::TaskOptions { threads: o.threads.unwrap_or(false), cmdline: o.cmdline.unwrap_or(true), ..Default::default() };
        let list = tasks::walk_tasks(self.kernel(), &opts).map_err(to_js)?;
        let mut j = Json(String::with_capacity(512 * list.tasks.len() + 64));
        j.0.push_str("{\"tasks\":[");
        for (i, t) in list.tasks.iter().enumerate() {
            if i > 0 {
                j.0.push(',');
            }
            j.task(t);
        }
        j.0.push_str("],\"warnings\":[");
        for (i, w) in list.warnings.iter().enumerate() {
            if i > 0 {
                j.0.push(',');
            }
            j.str(w);
        }
        j.0.push_str("]}");
        Ok(j.0)
    }
}
