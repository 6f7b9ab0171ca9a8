//! Range checks of the command line's flags. clap runs these while it parses, so a value that
//! makes no sense is refused before any work starts, with the flag and the accepted range named:
//!
//! ```text
//! error: invalid value '-1' for '--lr <LR>': must be a finite number > 0
//! error: invalid value '0' for '--nz <NZ>': 0 is not in 1..=4096
//! ```
//!
//! The upper bounds of sizes keep a typing slip from asking for gigabytes: a width of 8,192 is a
//! 256 MiB linear layer already, far beyond what the papers' models use.

use clap::builder::{RangedU64ValueParser, TypedValueParser};
use clap::error::ErrorKind;
use std::ffi::OsStr;

/// A whole number in `lo..=hi`, for `usize` and `u64` flags.
pub fn between<T>(lo: u64, hi: u64) -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    RangedU64ValueParser::<T>::new().range(lo..=hi)
}

/// A whole number of at least `lo`.
pub fn at_least<T>(lo: u64) -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    RangedU64ValueParser::<T>::new().range(lo..)
}

/// Images per batch.
pub const MAX_BATCH: u64 = 65_536;
/// Widths of layers (units or channels).
pub const MAX_WIDTH: u64 = 8_192;
/// Samples generated and held in memory at once for a score.
pub const MAX_SCORED: u64 = 100_000;

fn number(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err("must be a finite number".into())
    }
}

/// A finite number > 0: learning rates, margins, standard deviations, norms.
pub fn positive(text: &str) -> Result<f64, String> {
    match number(text)? {
        v if v > 0.0 => Ok(v),
        _ => Err("must be a finite number > 0".into()),
    }
}

/// A finite number >= 0.
pub fn non_negative(text: &str) -> Result<f64, String> {
    match number(text)? {
        v if v >= 0.0 => Ok(v),
        _ => Err("must be a finite number >= 0".into()),
    }
}

/// A number in [0, 1): Adam's β1, momentum, dropout probability (1 would freeze or silence).
pub fn below_one(text: &str) -> Result<f64, String> {
    match number(text)? {
        v if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err("must be in [0, 1)".into()),
    }
}

/// A share of the run in [0, 1] (where a schedule starts or ends).
pub fn share(text: &str) -> Result<f64, String> {
    match number(text)? {
        v if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("must be in [0, 1]".into()),
    }
}

/// DCGAN's image side: 4·2^k with k >= 1, up to 1024.
pub fn dcgan_image_size(text: &str) -> Result<usize, String> {
    let v: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    if (8..=1024).contains(&v) && v.is_power_of_two() {
        Ok(v)
    } else {
        Err("must be a power of two from 8 to 1024 (8, 16, 32, 64, ...)".into())
    }
}

/// A percentage in [0, 100], written `10` or `10%`.
pub fn percent(text: &str) -> Result<f64, String> {
    match number(text.trim().trim_end_matches('%'))? {
        v if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err("must be a percentage from 0 to 100".into()),
    }
}

/// BigGAN's image side: one of the architectures' 32, 64 and 128.
pub fn biggan_resolution(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(v @ (32 | 64 | 128)) => Ok(v),
        _ => Err("must be 32, 64 or 128".into()),
    }
}

/// A text argument that must be UTF-8 (it is saved in the run's config.json), refused with the
/// flag's name otherwise (clap's own message for a `String` flag names no flag).
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8;

impl TypedValueParser for Utf8 {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        value.to_str().map(str::to_string).ok_or_else(|| {
            let name = arg.map_or("...".to_string(), |a| a.to_string());
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!(
                    "invalid value '{}' for '{name}': not valid UTF-8 (saddle saves it in the \
                     run's config.json; rename the folder)\n",
                    value.to_string_lossy()
                ),
            )
            .with_cmd(cmd)
        })
    }
}

/// Checks settings read back from a file (a run's config.json) by the rules of the command
/// line: each field becomes `--field=value` and goes through the same clap definitions, so a
/// damaged or hand-edited file is refused as the command line would be, naming the flag.
pub fn check_as_flags<S: clap::Args + serde::Serialize>(settings: &S) -> Result<(), String> {
    #[derive(clap::Parser)]
    #[command(name = "saved settings", no_binary_name = true)]
    struct AsFlags<T: clap::Args> {
        #[command(flatten)]
        _settings: T,
    }
    let value = serde_json::to_value(settings).map_err(|e| e.to_string())?;
    let Some(fields) = value.as_object() else {
        return Err("settings are not a JSON object".into());
    };
    let mut args = Vec::new();
    for (name, v) in fields {
        let flag = format!("--{}", name.replace('_', "-"));
        match v {
            serde_json::Value::Null | serde_json::Value::Bool(false) => {}
            serde_json::Value::Bool(true) => args.push(flag),
            serde_json::Value::String(text) => args.push(format!("{flag}={text}")),
            other => args.push(format!("{flag}={other}")),
        }
    }
    <AsFlags<S> as clap::Parser>::try_parse_from(args)
        .map(|_| ())
        .map_err(|e| {
            // clap's message without its "error: " prefix and usage lines.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_outside_their_range_are_refused_with_the_range() {
        assert_eq!(positive("2e-4"), Ok(2e-4));
        assert_eq!(positive("0").unwrap_err(), "must be a finite number > 0");
        assert_eq!(positive("-1").unwrap_err(), "must be a finite number > 0");
        assert_eq!(positive("inf").unwrap_err(), "must be a finite number");
        assert_eq!(positive("NaN").unwrap_err(), "must be a finite number");
        assert!(positive("abc").unwrap_err().contains("not a number"));
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(non_negative("-0.1").is_err());
        assert_eq!(below_one("0"), Ok(0.0));
        assert_eq!(below_one("1.5").unwrap_err(), "must be in [0, 1)");
        assert!(below_one("1").is_err());
        assert_eq!(share("1"), Ok(1.0));
        assert!(share("1.01").is_err());
        assert_eq!(dcgan_image_size("64"), Ok(64));
        for bad in ["7", "4", "48", "2048", "x"] {
            assert!(dcgan_image_size(bad).is_err(), "{bad}");
        }
    }
}
