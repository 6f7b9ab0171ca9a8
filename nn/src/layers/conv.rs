use crate::init;
use crate::{child_name, Module, Slot, WeightedLayer};
use saddle_engine::{Conv2dParams, ConvTranspose2dParams, DType, Error, Result, Rng, Tensor};

/// 2-D convolution over NCHW. `weight` is OIHW `[out, in/groups, k, k]` and `bias` `[out]`,
/// both initialised as PyTorch's `nn.Conv2d` (U(±1/sqrt(fan_in))).
///
/// Input `[N, in, H, W]`, output `[N, out, H', W']` with
/// `H' = (H + 2·padding − dilation·(k − 1) − 1) / stride + 1` (likewise `W'`).
///
/// ```
/// use saddle_nn::engine::{Conv2dParams, DType, Device, Rng, Tensor};
/// use saddle_nn::{Conv2d, Module};
///
/// let mut rng = Rng::new(0);
/// let params = Conv2dParams::default().with_stride(2).with_padding(1);
/// let conv = Conv2d::new(3, 8, 3, params, true, DType::F32, &mut rng)?;
/// let x = Tensor::zeros(&[2, 3, 8, 8], DType::F32, Device::Cpu)?;
/// let y = conv.forward(&x)?;
/// assert_eq!(y.shape(), &[2, 8, 4, 4]);
/// // A zero input leaves only the bias.
/// let bias = conv.bias.as_ref().unwrap().to_vec::<f32>()?;
/// assert_eq!(y.to_vec::<f32>()?[0], bias[0]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct Conv2d {
    /// `[out, in/groups, k, k]`.
    pub weight: Tensor,
    /// `[out]`, if the layer has one.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation and groups.
    pub params: Conv2dParams,
}

/// PyTorch's default weight and bias for a layer whose weight has `shape` (fans from it).
fn default_init(
    shape: &[usize],
    bias_len: Option<usize>,
    dtype: DType,
    rng: &mut Rng,
) -> Result<(Tensor, Option<Tensor>)> {
    let weight = init::kaiming_uniform(shape, 5f64.sqrt(), init::FanMode::FanIn, dtype, rng)?
        .with_requires_grad(true);
    let (fan_in, _) = init::fans(shape)?;
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let bias = match bias_len {
        Some(n) => Some(init::uniform(&[n], -bound, bound, dtype, rng)?.with_requires_grad(true)),
        None => None,
    };
    Ok((weight, bias))
}

fn check_groups(op: &'static str, in_ch: usize, out_ch: usize, groups: usize) -> Result<()> {
    if groups == 0 || !in_ch.is_multiple_of(groups) || !out_ch.is_multiple_of(groups) {
        return Err(Error::InvalidArgument {
            op,
            reason: format!("channels {in_ch}->{out_ch} do not divide into {groups} groups"),
        });
    }
    Ok(())
}

impl Conv2d {
    /// A `kernel x kernel` convolution `in_ch -> out_ch` (with a bias when `bias`), initialised
    /// as PyTorch's from `rng`. Channels that do not divide into `params.groups` are an error.
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        params: Conv2dParams,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        check_groups("Conv2d", in_ch, out_ch, params.groups)?;
        let (weight, bias) = default_init(
            &[out_ch, in_ch / params.groups, kernel, kernel],
            bias.then_some(out_ch),
            dtype,
            rng,
        )?;
        Ok(Conv2d {
            weight,
            bias,
            params,
        })
    }
}

impl WeightedLayer for Conv2d {
    fn weight(&self) -> &Tensor {
        &self.weight
    }
    fn forward_with_weight(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        x.conv2d(weight, self.bias.as_ref(), self.params)
    }
    fn visit_without_weight(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        if let Some(b) = &self.bias {
            f(child_name(prefix, "bias"), b, Slot::Parameter);
        }
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with_weight(x, &self.weight)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        f(child_name(prefix, "weight"), &self.weight, Slot::Parameter);
        self.visit_without_weight(prefix, f);
    }
}

/// 2-D transposed convolution over NCHW. `weight` is `[in, out/groups, k, k]` as PyTorch's
/// `nn.ConvTranspose2d` (whose fan-in convention for initialisation is `weight.shape[1] * k * k`).
///
/// Input `[N, in, H, W]`, output `[N, out, H', W']` with
/// `H' = (H − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1` (likewise `W'`).
///
/// ```
/// use saddle_nn::engine::{ConvTranspose2dParams, DType, Device, Rng, Tensor};
/// use saddle_nn::{ConvTranspose2d, Module};
///
/// // DCGAN's upsampling step: 4x4 kernel, stride 2, padding 1 doubles H and W.
/// let mut rng = Rng::new(0);
/// let params = ConvTranspose2dParams::default().with_stride(2).with_padding(1);
/// let up = ConvTranspose2d::new(8, 3, 4, params, false, DType::F32, &mut rng)?;
/// assert_eq!(up.weight.shape(), &[8, 3, 4, 4]);
/// let x = Tensor::ones(&[1, 8, 4, 4], DType::F32, Device::Cpu)?;
/// assert_eq!(up.forward(&x)?.shape(), &[1, 3, 8, 8]);
/// # Ok::<(), saddle_nn::engine::Error>(())
/// ```
pub struct ConvTranspose2d {
    /// `[in, out/groups, k, k]`.
    pub weight: Tensor,
    /// `[out]`, if the layer has one.
    pub bias: Option<Tensor>,
    /// Stride, padding, output padding, dilation and groups.
    pub params: ConvTranspose2dParams,
}

impl ConvTranspose2d {
    /// A `kernel x kernel` transposed convolution `in_ch -> out_ch` (with a bias when `bias`),
    /// initialised as PyTorch's from `rng`. Channels that do not divide into `params.groups` are
    /// an error.
    pub fn new(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        params: ConvTranspose2dParams,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Self> {
        check_groups("ConvTranspose2d", in_ch, out_ch, params.groups)?;
        let (weight, bias) = default_init(
            &[in_ch, out_ch / params.groups, kernel, kernel],
            bias.then_some(out_ch),
            dtype,
            rng,
        )?;
        Ok(ConvTranspose2d {
            weight,
            bias,
            params,
        })
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.conv_transpose2d(&self.weight, self.bias.as_ref(), self.params)
    }
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        f(child_name(prefix, "weight"), &self.weight, Slot::Parameter);
        if let Some(b) = &self.bias {
            f(child_name(prefix, "bias"), b, Slot::Parameter);
        }
    }
}
