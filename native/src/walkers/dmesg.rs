//! The kernel log as /dev/kmsg reads it, from the lockless printk ring buffer (kernel/printk/printk_ringbuffer.[ch], 5.10+).

use crate::kernel::{Kernel, Member};
use crate::{Error, Result};

/// Bounds: rings larger than this are refused (the largest log_buf_len is 2^25 bytes of text, 2^21 records).
const MAX_COUNT_BITS: u32 = 24;
const MAX_SIZE_BITS: u32 = 31;
/// desc state_var: the state lives in the two top bits (DESC_FLAGS_SHIFT = BITS_PER_LONG − 2).
const DESC_FLAGS_SHIFT: u32 = 62;
const DESC_ID_MASK: u64 = !(3u64 << DESC_FLAGS_SHIFT);
const DESC_FINALIZED: u64 = 2;
/// Caller ids with this bit are CPU numbers (printk in interrupt context), else thread ids.
const CALLER_CPU: u32 = 0x8000_0000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: u64,
    pub ts_nsec: u64,
    pub level: u8,
    pub facility: u8,
    /// printk_info.flags: LOG_NEWLINE 2, LOG_CONT 8.
    pub flags: u8,
    /// "T123" (thread) or "C1" (CPU), as the kernel's caller id prints.
    pub caller: String,
    /// The message bytes (Latin-1), without the trailing newline.
    pub text: String,
    pub subsystem: String,
    pub device: String,
}

#[derive(Debug, Clone, Default)]
pub struct Log {
    pub records: Vec<LogRecord>,
    /// Records skipped (overwritten while we read, not finalized, torn).
    pub warnings: Vec<String>,
}

struct Layout {
    desc_size: u64,
    info_size: u64,
    state_var: u64,
    text_begin: u64,
    text_next: u64,
    seq: u64,
    ts_nsec: u64,
    text_len: Member,
    facility: Member,
    flags_level: Member,
    level: Member,
    caller_id: Member,
    subsystem: Option<Member>,
    device: Option<Member>,
}

/// An integer or bitfield member of a record copied out of the info ring.
fn field_bits(bytes: &[u8], m: Member) -> Result<u64> {
    let start = m.offset as usize;
    let size = if m.bit_size > 0 { 8.min(bytes.len().saturating_sub(start)) } else { m.size as usize };
    let s = bytes.get(start..start + size).ok_or_else(|| Error::bad("printk_info field outside the record"))?;
    let mut b = [0u8; 8];
    b[..s.len().min(8)].copy_from_slice(&s[..s.len().min(8)]);
    let v = u64::from_le_bytes(b);
    Ok(if m.bit_size > 0 { (v >> m.bit_offset) & ((1u64 << m.bit_size) - 1) } else if size >= 8 { v } else { v & ((1u64 << (size * 8)) - 1) })
}

fn cstr(bytes: &[u8], m: Option<Member>) -> String {
    let Some(m) = m else { return String::new() };
    let Some(s) = bytes.get(m.offset as usize..(m.offset + m.size) as usize) else { return String::new() };
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    crate::walkers::util::latin1(&s[..end])
}

