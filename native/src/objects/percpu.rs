//! Per-CPU variables and CPU masks (include/linux/percpu-defs.h per_cpu_ptr, include/linux/cpumask.h):
//! a per-CPU symbol is an offset that `__per_cpu_offset[cpu]` turns into that CPU's copy.

use crate::kernel::Kernel;
use crate::{Error, Result};

/// NR_CPUS limit we believe (Debian: 8192; the kernel's maximum is 2^13 on x86-64 with MAXSMP).
const MAX_CPUS: u32 = 65536;

/// CPU numbers whose bit is set in a cpumask symbol (`__cpu_online_mask`, `__cpu_possible_mask`), below nr_cpu_ids.
pub fn cpus_in_mask(k: &Kernel, mask_symbol: &str) -> Result<Vec<u32>> {
    let nr = k.read_u32(k.symbol("nr_cpu_ids")?)?;
    if nr == 0 || nr > MAX_CPUS {
        return Err(Error::bad(format!("nr_cpu_ids = {nr} is not plausible")));
    }
    let mask = k.symbol(mask_symbol)?;
    let words = (nr as u64).div_ceil(64);
    let mut cpus = Vec::new();
    for w in 0..words {
        let bits = k.read_u64(mask + w * 8)?;
        for b in 0..64u64 {
            let cpu = w * 64 + b;
            if cpu < nr as u64 && bits & (1 << b) != 0 {
                cpus.push(cpu as u32);
            }
        }
    }
    Ok(cpus)
}

/// for_each_online_cpu.
pub fn online_cpus(k: &Kernel) -> Result<Vec<u32>> {
    cpus_in_mask(k, "__cpu_online_mask")
}

/// for_each_possible_cpu: per-CPU counters are summed over these (CPUs that went offline keep theirs).
pub fn possible_cpus(k: &Kernel) -> Result<Vec<u32>> {
    cpus_in_mask(k, "__cpu_possible_mask")
}

/// Address of a per-CPU variable's copy for `cpu`: its (zero-based) per-CPU address plus `__per_cpu_offset[cpu]`.
pub fn per_cpu_ptr(k: &Kernel, percpu_addr: u64, cpu: u32) -> Result<u64> {
    if cpu >= MAX_CPUS {
        return Err(Error::bad(format!("cpu {cpu} is past any plausible NR_CPUS")));
    }
    let off = k.read_u64(k.symbol("__per_cpu_offset")?.wrapping_add(cpu as u64 * 8))?;
    Ok(percpu_addr.wrapping_add(off))
}

/// Sum of a per-CPU integer over `cpus` (for_each_possible_cpu loops such as sock_prot_inuse_get() and
/// dev_lstats_read()): the copy at `percpu_addr` + `offset` on each CPU, `size` bytes, sign-extended when
/// `signed`; wrapping like the kernel's own unsigned sums.
pub fn per_cpu_sum(k: &Kernel, cpus: &[u32], percpu_addr: u64, offset: u64, size: u64, signed: bool) -> Result<i64> {
    let mut sum = 0i64;
    for &cpu in cpus {
        let v = k.read_uint(per_cpu_ptr(k, percpu_addr, cpu)?.wrapping_add(offset), size)?;
        let v = if signed && size < 8 { ((v << (64 - 8 * size)) as i64) >> (64 - 8 * size) } else { v as i64 };
        sum = sum.wrapping_add(v);
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    #[test]
    fn masks_and_per_cpu_offsets() {
        let mut f = Fake::new(1 << 16);
        let nr = f.alloc(8);
        let online = f.alloc(16);
        let offsets = f.alloc(8 * 4);
        let area = f.alloc(0x400);
        f.sym("nr_cpu_ids", nr);
        f.sym("__cpu_online_mask", online);
        f.sym("__per_cpu_offset", offsets);
        f.put_u32(nr, 3);
        f.put_u64(online, 0b1101); // bit 3 is at or past nr_cpu_ids: ignored
        for cpu in 0..3u64 {
            f.put_u64(offsets + cpu * 8, area + cpu * 0x100);
        }
        f.put_u32(area + 0x18, (-3i32) as u32);
        f.put_u32(area + 0x218, 5);
        let k = f.kernel();
        assert_eq!(online_cpus(&k).unwrap(), vec![0, 2]);
        assert_eq!(per_cpu_ptr(&k, 0x10, 2).unwrap(), area + 0x210);
        // a per-CPU int of -3 on CPU 0 and 5 on CPU 2, at +8 of the variable at per-CPU address 0x10
        assert_eq!(per_cpu_sum(&k, &[0, 2], 0x10, 8, 4, true).unwrap(), 2);
        assert_eq!(per_cpu_sum(&k, &[0, 2], 0x10, 8, 4, false).unwrap(), (u32::MAX as i64 - 2) + 5);
        assert!(per_cpu_ptr(&k, 0x10, MAX_CPUS).is_err());
    }

    #[test]
    fn an_absurd_nr_cpu_ids_is_refused() {
        let mut f = Fake::new(1 << 16);
        let nr = f.alloc(8);
        let online = f.alloc(8);
        f.sym("nr_cpu_ids", nr);
        f.sym("__cpu_online_mask", online);
        f.put_u32(nr, u32::MAX);
        let k = f.kernel();
        assert!(online_cpus(&k).unwrap_err().to_string().contains("nr_cpu_ids"));
    }
}
