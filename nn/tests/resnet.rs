//! BigGAN's residual blocks: shapes, which shortcut each block has, parameter counts that match
//! the built block, errors naming shapes, and gradients through the input (and the condition)
//! that match finite differences in f64.

use saddle_engine::gradcheck::{assert_close, check_gradients};
use saddle_engine::{DType, Device, Rng, Tensor};
use saddle_nn::init::WeightInit;
use saddle_nn::{
    BlockNorm, BlockNormKind, Module, ModuleExt, ResBlockDown, ResBlockUp, SpectralNorm,
    WeightedLayer,
};

/// Standard normal f64 values of `shape`, drawn from their own stream.
fn randn(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::randn(shape, 0.0, 1.0, DType::F64, Device::Cpu, &mut rng).unwrap()
}

/// Stops the power iteration of a spectrally normalised layer, so that repeated forwards (finite
/// differences) use the same normalised weight.
fn freeze_sigma<L: WeightedLayer>(layer: &mut SpectralNorm<L>) {
    layer.set_training(false);
}

fn freeze_up(block: &mut ResBlockUp) {
    freeze_sigma(&mut block.conv1);
    freeze_sigma(&mut block.conv2);
    freeze_sigma(&mut block.shortcut);
    for norm in [&mut block.bn1, &mut block.bn2] {
        if let BlockNorm::SpectralConditional(cbn) = norm {
            freeze_sigma(&mut cbn.gain);
            freeze_sigma(&mut cbn.bias);
        }
    }
}

const CONDITIONAL: BlockNormKind = BlockNormKind::Conditional {
    cond_dim: 3,
    spectral: true,
};

