use crate::storage::CpuStorage;
use saddle_kernels::Float;
use std::fmt;

/// Element type of a tensor. f32 and f64 run every op on every device. bf16 and f16 are storage
/// types for the tensor-core matrix products: tensors of them can be created, converted
/// ([`crate::Tensor::to_dtype`]), read back, viewed, copied between devices and multiplied
/// ([`crate::Tensor::matmul`], accumulating in f32); every other op refuses them with
/// [`crate::Error::Unsupported`] naming the op and the dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE binary16 (storage and matmul only).
    F16,
    /// bfloat16 (storage and matmul only).
    BF16,
    /// 32-bit float, the usual training type.
    F32,
    /// 64-bit float (gradient checks, metrics).
    F64,
}

impl DType {
    /// Bytes per element (2, 4 or 8).
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
    /// bf16 or f16: the 16-bit storage types.
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }
    /// Lower-case name (`"f32"`, `"bf16"`, ...), as `Display` prints it.
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `v` rounded to f32 toward zero, with the last bit set when that dropped anything ("round to
/// odd"). Rounding this once more to a format with at least two fewer significand bits (bf16:
/// 8, f16: 11, against f32's 24) gives the same result as rounding `v` directly, which a
/// nearest-even f32 in between would not: 1 + 2^-8 + 2^-40 would become the tie 1 + 2^-8 and
/// then bf16 1, where the nearest bf16 is 1 + 2^-7. (`half`'s own `from_f64` drops the low 32
/// bits of `v` first, with the same effect.) The CUDA casts in elementwise.cu do the same.
fn f32_round_to_odd(v: f64) -> f32 {
    let nearest = v as f32;
    if nearest.is_nan() || f64::from(nearest) == v {
        return nearest;
    }
    // Back one step toward zero when the nearest value lies beyond `v` (also from ±inf to
    // ±f32::MAX), which leaves the truncation.
    let truncated = if f64::from(nearest).abs() > v.abs() {
        f32::from_bits(nearest.to_bits() - 1)
    } else {
        nearest
    };
    f32::from_bits(truncated.to_bits() | 1)
}

/// `v` rounded once to the nearest bf16, ties to even.
pub(crate) fn bf16_from_f64(v: f64) -> half::bf16 {
    half::bf16::from_f32(f32_round_to_odd(v))
}

/// `v` rounded once to the nearest f16, ties to even.
pub(crate) fn f16_from_f64(v: f64) -> half::f16 {
    half::f16::from_f32(f32_round_to_odd(v))
}

/// A Rust element type that a CPU tensor can hold and hand out: f32 and f64 (the types of
/// [`crate::Tensor::from_vec`], [`crate::Tensor::to_vec`] and
/// [`crate::Tensor::with_values_mut`]). The methods are the engine's access to its storage.
pub trait Element: Float {
    /// The tensor dtype of this type.
    const DTYPE: DType;
    /// The values of `s` when it holds this type, else `None`.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// The values of `s`, mutably, when it holds this type, else `None`.
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
    /// Storage owning `v`.
    fn into_storage(v: Vec<Self>) -> CpuStorage;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn into_storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(v)
    }
}

impl Element for f64 {
    const DTYPE: DType = DType::F64;
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn into_storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(v)
    }
}

/// Runs `$body` with the type alias `$T` bound to the Rust type of `$dtype` (f32 or f64), or
/// returns an `Unsupported` error naming `$op`.
#[macro_export]
macro_rules! with_float {
    ($tensor:expr, $op:expr, |$T:ident| $body:expr) => {
        match $tensor.dtype() {
            $crate::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            other => {
                return Err($crate::Error::Unsupported {
                    op: $op,
                    dtype: other,
                    device: $tensor.device(),
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_rounds_once_to_bf16_and_f16() {
        let p = |e: i32| 2f64.powi(e);
        // Ties go to even; anything past the tie goes up, however far below f32's precision.
        assert_eq!(bf16_from_f64(1.0 + p(-8)).to_f64(), 1.0);
        assert_eq!(bf16_from_f64(1.0 + 3.0 * p(-8)).to_f64(), 1.0 + p(-6));
        assert_eq!(bf16_from_f64(1.0 + p(-8) + p(-40)).to_f64(), 1.0 + p(-7));
        assert_eq!(
            bf16_from_f64(-(1.0 + p(-8) + p(-40))).to_f64(),
            -(1.0 + p(-7))
        );
        assert_eq!(f16_from_f64(1.0 + p(-11)).to_f64(), 1.0);
        assert_eq!(f16_from_f64(1.0 + p(-11) + p(-45)).to_f64(), 1.0 + p(-10));
        // Exactly representable values come back unchanged.
        for v in [0.0, -0.0, 1.5, -3.25, p(-133), 3.0 * p(100)] {
            assert_eq!(bf16_from_f64(v).to_f64().to_bits(), v.to_bits(), "{v}");
        }
        // Overflow, underflow and NaN.
        assert_eq!(bf16_from_f64(1e300).to_f64(), f64::INFINITY);
        assert_eq!(bf16_from_f64(-1e300).to_f64(), f64::NEG_INFINITY);
        assert_eq!(f16_from_f64(65520.0).to_f64(), f64::INFINITY);
        assert_eq!(f16_from_f64(65519.0).to_f64(), 65504.0);
        assert_eq!(bf16_from_f64(1e-300).to_f64(), 0.0);
        assert_eq!(f16_from_f64(p(-25) + p(-60)).to_f64(), p(-24));
        assert_eq!(f16_from_f64(p(-25)).to_f64(), 0.0);
        assert!(bf16_from_f64(f64::NAN).is_nan());
        assert!(f16_from_f64(f64::NAN).is_nan());
    }
}
