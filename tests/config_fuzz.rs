//! Fuzzing the run folder's config.json parser (`saddle sample`, `eval`, `probe` and `--resume`
//! rebuild a model from it): valid configs with their values replaced by hostile ones (huge,
//! negative, zero, wrong types, missing) never panic and never build a model the command line
//! would refuse; every refusal names config.json. `scripts/fuzz.sh` runs it longer
//! (SADDLE_FUZZ_CASES).

use proptest::prelude::*;
use saddle::train::model_from_config;
use serde_json::{json, Value};

fn cases(default: u32) -> u32 {
    std::env::var("SADDLE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Small valid configs of each model, as `saddle train` writes them (the old tuple form of
/// `spec` included).
fn valid_configs() -> Vec<Value> {
    vec![
        json!({
            "model": "dcgan",
            "spec": {"data": "digits", "image_size": 16, "nz": 8, "ngf": 4, "ndf": 4,
                     "lr": 2e-4, "beta1": 0.5, "batch_size": 16},
            "seed": 0, "steps": 10, "channels": 1,
            "intervals": {"log_every": 1, "sample_every": 5, "checkpoint_every": 5, "eval_every": 0},
        }),
        json!({
            "model": "dcgan",
            "spec": [{"data": "digits", "image_size": 16, "nz": 8, "ngf": 4, "ndf": 4,
                      "lr": 2e-4, "beta1": 0.5, "batch_size": 16}, 3],
            "steps": 10, "channels": 1, "intervals": [1, 5, 5, 0],
        }),
        json!({
            "model": "ebgan",
            "spec": {"data": "digits", "batch_size": 16, "pt": true, "margin": 10.0, "lr": 1e-3,
                     "layers_g": 2, "size_g": 8, "layers_d": 2, "size_d": 8, "dropout_d": 0.0},
            "seed": 1, "steps": 10, "image_dim": 64,
        }),
        json!({
            "model": "gan2014",
            "spec": {"data": "digits", "batch_size": 10, "lr": 0.1, "momentum": 0.5,
                     "final_momentum": 0.7, "k": 1, "noise": "gaussian",
                     "updates": "simultaneous", "d_max_norm": null},
            "seed": 2, "steps": 10, "image_dim": 64,
        }),
    ]
}

/// Hostile values: out of every range, of the wrong type, or absurdly large.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1)),
        Just(json!(7)),
        Just(json!(0.5)),
        Just(json!(1.5)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        Just(json!(1u64 << 40)),
        Just(json!(i64::MIN)),
        Just(json!("")),
        Just(json!("x")),
        Just(json!("--lr=1")),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!([1, 2])),
        Just(json!({"a": 1})),
    ]
}

/// Replaces the `pick`-th leaf of `value` (depth first) by `new`, or removes its key when
/// `remove`.
fn mutate(value: &mut Value, pick: &mut usize, new: &Value, remove: bool) -> bool {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if *pick == 0 {
                    if remove {
                        map.remove(&k);
                    } else {
                        map.insert(k, new.clone());
                    }
                    return true;
                }
                *pick -= 1;
                if mutate(map.get_mut(&k).expect("listed"), pick, new, remove) {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => items.iter_mut().any(|v| {
            if *pick == 0 {
                *v = new.clone();
                return true;
            }
            *pick -= 1;
            mutate(v, pick, new, remove)
        }),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(300), ..ProptestConfig::default() })]

    #[test]
    fn hostile_configs_are_refused_naming_the_file(
        which in 0usize..4,
        edits in prop::collection::vec((0usize..40, hostile_value(), any::<bool>()), 1..4),
    ) {
        let mut config = valid_configs()[which].clone();
        for (pick, new, remove) in &edits {
            let mut pick = *pick;
            mutate(&mut config, &mut pick, new, *remove);
        }
        match model_from_config(&config) {
            Ok(model) => {
                // Whatever was accepted is a model the command line would have accepted: a
                // small one here (no edit can grow it past the flags' ranges).
                let ck = model.checkpoint();
                let weights: usize = ck.names().map(|n| ck.tensor(n).unwrap().numel()).sum();
                prop_assert!(weights < 1 << 28, "{weights} weights from {config}");
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains("config.json"), "{text} for {config}");
            }
        }
    }
}

#[test]
fn the_valid_configs_build_their_models() {
    for config in valid_configs() {
        model_from_config(&config).unwrap_or_else(|e| panic!("{config}: {e}"));
    }
    // A width the flags refuse is refused from the file too, by the flag's name.
    let mut config = valid_configs()[0].clone();
    config["spec"]["ngf"] = json!(100_000);
    let err = model_from_config(&config).err().unwrap().to_string();
    assert!(
        err.contains("config.json") && err.contains("--ngf"),
        "{err}"
    );
    // Widths within the flags' ranges that multiply into a huge layer are refused.
    config["spec"]["ngf"] = json!(4096);
    config["spec"]["image_size"] = json!(1024);
    let err = model_from_config(&config).err().unwrap().to_string();
    assert!(err.contains("the widest layer"), "{err}");
}
