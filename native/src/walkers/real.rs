//! Walkers on the real guest (the committed sample, see test_support) when present: invariants that must hold exactly
//! on any snapshot; the comparison with in-guest truth lives in test/processes.test.ts and test/memory.test.ts.

use crate::kernel::discover::{discover, DiscoverOptions};
use crate::walkers::{buddy, dmesg, meminfo, tasks, uptime};

use crate::test_support::real_guest_dir as guest_dir;

#[test]
fn walkers_on_the_real_guest() {
    let Some(dir) = guest_dir() else {
        eprintln!("skipped: no real guest (unpack the sample: node images/unpack-sample.mjs)");
        return;
    };
    let mut seen = Vec::new();
    for file in ["ram.raw", "core.elf"] {
        let d = discover(&DiscoverOptions { ram: dir.join(file), layout: "auto".into(), use_cache: false, ..Default::default() }).unwrap();
        let k = &d.kernel;
        let list = tasks::walk_tasks(k, &tasks::TaskOptions { threads: true, ..Default::default() }).unwrap();
        let t0 = std::time::Instant::now();
        for _ in 0..20 {
            tasks::walk_tasks(k, &tasks::TaskOptions::default()).unwrap();
        }
        eprintln!("{file}: {} tasks walked in {:?} (mean of 20)", list.tasks.len(), t0.elapsed() / 20);
        assert!(list.warnings.is_empty(), "{file}: {:?}", list.warnings);
        assert!(list.tasks.len() > 20, "{file}: {} tasks", list.tasks.len());
        for t in &list.tasks {
            assert_eq!(t.threads.len() as i32, t.nr_threads, "{file}: pid {} thread count", t.pid);
            assert!(t.cmdline.is_some(), "{file}: pid {} cmdline: {:?}", t.pid, t.cmdline_error);
        }
        // MemFree is NR_FREE_PAGES, which counts exactly the pages on the buddy free lists.
        let m = meminfo::meminfo(k).unwrap();
        let b = buddy::buddyinfo(k).unwrap();
        assert_eq!(m.get("MemFree"), Some(b.summary.free_pages * 4), "{file}");
        let u = uptime::uptime(k).unwrap();
        assert!(u.boottime_ns > 0 && !u.release.is_empty(), "{file}");
        let log = dmesg::dmesg(k).unwrap();
        assert!(log.records.len() > 100 && log.records.iter().any(|r| r.text.starts_with("Linux version")), "{file}: {} records", log.records.len());
        assert!(log.records.windows(2).all(|w| w[1].seq == w[0].seq + 1), "{file}: sequence gaps");
        seen.push((list.tasks.iter().map(|t| (t.pid, t.comm.clone(), t.state, t.rss)).collect::<Vec<_>>(), m.fields, u.boottime_ns));
    }
    assert_eq!(seen[0], seen[1], "ram.raw and core.elf disagree");
}
