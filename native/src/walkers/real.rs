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
        assert!(u.boottime_ns.0 > 0 && !u.release.is_empty(), "{file}");
        let log = dmesg::dmesg(k).unwrap();
        assert!(log.records.len() > 100 && log.records.iter().any(|r| r.text.starts_with("Linux version")), "{file}: {} records", log.records.len());
        assert!(log.records.windows(2).all(|w| w[1].seq == w[0].seq + 1), "{file}: sequence gaps");
        seen.push((list.tasks.iter().map(|t| (t.pid, t.comm.clone(), t.state, t.rss)).collect::<Vec<_>>(), m.fields, u.boottime_ns));
    }
    assert_eq!(seen[0], seen[1], "ram.raw and core.elf disagree");
}

/// The object helpers on real kernel structures, each cross-checked with a second view the kernel keeps.
#[test]
fn object_helpers_on_the_real_guest() {
    use crate::objects::{hlist_entries, idr_entries, list_entries, maple_entries, rbtree_entries};
    let Some(dir) = guest_dir() else { return };
    let d = discover(&DiscoverOptions { ram: dir.join("ram.raw"), layout: "auto".into(), use_cache: false, ..Default::default() }).unwrap();
    let k = &d.kernel;
    let list = tasks::walk_tasks(k, &tasks::TaskOptions { threads: true, cmdline: false, ..Default::default() }).unwrap();
    let task = k.struct_type("task_struct").unwrap();
    let (mm_m, pid_links) = (task.field("mm").unwrap(), task.field("pid_links").unwrap());
    let mm = k.struct_type("mm_struct").unwrap();
    let (mm_mt, map_count, total_vm) = (mm.field("mm_mt").unwrap(), mm.field("map_count").unwrap(), mm.field("total_vm").unwrap());
    let vma = k.struct_type("vm_area_struct").unwrap();
    let (vm_start, vm_end) = (vma.field("vm_start").unwrap(), vma.field("vm_end").unwrap());

    // Maple tree (6.1+): each mm's VMAs are exactly map_count entries whose sizes add up to total_vm,
    // each entry's range is its VMA's [vm_start, vm_end - 1], in address order.
    let mut mms = 0;
    for t in &list.tasks {
        let m = k.read_member(t.address.0, mm_m).unwrap();
        if m == 0 {
            continue;
        }
        mms += 1;
        let w = maple_entries(k, m + mm_mt.offset, 1 << 20, "mm_mt");
        assert_eq!(w.warning, None, "pid {}", t.pid);
        assert_eq!(w.items.len() as u64, k.read_member(m, map_count).unwrap(), "pid {} map_count", t.pid);
        let mut pages = 0;
        for e in &w.items {
            let (s, end) = (k.read_member(e.entry, vm_start).unwrap(), k.read_member(e.entry, vm_end).unwrap());
            assert_eq!((e.first, e.last), (s, end - 1), "pid {} VMA {:#x}", t.pid, e.entry);
            pages += (end - s) / 4096;
        }
        assert_eq!(pages, k.read_member(m, total_vm).unwrap(), "pid {} total_vm", t.pid);
        assert!(w.items.windows(2).all(|p| p[0].last < p[1].first));
    }
    assert!(mms > 5);

    // IDR + hlist: init_pid_ns.idr holds a struct pid for every task, and that pid's tasks[PIDTYPE_PID]
    // hlist links exactly the task_struct with that pid.
    let idr = k.symbol("init_pid_ns").unwrap() + k.offset("pid_namespace", "idr").unwrap();
    let pids = idr_entries(k, idr, 1 << 22, "pid idr");
    assert_eq!(pids.warning, None);
    let tasks_off = k.offset("pid", "tasks").unwrap();
    let all: Vec<&tasks::Task> = list.tasks.iter().flat_map(|t| t.threads.iter()).collect();
    for t in &all {
        let e = pids.items.iter().find(|e| e.index == t.pid as u64).unwrap_or_else(|| panic!("pid {} not in the IDR", t.pid));
        let linked = hlist_entries(k, e.entry + tasks_off, pid_links.offset, 16, "pid->tasks[PIDTYPE_PID]");
        assert_eq!(linked, crate::objects::Walk::complete(vec![t.address.0]), "pid {}", t.pid);
    }

    // rbtree: the busy vmap areas, by address, in vmap_area_root and on vmap_area_list (6.1; 6.9+ splits them per node).
    if let (Ok(root), Ok(head)) = (k.symbol("vmap_area_root"), k.symbol("vmap_area_list")) {
        let va = k.struct_type("vmap_area").unwrap();
        let by_tree = rbtree_entries(k, root, va.field("rb_node").unwrap().offset, 1 << 20, "vmap_area_root");
        let by_list = list_entries(k, head, va.field("list").unwrap().offset, 1 << 20, "vmap_area_list");
        assert_eq!(by_tree.warning, None);
        assert!(by_tree.items.len() > 10);
        assert_eq!(by_tree, by_list);
    }
}

