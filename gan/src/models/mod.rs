//! The papers' models.

/// `GanModel` for an MLP trainer ([`mlp_trainer::MlpTrainer`]: GAN 2014, EBGAN, the grid's
/// GAN) with a `step_unread` on flattened images returning [`StepStats`]; G maps `[N, nz]`
/// noise to `[N, image_dim]` square images. Arguments: the trainer type, the pixel value range.
#[macro_export]
macro_rules! impl_gan_model_for_mlp_trainer {
    ($trainer:ty, $range:expr) => {
        impl $crate::run::GanModel for $trainer {
            /// Ignores the loop's generator: the trainer draws noise and dropout masks from its
            /// own, saved in its checkpoint. Real images `[N, 1, H, W]` are flattened.
            fn train_step(
                &mut self,
                real: &Tensor,
                _labels: Option<&[usize]>,
                _rng: &mut Rng,
            ) -> std::result::Result<Vec<(&'static str, Tensor)>, $crate::run::BoxError> {
                let n = real.shape()[0];
                let dim = $crate::models::mlp_trainer::MlpConfig::image_dim(&self.cfg);
                Ok(self.step_unread(&real.reshape(&[n, dim])?)?.named())
            }

            fn sample_latent(
                &self,
                n: usize,
                rng: &mut Rng,
            ) -> std::result::Result<Tensor, $crate::run::BoxError> {
                let device = <$trainer>::device(self);
                Ok($crate::models::mlp_trainer::MlpConfig::noise(
                    &self.cfg, n, device, rng,
                )?)
            }

            /// G in eval mode (batch norm from running statistics), as `[N, 1, side, side]`.
            /// `z` may be on any device; the images come back on the CPU, where grids, metrics
            /// and files are made.
            fn generate(
                &mut self,
                z: &Tensor,
            ) -> std::result::Result<Tensor, $crate::run::BoxError> {
                let z = z.to_device(self.device())?;
                self.g.set_training(false);
                let flat = no_grad(|| self.g.forward(&z));
                self.g.set_training(true);
                let dim = $crate::models::mlp_trainer::MlpConfig::image_dim(&self.cfg);
                let side = (dim as f64).sqrt().round() as usize;
                Ok(flat?
                    .reshape(&[z.shape()[0], 1, side, side])?
                    .to_device(saddle_nn::engine::Device::Cpu)?)
            }

            fn value_range(&self) -> (f32, f32) {
                $range
            }

            fn checkpoint(&self) -> Checkpoint {
                <$trainer>::checkpoint(self)
            }

            fn restore(&mut self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
                <$trainer>::restore(self, ck)
            }

            fn device(&self) -> saddle_nn::engine::Device {
                <$trainer>::device(self)
            }

            fn to_device(
                &mut self,
                device: saddle_nn::engine::Device,
            ) -> std::result::Result<(), $crate::run::BoxError> {
                Ok(<$trainer>::to_device(self, device)?)
            }
        }
    };
}

/// `to_device` and `device` for a trainer with networks `g` and `d` and a `device` field.
/// A generic trainer names its type parameters first: `([C, G: Module] Trainer<C, G>)`.
macro_rules! impl_trainer_device {
    ([$($generics:tt)*] $trainer:ty) => {
        impl<$($generics)*> $trainer {
            /// Moves G and D (parameters and buffers) to `device`. The optimisers' state is
            /// created next to the parameters on the first step (a restore moves it there), each
            /// step moves its batch there, and the trainer's own generators (noise, dropout masks)
            /// stay host state. Call before training or restoring.
            pub fn to_device(
                &mut self,
                device: saddle_nn::engine::Device,
            ) -> saddle_nn::engine::Result<()> {
                use saddle_nn::ModuleExt;
                self.g.to_device(device)?;
                self.d.to_device(device)?;
                self.device = device;
                Ok(())
            }

            /// Where G, D, the optimiser state and every step's tensors live.
            pub fn device(&self) -> saddle_nn::engine::Device {
                self.device
            }
        }
    };
    ($trainer:ty) => {
        impl_trainer_device!([] $trainer);
    };
}

/// `n` noise vectors `[n, nz]` drawn from N(0, 1) on the host from `rng`, then moved to
/// `device`: the MLP trainers' own streams (shared with weight initialisation and dropout seeds)
/// rarely sit on a Philox block boundary, where alone a device draw continues the host's
/// sequence, so drawing here keeps a seed's noise (and a run's losses) the same on every device
/// and lets a CPU checkpoint continue on a GPU. The upload is `n * nz` values, a fraction of the
/// batch's.
pub fn gaussian_noise(
    n: usize,
    nz: usize,
    device: saddle_nn::engine::Device,
    rng: &mut saddle_nn::engine::Rng,
) -> saddle_nn::engine::Result<saddle_nn::engine::Tensor> {
    use saddle_nn::engine::{DType, Device, Tensor};
    Tensor::randn(&[n, nz], 0.0, 1.0, DType::F32, Device::Cpu, rng)?.to_device(device)
}

/// What every GAN trainer checkpoints: G and D (`g.*`, `d.*`) and their optimisers' state
/// (`opt_g.*`, `opt_d.*`).
pub(crate) fn save_players(
    ck: &mut saddle_nn::Checkpoint,
    (g, d): (&dyn saddle_nn::Module, &dyn saddle_nn::Module),
    (opt_g, opt_d): (
        &dyn saddle_nn::optim::Optimizer,
        &dyn saddle_nn::optim::Optimizer,
    ),
) {
    ck.add_module("g", g);
    ck.add_module("d", d);
    ck.add_optimizer("opt_g", opt_g);
    ck.add_optimizer("opt_d", opt_d);
}

/// Restores what [`save_players`] saved.
pub(crate) fn restore_players(
    ck: &saddle_nn::Checkpoint,
    (g, d): (&dyn saddle_nn::Module, &dyn saddle_nn::Module),
    (opt_g, opt_d): (
        &mut dyn saddle_nn::optim::Optimizer,
        &mut dyn saddle_nn::optim::Optimizer,
    ),
) -> Result<(), saddle_nn::CheckpointError> {
    ck.restore_module("g", g)?;
    ck.restore_module("d", d)?;
    ck.restore_optimizer("opt_g", opt_g)?;
    ck.restore_optimizer("opt_d", opt_d)
}

pub mod bigbigan;
pub mod biggan;
pub mod biggan_trainer;
pub mod classifier;
pub mod dcgan;
pub mod ebgan;
pub mod ebgan_ln;
pub mod gan2014;
pub mod labeller;
pub mod ladder;
pub mod mlp_gan;
pub mod mlp_trainer;
pub mod rotation;
mod step;
pub use step::{read_scalars, DStepStats, StepStats};
