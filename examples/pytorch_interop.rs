//! Load a `state_dict` that PyTorch saved as safetensors and run it on saddle.
//!
//! `examples/data/tiny_net.safetensors` was written by `examples/data/make_tiny_net.py`: a 3x3
//! conv, ReLU and a linear layer with seeded random weights; `tiny_net.json` holds the logits
//! PyTorch computed for a fixed input. saddle's layers use PyTorch's names and layouts (OIHW
//! conv weights, `[out, in]` linear weights, NCHW activations), so a module whose `visit` names
//! its tensors as the PyTorch module's attributes loads the file as is.
//!
//! Run: `cargo run --example pytorch_interop [-- FILE.safetensors]`

use saddle_engine::{Conv2dParams, DType, Device, Result, Rng, Tensor};
use saddle_nn::{child_name, Checkpoint, Conv2d, Linear, Module, Slot};
use std::error::Error;
use std::path::PathBuf;

/// The Rust twin of `TinyNet` in make_tiny_net.py: same attribute names, same forward.
struct TinyNet {
    conv: Conv2d,
    fc: Linear,
}

impl TinyNet {
    fn new(rng: &mut Rng) -> Result<Self> {
        let padding = Conv2dParams::default().with_padding(1);
        Ok(TinyNet {
            conv: Conv2d::new(1, 2, 3, padding, true, DType::F32, rng)?,
            fc: Linear::new(2 * 4 * 4, 3, true, DType::F32, rng)?,
        })
    }
}

impl Module for TinyNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc
            .forward(&self.conv.forward(x)?.relu()?.flatten(1, 3)?)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Slot)) {
        self.conv.visit(&child_name(prefix, "conv"), f);
        self.fc.visit(&child_name(prefix, "fc"), f);
    }
}

fn main() -> std::result::Result<(), Box<dyn Error>> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let file = std::env::args_os()
        .nth(1)
        .map_or_else(|| data.join("tiny_net.safetensors"), PathBuf::from);

    // Random weights first, then every tensor replaced by the file's (names and shapes checked:
    // a missing or misshapen tensor is an error that names it).
    let net = TinyNet::new(&mut Rng::new(0))?;
    let checkpoint = Checkpoint::load(&file)?;
    checkpoint.restore_module("", &net)?;
    println!("loaded {}:", file.display());
    for name in checkpoint.names() {
        println!("  {name}: {:?}", checkpoint.tensor(name).map(Tensor::shape));
    }

    // The input make_tiny_net.py used: linspace(-1, 1, 32) as [2, 1, 4, 4].
    let input: Vec<f32> = (0..32).map(|i| -1.0 + 2.0 * i as f32 / 31.0).collect();
    let x = Tensor::from_vec(input, &[2, 1, 4, 4], Device::Cpu)?;
    let logits = net.forward(&x)?.to_vec::<f32>()?;
    println!("saddle logits: {logits:?}");

    // Only the bundled file comes with PyTorch's answer to compare against.
    if file == data.join("tiny_net.safetensors") {
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(data.join("tiny_net.json"))?)?;
        let want: Vec<f64> = serde_json::from_value(expected["logits"].clone())?;
        let worst = logits
            .iter()
            .zip(&want)
            .map(|(&got, &want)| (got as f64 - want).abs())
            .fold(0.0, f64::max);
        println!("PyTorch logits: {want:?}\nlargest difference: {worst:.2e}");
        if worst > 1e-6 {
            return Err(
                format!("saddle and PyTorch differ by {worst:.2e} (more than 1e-6)").into(),
            );
        }
    }
    Ok(())
}