/// Modules and their symbols on the real guest: the same list /proc/modules printed, each module's text
/// where the guest said, and addresses inside a module's functions symbolised to that module.
#[test]
fn modules_and_symbolization_on_the_real_guest() {
    use crate::objects::{modules::module_table, symbolize};
    let Some(dir) = guest_dir() else { return };
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let d = discover(&DiscoverOptions { ram: dir.join("ram.raw"), layout: "auto".into(), use_cache: false, ..Default::default() }).unwrap();
    let k = &d.kernel;
    let table = module_table(k);
    assert!(table.warnings.is_empty(), "{:?}", table.warnings);
    let want: Vec<(String, u64)> = truth["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), u64::from_str_radix(m["address"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()))
        .collect();
    let got: Vec<(String, u64)> = table.modules.iter().map(|(m, _)| (m.name.clone(), m.text().next().unwrap().base)).collect();
    assert_eq!(got, want);
    // ext4's own functions resolve inside ext4, and a vmlinux function resolves to itself at offset 0
    let (ext4, syms) = table.modules.iter().find(|(m, _)| m.name == "ext4").unwrap();
    let f = syms.iter().find(|s| s.name == "ext4_fill_super").expect("ext4_fill_super in ext4's kallsyms");
    assert!(ext4.contains(f.address));
    let s = symbolize(k, f.address + 5).unwrap();
    assert_eq!((s.name.as_str(), s.offset, s.module.as_deref()), ("ext4_fill_super", 5, Some("ext4")));
    assert!(s.size > 5);
    let schedule = k.symbol("schedule").unwrap();
    let s = symbolize(k, schedule).unwrap();
    assert_eq!((s.name.as_str(), s.offset, s.module.as_deref()), ("schedule", 0, None));
    assert!(s.display().starts_with("schedule+0x0/0x"));
}

/// The guest's own taint_flags[] table reads as the 6.1 letters (P F S R M B U D A W C I O E L K X T N).
#[test]
fn taint_flags_come_from_the_guest() {
    let Some(dir) = guest_dir() else { return };
    let d = discover(&DiscoverOptions { ram: dir.join("ram.raw"), layout: "auto".into(), use_cache: false, ..Default::default() }).unwrap();
    let flags = crate::objects::taint::taint_flags(&d.kernel);
    let letters: String = flags.iter().map(|f| f.set).collect();
    assert_eq!(letters, "PFSRMBUDAWCIOELKXTN");
    assert_eq!(flags.iter().filter(|f| f.module).map(|f| f.set).collect::<String>(), "PFCOEKXTN");
}

/// The sample's VMCOREINFO note sits at a page start (4.15+ alloc_pages_exact), where the fast scan looks.
#[test]
fn vmcoreinfo_note_is_page_aligned_on_the_real_guest() {
    let Some(dir) = guest_dir() else { return };
    let ram = crate::mem::source::open_ram(&dir.join("ram.raw"), "auto").unwrap();
    let v = crate::kernel::vmcoreinfo::scan(ram.as_ref()).unwrap();
    assert_eq!(v.phys_addr.unwrap() % 4096, 24, "note text 24 bytes into its page");
}
