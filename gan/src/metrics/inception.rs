//! Inception-v3 as pytorch-fid runs it for FID, IS and KID: torchvision's Inception-v3 with
//! pytorch-fid's FID-specific blocks (the TensorFlow graph's average pooling that leaves the
//! padded cells out of the mean, and a max pool in the last block), 1008 logits, and its input
//! pipeline: images in [0, 1] resized to 299x299 (bilinear, `align_corners=False`), scaled to
//! [-1, 1]. The features are the 2048-d average pool of the last block ("pool3").
//!
//! Weights come from a safetensors file holding the state_dict of pytorch-fid's
//! `FIDInceptionV3` under PyTorch's names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.
//! bn.running_mean`, ..., `fc.weight`); `scripts/inception_weights.py` converts pytorch-fid's
//! published weights. `width_divisor` builds the same network with every channel count divided
//! (1 is the real network; the tests use 8, small enough to check against PyTorch in CI).

use saddle_engine::{Conv2dParams, DType, Device, Error, Result, Tensor};
use saddle_nn::{child_name, BatchNorm, Checkpoint, CheckpointError, Linear, Module, Slot};
use std::path::Path;

/// The side pytorch-fid resizes images to.
pub const INPUT_SIDE: usize = 299;
/// Logits of the FID network (TensorFlow's graph: 1008 classes).
pub const NUM_LOGITS: usize = 1008;
/// Batch norm's epsilon in every block (as torchvision's BasicConv2d).
const BN_EPS: f64 = 1e-3;

/// Convolution (no bias), batch norm, ReLU: torchvision's `BasicConv2d`.
pub struct BasicConv {
    /// The convolution, without bias.
    pub conv: saddle_nn::Conv2d,
    /// Batch norm (eps 1e-3), used with its running statistics.
    pub bn: BatchNorm,
}

impl BasicConv {
    /// `cin -> cout` with a `kh x kw` kernel, `stride` and `(ph, pw)` padding; weights zero
    /// until loaded.
    fn new(
        cin: usize,
        cout: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        (ph, pw): (usize, usize),
    ) -> Result<Self> {
        let mut bn = BatchNorm::new_2d(cout, true, DType::F32)?;
        bn.eps = BN_EPS;
        bn.set_training(false);
        Ok(BasicConv {
            conv: saddle_nn::Conv2d {
                weight: Tensor::zeros(&[cout, cin, kh, kw], DType::F32, Device::Cpu)?,
                bias: None,
                params: Conv2dParams {
                    stride: [stride, stride],
                    padding: [ph, pw],
                    ..Conv2dParams::default()
                },
            },
            bn,
        })
    }

    /// A square `k x k` kernel with padding `pad` on every side.
    fn square(cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Result<Self> {
        Self::new(cin, cout, (k, k), stride, (pad, pad))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(x)?)?.relu()
    }
}

impl Module for BasicConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        BasicConv::forward(self, x)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.conv.visit(&child_name(prefix, "conv"), f);
        self.bn.visit(&child_name(prefix, "bn"), f);
    }
}

/// One step of a branch.
enum Step {
    Conv(BasicConv),
    /// 3x3 average pool, stride 1, padding 1, padded cells left out of the mean.
    AvgPoolExcludePad,
    /// 3x3 max pool with this stride and padding.
    MaxPool {
        stride: usize,
        padding: usize,
    },
    /// The input split into two convolutions whose outputs are concatenated (InceptionE's
    /// 1x3 / 3x1 pairs).
    Split(BasicConv, BasicConv),
}

/// A branch: named steps run in order (pools have no name and no weights).
struct Branch {
    steps: Vec<(Option<&'static str>, Step)>,
}

impl Branch {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (_, step) in &self.steps {
            h = match step {
                Step::Conv(c) => c.forward(&h)?,
                Step::AvgPoolExcludePad => h.avg_pool2d_exclude_pad(3, 1, 1)?,
                Step::MaxPool { stride, padding } => h.max_pool2d(3, *stride, *padding)?,
                Step::Split(a, b) => Tensor::concat(&[&a.forward(&h)?, &b.forward(&h)?], 1)?,
            };
        }
        Ok(h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        for (name, step) in &self.steps {
            match (name, step) {
                (Some(name), Step::Conv(c)) => c.visit(&child_name(prefix, name), f),
                (Some(names), Step::Split(a, b)) => {
                    let (na, nb) = names.split_once('|').expect("split steps name both halves");
                    a.visit(&child_name(prefix, na), f);
                    b.visit(&child_name(prefix, nb), f);
                }
                _ => {}
            }
        }
    }
}

fn conv(name: &'static str, c: BasicConv) -> (Option<&'static str>, Step) {
    (Some(name), Step::Conv(c))
}

/// A mixed block: branches whose outputs are concatenated along channels.
struct Mixed {
    branches: Vec<Branch>,
}

impl Mixed {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let outs = self
            .branches
            .iter()
            .map(|b| b.forward(x))
            .collect::<Result<Vec<_>>>()?;
        let outs: Vec<&Tensor> = outs.iter().collect();
        Tensor::concat(&outs, 1)
    }
}

