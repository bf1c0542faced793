//! End-to-end: the `equiflow` binary as a user runs it (CPU backend, quick presets).

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn equiflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_equiflow"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `equiflow train --preset P --quick --backend cpu --out DIR` plus `extra` arguments.
fn train_quick(preset: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--preset",
        preset,
        "--quick",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    equiflow(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn metrics(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("metrics.json")).expect("metrics.json written");
    serde_json::from_str(&text).expect("metrics.json is JSON")
}

fn num(m: &Value, key: &str) -> f64 {
    m[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {m}"))
}

#[test]
fn quick_ring_learns_a_circulating_flow_that_keeps_the_ring() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ring");
    let o = train_quick("ring", &out, &["--seed", "1"]);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    assert!(stderr(&o).contains("backend: cpu"), "{}", stderr(&o));
    for f in [
        "preset.toml",
        "score.bpk",
        "flow.bpk",
        "losses.csv",
        "samples.csv",
        "metrics.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let m = metrics(&out);
    for key in [
        "backend",
        "seconds_score",
        "seconds_flow",
        "score_loss_final",
        "flow_loss_final",
        "mmd2_learned",
        "mmd2_random",
        "mmd2_score",
        "mmd2_training_free",
        "tangential_ratio",
    ] {
        assert!(m.get(key).is_some(), "{key} missing in {m}");
    }
    assert_eq!(m["backend"], "cpu");
    let (learned, random) = (num(&m, "mmd2_learned"), num(&m, "mmd2_random"));
    assert!(learned < random, "learned {learned} vs random {random}");
    // The paper's MMD protocol (256 states) says the same.
    let (l_ref, r_ref) = (num(&m, "mmd2_learned_ref"), num(&m, "mmd2_random_ref"));
    assert!(
        l_ref < r_ref,
        "paper's protocol: learned {l_ref} vs random {r_ref}"
    );
    let tang = num(&m, "tangential_ratio");
    assert!(tang < 0.3, "tangential ratio {tang}");
    let losses = std::fs::read_to_string(out.join("losses.csv")).unwrap();
    assert!(losses.starts_with("phase,epoch,loss\n") && losses.contains("\nflow,"));

    // eval recomputes the same metrics from the saved models.
    let o = equiflow(&["eval", out.to_str().unwrap(), "--json", "--backend", "cpu"]);
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    let again: Value = serde_json::from_slice(&o.stdout).expect("eval --json prints JSON");
    assert!((num(&again, "mmd2_learned") - learned).abs() < 1e-4 + 0.05 * learned.abs());
    assert!((num(&again, "tangential_ratio") - tang).abs() < 1e-3);

    // The same directory is not overwritten by accident.
    let o = train_quick("ring", &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));

    // Models that do not match the settings are refused with a sentence, not a panic.
    let other = tmp.path().join("mismatch");
    std::fs::create_dir(&other).unwrap();
    for f in ["score.bpk", "flow.bpk"] {
        std::fs::copy(out.join(f), other.join(f)).unwrap();
    }
    let preset = std::fs::read_to_string(out.join("preset.toml")).unwrap();
    let changed = preset.replacen("hidden = 64", "hidden = 32", 2);
    assert_ne!(changed, preset);
    std::fs::write(other.join("preset.toml"), changed).unwrap();
    let o = equiflow(&["eval", other.to_str().unwrap(), "--backend", "cpu"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));
    // A run stopped before its flow trained still evaluates what it has, and says so.
    std::fs::remove_file(other.join("flow.bpk")).unwrap();
    std::fs::write(other.join("preset.toml"), &preset).unwrap();
    let o = equiflow(&[
        "eval",
        other.to_str().unwrap(),
        "--json",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("before its flow was trained"),
        "{}",
        stderr(&o)
    );
    let partial: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(partial["mmd2_learned"].is_null() && partial.get("tangential_ratio").is_none());
    assert_eq!(partial["non_finite"][0], "mmd2_learned");
    assert!((num(&partial, "mmd2_random") - random).abs() < 1e-4 + 0.05 * random);

    // --force over a run that then fails leaves the old run as it was; one that succeeds
    // replaces it whole and keeps the user's own files.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let before = |f: &str| std::fs::read(out.join(f)).unwrap();
    let (score, metrics_text) = (before("score.bpk"), before("metrics.json"));
    let o = train_quick(
        "ring",
        &out,
        &[
            "--force",
            "--set",
            "score.lr=1e30",
            "--set",
            "score.epochs=3",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is untouched"), "{}", stderr(&o));
    assert_eq!(before("score.bpk"), score);
    assert_eq!(before("metrics.json"), metrics_text);
    let failed = metrics(&out.with_file_name("ring.new"));
    assert!(
        failed["interrupted"]
            .as_str()
            .unwrap()
            .contains("NaN or infinite"),
        "{failed}"
    );
    let tiny = [
        "--force",
        "--set",
        "score.epochs=1",
        "--set",
        "flow.epochs=1",
        "--set",
        "eval.mmd_points=64",
        "--set",
        "eval.rk4_steps=2",
    ];
    let o = train_quick("ring", &out, &tiny);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(out.join("preset.toml"))
            .unwrap()
            .contains("rk4_steps = 2")
    );
    assert_ne!(before("score.bpk"), score);
    assert_eq!(before("notes.txt"), b"mine");
    assert!(!out.with_file_name("ring.new").exists());
}

/// Ctrl-C stops training at the next batch, keeps the models and a metrics.json that says it
/// was interrupted, exits 130, and `eval` accepts the run.
#[cfg(unix)]
#[test]
fn ctrl_c_keeps_what_was_trained_and_eval_accepts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lorenz");
    let child = Command::new(env!("CARGO_BIN_EXE_equiflow"))
        .args(["train", "--preset", "lorenz", "--quick", "--backend", "cpu"])
        .args(["--out", out.to_str().unwrap()])
        // Far more epochs than can finish: the signal lands mid-training.
        .args(["--set", "score.epochs=100000"])
        .args(["--set", "eval.mmd_points=64", "--set", "eval.rk4_steps=4"])
        .args(["--set", "eval.cos_points=256"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Training has begun once the run's settings are written.
    let t0 = std::time::Instant::now();
    while !out.join("preset.toml").exists() {
        assert!(t0.elapsed().as_secs() < 60, "training never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("interrupted (Ctrl-C)"),
        "{}",
        stderr(&o)
    );
    assert!(out.join("score.bpk").is_file() && !out.join("flow.bpk").exists());
    let m = metrics(&out);
    let why = m["interrupted"].as_str().unwrap();
    assert!(why.contains("score phase"), "{why}");
    assert!(m["mmd2_learned"].is_null(), "{m}");
    let o = equiflow(&["eval", out.to_str().unwrap(), "--json", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(num(&again, "cos_truth_training_free").is_finite());
    assert!(again.get("lyapunov_mean").is_none(), "no flow, no exponent");
    assert_eq!(again["interrupted"], m["interrupted"]);
}

/// A run directory written by an earlier version (December 2026, kept in tests/fixtures)
/// still loads: its settings parse, keys added since take their defaults, and its models
/// evaluate to the metrics it recorded.
#[test]
fn a_run_written_by_an_earlier_version_still_evaluates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ring-run-2026-12");
    let o = equiflow(&["eval", dir.to_str().unwrap(), "--json", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    let recorded = metrics(&dir);
    let learned = num(&recorded, "mmd2_learned");
    assert!((num(&again, "mmd2_learned") - learned).abs() < 1e-4 + 0.05 * learned.abs());
    let tang = num(&recorded, "tangential_ratio");
    assert!((num(&again, "tangential_ratio") - tang).abs() < 1e-3);
    assert_eq!(again["score_loss_final"], recorded["score_loss_final"]);
}

#[test]
fn quick_lorenz_is_chaotic() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lorenz");
    let o = train_quick("lorenz", &out, &["--seed", "1"]);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let m = metrics(&out);
    let frac = num(&m, "lyapunov_positive_fraction");
    assert!(frac > 0.5, "positive fraction {frac} in {m}");
    for key in [
        "lyapunov_mean",
        "cos_truth_learned",
        "cos_truth_training_free",
        "cos_truth_random",
    ] {
        assert!(m.get(key).is_some(), "{key} missing");
    }
    assert!(m.get("tangential_ratio").is_none());
    // The paper's protocol (two windows of 2500 RK4 steps): also mostly positive, and the
    // range is over this model's trajectories.
    let frac_ref = num(&m, "lyapunov_positive_fraction_ref");
    assert!(
        frac_ref > 0.5,
        "paper's protocol: positive fraction {frac_ref}"
    );
    let (lo, mean, hi) = (
        num(&m, "lyapunov_min_ref"),
        num(&m, "lyapunov_mean_ref"),
        num(&m, "lyapunov_max_ref"),
    );
    assert!(lo < mean && mean < hi, "{lo} {mean} {hi}");
    assert!(num(&m, "lyapunov_per_speed_ref").is_finite());
}

#[test]
fn bad_input_gets_a_clear_error_and_nonzero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o_str = out.to_str().unwrap();

    let o = equiflow(&["train", "--preset", "spiral", "--out", o_str]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown preset 'spiral'") && stderr(&o).contains("two_moons"));

    // The cross table compares Turing systems: a point preset is refused before any work.
    let o = equiflow(&["cross", "--presets", "gs-waves,ring", "--out", o_str]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("'ring' is not a Gray–Scott") && !stderr(&o).contains("panicked"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "nothing trained");

    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\n[flow]\nlr = 0.01\nepochs = [\n").unwrap();
    let o = equiflow(&["train", "--preset", bad.to_str().unwrap(), "--out", o_str]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("malformed preset") && stderr(&o).contains("line"),
        "{}",
        stderr(&o)
    );

    let o = equiflow(&[
        "train",
        "--preset",
        "ring",
        "--set",
        "flow.learning_rate=1",
        "--out",
        o_str,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown setting 'flow.learning_rate'"),
        "{}",
        stderr(&o)
    );

    let o = equiflow(&["eval", tmp.path().join("nothing").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a run directory"), "{}", stderr(&o));

    // An NCA learns image flows only; a point preset always trains its own flow network.
    let o = equiflow(&["train", "--preset", "ring", "--flow", "nca", "--out", o_str]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--flow chooses the flow of image presets"),
        "{}",
        stderr(&o)
    );
    let o = equiflow(&["train-nca", tmp.path().join("nothing").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a run directory"), "{}", stderr(&o));

    // A diverging learning rate: stop, keep the last good model, say so.
    let o = train_quick(
        "ring",
        &out,
        &["--set", "score.lr=1e30", "--set", "score.epochs=5"],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("NaN or infinite") && err.contains("last model"),
        "{err}"
    );
    assert!(out.join("score.bpk").is_file());
    let partial = metrics(&out);
    assert!(
        partial["interrupted"]
            .as_str()
            .unwrap()
            .contains("NaN or infinite")
    );
    assert!(
        partial["mmd2_learned"].is_null(),
        "nothing was measured: {partial}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_gray_scott_stencil_bench_reports_its_speed_against_the_naive_loop() {
    let o = equiflow(&["bench", "--gray-scott", "--steps", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["size"], 256);
    assert_eq!(b["steps"], 50, "at least 50 steps are timed");
    for key in [
        "mcups",
        "mcups_per_thread",
        "naive_mcups",
        "speedup_vs_naive",
    ] {
        let v = num(&b, key);
        assert!(v.is_finite() && v > 0.0, "{key} = {v}");
    }
}

/// The image bench times the live SDE step (alife-dot's quick net, residual) with our
/// operations and with burn's, and refuses a case it does not know.
#[test]
fn the_image_bench_times_both_convolutions_and_refuses_unknown_cases() {
    let o = equiflow(&[
        "bench",
        "--images",
        "--case",
        "sde_step_live",
        "--steps",
        "1",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["case"], "sde_step_live");
            assert!(num(r, "ms_per_step") > 0.0 && num(r, "params") > 0.0, "{r}");
            (
                r["arch"].as_str().unwrap().into(),
                r["conv"].as_str().unwrap().into(),
            )
        })
        .collect();
    seen.sort();
    let want: Vec<(String, String)> = [("residual", "burn"), ("residual", "equiflow")]
        .iter()
        .map(|(a, c)| (a.to_string(), c.to_string()))
        .collect();
    assert_eq!(seen, want);
    let o = equiflow(&["bench", "--images", "--case", "unet_step", "--steps", "1"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("unet_step_quick") && !err.contains("panicked"),
        "{err}"
    );
}

/// The Turing issues' end-to-end check on the smallest data that still shows it (about four
/// minutes on two cores: the quick 48² grid, which the waves need to live, with 256 snapshots
/// and 4 starts of 100 SDE steps for the |cos| protocol; the quick profile's own numbers come
/// from hand runs, README): the training-free skew flow moves gs-waves patterns the way
/// Gray–Scott does, far better than a random non-skew kernel; and a neural cellular automaton
/// trained with the equilibrium loss (`--flow nca`) lowers its loss, and eval reproduces
/// every |cos| from the saved models.
#[test]
fn quick_gs_waves_moves_patterns_like_the_true_dynamics() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("waves");
    let o = equiflow(&[
        "train",
        "--preset",
        "gs-waves",
        "--quick",
        "--flow",
        "nca",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "dataset.n=256",
        "--set",
        "score.epochs=20",
        // The NCA loss halves within two epochs here (13.5, 5.3, 4.4, … with seed 0).
        "--set",
        "flow.epochs=3",
        "--set",
        "eval.cos_starts=4",
        "--set",
        "eval.cos_sde_steps=100",
        "--set",
        "eval.random_draws=2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let tf = m["cos_truth_training_free"].as_f64().unwrap();
    let random = m["cos_truth_random_kernel"].as_f64().unwrap();
    let (mean, sd) = (
        num(&m, "cos_truth_random_kernel_mean"),
        num(&m, "cos_truth_random_kernel_sd"),
    );
    assert!(
        tf > random && tf > mean && tf > 0.25,
        "training-free {tf} vs random {random} (mean {mean} ± {sd} over 2 draws)"
    );
    assert!(sd > 0.0, "two different kernels, two different |cos|");
    // The paper's protocol beside ours (clean start, EMA of the raw state, better of ±g):
    // with seed 0 here 0.32 ± 0.13 over the starts against 0.13 ± 0.08 for random kernels.
    let (tf_ref, r_mean, r_sd) = (
        num(&m, "cos_truth_training_free_ref"),
        num(&m, "cos_truth_random_kernel_mean_ref"),
        num(&m, "cos_truth_random_kernel_sd_ref"),
    );
    assert!(
        tf_ref > r_mean + r_sd,
        "paper's protocol: training-free {tf_ref} vs random {r_mean} ± {r_sd}"
    );
    let first = num(&m, "cos_truth_training_free_ref_first");
    assert!(first > 0.0 && num(&m, "cos_truth_training_free_ref_sd") > 0.0);
    assert_eq!(num(&m, "cos_truth_ref_sign").abs(), 1.0);
    assert!(m["denoise_mse"].as_f64().unwrap() < m["denoise_mse_identity"].as_f64().unwrap());
    // Both NCAs are measured by the protocol. Whether the trained one aligns with the true
    // dynamics better than the untrained one is not settled at this size (README: it went
    // either way across seeds and noise streams), so it is reported, not asserted, here.
    let (nca, untrained) = (num(&m, "cos_truth_nca"), num(&m, "cos_truth_nca_random"));
    assert!(
        (nca - untrained).abs() > 1e-6,
        "training changed nothing the protocol sees: {nca} vs untrained {untrained}"
    );
    let flow: Vec<f64> = std::fs::read_to_string(out.join("losses.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("flow,"))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(flow.len() >= 2, "{flow:?}");
    assert!(
        flow.last().unwrap() < &(0.5 * flow[0]),
        "the NCA loss falls: {flow:?}"
    );
    for f in [
        "preset.toml",
        "score.bpk",
        "flow.bpk",
        "losses.csv",
        "samples.csv",
        "dataset.bin",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // eval reproduces the metrics from the saved model and the cached snapshots, and honours
    // an edited [eval] section: asked for our protocol only (to halve the test's time), it
    // gives the same numbers for it and no paper's-protocol fields.
    let settings = std::fs::read_to_string(out.join("preset.toml")).unwrap();
    let ours = settings.replacen("protocol = \"both\"", "protocol = \"ours\"", 1);
    assert_ne!(ours, settings, "the run records its protocol");
    std::fs::write(out.join("preset.toml"), ours).unwrap();
    let o = equiflow(&["eval", out.to_str().unwrap(), "--json", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tf2 = again["cos_truth_training_free"].as_f64().unwrap();
    assert!((tf - tf2).abs() < 1e-6, "eval gave {tf2}, train {tf}");
    assert!((num(&again, "cos_truth_random_kernel_mean") - mean).abs() < 1e-6);
    assert!(
        again.get("cos_truth_training_free_ref").is_none(),
        "{again}"
    );
    assert!((num(&again, "cos_truth_nca") - nca).abs() < 1e-6);
}

/// The artificial-life end-to-end check on the two-colour firefly with the acceptance seed,
/// on the smallest data that still shows it (a few minutes on two cores: 256 images of 32²
/// with three 14-px icons; the quick profile's own numbers come from hand runs, README): the
/// icons persist, keep their look, and the flow moves them faster than they drift without it.
/// The residual denoiser (one GroupNorm block per level, 8/16/16): with the plain net the same
/// data kept the look with seed 0 only of seeds 0–2 (README), the residual one with all three.
#[test]
fn alife_firefly_keeps_its_icons_and_their_look_and_moves_them() {
    /// "Clearly above": the tracked speed with the flow against the same run without it.
    const SPEED_RATIO: f64 = 1.3;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("firefly");
    let mut args = vec!["--seed", "1"];
    for set in [
        "dataset.n=256",
        "dataset.size=32",
        "dataset.icon_size=14",
        "dataset.icons=3",
        "score.arch=\"residual\"",
        "score.channels=[8, 16, 16]",
        "score.blocks=1",
        "score.warmup=50",
        "score.epochs=40",
        "score.batch=16",
        "score.lr=3e-3",
        "score.samples=1",
        "eval.blob_starts=4",
        "eval.blob_steps=100",
        // A short run from noise: the protocol runs and reports (its numbers need 2000).
        "eval.noise_steps=10",
        "sde.canvas=48",
    ] {
        args.extend(["--set", set]);
    }
    let o = train_quick("alife-firefly", &out, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = metrics(&out);
    let (start, end) = (num(&m, "blob_count_start"), num(&m, "blob_count_end"));
    assert!(
        start >= 2.0,
        "{start} blobs per image at the start (3 icons stamped)"
    );
    assert!((end - start).abs() <= 0.3 * start, "blobs {start} → {end}");
    let (speed, still) = (num(&m, "blob_speed_mean"), num(&m, "blob_speed_still"));
    assert!(
        speed > SPEED_RATIO * still,
        "speed {speed} vs still {still}"
    );
    let (data, kept) = (num(&m, "icon_fidelity_data"), num(&m, "icon_fidelity_end"));
    assert!(
        kept >= 0.8 * data,
        "icon fidelity {kept} at the end vs {data} in the data"
    );
    assert!(num(&m, "blob_count_from_noise").is_finite());
    assert!(num(&m, "denoise_mse") < num(&m, "denoise_mse_identity"));
    assert!(m.get("cos_truth_training_free").is_none());
    // eval reproduces the motion from the saved model.
    let o = equiflow(&["eval", out.to_str().unwrap(), "--json", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((num(&again, "blob_speed_mean") - speed).abs() < 1e-6);
    assert!((num(&again, "icon_fidelity_end") - kept).abs() < 1e-6);
}

#[test]
fn any_picture_is_a_target_and_bad_ones_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    // A built-in target written as a PNG, then trained on from the file (a token run).
    let png = tmp.path().join("dots.png");
    let o = equiflow(&[
        "target",
        "dots",
        "--out",
        png.to_str().unwrap(),
        "--size",
        "41",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("run");
    let o = train_quick(
        "alife-dots",
        &out,
        &[
            "--target",
            png.to_str().unwrap(),
            "--set",
            "dataset.n=32",
            "--set",
            "score.epochs=1",
            "--set",
            "score.samples=1",
            "--set",
            "eval.blob_starts=1",
            "--set",
            "eval.blob_steps=4",
            "--set",
            "eval.noise_steps=4",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m = metrics(&out);
    // The clean training images hold the file's icon (this needs no trained model).
    let data = num(&m, "icon_fidelity_data");
    assert!(data > 0.8, "icon fidelity of the data {data}");
    assert!(m["pattern"].as_str().unwrap().ends_with("dots.png"));
    // The run keeps its own copy of the picture.
    assert_eq!(
        std::fs::read(out.join("target.png")).unwrap(),
        std::fs::read(&png).unwrap()
    );

    let junk = tmp.path().join("junk.png");
    std::fs::write(&junk, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    for (i, (args, needle)) in [
        (vec!["--target", junk.to_str().unwrap()], "not an image"),
        (vec!["--target", "/no/such/icon.png"], "/no/such/icon.png"),
        (vec!["--set", "dataset.icons=60"], "cannot place 60 icons"),
    ]
    .into_iter()
    .enumerate()
    {
        let o = train_quick("alife-dot", &tmp.path().join(format!("bad{i}")), &args);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    let o = train_quick(
        "ring",
        &tmp.path().join("ring"),
        &["--target", png.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("alife-dot"), "{}", stderr(&o));
    let o = equiflow(&["target", "unicorn", "--out", "x.png"]);
    assert!(!o.status.success() && stderr(&o).contains("taiji"));
}

/// A sweep trains one score and N flows that differ only in their seed, each an ordinary run
/// dir; its summary compares their fields, and `aggregate` rebuilds the same summary from the
/// run dirs alone (as it would from dirs a cluster job array wrote).
#[test]
fn a_sweep_shares_one_score_and_aggregate_rebuilds_its_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let mut args = vec![
        "sweep",
        "--preset",
        "ring",
        "--quick",
        "--seeds",
        "3",
        "--seed",
        "5",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ];
    for set in [
        "dataset.n=512",
        "score.epochs=20",
        "flow.epochs=20",
        "score.samples=64",
        "eval.mmd_points=128",
        "eval.rk4_steps=10",
        "eval.cos_points=128",
    ] {
        args.extend(["--set", set]);
    }
    let o = equiflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["models"], 3);
    assert!(num(&summary, "seconds_total") > 0.0);
    let csv = std::fs::read_to_string(out.join("models.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let dirs: Vec<_> = (5..8).map(|s| out.join(format!("seed-{s}"))).collect();
    // One score, one dataset: every model measures the same score field; the flows differ.
    let ms: Vec<Value> = dirs.iter().map(|d| metrics(d)).collect();
    assert!(ms.iter().all(|m| m["mmd2_score"] == ms[0]["mmd2_score"]));
    assert!(
        ms.iter()
            .all(|m| m["score_loss_final"] == ms[0]["score_loss_final"])
    );
    assert_ne!(ms[0]["mmd2_learned"], ms[1]["mmd2_learned"]);
    let c = &summary["consistency_learned"];
    assert_eq!(c["count"], 3);
    assert!(num(c, "max") < 0.9999, "three seeds, three fields: {c}");
    assert!(
        summary["cos_truth_learned"].is_null(),
        "the ring has no true dynamics"
    );
    // Each model is an ordinary run: eval accepts it.
    let o = equiflow(&[
        "eval",
        dirs[1].to_str().unwrap(),
        "--json",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, b) = (num(&again, "mmd2_learned"), num(&ms[1], "mmd2_learned"));
    assert!((a - b).abs() < 1e-9, "eval {a} vs sweep {b}");
    // aggregate of the run dirs gives the same table.
    let agg = tmp.path().join("agg");
    let mut args = vec![
        "aggregate",
        "--backend",
        "cpu",
        "--out",
        agg.to_str().unwrap(),
    ];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    let o = equiflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let rebuilt: Value =
        serde_json::from_str(&std::fs::read_to_string(agg.join("summary.json")).unwrap()).unwrap();
    for key in [
        "consistency_learned",
        "consistency_training_free",
        "learned_vs_training_free",
    ] {
        let (x, y) = (num(&rebuilt[key], "mean"), num(&summary[key], "mean"));
        assert!((x - y).abs() < 1e-12, "{key}: {x} vs {y}");
    }
    // A sweep already there is not overwritten without --force.
    let o = equiflow(&["sweep", "--preset", "ring", "--out", out.to_str().unwrap()]);
    assert!(
        !o.status.success() && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    let o = equiflow(&[
        "sweep",
        "--preset",
        "gs-waves",
        "--out",
        tmp.path().join("x").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("point systems"),
        "{}",
        stderr(&o)
    );
}

/// Settings small enough for a point run on a file to train in seconds.
const TINY_POINTS: &[&str] = &[
    "--set",
    "score.epochs=4",
    "--set",
    "score.batch=256",
    "--set",
    "score.samples=50",
    "--set",
    "flow.epochs=3",
    "--set",
    "flow.batch=256",
    "--set",
    "eval.mmd_points=64",
    "--set",
    "eval.rk4_steps=4",
    "--set",
    "eval.lyapunov_candidates=16",
    "--set",
    "eval.lyapunov_keep=8",
    "--set",
    "eval.lyapunov_steps=40",
    "--set",
    "eval.lyapunov_window=10",
    "--set",
    "eval.cos_points=128",
    "--set",
    "eval.protocol=\"ours\"",
];

/// `equiflow train --data FILE [extra] --quick --backend cpu --out DIR` with tiny settings.
fn train_data(data: &Path, out: &Path, extra: &[&str]) -> Output {
    train_own(data, out, TINY_POINTS, extra)
}

/// `equiflow train --data FILE --quick --backend cpu --seed 1 --out DIR`, then `tiny` and
/// `extra` arguments.
fn train_own(data: &Path, out: &Path, tiny: &[&str], extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--quick",
        "--backend",
        "cpu",
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(tiny);
    args.extend_from_slice(extra);
    equiflow(&args)
}

/// A user's own 3-D snapshots with velocities: the shipped example, trained from a CSV; the
/// run keeps a copy of both files with their SHA-256, reopens without the originals and
/// says when an original has changed; truth metrics have their random baseline.
#[test]
fn own_snapshots_with_velocities_train_and_the_run_keeps_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let ex = tmp.path().join("ex");
    let o = equiflow(&["examples", "--out", ex.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (data, vel) = (ex.join("thomas.csv"), ex.join("thomas-velocity.csv"));
    let out = tmp.path().join("run");
    let o = train_data(
        &data,
        &out,
        &[
            "--velocity",
            vel.to_str().unwrap(),
            "--set",
            "dataset.n=1000",
        ],
    );
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("1000 snapshots in 3 dimensions") && err.contains("'lorenz'"),
        "{err}"
    );
    let m = metrics(&out);
    for key in [
        "mmd2_learned",
        "mmd2_random",
        "lyapunov_positive_fraction",
        "cos_truth_learned",
        "cos_truth_random",
        "cos_truth_random_mean",
        "cos_truth_random_sd",
    ] {
        assert!(num(&m, key).is_finite(), "{key} in {m}");
    }
    assert!(num(&m, "cos_truth_random_sd") > 0.0, "ten different draws");
    assert!(m["not_measured"]["tangential_ratio"].is_string(), "{m}");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("data.json")).unwrap()).unwrap();
    assert_eq!(record["data"]["copy"], "data.csv");
    assert_eq!(record["velocity"]["copy"], "velocity.csv");
    assert_eq!(record["data"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(
        std::fs::read(out.join("data.csv")).unwrap(),
        std::fs::read(&data).unwrap()
    );

    // The originals change: eval says so and measures the run on its own copies.
    std::fs::write(&data, "x,y,z\n1,2,3\n").unwrap();
    std::fs::remove_file(&vel).unwrap();
    let o = equiflow(&["eval", out.to_str().unwrap(), "--json", "--backend", "cpu"]);
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("has changed since this run"), "{err}");
    assert!(err.contains("is gone or unreadable"), "{err}");
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, b) = (
        num(&m, "cos_truth_learned"),
        num(&again, "cos_truth_learned"),
    );
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");

    // Many flows on the same file: the consistency table has the truth from the velocities;
    // aggregate refuses to mix runs of different files.
    let (data, vel) = (ex.join("thomas2.csv"), ex.join("thomas2-v.csv"));
    for (from, to) in [("data.csv", &data), ("velocity.csv", &vel)] {
        let text = std::fs::read_to_string(out.join(from)).unwrap();
        let head: Vec<&str> = text.lines().take(701).collect();
        std::fs::write(to, head.join("\n")).unwrap();
    }
    let sweep = tmp.path().join("sweep");
    let mut args = vec![
        "sweep",
        "--data",
        data.to_str().unwrap(),
        "--velocity",
        vel.to_str().unwrap(),
        "--seeds",
        "2",
        "--quick",
        "--seed",
        "1",
        "--backend",
        "cpu",
        "--out",
        sweep.to_str().unwrap(),
    ];
    args.extend_from_slice(TINY_POINTS);
    let o = equiflow(&args);
    assert!(o.status.success(), "sweep failed: {}", stderr(&o));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["models"], 2);
    assert!(
        num(&summary["cos_truth_learned"], "mean").is_finite(),
        "{summary}"
    );
    let o = equiflow(&[
        "aggregate",
        "--backend",
        "cpu",
        sweep.join("seed-1").to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("trained on other snapshots"),
        "{}",
        stderr(&o)
    );
}

/// The same numbers as CSV and as `.npy` are the same run; 4-D data train with every
/// metric finite or explained.
#[test]
fn npy_and_csv_give_the_same_run_and_four_dimensions_train() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = 600;
    let values: Vec<f64> = (0..rows * 4)
        .map(|i| {
            let (r, c) = ((i / 4) as f64, (i % 4) as f64);
            (r * 0.37 + c).sin() * (1.0 + c) + (r * 0.011).cos()
        })
        .collect();
    let csv: String = std::iter::once("a,b,c,d\n".to_string())
        .chain(values.chunks(4).map(|r| {
            let cells: Vec<String> = r.iter().map(|v| v.to_string()).collect();
            cells.join(",") + "\n"
        }))
        .collect();
    let csv_path = tmp.path().join("four.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let mut npy = Vec::new();
    equiflow::data::table::write_npy(&mut npy, &values, 4).unwrap();
    let npy_path = tmp.path().join("four.npy");
    std::fs::write(&npy_path, npy).unwrap();

    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let o = train_data(&csv_path, &a, &[]);
    assert!(o.status.success(), "csv: {}", stderr(&o));
    let o = train_data(&npy_path, &b, &[]);
    assert!(o.status.success(), "npy: {}", stderr(&o));
    let losses = |d: &Path| std::fs::read_to_string(d.join("losses.csv")).unwrap();
    assert_eq!(losses(&a), losses(&b));
    let m = metrics(&a);
    for (k, v) in m.as_object().unwrap() {
        if let Some(x) = v.as_f64() {
            assert!(x.is_finite(), "{k} = {x}");
        }
    }
    assert!(m["non_finite"].is_null(), "{m}");
    assert!(num(&m, "mmd2_learned").is_finite() && num(&m, "lyapunov_mean").is_finite());
    assert!(m["not_measured"]["tangential_ratio"].is_string(), "{m}");
    // Columns picked by name make it 2-D, trained with the plane's settings.
    let c = tmp.path().join("c");
    let o = train_data(&csv_path, &c, &["--set", "dataset.columns=[\"b\", \"d\"]"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("in 2 dimensions"), "{}", stderr(&o));
    assert!(num(&metrics(&c), "tangential_ratio").is_finite());
}

/// Every way a user's file can be unusable: a sentence that says where, a non-zero exit,
/// nothing written, and an earlier run in the same place untouched.
#[test]
fn bad_snapshot_files_are_refused_with_a_sentence_and_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let good: String = (0..150)
        .map(|i| format!("{},{}\n", (i as f64 * 0.3).sin(), (i as f64 * 0.7).cos()))
        .collect();
    let wide: String = (0..150)
        .map(|i| {
            let cells: Vec<String> = (0..17).map(|c| ((i * c) % 13).to_string()).collect();
            cells.join(",") + "\n"
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "cell.csv",
            format!("x,y\n{good}1,oops\n").into_bytes(),
            "line 152, column 2 ('y'): 'oops' is not a number",
        ),
        (
            "ragged.csv",
            format!("{good}1,2,3\n").into_bytes(),
            "line 151: 3 cells where line 1 has 2",
        ),
        (
            "nan.csv",
            format!("{good}nan,1\n").into_bytes(),
            "line 151, column 1: NaN",
        ),
        (
            "inf.tsv",
            "1\tinf\n".repeat(150).into_bytes(),
            "line 1, column 2: infinity",
        ),
        (
            "few.csv",
            good.lines()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
            "40 rows; equiflow needs at least 100",
        ),
        ("one.csv", "1\n2\n".repeat(80).into_bytes(), "1 column"),
        ("wide.csv", wide.into_bytes(), "17 columns"),
        (
            "garbage.npy",
            b"\x00\x01garbage".to_vec(),
            "not a NumPy array file",
        ),
        (
            "binary.csv",
            vec![0xff, 0xfe, 0x00, 0x12, 0x80, 0x81],
            "not text",
        ),
        ("data.json", b"{}".to_vec(), "cannot tell the format"),
    ];
    let out = tmp.path().join("out");
    for (name, bytes, want) in &cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let o = train_data(&path, &out, &[]);
        assert!(!o.status.success(), "{name} was accepted");
        let err = stderr(&o);
        assert!(
            err.contains(want),
            "{name}: {err:?} should contain {want:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{name}: something was written");
    }
    // The velocity file must match the snapshots.
    let data = tmp.path().join("good.csv");
    std::fs::write(&data, &good).unwrap();
    let short = tmp.path().join("short.csv");
    std::fs::write(
        &short,
        good.lines().take(120).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let o = train_data(&data, &out, &["--velocity", short.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("has 120 rows"), "{}", stderr(&o));
    let o = train_data(&tmp.path().join("missing.csv"), &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    assert!(!out.exists());
    // An existing run stays as it was when a bad file is given with --force.
    let o = train_data(&data, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(out.join("flow.bpk")).unwrap();
    let bad = tmp.path().join("cell.csv");
    let o = train_data(&bad, &out, &["--force"]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(out.join("flow.bpk")).unwrap(), before);
}

/// Grey stripes, `w`×`h`, their phase shifted by `shift` pixels: a tiny travelling pattern.
fn stripes(path: &Path, w: u32, h: u32, shift: u32) {
    let img = image::GrayImage::from_fn(w, h, |x, y| {
        let v = (((x + y + shift) % 8) as f32 / 8.0 * std::f32::consts::TAU).sin();
        image::Luma([((v + 1.0) * 127.5) as u8])
    });
    img.save(path).unwrap();
}

/// The tiny image settings: one epoch, one sample, one trained NCA epoch, short metrics.
const TINY_IMAGES: &[&str] = &[
    "--flow",
    "nca",
    "--set",
    "score.epochs=1",
    "--set",
    "score.samples=1",
    "--set",
    "flow.epochs=1",
    "--set",
    "eval.cos_starts=2",
    "--set",
    "eval.cos_sde_steps=10",
];

fn train_images(data: &Path, out: &Path, extra: &[&str]) -> Output {
    train_own(data, out, TINY_IMAGES, extra)
}

/// A user's own image snapshots: a folder of grey frames and crops of one colour picture,
/// each trained end to end (score and NCA) on tiny data; the run keeps its pictures and
/// reopens without the originals; bad pictures are refused with a sentence, writing nothing.
#[test]
fn own_pictures_train_from_a_folder_and_from_crops_of_one_picture() {
    let tmp = tempfile::tempdir().unwrap();
    let frames = tmp.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    for i in 0..12 {
        stripes(&frames.join(format!("f{i:02}.png")), 16, 16, i);
    }
    let run = tmp.path().join("run-folder");
    let o = train_images(&frames, &run, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("12 pictures of 16²"), "{}", stderr(&o));
    assert!(stderr(&o).contains("grey"), "{}", stderr(&o));
    let m = metrics(&run);
    assert_eq!(m["pattern"], "frames");
    let (d, id) = (num(&m, "denoise_mse"), num(&m, "denoise_mse_identity"));
    assert!(d.is_finite() && id.is_finite() && d > 0.0, "{m}");
    assert!(num(&m, "flow_loss_final").is_finite(), "{m}");
    // The readings that apply to any pictures, for the training-free flow, v = 0 and the NCA.
    for key in ["look_tone_w1", "look_edge_ratio", "moved_rms"] {
        for run in ["_end", "_still", "_nca"] {
            let key = format!("{key}{run}").replace("moved_rms_end", "moved_rms");
            assert!(num(&m, &key).is_finite(), "{key} in {m}");
        }
    }
    assert!(m.get("blob_count_end").is_none() && m.get("cos_truth_training_free").is_none());
    let preset = std::fs::read_to_string(run.join("preset.toml")).unwrap();
    for line in ["kind = \"images\"", "channels = 1", "n = 12", "resize = 16"] {
        assert!(preset.contains(line), "{line} not in {preset}");
    }
    assert_eq!(std::fs::read_dir(run.join("data")).unwrap().count(), 12);
    // The run reopens without the original folder, and says it is gone.
    std::fs::rename(&frames, tmp.path().join("moved")).unwrap();
    let o = equiflow(&["eval", run.to_str().unwrap(), "--backend", "cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("is gone"), "{}", stderr(&o));

    // One colour picture (a transparent corner composited on white), 24 wrapping crops.
    let coat = tmp.path().join("coat.png");
    image::RgbaImage::from_fn(40, 40, |x, y| {
        let spot = ((x / 5 + y / 5) % 2) as u8 * 200;
        image::Rgba([spot, 80, 255 - spot, if x < 4 && y < 4 { 0 } else { 255 }])
    })
    .save(&coat)
    .unwrap();
    let run = tmp.path().join("run-picture");
    let crops = [
        "--set",
        "dataset.crops=24",
        "--set",
        "dataset.size=16",
        "--set",
        "dataset.periodic=true",
    ];
    let o = train_images(&coat, &run, &crops);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a 40×40 picture: 24 random crops of 16², wrapping around"),
        "{}",
        stderr(&o)
    );
    assert_eq!(metrics(&run)["pattern"], "coat");
    assert_eq!(
        std::fs::read(run.join("data.png")).unwrap(),
        std::fs::read(&coat).unwrap()
    );
    let preset = std::fs::read_to_string(run.join("preset.toml")).unwrap();
    assert!(preset.contains("channels = 3"), "{preset}");

    // Bad pictures: a sentence, a non-zero exit, nothing written.
    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    stripes(&mixed.join("a.png"), 16, 16, 0);
    stripes(&mixed.join("b.png"), 20, 16, 0);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let junk = tmp.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    stripes(&junk.join("a.png"), 16, 16, 0);
    let whole = std::fs::read(junk.join("a.png")).unwrap();
    std::fs::write(junk.join("b.png"), &whole[..whole.len() / 2]).unwrap();
    let out = tmp.path().join("bad");
    let big_crop = ["--set", "dataset.size=48"];
    let cases: [(&Path, &[&str], &str); 4] = [
        (&mixed, &[], "mixed sizes (a.png is 16×16, b.png is 20×16)"),
        (&empty, &[], "holds no PNG or JPEG pictures"),
        (&junk, &[], "b.png is not a picture equiflow can read"),
        (&coat, &big_crop, "larger than the picture"),
    ];
    for (path, extra, want) in cases {
        let o = train_images(path, &out, extra);
        let err = stderr(&o);
        assert!(!o.status.success(), "{} was accepted", path.display());
        assert!(err.contains(want), "{err:?} should contain {want:?}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{}: something was written", path.display());
    }
    // Mixed sizes train once they are fitted to one side.
    let o = train_images(&mixed, &out, &["--set", "dataset.resize=8"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
