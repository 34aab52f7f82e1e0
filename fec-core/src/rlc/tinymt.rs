//! TinyMT32, the pseudo-random number generator of RFC 8682, with the one
//! parameter set that RFC fixes. RFC 8681 seeds it with the repair key to
//! derive coding coefficients, so every conforming implementation must draw
//! exactly the same sequence.

const MAT1: u32 = 0x8f70_11ee;
const MAT2: u32 = 0xfc78_ff1f;
const TMAT: u32 = 0x3793_fdff;
/// The top bit of the first state word does not take part in the recurrence.
const LOW_31_BITS: u32 = 0x7fff_ffff;
/// Rounds of the seeding recurrence (RFC 8682 `MIN_LOOP`).
const SEED_ROUNDS: u32 = 8;
/// State transitions discarded after seeding (RFC 8682 `PRE_LOOP`).
const WARM_UP_STEPS: usize = 8;

/// The RFC 8682 TinyMT32 generator (128-bit state, period 2^127 - 1).
///
/// ```
/// use fec_core::rlc::TinyMt32;
///
/// // RFC 8682 section 2.2: the first output for seed 1.
/// assert_eq!(TinyMt32::new(1).next_u32(), 2_545_341_989);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TinyMt32 {
    status: [u32; 4],
}

impl TinyMt32 {
    /// A generator seeded as RFC 8682 `tinymt32_init` does.
    pub fn new(seed: u32) -> TinyMt32 {
        let mut status = [seed, MAT1, MAT2, TMAT];
        for i in 1..SEED_ROUNDS {
            let previous = status[((i - 1) & 3) as usize];
            let mixed = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i);
            status[(i & 3) as usize] ^= mixed;
        }
        // An all-zero state would stay zero forever; the RFC substitutes a
        // fixed non-zero state. Unreachable with these parameters, kept for
        // fidelity.
        if status[0] & LOW_31_BITS == 0 && status[1] == 0 && status[2] == 0 && status[3] == 0 {
            status = [
                u32::from(b'T'),
                u32::from(b'I'),
                u32::from(b'N'),
                u32::from(b'Y'),
            ];
        }
        let mut generator = TinyMt32 { status };
        for _ in 0..WARM_UP_STEPS {
            generator.advance();
        }
        generator
    }

    /// The next 32-bit output (`tinymt32_generate_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        self.advance();
        self.temper()
    }

    /// RFC 8681 `tinymt32_rand256`: the low 8 bits of the next output.
    pub fn next_rand256(&mut self) -> u8 {
        (self.next_u32() & 0xff) as u8
    }

    /// RFC 8681 `tinymt32_rand16`: the low 4 bits of the next output.
    pub fn next_rand16(&mut self) -> u8 {
        (self.next_u32() & 0x0f) as u8
    }

    fn advance(&mut self) {
        let s = &mut self.status;
        let mut x = (s[0] & LOW_31_BITS) ^ s[1] ^ s[2];
        let mut y = s[3];
        x ^= x << 1;
        y ^= (y >> 1) ^ x;
        s[0] = s[1];
        s[1] = s[2];
        s[2] = x ^ (y << 10);
        s[3] = y;
        // Branch-free in the reference; a branch is equivalent.
        let mask = 0u32.wrapping_sub(y & 1);
        s[1] ^= mask & MAT1;
        s[2] ^= mask & MAT2;
    }

    fn temper(&self) -> u32 {
        let s = &self.status;
        let t1 = s[0].wrapping_add(s[2] >> 8);
        let t0 = s[3] ^ t1;
        t0 ^ (0u32.wrapping_sub(t1 & 1) & TMAT)
    }
}
