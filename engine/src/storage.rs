use crate::DType;

/// Host memory of a tensor.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
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