#[test]
fn up_block_doubles_the_resolution_and_counts_its_parameters() {
    let mut rng = Rng::new(1);
    for norm in [
        BlockNormKind::Plain,
        CONDITIONAL,
        BlockNormKind::Conditional {
            cond_dim: 3,
            spectral: false,
        },
    ] {
        let block =
            ResBlockUp::new(4, 2, norm, WeightInit::Orthogonal, DType::F32, &mut rng).unwrap();
        assert_eq!(
            block.num_parameters(),
            ResBlockUp::parameter_count(4, 2, norm),
            "{norm:?}"
        );
        let x = Tensor::randn(&[2, 4, 3, 5], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
        let cond = Tensor::randn(&[2, 3], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
        let cond = (norm != BlockNormKind::Plain).then_some(&cond);
        let y = block.forward_cond(&x, cond).unwrap();
        assert_eq!(y.shape(), &[2, 2, 6, 10]);
    }
}

#[test]
fn up_block_errors_name_the_shapes_and_the_missing_condition() {
    let mut rng = Rng::new(2);
    let block = ResBlockUp::new(
        4,
        2,
        CONDITIONAL,
        WeightInit::PyTorchDefault,
        DType::F32,
        &mut rng,
    )
    .unwrap();
    let x = Tensor::zeros(&[2, 5, 4, 4], DType::F32, Device::Cpu).unwrap();
    let e = block.forward_cond(&x, None).unwrap_err().to_string();
    assert!(
        e.contains("[2, 5, 4, 4]") && e.contains("[N, 4, H, W]"),
        "{e}"
    );
    let x = Tensor::zeros(&[2, 4, 4, 4], DType::F32, Device::Cpu).unwrap();
    let e = block.forward(&x).unwrap_err().to_string();
    assert!(e.contains("needs a condition"), "{e}");
}

#[test]
fn down_block_pools_unless_last_and_convolves_the_shortcut_only_where_channels_change() {
    let mut rng = Rng::new(3);
    let init = WeightInit::Orthogonal;
    let widen = ResBlockDown::new(3, 4, true, false, init, DType::F32, &mut rng).unwrap();
    let keep = ResBlockDown::new(4, 4, false, true, init, DType::F32, &mut rng).unwrap();
    assert!(widen.shortcut.is_some() && keep.shortcut.is_none());
    assert_eq!(widen.num_parameters(), ResBlockDown::parameter_count(3, 4));
    assert_eq!(keep.num_parameters(), ResBlockDown::parameter_count(4, 4));
    assert_eq!(ResBlockDown::parameter_count(4, 4), 2 * (4 * 4 * 9 + 4));
    let x = Tensor::randn(&[2, 3, 8, 6], 0.0, 1.0, DType::F32, Device::Cpu, &mut rng).unwrap();
    let h = widen.forward(&x).unwrap();
    assert_eq!(h.shape(), &[2, 4, 4, 3]);
    assert_eq!(keep.forward(&h).unwrap().shape(), &[2, 4, 4, 3]);
    let odd = Tensor::zeros(&[1, 3, 5, 6], DType::F32, Device::Cpu).unwrap();
    let e = widen.forward(&odd).unwrap_err().to_string();
    assert!(e.contains("[1, 3, 5, 6]") && e.contains("even"), "{e}");
}

#[test]
fn down_block_is_its_pooled_residual_branch_plus_its_shortcut() {
    // Recomputed from the block's own layers in the order of BigGAN's block (evaluation mode,
    // so the spectral norms do not iterate between the two computations).
    let mut rng = Rng::new(4);
    let init = WeightInit::Orthogonal;
    let x = randn(&[2, 2, 4, 4], 5);
    let pool = |t: Tensor| t.avg_pool2d(2, 2, 0).unwrap();
    for (cout, preactivation) in [(3, false), (2, true)] {
        let mut block =
            ResBlockDown::new(2, cout, true, preactivation, init, DType::F64, &mut rng).unwrap();
        block.set_training(false);
        let input = if preactivation {
            x.relu().unwrap()
        } else {
            x.clone()
        };
        let h = block.conv1.forward(&input).unwrap().relu().unwrap();
        let h = pool(block.conv2.forward(&h).unwrap());
        let skip = match &block.shortcut {
            // The other order of BigGAN's shortcut: convolve, then pool.
            Some(conv) => pool(conv.forward(&x).unwrap()),
            None => pool(x.clone()),
        };
        let want = h.add(&skip).unwrap().to_vec::<f64>().unwrap();
        assert_close(&block.forward(&x).unwrap(), &want, 1e-12);
    }
}

#[test]
fn up_block_is_its_residual_branch_plus_its_upsampled_shortcut() {
    let mut rng = Rng::new(11);
    let mut block = ResBlockUp::new(
        3,
        2,
        BlockNormKind::Plain,
        WeightInit::Orthogonal,
        DType::F64,
        &mut rng,
    )
    .unwrap();
    freeze_up(&mut block);
    let x = randn(&[2, 3, 2, 2], 12);
    let bn = |norm: &BlockNorm, t: &Tensor| norm.forward_cond(t, None).unwrap();
    let h = bn(&block.bn1, &x)
        .relu()
        .unwrap()
        .upsample_nearest2d(2)
        .unwrap();
    let h = block.conv1.forward(&h).unwrap();
    let h = block
        .conv2
        .forward(&bn(&block.bn2, &h).relu().unwrap())
        .unwrap();
    // BigGAN's order: upsample, then the 1x1 convolution.
    let skip = block
        .shortcut
        .forward(&x.upsample_nearest2d(2).unwrap())
        .unwrap();
    let want = h.add(&skip).unwrap().to_vec::<f64>().unwrap();
    assert_close(&block.forward(&x).unwrap(), &want, 1e-12);
}

#[test]
fn up_block_gradients_match_finite_differences() {
    let mut rng = Rng::new(6);
    let mut block = ResBlockUp::new(
        3,
        2,
        CONDITIONAL,
        WeightInit::Orthogonal,
        DType::F64,
        &mut rng,
    )
    .unwrap();
    freeze_up(&mut block);
    let x = randn(&[2, 3, 2, 3], 7).with_requires_grad(true);
    let cond = randn(&[2, 3], 8).with_requires_grad(true);
    check_gradients(
        |v| block.forward_cond(&v[0], Some(&v[1])),
        &[x, cond],
        1e-6,
        1e-6,
        1e-4,
    )
    .unwrap();
}

#[test]
fn down_block_gradients_match_finite_differences() {
    let mut rng = Rng::new(9);
    let init = WeightInit::Orthogonal;
    for (cin, cout, downsample, preactivation) in
        [(2, 3, true, false), (3, 3, true, true), (3, 2, false, true)]
    {
        let mut block = ResBlockDown::new(
            cin,
            cout,
            downsample,
            preactivation,
            init,
            DType::F64,
            &mut rng,
        )
        .unwrap();
        block.set_training(false);
        let x = randn(&[2, cin, 4, 4], 10).with_requires_grad(true);
        check_gradients(|v| block.forward(&v[0]), &[x], 1e-6, 1e-6, 1e-4)
            .unwrap_or_else(|e| panic!("{cin}->{cout} down {downsample}: {e}"));
    }
}
