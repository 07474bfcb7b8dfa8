//! Sequence counters of include/linux/seqlock.h (read_seqcount_begin / read_seqcount_retry): a reader re-reads
//! when the count was odd (a writer inside) or changed across its read, as the kernel's own readers loop.

use crate::kernel::Kernel;
use crate::Result;

/// Tries before a counter that keeps moving is given up on (a live guest's timekeeper updates every tick).
pub const SEQ_TRIES: usize = 8;

/// Read what the seqcount at `seq_addr` guards with `read`, as a seqlock reader does: again while the count is odd
/// or changes across the read, at most `SEQ_TRIES` times. A count that never settles is noted as a torn read
/// (`Kernel::note_torn`, naming `what`) and the last value returned; a paused guest settles on the first try.
pub fn read_seqcount<T>(k: &Kernel, seq_addr: u64, what: &str, mut read: impl FnMut() -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..SEQ_TRIES {
        let begin = k.read_u32(seq_addr)?;
        let value = read()?;
        let end = k.read_u32(seq_addr)?;
        if begin & 1 == 0 && begin == end {
            return Ok(value);
        }
        last = Some((value, begin, end));
    }
    let Some((value, begin, end)) = last else { return read() };
    k.note_torn(format!("{what}: sequence count moved from {begin} to {end} on every one of {SEQ_TRIES} reads"));
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    #[test]
    fn a_still_count_reads_once_and_an_odd_one_is_noted_as_torn() {
        let mut f = Fake::new(1 << 16);
        let seq = f.alloc(8);
        let val = f.alloc(8);
        f.put_u64(val, 42);
        f.put_u64(seq, 4);
        let mut g = Fake::from_mem(f.mem.clone());
        let k = f.kernel();
        let mut reads = 0;
        assert_eq!(read_seqcount(&k, seq, "clock", || { reads += 1; k.read_u64(val) }).unwrap(), 42);
        assert_eq!(reads, 1);
        assert!(k.take_torn().is_empty());
        // a writer that never leaves (odd count): every try fails, the value is still returned, and it is noted
        g.put_u64(seq, 5);
        let k = g.kernel();
        let mut reads = 0;
        assert_eq!(read_seqcount(&k, seq, "tk_core", || { reads += 1; k.read_u64(val) }).unwrap(), 42);
        assert_eq!(reads, SEQ_TRIES);
        let notes = k.take_torn();
        assert!(notes.len() == 1 && notes[0].starts_with("tk_core: sequence count"), "{notes:?}");
    }
}
