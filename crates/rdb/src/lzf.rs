//! LZF as Redis ships it (liblzf 3.6 with `HLOG 16`, `VERY_FAST 1`,
//! `ULTRA_FAST 0`). The compressor follows `lzf_c.c` step by step, including its
//! output-size checks, so a string compresses to the same bytes as in Redis and
//! Redis's "does it fit in len-4 bytes" decision is reproduced exactly; that keeps
//! DUMP payloads of strings byte-identical to Redis's.
//!
//! Hand-written: the `lzf` crate binds the C library (a build-time C dependency
//! for 150 lines of Rust), and a compressor that is not Redis's configuration
//! would give different bytes.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

#[inline]
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// The compressor's hash table, kept per thread: clearing 256 KiB for every
/// string (a snapshot compresses each value over 20 bytes) cost more than the
/// compression. Each call bumps `generation`, and a slot written by an
/// earlier call reads as empty, exactly as liblzf's cleared table would.
struct HashTable {
    /// (generation << 32) | offset into the input.
    slots: Box<[u64]>,
    generation: u32,
}

impl HashTable {
    /// Starts a call: every slot reads as empty.
    fn reset(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill(0);
            self.generation = 1;
        }
    }

    #[inline]
    fn get(&self, slot: usize) -> usize {
        let v = self.slots[slot];
        if (v >> 32) as u32 == self.generation {
            v as u32 as usize
        } else {
            0
        }
    }

    #[inline]
    fn set(&mut self, slot: usize, ip: usize) {
        self.slots[slot] = (u64::from(self.generation) << 32) | ip as u64;
    }
}

thread_local! {
    static HTAB: std::cell::RefCell<HashTable> = std::cell::RefCell::new(HashTable {
        slots: vec![0; HSIZE].into_boxed_slice(),
        generation: 0,
    });
}

/// Compresses `input` into at most `out_len` bytes; `None` when it does not fit
/// (liblzf returns 0 there, and Redis then stores the string uncompressed).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if input.is_empty() || out_len == 0 {
        return None;
    }
    HTAB.with(|t| {
        let mut htab = t.borrow_mut();
        htab.reset();
        compress_with(&mut htab, input, out_len)
    })
}

fn compress_with(htab: &mut HashTable, input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_len = input.len();
    // Offsets into `input`; 0 means "no candidate", as `ref > in_data` fails for it.
    // Slack of 4 so the run-start byte reserved past the end never indexes out.
    let mut out = vec![0u8; out_len + 4];
    let out_end = out_len;
    let mut ip = 0usize;
    let mut op = 1usize; // start run
    let mut lit = 0usize;
    let byte = |i: usize| input[i] as u32;

    let mut hval = if in_len >= 2 {
        (byte(0) << 8) | byte(1)
    } else {
        0
    };
    while in_len >= 2 && ip < in_len - 2 {
        hval = (hval << 8) | byte(ip + 2);
        let slot = idx(hval);
        let r = htab.get(slot);
        htab.set(slot, ip);
        let off = ip.wrapping_sub(r).wrapping_sub(1);
        if r > 0
            && r < ip
            && off < MAX_OFF
            && input[r + 2] == input[ip + 2]
            && input[r] == input[ip]
            && input[r + 1] == input[ip + 1]
        {
            let mut len = 2usize;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            // Conservative test first, then the exact one, as in lzf_c.c.
            if op + 3 + 1 >= out_end && op - usize::from(lit == 0) + 3 + 1 >= out_end {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            op -= usize::from(lit == 0); // undo run if length is zero
            'scan: {
                if maxlen > 16 {
                    // liblzf unrolls 16 probes without the maxlen check; keep that
                    // so match lengths (and hence output bytes) are identical.
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            break 'scan;
                        }
                    }
                }
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2;
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip >= in_len - 2 {
                break;
            }
            // VERY_FAST: hash the two positions before the new ip.
            ip -= 2;
            hval = (byte(ip) << 8) | byte(ip + 1);
            hval = (hval << 8) | byte(ip + 2);
            htab.set(idx(hval), ip);
            ip += 1;
            hval = (hval << 8) | byte(ip + 2);
            htab.set(idx(hval), ip);
            ip += 1;
        } else {
            if op >= out_end {
                return None;
            }
            lit += 1;
            out[op] = input[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
    }
    if op + 3 > out_end {
        return None;
    }
    while ip < in_len {
        lit += 1;
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// Why a compressed block could not be expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LzfError {
    /// The block ended inside a literal run or a back reference.
    Truncated,
    /// A back reference points before the start of the output.
    BadReference,
    /// The output would not be exactly `expected_len` bytes.
    LengthMismatch,
}

/// Expands `input`, which must produce exactly `expected_len` bytes.
///
/// The output grows only as bytes are produced, so a lying length field cannot
/// force a large allocation (LZF expands at most ~88x, bounded by the input).
pub fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>, LzfError> {
    let mut out: Vec<u8> = Vec::with_capacity(expected_len.min(input.len().saturating_mul(4)));
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let len = ctrl + 1;
            let lits = input.get(ip..ip + len).ok_or(LzfError::Truncated)?;
            if out.len() + len > expected_len {
                return Err(LzfError::LengthMismatch);
            }
            out.extend_from_slice(lits);
            ip += len;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(ip).ok_or(LzfError::Truncated)? as usize;
                ip += 1;
            }
            let low = *input.get(ip).ok_or(LzfError::Truncated)? as usize;
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            len += 2;
            if back > out.len() {
                return Err(LzfError::BadReference);
            }
            if out.len() + len > expected_len {
                return Err(LzfError::LengthMismatch);
            }
            let start = out.len() - back;
            if back >= len {
                out.extend_from_within(start..start + len);
            } else {
                // Overlapping copy: the reference repeats bytes being produced.
                for i in 0..len {
                    let b = out[start + i];
                    out.push(b);
                }
            }
        }
    }
    if out.len() != expected_len {
        return Err(LzfError::LengthMismatch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_repetitive() {
        let data = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(50);
        let c = compress(&data, data.len() - 4).expect("compressible");
        assert!(c.len() < data.len() / 10);
        assert_eq!(decompress(&c, data.len()).unwrap(), data);
    }

    #[test]
    fn earlier_calls_leave_nothing_behind() {
        // A fresh (cleared) table, as liblzf has, for every call: what an
        // earlier input left in the reused table must not change the bytes.
        let a = b"0123456789abcdef0123456789abcdef-tail".repeat(3);
        let b = b"xyz0123456789abcdef0123456789abcdef-other".repeat(2);
        let first = compress(&b, b.len() - 4);
        let _ = compress(&a, a.len() - 4);
        assert_eq!(compress(&b, b.len() - 4), first);
        let mut fresh = HashTable {
            slots: vec![0; HSIZE].into_boxed_slice(),
            generation: 1,
        };
        assert_eq!(compress_with(&mut fresh, &b, b.len() - 4), first);
    }

    #[test]
    fn incompressible_does_not_fit() {
        let data: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(compress(&data, data.len() - 4), None);
    }

    #[test]
    fn decompress_rejects_bad_input() {
        assert_eq!(decompress(&[0x20, 0x00], 3), Err(LzfError::BadReference));
        assert_eq!(decompress(&[0x05, b'a'], 6), Err(LzfError::Truncated));
        assert_eq!(decompress(&[0x00, b'a'], 2), Err(LzfError::LengthMismatch));
    }
}
