use crate::dtype::{bf16_from_f64, f16_from_f64};
use crate::DType;
use half::{bf16, f16};

/// Host memory of a tensor.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    BF16(Vec<bf16>),
    F16(Vec<f16>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::F16(_) => DType::F16,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
        }
    }

    /// `values` rounded to `dtype`, each once to nearest even.
    pub(crate) fn from_f64(dtype: DType, values: impl Iterator<Item = f64>) -> CpuStorage {
        match dtype {
            DType::F32 => CpuStorage::F32(values.map(|v| v as f32).collect()),
            DType::F64 => CpuStorage::F64(values.collect()),
            DType::BF16 => CpuStorage::BF16(values.map(bf16_from_f64).collect()),
            DType::F16 => CpuStorage::F16(values.map(f16_from_f64).collect()),
        }
    }
}

/// The memory behind a tensor, on some device.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    /// A buffer from the device's caching allocator, with the device handle (context, stream).
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}
