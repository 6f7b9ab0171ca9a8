//! Shared by the models' tests: the two-device loss-curve comparison.

use saddle_kernels::require::{self, Requirement};
use saddle_nn::engine::Device;

/// The named values one training step reports (losses, scores).
pub type StepValues = Vec<(&'static str, f64)>;

/// Runs `curve` (a few training steps of a model built the same way on the given device,
/// returning each step's named values) on the CPU, checks every value is finite, then runs it on
/// cuda:0 when there is a GPU and asserts every value matches the CPU's within `tol` relative.
/// Without a GPU it prints why the CUDA half was skipped (a failure under
/// `SADDLE_REQUIRE_CUDA=1`, see `saddle_kernels::require`). Returns the CPU curve.
pub fn assert_same_curve_on_both_devices(
    name: &str,
    tol: f64,
    curve: impl Fn(Device) -> Vec<StepValues>,
) -> Vec<StepValues> {
    let cpu = curve(Device::Cpu);
    assert!(!cpu.is_empty(), "{name}: no steps");
    assert!(
        cpu.iter().flatten().all(|(_, v)| v.is_finite()),
        "{name}: {cpu:?}"
    );
    let device = match Device::best_with_reason() {
        (d @ Device::Cuda(_), _) => d,
        (_, why) => {
            let test = format!("{name} device parity: CUDA half");
            require::skip(&test, Requirement::Cuda, &why);
            return cpu;
        }
    };
    let gpu = curve(device);
    assert_eq!(gpu.len(), cpu.len(), "{name}: step counts differ");
    for (step, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        assert_eq!(c.len(), g.len(), "{name}: step {step} reports other values");
        for ((what, a), (_, b)) in c.iter().zip(g) {
            let rel = (a - b).abs() / a.abs().max(1e-6);
            assert!(
                rel < tol,
                "{name} step {step}: {what} {a} on the CPU, {b} on {device}"
            );
        }
    }
    println!(
        "{name} device parity: {} steps match on {device}: {gpu:?}",
        gpu.len()
    );
    require::ran_on_gpu(&format!("{name} device parity"), &device);
    cpu
}
