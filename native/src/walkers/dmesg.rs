//! The kernel log as /dev/kmsg reads it, from the lockless printk ring buffer (kernel/printk/printk_ringbuffer.[ch], 5.10+).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::{Kernel, Member};
use crate::walkers::Context;
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

crate::walker! {
    /// The kernel log as /dev/kmsg gives it, from the lockless printk ring buffer, oldest first.
    name: "dmesg",
    options: DmesgOptions,
    record: Log,
    run: walk,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct DmesgOptions {
    /// Keep only the newest `tail` records (the counts still cover the whole log).
    pub tail: Option<usize>,
}

fn walk(cx: &Context, o: &DmesgOptions) -> Result<Log> {
    let mut log = dmesg(cx.kernel)?;
    if let Some(n) = o.tail {
        let drop = log.records.len().saturating_sub(n);
        log.records.drain(..drop);
    }
    Ok(log)
}

/// syslog level of "err" (include/linux/kern_levels.h): records at this level or below are errors or worse.
pub const LOGLEVEL_ERR: u8 = 3;

/// One record, as /dev/kmsg describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    pub seq: u64,
    /// Timestamp in µs since boot, as /dev/kmsg prints it.
    pub ts_usec: u64,
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

/// The kernel log.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    pub records: Vec<LogRecord>,
    /// Records in the ring (before any `tail`), and how many of them are at level err or worse (0–3).
    pub total: usize,
    pub errors_or_worse: usize,
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
    crate::objects::latin1(&s[..end])
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
    // On a running guest the ring moves while we copy it: read the descriptors again after the text, and keep only
    // records whose descriptor did not change in between (desc_read_finalized_seq() re-checks the same way).
    let desc_after = k.read_vec(descs, count * l.desc_size, "the printk descriptor ring again")?;

    let mut log = Log::default();
    let span = head_id.wrapping_sub(tail_id) & DESC_ID_MASK;
    if span >= count {
        return Err(Error::bad(format!("printk ring: head id {head_id} − tail id {tail_id} exceeds {count} descriptors")));
    }
    let mut skipped = 0u64;
    let mut moved = 0u64;
    for i in 0..=span {
        let id = tail_id.wrapping_add(i) & DESC_ID_MASK;
        let idx = id & (count - 1);
        let desc = desc_bytes.get((idx * l.desc_size) as usize..((idx + 1) * l.desc_size) as usize).unwrap_or(&[]);
        let rd = |off: u64| -> u64 {
            crate::bytes::le_u64(desc, off as usize).unwrap_or(0)
        };
        let sv = rd(l.state_var);
        let state = sv >> DESC_FLAGS_SHIFT;
        let after = desc_after.get((idx * l.desc_size) as usize..((idx + 1) * l.desc_size) as usize).unwrap_or(&[]);
        if crate::bytes::le_u64(after, l.state_var as usize).unwrap_or(0) != sv {
            moved += 1; // reused or finalized while we read: the kernel's own readers skip it too
            continue;
        }
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
        let u64_at = |off: u64| crate::bytes::le_u64(info, off as usize).unwrap_or(0);
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
            ts_usec: u64_at(l.ts_nsec) / 1000,
            level: field_bits(info, l.level)? as u8,
            facility: field_bits(info, l.facility)? as u8,
            flags: field_bits(info, l.flags_level)? as u8,
            caller: if caller_id & CALLER_CPU != 0 { format!("C{}", caller_id & !CALLER_CPU) } else { format!("T{caller_id}") },
            text: crate::objects::latin1(msg),
            subsystem: cstr(info, l.subsystem),
            device: cstr(info, l.device),
        });
    }
    // Records of a stable ring come out in sequence order; anything else was torn while we read.
    if let Some(w) = log.records.windows(2).find(|w| w[1].seq <= w[0].seq) {
        k.note_torn(format!("printk ring: record seq {} follows seq {}", w[1].seq, w[0].seq));
    }
    if skipped > 0 && moved > 0 {
        k.note_torn(format!("printk ring: {skipped} descriptor(s) of another lap while {moved} moved"));
    }
    log.total = log.records.len();
    log.errors_or_worse = log.records.iter().filter(|r| r.level <= LOGLEVEL_ERR).count();
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