/// Every finalized record still in the ring, oldest first.
pub fn dmesg(k: &Kernel) -> Result<Log> {
    let prb = k.read_u64(k.symbol("prb")?)?;
    let rb = |p: &str| k.offset("printk_ringbuffer", p);
    let dr = prb.wrapping_add(rb("desc_ring")?);
    let tr = prb.wrapping_add(rb("text_data_ring")?);
    let d = |p: &str| k.offset("prb_desc_ring", p);
    let t = |p: &str| k.offset("prb_data_ring", p);
    let count_bits = k.read_u32(dr + d("count_bits")?)?;
    let size_bits = k.read_u32(tr + t("size_bits")?)?;
    if count_bits > MAX_COUNT_BITS || !(4..=MAX_SIZE_BITS).contains(&size_bits) {
        return Err(Error::bad(format!("printk ring at {prb:#x}: count_bits {count_bits}, size_bits {size_bits}")));
    }
    let descs = k.read_u64(dr + d("descs")?)?;
    let infos = k.read_u64(dr + d("infos")?)?;
    let head_id = k.read_u64(dr + d("head_id")?)? & DESC_ID_MASK;
    let tail_id = k.read_u64(dr + d("tail_id")?)? & DESC_ID_MASK;
    let data = k.read_u64(tr + t("data")?)?;
    let lpos = k.offset("prb_desc", "text_blk_lpos")?;
    let l = Layout {
        desc_size: k.size_of("prb_desc")?,
        info_size: k.size_of("printk_info")?,
        state_var: k.offset("prb_desc", "state_var")?,
        text_begin: lpos + k.offset("prb_data_blk_lpos", "begin")?,
        text_next: lpos + k.offset("prb_data_blk_lpos", "next")?,
        seq: k.offset("printk_info", "seq")?,
        ts_nsec: k.offset("printk_info", "ts_nsec")?,
        text_len: k.member("printk_info", "text_len")?,
        facility: k.member("printk_info", "facility")?,
        flags_level: k.member("printk_info", "flags")?,
        level: k.member("printk_info", "level")?,
        caller_id: k.member("printk_info", "caller_id")?,
        subsystem: k.types.member("printk_info", "dev_info.subsystem"),
        device: k.types.member("printk_info", "dev_info.device"),
    };
    let count = 1u64 << count_bits;
    let size = 1u64 << size_bits;
    if l.desc_size == 0 || l.desc_size > 4096 || l.info_size == 0 || l.info_size > 4096 {
        return Err(Error::bad(format!("printk ring: descriptor size {} / info size {} not plausible", l.desc_size, l.info_size)));
    }
    // Read both arrays and the text ring once: a few hundred KiB at most for the default 2^17-byte log.
    let desc_bytes = k.read_vec(descs, count * l.desc_size, "the printk descriptor ring")?;
    let info_bytes = k.read_vec(infos, count * l.info_size, "the printk info ring")?;
    let text = k.read_vec(data, size, "the printk text ring")?;

    let mut log = Log::default();
    let span = head_id.wrapping_sub(tail_id) & DESC_ID_MASK;
    if span >= count {
        return Err(Error::bad(format!("printk ring: head id {head_id} − tail id {tail_id} exceeds {count} descriptors")));
    }
    let mut skipped = 0u64;
    for i in 0..=span {
        let id = tail_id.wrapping_add(i) & DESC_ID_MASK;
        let idx = id & (count - 1);
        let desc = desc_bytes.get((idx * l.desc_size) as usize..((idx + 1) * l.desc_size) as usize).unwrap_or(&[]);
        let rd = |off: u64| -> u64 {
            desc.get(off as usize..off as usize + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).unwrap_or(0)
        };
        let sv = rd(l.state_var);
        let state = sv >> DESC_FLAGS_SHIFT;
        if sv & DESC_ID_MASK != id {
            skipped += 1; // a descriptor of another lap: torn or damaged
            continue;
        }
        if state != DESC_FINALIZED {
            // reusable (its text already recycled) at the tail, reserved/committed (still being written) at
            // the head: the kernel's readers skip these too
            continue;
        }
        let info = info_bytes.get((idx * l.info_size) as usize..((idx + 1) * l.info_size) as usize).unwrap_or(&[]);
        let u64_at = |off: u64| info.get(off as usize..off as usize + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).unwrap_or(0);
        let text_len = field_bits(info, l.text_len)? as usize;
        let body = data_block(&text, size_bits, rd(l.text_begin), rd(l.text_next));
        let msg = match body {
            Some(b) => &b[..text_len.min(b.len())],
            None if text_len == 0 => &[][..],
            None => {
                skipped += 1;
                continue;
            }
        };
        let caller_id = field_bits(info, l.caller_id)? as u32;
        log.records.push(LogRecord {
            seq: u64_at(l.seq),
            ts_nsec: u64_at(l.ts_nsec),
            level: field_bits(info, l.level)? as u8,
            facility: field_bits(info, l.facility)? as u8,
            flags: field_bits(info, l.flags_level)? as u8,
            caller: if caller_id & CALLER_CPU != 0 { format!("C{}", caller_id & !CALLER_CPU) } else { format!("T{caller_id}") },
            text: crate::walkers::util::latin1(msg),
            subsystem: cstr(info, l.subsystem),
            device: cstr(info, l.device),
        });
    }
    if skipped > 0 {
        log.warnings.push(format!("printk ring: {skipped} descriptor(s) torn or with unreadable text, skipped"));
    }
    Ok(log)
}

/// get_data(): the bytes of a data block after its id word; a block that wraps sits at the ring's start.
fn data_block(ring: &[u8], size_bits: u32, begin: u64, next: u64) -> Option<&[u8]> {
    if begin & 1 == 1 && next & 1 == 1 {
        return None; // data-less record
    }
    let size = 1u64 << size_bits;
    let wraps = |lpos: u64| lpos >> size_bits;
    let (start, len) = if wraps(begin) == wraps(next) && begin < next {
        (begin & (size - 1), next - begin)
    } else if wraps(begin.wrapping_add(size)) == wraps(next) {
        (0, next & (size - 1))
    } else {
        return None;
    };
    if len < 8 || len > size {
        return None;
    }
    ring.get((start + 8) as usize..(start + len) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_blocks_regular_wrapping_and_dataless() {
        let mut ring = vec![0u8; 64];
        ring[8..13].copy_from_slice(b"hello");
        ring[40 + 8..40 + 12].copy_from_slice(b"tail");
        // regular block at lpos 64+0 .. 64+16 (second wrap)
        assert_eq!(&data_block(&ring, 6, 64, 80).unwrap()[..5], b"hello");
        // wrapping block: begins near the end of wrap 1, data placed at index 0 of wrap 2
        assert_eq!(&data_block(&ring, 6, 120, 144).unwrap()[..5], b"hello");
        assert!(data_block(&ring, 6, 1, 1).is_none());
        // next two wraps ahead: invalid
        assert!(data_block(&ring, 6, 0, 200).is_none());
        assert_eq!(&data_block(&ring, 6, 40, 56).unwrap()[..4], b"tail");
    }
}
