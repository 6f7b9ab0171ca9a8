//! Writes a folder of synthetic 64×64 RGB images (a coloured disc or square on a two-colour
//! background, random sizes and places) to exercise the 64×64×3 DCGAN on an image folder
//! without downloading a dataset:
//! `cargo run --release -p saddle-gan --example make_shapes -- [out_dir] [count] [seed]`
//! (defaults: runs/shapes, 2000, 0), then `saddle train dcgan --data runs/shapes`.
use image::{Rgb, RgbImage};
use saddle_nn::engine::Rng;
use std::path::PathBuf;

const SIZE: u32 = 64;

fn colour(rng: &mut Rng) -> Rgb<u8> {
    Rgb([0, 0, 0].map(|_: u8| (rng.below(256)) as u8))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(args.first().map_or("runs/shapes", String::as_str));
    let count: usize = args.get(1).map_or(Ok(2000), |s| s.parse())?;
    let mut rng = Rng::new(args.get(2).map_or(Ok(0), |s| s.parse())?);
    std::fs::create_dir_all(&out)?;
    for i in 0..count {
        let (top, bottom, fg) = (colour(&mut rng), colour(&mut rng), colour(&mut rng));
        let r = 8.0 + rng.uniform_f64() * 14.0;
        let (cx, cy) = (
            r + rng.uniform_f64() * (SIZE as f64 - 2.0 * r),
            r + rng.uniform_f64() * (SIZE as f64 - 2.0 * r),
        );
        let disc = rng.below(2) == 0;
        let img = RgbImage::from_fn(SIZE, SIZE, |x, y| {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let inside = if disc {
                dx * dx + dy * dy <= r * r
            } else {
                dx.abs() <= r * 0.8 && dy.abs() <= r * 0.8
            };
            match (inside, y < SIZE / 2) {
                (true, _) => fg,
                (false, true) => top,
                (false, false) => bottom,
            }
        });
        img.save(out.join(format!("{i:05}.png")))?;
    }
    println!("{count} images of {SIZE}x{SIZE} in {}", out.display());
    Ok(())
}
