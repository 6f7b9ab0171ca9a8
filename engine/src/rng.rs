//! Counter-based random numbers (Philox 4x32-10, Salmon et al. 2011).
//!
//! Why Philox rather than a crate's generator: its whole state is a seed and a counter, so a
//! checkpoint can store it as two integers, and the CUDA backend can produce the same stream on
//! the device by giving each thread its own counter.

use rayon::prelude::*;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox 4x32 with 10 rounds on counter `ctr` and key `key`.
pub fn philox4x32(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for _ in 0..10 {
        let p0 = (M0 as u64) * (c[0] as u64);
        let p1 = (M1 as u64) * (c[2] as u64);
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// A seeded random generator. Its state is `(seed, counter)`; see [`Rng::state`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    seed: u64,
    counter: u64,
    buf: [u32; 4],
    buf_pos: usize,
}

impl Rng {
    /// A generator at the start of the stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Rng {
            seed,
            counter: 0,
            buf: [0; 4],
            buf_pos: 4,
        }
    }

    /// `(seed, blocks consumed, words used in the current block)`: enough to restore the stream.
    pub fn state(&self) -> (u64, u64, usize) {
        (self.seed, self.counter, self.buf_pos)
    }

    /// The generator whose [`Rng::state`] was `(seed, counter, buf_pos)`: it continues that
    /// stream exactly.
    pub fn from_state(seed: u64, counter: u64, buf_pos: usize) -> Self {
        let mut rng = Rng {
            seed,
            counter,
            buf: [0; 4],
            buf_pos: 4,
        };
        if buf_pos < 4 {
            rng.counter -= 1;
            rng.refill();
            rng.buf_pos = buf_pos;
        }
        rng
    }

    fn refill(&mut self) {
        let c = self.counter;
        self.buf = philox4x32(
            [c as u32, (c >> 32) as u32, 0, 0],
            [self.seed as u32, (self.seed >> 32) as u32],
        );
        self.counter += 1;
        self.buf_pos = 0;
    }

    /// The next 32-bit word of the stream.
    pub fn next_u32(&mut self) -> u32 {
        if self.buf_pos == 4 {
            self.refill();
        }
        let v = self.buf[self.buf_pos];
        self.buf_pos += 1;
        v
    }

    /// Fills `out` with the next `out.len()` words: exactly what as many
    /// [`Rng::next_u32`] calls would return, but whole Philox blocks are written straight into
    /// `out` (and, being independent of one another, computed on several threads when there
    /// are many), leaving the generator in the same state.
    pub fn fill_u32(&mut self, out: &mut [u32]) {
        let mut start = 0;
        while self.buf_pos < 4 && start < out.len() {
            out[start] = self.buf[self.buf_pos];
            self.buf_pos += 1;
            start += 1;
        }
        let rest = &mut out[start..];
        let full = rest.len() / 4;
        let (first, key) = (self.counter, [self.seed as u32, (self.seed >> 32) as u32]);
        let block = |(b, words): (usize, &mut [u32])| {
            let c = first + b as u64;
            words.copy_from_slice(&philox4x32([c as u32, (c >> 32) as u32, 0, 0], key));
        };
        let blocks = &mut rest[..full * 4];
        if full >= 1 << 13 {
            blocks
                .par_chunks_mut(4)
                .with_min_len(1 << 11)
                .enumerate()
                .for_each(block);
        } else {
            blocks.chunks_mut(4).enumerate().for_each(block);
        }
        self.counter += full as u64;
        for v in &mut rest[full * 4..] {
            *v = self.next_u32();
        }
    }

    /// Reserves `n` whole Philox blocks for a device kernel: drops the unused words of the
    /// current block (so a device draw always starts on a block boundary), returns
    /// `(seed, first block)` and moves past the reserved blocks.
    #[cfg(feature = "cuda")]
    pub(crate) fn take_blocks(&mut self, n: u64) -> (u64, u64) {
        self.buf_pos = 4;
        let first = self.counter;
        self.counter += n;
        (self.seed, first)
    }

    /// The next two words, the first as the high half.
    pub fn next_u64(&mut self) -> u64 {
        ((self.next_u32() as u64) << 32) | self.next_u32() as u64
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform_f64(&mut self) -> f64 {
        Self::unit_f64(self.next_u64())
    }

    /// The [`Rng::uniform_f64`] value of a 64-bit draw.
    pub(crate) fn unit_f64(bits: u64) -> f64 {
        (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, 1) with 24 random bits.
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Standard normal by Box-Muller (one draw per call; the pair's second value is discarded so
    /// the state stays a plain counter).
    pub fn normal_f64(&mut self) -> f64 {
        let w = [
            self.next_u32(),
            self.next_u32(),
            self.next_u32(),
            self.next_u32(),
        ];
        Self::normal_from_words(w)
    }

    /// The [`Rng::normal_f64`] value of four consecutive words.
    pub(crate) fn normal_from_words(w: [u32; 4]) -> f64 {
        let bits = |hi: u32, lo: u32| (u64::from(hi) << 32) | u64::from(lo);
        let u1 = 1.0 - Self::unit_f64(bits(w[0], w[1])); // (0, 1]: ln is finite
        let u2 = Self::unit_f64(bits(w[2], w[3]));
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Uniform integer in `0..n` (n > 0), by rejection so it is unbiased.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answer() {
        // Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10).
        assert_eq!(
            philox4x32([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32([0xffffffff; 4], [0xffffffff; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn fill_matches_word_by_word_draws_from_any_position() {
        for (skip, n) in [(0, 0), (0, 7), (3, 1), (1, 40_001), (2, 4 * 9000)] {
            let mut a = Rng::new(99);
            for _ in 0..skip {
                a.next_u32();
            }
            let mut b = a.clone();
            let mut filled = vec![0; n];
            a.fill_u32(&mut filled);
            let drawn: Vec<u32> = (0..n).map(|_| b.next_u32()).collect();
            assert_eq!(filled, drawn);
            assert_eq!(a.state(), b.state());
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }

    #[test]
    fn tensor_randn_draws_what_normal_f64_draws() {
        // Below and above the size drawn on all threads, from a position inside a block.
        for n in [21, 1 << 15] {
            let (mut a, mut b) = (Rng::new(8), Rng::new(8));
            a.next_u32();
            b.next_u32();
            let shape = [n];
            let t = crate::Tensor::randn(
                &shape,
                0.5,
                2.0,
                crate::DType::F64,
                crate::Device::Cpu,
                &mut a,
            )
            .unwrap();
            let want: Vec<f64> = (0..n).map(|_| 0.5 + 2.0 * b.normal_f64()).collect();
            assert_eq!(t.to_vec::<f64>().unwrap(), want);
            assert_eq!(a.state(), b.state());
        }
    }

    #[test]
    fn tensor_rand_draws_what_uniform_f64_draws() {
        let (mut a, mut b) = (Rng::new(5), Rng::new(5));
        a.next_u32();
        b.next_u32();
        let t = crate::Tensor::rand(
            &[3, 7],
            -1.0,
            2.0,
            crate::DType::F64,
            crate::Device::Cpu,
            &mut a,
        )
        .unwrap();
        let want: Vec<f64> = (0..21).map(|_| -1.0 + 3.0 * b.uniform_f64()).collect();
        assert_eq!(t.to_vec::<f64>().unwrap(), want);
        assert_eq!(a.state(), b.state());
    }

    #[test]
    fn state_round_trip_and_moments() {
        let mut a = Rng::new(7);
        for _ in 0..5 {
            a.next_u32();
        }
        let (s, c, p) = a.state();
        let mut b = Rng::from_state(s, c, p);
        assert_eq!(a.next_u64(), b.next_u64());
        let n = 20000;
        let xs: Vec<f64> = (0..n).map(|_| a.normal_f64()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "mean {mean} var {var}"
        );
    }
}
