//! Symbols and types of the real Debian 6.1 sample guest, decoded from its RAM alone.
//!
//! The guest is found by `test_support::real_guest_dir` (the committed sample once unpacked); `npm test`
//! unpacks it and sets NEARFIELD_REQUIRE_SAMPLE, so there a missing sample fails instead of skipping.
//! Ground truth: the VMCOREINFO the guest kernel itself wrote (its SYMBOL() values) and truth.json.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use nearfield_native::kernel::btf::{scan_phys_for_vmlinux_btf, Btf};
use nearfield_native::kernel::isf::{export, Isf};
use nearfield_native::kernel::kallsyms::{decode, KallsymsLocation};
use nearfield_native::kernel::{Symbols, Types};
use nearfield_native::mem::paging::{PageTables, START_KERNEL_MAP};
use nearfield_native::mem::source::open_ram;
use nearfield_native::mem::{PhysicalMemory, VirtualMemory};

fn sample_dir() -> Option<PathBuf> {
    nearfield_native::test_support::real_guest_dir()
}

/// The VMCOREINFO text the kernel keeps in RAM (found by its first key), as key → value.
fn vmcoreinfo(ram: &[u8]) -> BTreeMap<String, String> {
    let needle = b"OSRELEASE=";
    let mut from = 0;
    while let Some(i) = ram[from..].windows(needle.len()).position(|w| w == needle) {
        let start = from + i;
        let end = ram[start..].iter().position(|&b| b == 0).map(|e| start + e).unwrap_or(ram.len());
        let text = String::from_utf8_lossy(&ram[start..end]);
        if text.contains("SYMBOL(kallsyms_names)=") {
            return text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
        from = start + 1;
    }
    BTreeMap::new()
}

fn hex(v: &str) -> u64 {
    u64::from_str_radix(v, 16).unwrap()
}

#[test]
fn btf_found_in_raw_ram() {
    let Some(dir) = sample_dir() else {
        println!("skipped: no sample");
        return;
    };
    let phys = open_ram(&dir.join("ram.raw"), "auto").unwrap();
    let t0 = Instant::now();
    let blob = scan_phys_for_vmlinux_btf(phys.as_ref()).unwrap();
    let t_scan = t0.elapsed();
    let t1 = Instant::now();
    let btf = Btf::parse(blob).unwrap();
    let t_parse = t1.elapsed();
    println!(
        "BTF: {} types, scan of {} MiB RAM {:?}, parse {:?}",
        btf.type_count(),
        phys.ranges().iter().map(|r| r.len).sum::<u64>() >> 20,
        t_scan,
        t_parse
    );
    for m in ["pid", "tgid", "comm", "tasks", "mm", "real_parent", "se.sum_exec_runtime"] {
        assert!(btf.member("task_struct", m).is_some(), "task_struct.{m}");
    }
    assert_eq!(btf.member("task_struct", "comm").unwrap().array_len, Some(16));
    assert_eq!(btf.member("list_head", "prev").unwrap().offset, 8);
    assert!(btf.struct_size("task_struct").unwrap() > 1000);
    assert_eq!(btf.enumerator("NR_FREE_PAGES"), Some(0));
    // __state sits in task_struct's first cache line on 6.1; pid/comm are further in.
    assert!(btf.member("task_struct", "__state").unwrap().offset < 64);
    assert!(btf.member("mm_struct", "pgd").is_some());
    assert!(btf.member("zone", "free_area").is_some());
}

#[test]
fn kallsyms_decoded_through_page_tables_match_vmcoreinfo() {
    let Some(dir) = sample_dir() else {
        println!("skipped: no sample");
        return;
    };
    let ram_path = dir.join("ram.raw");
    let raw = std::fs::read(&ram_path).unwrap();
    let info = vmcoreinfo(&raw);
    assert!(!info.is_empty(), "VMCOREINFO with kallsyms not found in {}", ram_path.display());
    let phys: Arc<dyn PhysicalMemory> = open_ram(&ram_path, "auto").unwrap();
    let phys_base = info["NUMBER(phys_base)"].parse::<i64>().unwrap() as u64;
    let dtb = hex(&info["SYMBOL(init_top_pgt)"]).wrapping_sub(START_KERNEL_MAP).wrapping_add(phys_base);
    let levels = if info.get("NUMBER(pgtable_l5_enabled)").map(String::as_str) == Some("1") { 5 } else { 4 };
    let vm = PageTables::new(phys.clone(), dtb, levels).unwrap();

    let loc = KallsymsLocation::from_vmcoreinfo(&info).unwrap();
    let mut times = Vec::new();
    let mut table = None;
    for _ in 0..5 {
        let t0 = Instant::now();
        table = Some(decode(&vm, &loc).unwrap());
        times.push(t0.elapsed());
    }
    times.sort();
    let table = table.unwrap();
    println!(
        "kallsyms: {} symbols, encoding {:?}, decode median {:?} (min {:?})",
        table.len(),
        table.encoding,
        times[2],
        times[0]
    );
    assert!(table.len() > 50_000, "{} symbols", table.len());
    for name in [
        "init_task",
        "linux_banner",
        "vm_zone_stat",
        "vm_node_stat",
        "_totalram_pages",
        "avenrun",
        "jiffies_64",
        "page_offset_base",
        "__start_BTF",
        "__stop_BTF",
        "init_top_pgt",
    ] {
        assert!(table.address_of(name).is_some(), "{name} missing");
    }
    // Every SYMBOL() that names a symbol's own address agrees (decode already refuses otherwise;
    // check here too so a regression shows which).
    let mut checked = 0;
    let mut missing = Vec::new();
    for (k, v) in &info {
        let Some(name) = k.strip_prefix("SYMBOL(").and_then(|r| r.strip_suffix(')')) else { continue };
        if name == "mem_section" {
            continue; // VMCOREINFO_SYMBOL_ARRAY: the pointer's value, not its address
        }
        if name.starts_with("kallsyms_") {
            // scripts/kallsyms.c leaves its own tables out of the table.
            assert_eq!(table.address_of(name), None, "{name}");
            continue;
        }
        let want = hex(v);
        // Some SYMBOL() names are macros over other symbols (swapper_pg_dir → init_top_pgt,
        // node_online_map → node_states[N_ONLINE]): absent from kallsyms under that name.
        match table.address_of(name) {
            Some(got) => {
                assert_eq!(got, want, "SYMBOL({name})");
                checked += 1;
            }
            None => missing.push(name.to_string()),
        }
    }
    println!("VMCOREINFO SYMBOL()s checked: {checked}; not in kallsyms under that name: {missing:?}");
    assert!(missing.iter().all(|m| ["swapper_pg_dir", "node_online_map"].contains(&m.as_str())), "{missing:?}");
    assert!(checked >= 8, "only {checked} SYMBOL() entries checked");
    // _stext = KASLR-shifted 0xffffffff81000000.
    let kaslr = hex(&info["KERNELOFFSET"]);
    assert_eq!(table.address_of("_stext"), Some(0xffff_ffff_8100_0000 + kaslr));

    // linux_banner read through the table is the banner the guest printed.
    let truth: String = std::fs::read_to_string(dir.join("truth.json")).unwrap();
    let banner_at = table.address_of("linux_banner").unwrap();
    let mut buf = vec![0u8; 256];
    vm.read_virt(banner_at, &mut buf).unwrap();
    let banner = String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap()]).to_string();
    assert!(banner.starts_with("Linux version 6.1."), "{banner}");
    let first_line = banner.trim_end();
    assert!(truth.contains(&first_line.replace('\\', "\\\\").replace('"', "\\\"")), "banner {first_line:?} not in truth.json");

    // init_task.comm is "swapper/0" — with the offset from BTF found in RAM.
    let btf = Btf::parse(scan_phys_for_vmlinux_btf(phys.as_ref()).unwrap()).unwrap();
    let comm = btf.member("task_struct", "comm").unwrap();
    let mut c = [0u8; 16];
    vm.read_virt(table.address_of("init_task").unwrap() + comm.offset, &mut c).unwrap();
    assert_eq!(&c[..10], b"swapper/0\0");

    // The BTF that kallsyms points at ([__start_BTF, __stop_BTF)) is the one the scan found.
    let (start, stop) = (table.address_of("__start_BTF").unwrap(), table.address_of("__stop_BTF").unwrap());
    assert!(stop > start && stop - start < 64 << 20);
    let mut bytes = vec![0u8; (stop - start) as usize];
    let t0 = Instant::now();
    vm.read_virt(start, &mut bytes).unwrap();
    let from_kallsyms = Btf::parse(bytes).unwrap();
    println!("BTF via __start_BTF: {} bytes, read+parse {:?}", stop - start, t0.elapsed());
    assert_eq!(from_kallsyms.type_count(), btf.type_count());

    let near = table.nearest(table.address_of("init_task").unwrap() + 8).unwrap();
    assert_eq!(near.name, "init_task");

    // A Volatility 3 ISF made from what RAM told us, read back: same layouts, same symbols.
    let t0 = Instant::now();
    let isf_text = export(&table, &btf, &banner, kaslr).unwrap();
    let t_export = t0.elapsed();
    let out = std::env::temp_dir().join(format!("nearfield-real-guest-{}.json", std::process::id()));
    std::fs::write(&out, &isf_text).unwrap();
    let isf = Isf::load(&out, kaslr).unwrap();
    println!("ISF export: {} MB in {:?} ({})", isf_text.len() >> 20, t_export, out.display());
    if std::env::var("NEARFIELD_KEEP_ISF").is_err() {
        let _ = std::fs::remove_file(&out);
    }
    for path in ["pid", "comm", "tasks", "mm", "se.sum_exec_runtime", "__state", "real_parent", "signal"] {
        assert_eq!(isf.types.member("task_struct", path), btf.member("task_struct", path), "task_struct.{path}");
    }
    assert_eq!(isf.types.struct_size("task_struct"), btf.struct_size("task_struct"));
    assert_eq!(isf.symbols.address_of("init_task"), table.address_of("init_task"));
    assert_eq!(isf.banner.as_deref(), Some([banner.as_bytes(), b"\0"].concat().as_slice()));
}