/// Channel counts divided by the width divisor.
struct Widths(usize);

impl Widths {
    fn c(&self, channels: usize) -> usize {
        channels / self.0
    }
}

fn branch(steps: Vec<(Option<&'static str>, Step)>) -> Branch {
    Branch { steps }
}

/// InceptionA (FID variant): 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3; avg pool -> 1x1.
fn block_a(w: &Widths, cin: usize, pool: usize) -> Result<Mixed> {
    let c = |n| w.c(n);
    Ok(Mixed {
        branches: vec![
            branch(vec![conv(
                "branch1x1",
                BasicConv::square(cin, c(64), 1, 1, 0)?,
            )]),
            branch(vec![
                conv("branch5x5_1", BasicConv::square(cin, c(48), 1, 1, 0)?),
                conv("branch5x5_2", BasicConv::square(c(48), c(64), 5, 1, 2)?),
            ]),
            branch(vec![
                conv("branch3x3dbl_1", BasicConv::square(cin, c(64), 1, 1, 0)?),
                conv("branch3x3dbl_2", BasicConv::square(c(64), c(96), 3, 1, 1)?),
                conv("branch3x3dbl_3", BasicConv::square(c(96), c(96), 3, 1, 1)?),
            ]),
            branch(vec![
                (None, Step::AvgPoolExcludePad),
                conv("branch_pool", BasicConv::square(cin, c(pool), 1, 1, 0)?),
            ]),
        ],
    })
}

/// InceptionB: 3x3 stride 2; 1x1 -> 3x3 -> 3x3 stride 2; max pool stride 2.
fn block_b(w: &Widths, cin: usize) -> Result<Mixed> {
    let c = |n| w.c(n);
    Ok(Mixed {
        branches: vec![
            branch(vec![conv(
                "branch3x3",
                BasicConv::square(cin, c(384), 3, 2, 0)?,
            )]),
            branch(vec![
                conv("branch3x3dbl_1", BasicConv::square(cin, c(64), 1, 1, 0)?),
                conv("branch3x3dbl_2", BasicConv::square(c(64), c(96), 3, 1, 1)?),
                conv("branch3x3dbl_3", BasicConv::square(c(96), c(96), 3, 2, 0)?),
            ]),
            branch(vec![(
                None,
                Step::MaxPool {
                    stride: 2,
                    padding: 0,
                },
            )]),
        ],
    })
}

/// InceptionC (FID variant) with `c7` channels in its factorised 7x7 branches.
fn block_c(w: &Widths, cin: usize, c7: usize) -> Result<Mixed> {
    let c = |n| w.c(n);
    let c7 = c(c7);
    let row = |cin, cout| BasicConv::new(cin, cout, (1, 7), 1, (0, 3));
    let col = |cin, cout| BasicConv::new(cin, cout, (7, 1), 1, (3, 0));
    Ok(Mixed {
        branches: vec![
            branch(vec![conv(
                "branch1x1",
                BasicConv::square(cin, c(192), 1, 1, 0)?,
            )]),
            branch(vec![
                conv("branch7x7_1", BasicConv::square(cin, c7, 1, 1, 0)?),
                conv("branch7x7_2", row(c7, c7)?),
                conv("branch7x7_3", col(c7, c(192))?),
            ]),
            branch(vec![
                conv("branch7x7dbl_1", BasicConv::square(cin, c7, 1, 1, 0)?),
                conv("branch7x7dbl_2", col(c7, c7)?),
                conv("branch7x7dbl_3", row(c7, c7)?),
                conv("branch7x7dbl_4", col(c7, c7)?),
                conv("branch7x7dbl_5", row(c7, c(192))?),
            ]),
            branch(vec![
                (None, Step::AvgPoolExcludePad),
                conv("branch_pool", BasicConv::square(cin, c(192), 1, 1, 0)?),
            ]),
        ],
    })
}

/// InceptionD: 1x1 -> 3x3 stride 2; 1x1 -> 1x7 -> 7x1 -> 3x3 stride 2; max pool stride 2.
fn block_d(w: &Widths, cin: usize) -> Result<Mixed> {
    let c = |n| w.c(n);
    Ok(Mixed {
        branches: vec![
            branch(vec![
                conv("branch3x3_1", BasicConv::square(cin, c(192), 1, 1, 0)?),
                conv("branch3x3_2", BasicConv::square(c(192), c(320), 3, 2, 0)?),
            ]),
            branch(vec![
                conv("branch7x7x3_1", BasicConv::square(cin, c(192), 1, 1, 0)?),
                conv(
                    "branch7x7x3_2",
                    BasicConv::new(c(192), c(192), (1, 7), 1, (0, 3))?,
                ),
                conv(
                    "branch7x7x3_3",
                    BasicConv::new(c(192), c(192), (7, 1), 1, (3, 0))?,
                ),
                conv("branch7x7x3_4", BasicConv::square(c(192), c(192), 3, 2, 0)?),
            ]),
            branch(vec![(
                None,
                Step::MaxPool {
                    stride: 2,
                    padding: 0,
                },
            )]),
        ],
    })
}

/// InceptionE (FID variants): `max_pool` false is `FIDInceptionE_1` (average pool without the
/// padded cells), true is `FIDInceptionE_2` (max pool).
fn block_e(w: &Widths, cin: usize, max_pool: bool) -> Result<Mixed> {
    let c = |n| w.c(n);
    let pair = |cin| -> Result<Step> {
        Ok(Step::Split(
            BasicConv::new(cin, c(384), (1, 3), 1, (0, 1))?,
            BasicConv::new(cin, c(384), (3, 1), 1, (1, 0))?,
        ))
    };
    let pool = if max_pool {
        Step::MaxPool {
            stride: 1,
            padding: 1,
        }
    } else {
        Step::AvgPoolExcludePad
    };
    Ok(Mixed {
        branches: vec![
            branch(vec![conv(
                "branch1x1",
                BasicConv::square(cin, c(320), 1, 1, 0)?,
            )]),
            branch(vec![
                conv("branch3x3_1", BasicConv::square(cin, c(384), 1, 1, 0)?),
                (Some("branch3x3_2a|branch3x3_2b"), pair(c(384))?),
            ]),
            branch(vec![
                conv("branch3x3dbl_1", BasicConv::square(cin, c(448), 1, 1, 0)?),
                conv(
                    "branch3x3dbl_2",
                    BasicConv::square(c(448), c(384), 3, 1, 1)?,
                ),
                (Some("branch3x3dbl_3a|branch3x3dbl_3b"), pair(c(384))?),
            ]),
            branch(vec![
                (None, pool),
                conv("branch_pool", BasicConv::square(cin, c(192), 1, 1, 0)?),
            ]),
        ],
    })
}

/// What one pass gives: the pool3 features and the logits.
pub struct InceptionOutput {
    /// `[N, 2048 / width_divisor]`.
    pub pool3: Tensor,
    /// `[N, 1008]`.
    pub logits: Tensor,
}

/// The FID Inception-v3 (see the module docs).
pub struct InceptionV3 {
    /// What every channel count is divided by (1 for the real network).
    pub width_divisor: usize,
    /// The stem: `Conv2d_1a_3x3` ... `Conv2d_4a_3x3`, with max pools after 2b and 4a.
    stem: Vec<(&'static str, BasicConv)>,
    /// `Mixed_5b` ... `Mixed_7c`.
    mixed: Vec<(&'static str, Mixed)>,
    /// The classifier head: pool3 features to the 1008 logits.
    pub fc: Linear,
}

impl InceptionV3 {
    /// The network with every channel count divided by `width_divisor` (1, 2, 4 or 8), weights
    /// zero until [`InceptionV3::load_weights`].
    pub fn new(width_divisor: usize) -> Result<Self> {
        if ![1, 2, 4, 8].contains(&width_divisor) {
            return Err(Error::InvalidArgument {
                op: "InceptionV3",
                reason: format!("width divisor {width_divisor}: one of 1, 2, 4, 8"),
            });
        }
        let w = Widths(width_divisor);
        let c = |n| w.c(n);
        let stem = vec![
            ("Conv2d_1a_3x3", BasicConv::square(3, c(32), 3, 2, 0)?),
            ("Conv2d_2a_3x3", BasicConv::square(c(32), c(32), 3, 1, 0)?),
            ("Conv2d_2b_3x3", BasicConv::square(c(32), c(64), 3, 1, 1)?),
            ("Conv2d_3b_1x1", BasicConv::square(c(64), c(80), 1, 1, 0)?),
            ("Conv2d_4a_3x3", BasicConv::square(c(80), c(192), 3, 1, 0)?),
        ];
        let mixed = vec![
            ("Mixed_5b", block_a(&w, c(192), 32)?),
            ("Mixed_5c", block_a(&w, c(256), 64)?),
            ("Mixed_5d", block_a(&w, c(288), 64)?),
            ("Mixed_6a", block_b(&w, c(288))?),
            ("Mixed_6b", block_c(&w, c(768), 128)?),
            ("Mixed_6c", block_c(&w, c(768), 160)?),
            ("Mixed_6d", block_c(&w, c(768), 160)?),
            ("Mixed_6e", block_c(&w, c(768), 192)?),
            ("Mixed_7a", block_d(&w, c(768))?),
            ("Mixed_7b", block_e(&w, c(1280), false)?),
            ("Mixed_7c", block_e(&w, c(2048), true)?),
        ];
        let fc = Linear {
            weight: Tensor::zeros(&[NUM_LOGITS, c(2048)], DType::F32, Device::Cpu)?,
            bias: Some(Tensor::zeros(&[NUM_LOGITS], DType::F32, Device::Cpu)?),
        };
        Ok(InceptionV3 {
            width_divisor,
            stem,
            mixed,
            fc,
        })
    }

    /// The network of `width_divisor` with the weights of the safetensors file `path`
    /// (checked: every tensor present with its shape; extra tensors such as batch norm's
    /// `num_batches_tracked` are ignored).
    pub fn load(
        path: impl AsRef<Path>,
        width_divisor: usize,
    ) -> std::result::Result<Self, CheckpointError> {
        let path = path.as_ref();
        let net = Self::new(width_divisor).map_err(|e| CheckpointError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        net.load_weights(&Checkpoint::load(path)?)?;
        Ok(net)
    }

    /// Copies the weights of `ck` (PyTorch's names, no prefix) into the network.
    pub fn load_weights(&self, ck: &Checkpoint) -> std::result::Result<(), CheckpointError> {
        ck.restore_module("", self)
    }

    /// Pool3 features and logits of images `[N, 3, H, W]` (or `[N, 1, H, W]`, repeated to
    /// three channels) with pixels in [0, 1], any size: resized to 299x299, scaled to [-1, 1].
    pub fn forward_features(&self, images: &Tensor) -> Result<InceptionOutput> {
        let x = match images.shape() {
            [_, 3, _, _] => images.clone(),
            [n, 1, h, w] => images.broadcast_as(&[*n, 3, *h, *w])?.contiguous()?,
            shape => {
                return Err(Error::BadShape {
                    op: "InceptionV3",
                    shape: shape.to_vec(),
                    reason: "images must be [N, 3, H, W] or [N, 1, H, W] in [0, 1]".into(),
                })
            }
        };
        let mut h = x
            .resize_bilinear(INPUT_SIDE, INPUT_SIDE)?
            .mul_scalar(2.0)?
            .add_scalar(-1.0)?;
        for (name, conv) in &self.stem {
            h = conv.forward(&h)?;
            if matches!(*name, "Conv2d_2b_3x3" | "Conv2d_4a_3x3") {
                h = h.max_pool2d(3, 2, 0)?;
            }
        }
        for (_, block) in &self.mixed {
            h = block.forward(&h)?;
        }
        let pool3 = h.global_avg_pool2d()?;
        let logits = self.fc.forward(&pool3)?;
        Ok(InceptionOutput { pool3, logits })
    }
}

impl Module for InceptionV3 {
    /// The pool3 features of images in [0, 1] (see [`InceptionV3::forward_features`]).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_features(x)?.pool3)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        for (name, conv) in &self.stem {
            conv.visit(&child_name(prefix, name), f);
        }
        for (name, block) in &self.mixed {
            for branch in &block.branches {
                branch.visit(&child_name(prefix, name), f);
            }
        }
        self.fc.visit(&child_name(prefix, "fc"), f);
    }
}
