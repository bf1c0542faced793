//! The app driven headlessly as a user would: egui_kittest clicks the real widgets while the
//! real worker thread trains tiny models on the CPU.

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use equiflow::backend::BackendChoice;
use equiflow::preset::{ImageFlow, Preset};
use equiflow::ui::EquiflowApp;
use equiflow::ui::results::JobState;
use equiflow::ui::state::{AppState, Tab, builtin_source};
use equiflow::worker::event::Preview;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A ring job small enough to finish in seconds on two CPU cores.
fn tiny(name: &str, extra: &[&str]) -> Preset {
    // Lorenz data are sized by runs and steps (`extra`), not by a point count.
    let n = if name == "lorenz" {
        None
    } else {
        Some("dataset.n=512")
    };
    let mut sets: Vec<&str> = n.into_iter().collect();
    sets.extend([
        "score.epochs=3",
        "flow.epochs=3",
        "score.samples=200",
        "eval.mmd_points=200",
        "eval.rk4_steps=20",
        "eval.lyapunov_candidates=16",
        "eval.lyapunov_keep=4",
        "eval.lyapunov_steps=40",
        "eval.lyapunov_window=10",
        "eval.cos_points=64",
    ]);
    sets.extend_from_slice(extra);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Preset::from_toml_str(name, &builtin_source(name).unwrap(), true, &sets).unwrap()
}

fn harness() -> Harness<'static, EquiflowApp> {
    let state = AppState {
        backend: BackendChoice::Cpu,
        ..AppState::default()
    };
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(
            |ui, app: &mut EquiflowApp| app.show(ui),
            EquiflowApp::new(state, || {}),
        )
}

/// Run frames until `cond` holds (the worker runs on its own thread meanwhile).
fn step_until(
    h: &mut Harness<'static, EquiflowApp>,
    what: &str,
    cond: impl Fn(&EquiflowApp) -> bool,
) {
    let t0 = Instant::now();
    while !cond(h.state()) {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}; message: {:?}",
            h.state().message
        );
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.step();
}

/// Run frames until the live pattern has gone more than `steps` SDE steps past where it is.
fn play_on(h: &mut Harness<'static, EquiflowApp>, what: &str, steps: usize) {
    let from = h
        .state()
        .results
        .pattern_frame
        .as_ref()
        .map_or(0, |f| f.steps);
    step_until(h, what, |a| {
        a.results
            .pattern_frame
            .as_ref()
            .is_some_and(|f| f.steps > from + steps)
    });
}

/// Wait for the message an export ends with; it is no error and names the file it wrote
/// under runs/exports/. Returns the message and that path.
fn exported(h: &mut Harness<'static, EquiflowApp>) -> (equiflow::ui::results::Message, String) {
    step_until(h, "the export", |a| a.message.is_some());
    let msg = h.state().message.clone().unwrap();
    assert!(!msg.error, "{msg:?}");
    let path = msg
        .text
        .split_whitespace()
        .find(|w| w.starts_with("runs/exports/"))
        .map(|w| w.trim_end_matches(['.', ',']).to_string())
        .unwrap_or_else(|| panic!("no path in {msg:?}"));
    (msg, path)
}

/// Run frames until the preview drawn for the current settings has arrived; return it.
fn preview_of_settings(h: &mut Harness<'static, EquiflowApp>, what: &str) -> Preview {
    step_until(h, what, |a| {
        a.preview.as_ref().is_some_and(|p| p.matches(&a.settings))
    });
    h.state().preview.clone().unwrap()
}

fn click(h: &mut Harness<'static, EquiflowApp>, label: &str) {
    h.get_by_label(label).click();
    h.step();
    h.step();
}

#[test]
fn opens_on_the_ring_and_a_job_trains_pauses_resumes_and_finishes() {
    let mut h = harness();
    h.step();
    assert_eq!(h.state().settings.name, "ring");
    assert!(h.query_by_label("Train").is_some());
    assert!(h.query_by_label("What am I seeing?").is_some());

    // A longer score phase, so there is time to pause it.
    h.state_mut().settings = tiny("ring", &["score.epochs=400"]);
    click(&mut h, "Train");
    step_until(&mut h, "progress and a loss point", |a| {
        a.results.progress_events > 0 && !a.results.score_losses.is_empty()
    });
    assert!(
        h.state()
            .results
            .job
            .as_ref()
            .unwrap()
            .backend
            .starts_with("cpu")
    );

    click(&mut h, "Pause");
    step_until(&mut h, "the pause", |a| a.results.state == JobState::Paused);
    let frozen = h.state().results.progress.clone();
    for _ in 0..20 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        h.state().results.progress,
        frozen,
        "progress moved while paused"
    );

    click(&mut h, "Resume");
    step_until(&mut h, "the end of the job", |a| {
        a.results.state == JobState::Finished
    });
    let app = h.state();
    assert_eq!(app.results.score_losses.len(), 400);
    assert_eq!(app.results.flow_losses.len(), 3);
    assert!(app.results.samples.is_some() && app.results.score_field.is_some());
    assert!(app.results.streamlines.is_some());
    let (m, curves) = app.results.metrics.as_ref().expect("metrics at the end");
    assert!(m.mmd2_learned.is_finite() && m.tangential_ratio.is_some());
    assert_eq!(curves.len(), 4);
    assert!(!app.message.as_ref().unwrap().error);

    // Autosave writes the job's models to one directory, replaced at each autosave.
    h.state_mut().autosave();
    step_until(&mut h, "the autosave", |a| a.results.autosaved.is_some());
    let dir = h.state().results.autosaved.clone().unwrap();
    assert!(dir.join("score.bpk").is_file() && dir.join("flow.bpk").is_file());
    std::fs::remove_file(dir.join("metrics.json")).unwrap();
    h.state_mut().results.autosaved = None;
    h.state_mut().autosave();
    step_until(&mut h, "the second autosave", |a| {
        a.results.autosaved.is_some()
    });
    assert_eq!(
        h.state().results.autosaved.as_ref(),
        Some(&dir),
        "the same directory"
    );
    assert!(dir.join("metrics.json").is_file(), "written again, whole");
    std::fs::remove_dir_all(&dir).unwrap();

    // The flow view animates particles under the trained flow.
    click(&mut h, "Flow");
    step_until(&mut h, "particles", |a| a.results.particles.is_some());
    let n = h.state().results.particles.as_ref().unwrap().count();
    assert_eq!(n, h.state().state.particles_2d);
    // Every other view draws the finished job without trouble.
    for tab in Tab::ALL {
        click(&mut h, tab.label());
        assert_eq!(h.state().state.tab, tab);
    }
    assert!(h.query_by_label("MMD² learned").is_none(), "Lorenz tab now");
    click(&mut h, "Metrics");
    assert!(h.query_by_label("MMD² learned").is_some());
}

#[test]
fn stop_ends_a_job_and_space_starts_one() {
    let mut h = harness();
    h.state_mut().settings = tiny("ring", &["score.epochs=100000"]);
    h.key_press(egui::Key::Space);
    h.step();
    step_until(&mut h, "training", |a| a.results.progress_events > 0);
    click(&mut h, "Stop");
    step_until(&mut h, "the stop", |a| {
        a.results.state == JobState::Finished
    });
    let msg = h.state().message.clone().unwrap();
    assert!(msg.text.contains("stopped by you"), "{msg:?}");
    // What was trained can still be saved.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    h.state_mut().save_run(Some(out.clone()));
    step_until(&mut h, "the save", |a| a.results.saved.is_some());
    assert!(out.join("score.bpk").is_file() && out.join("preset.toml").is_file());
}

#[test]
fn failures_show_a_message_and_leave_the_app_usable() {
    let mut h = harness();
    // Invalid settings: refused before anything starts.
    let mut bad = tiny("ring", &[]);
    bad.score.epochs = 0;
    h.state_mut().settings = bad;
    click(&mut h, "Train");
    let msg = h.state().message.clone().unwrap();
    assert!(msg.error && msg.text.contains("score.epochs"), "{msg:?}");
    assert_eq!(h.state().results.state, JobState::Idle);

    // A learning rate that blows the loss up: the job fails and says why.
    h.state_mut().settings = tiny("ring", &["score.lr=1e30"]);
    click(&mut h, "Train");
    step_until(&mut h, "the failure", |a| {
        a.results.state == JobState::Failed
    });
    let msg = h.state().message.clone().unwrap();
    assert!(msg.error && msg.text.contains("NaN"), "{msg:?}");

    // A crash inside the job (a bug): reported, and the worker lives on.
    h.state_mut().settings = tiny("ring", &["score.epochs=100000"]);
    click(&mut h, "Train");
    // The new job's own progress (the failed one's results stay until it starts).
    step_until(&mut h, "training", |a| {
        a.results.state == JobState::Training && a.results.progress_events > 0
    });
    h.state_mut().inject_failure();
    step_until(&mut h, "the crash report", |a| {
        a.results.state == JobState::Failed
    });
    let msg = h.state().message.clone().unwrap();
    assert!(msg.error && msg.text.contains("crashed"), "{msg:?}");

    // Still usable: the next job trains to the end.
    h.state_mut().settings = tiny("ring", &[]);
    click(&mut h, "Train");
    step_until(&mut h, "a good job", |a| {
        a.results.state == JobState::Finished
    });
    assert!(h.state().results.metrics.is_some());
}

#[derive(Debug)]
struct Dropped {
    path: PathBuf,
    text: String,
}

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.path
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        Ok(self.text.clone().into_bytes())
    }
}

fn drop_file(h: &mut Harness<'static, EquiflowApp>, name: &str, text: &str) {
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped {
            path: PathBuf::from(name),
            text: text.into(),
        }));
    h.step();
    h.step();
}

#[test]
fn dropping_a_preset_loads_it_or_says_what_is_wrong() {
    let mut h = harness();
    drop_file(&mut h, "broken.toml", "[score]\nepochs = \"many\"\n");
    let msg = h.state().message.clone().unwrap();
    assert!(msg.error && msg.text.contains("broken.toml"), "{msg:?}");
    assert!(
        h.query_by_label_contains("broken.toml").is_some(),
        "shown in the panel"
    );
    assert_eq!(h.state().settings.name, "ring", "nothing changed");

    let lorenz = builtin_source("lorenz").unwrap();
    drop_file(&mut h, "mine.toml", &lorenz);
    assert!(!h.state().message.as_ref().unwrap().error);
    assert_eq!(h.state().state.preset_name, "mine.toml");
    assert_eq!(h.state().settings.dataset.kind().dim(), 3);

    // Built-in presets are picked from the combo box.
    click(&mut h, "Preset");
    click(&mut h, "two_moons");
    assert_eq!(h.state().settings.name, "two_moons");
}

#[test]
fn the_lorenz_view_shows_learned_trajectories_in_3d() {
    let mut h = harness();
    h.state_mut().settings = tiny("lorenz", &["dataset.runs=4", "dataset.steps_per_run=200"]);
    click(&mut h, "3-D");
    click(&mut h, "Train");
    step_until(&mut h, "3-D particles", |a| {
        a.results.particles.as_ref().is_some_and(|f| f.dim == 3)
    });
    let app = h.state();
    assert!(app.results.points().unwrap().truth.is_some());
    assert_eq!(
        app.results.particles.as_ref().unwrap().count(),
        app.state.particles_3d
    );
    // Dragging on the view turns the camera.
    let yaw = app.state.camera.yaw;
    let centre = h.get_by_label("What am I seeing?").rect().center() + egui::vec2(0.0, 300.0);
    h.drag_at(centre);
    h.step();
    h.hover_at(centre + egui::vec2(80.0, 0.0));
    h.step();
    h.drop_at(centre + egui::vec2(80.0, 0.0));
    h.step();
    assert_ne!(h.state().state.camera.yaw, yaw);
}

/// A Turing job on the CPU in seconds: 24² maze snapshots and a UNet of 4/8/16 channels.
fn tiny_pattern() -> Preset {
    let sets: Vec<String> = [
        "dataset.n=64",
        "dataset.size=24",
        "dataset.sim_steps=1500",
        "dataset.pattern=maze",
        "score.channels=[4, 8, 16]",
        "score.epochs=3",
        "score.batch=16",
        "score.samples=2",
        "eval.cos_starts=1",
        "eval.cos_sde_steps=5",
        // The paper's protocol is fixed at 199 SDE steps per kernel: tested in tests/cli.rs.
        "eval.protocol=\"ours\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Preset::from_toml_str("gs-maze", &builtin_source("gs-maze").unwrap(), true, &sets).unwrap()
}

#[test]
fn a_turing_preset_trains_and_its_pattern_plays_beside_the_truth() {
    let mut h = harness();
    h.step();
    h.state_mut().choose_preset("gs-maze");
    let preset = tiny_pattern();
    h.state_mut().set_settings(preset);
    h.step();
    // Image jobs show their own views, and the F–k map and live controls.
    assert!(h.query_by_label("Patterns").is_some());
    assert!(h.query_by_label("3-D").is_none());
    assert!(h.query_by_label("Restart from noise").is_some());
    click(&mut h, "Train");
    step_until(&mut h, "the job to finish", |a| {
        matches!(a.results.state, JobState::Finished | JobState::Failed)
    });
    let app = h.state();
    assert_eq!(app.results.state, JobState::Finished, "{:?}", app.message);
    assert_eq!(app.results.data_images.as_ref().unwrap().count(), 8);
    assert_eq!(app.results.sample_images.as_ref().unwrap().count(), 2);
    assert_eq!(app.results.score_losses.len(), 3);
    let m = app.results.pattern_metrics.as_ref().unwrap();
    assert!((0.0..=1.0).contains(&m.cos_truth_training_free.unwrap()));

    // The learned pattern plays beside the truth while the Patterns view is open.
    click(&mut h, "Patterns");
    assert_eq!(h.state().state.tab, Tab::Pattern);
    step_until(&mut h, "pattern frames", |a| {
        a.results
            .pattern_frame
            .as_ref()
            .is_some_and(|f| f.steps > 20)
    });
    let f = h.state().results.pattern_frame.clone().unwrap();
    assert_eq!(f.learned.len(), 2 * 24 * 24);
    assert_ne!(f.truth, f.learned);
    // Restarting from noise starts the step count again.
    click(&mut h, "Restart from noise");
    step_until(&mut h, "a restarted simulation", |a| {
        a.results
            .pattern_frame
            .as_ref()
            .is_some_and(|f| f.steps < 20)
    });
    // The spatial kernel and the reversed sign play too.
    click(&mut h, "k×k random");
    click(&mut h, "reverse (sign −1)");
    assert_eq!(h.state().state.sim.sign, -1.0);
    click(&mut h, "New dynamics");
    assert_eq!(h.state().state.sim.kernel_seed, 1);
    step_until(&mut h, "frames under the spatial kernel", |a| {
        a.results
            .pattern_frame
            .as_ref()
            .is_some_and(|f| f.steps > 40)
    });
    let f = h.state().results.pattern_frame.clone().unwrap();
    assert!(f.learned.iter().all(|x| x.is_finite()));
    for tab in Tab::IMAGES {
        click(&mut h, tab.label());
        assert_eq!(h.state().state.tab, tab);
    }
    assert!(h.query_by_label("|cos| training-free vs truth").is_some());
}

/// An artificial-life job on the CPU in seconds: 3 icons of 12 px on 32², a UNet of 4/8/16.
fn tiny_alife() -> Vec<String> {
    [
        "dataset.n=64",
        "dataset.size=32",
        "dataset.icon_size=12",
        "dataset.icons=3",
        "score.channels=[4, 8, 16]",
        "score.epochs=2",
        "score.batch=16",
        "score.samples=2",
        "eval.blob_starts=1",
        "eval.blob_steps=6",
        "eval.blob_every=3",
        "eval.noise_steps=4",
        "sde.canvas=48",
        "flow.epochs=2",
        "flow.batch=16",
        "flow.hidden=8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn an_image_preset_shows_its_first_training_images_before_training() {
    let mut h = harness();
    h.step();
    h.state_mut().choose_preset("alife-firefly");
    h.step();
    click(&mut h, "Patterns");
    assert_eq!(h.state().state.tab, Tab::Pattern);
    let p = preview_of_settings(&mut h, "the preview");
    assert!(h.query_by_label_contains("What will be learned").is_some());
    assert_eq!(h.state().results.state, JobState::Idle, "nothing trains");
    let settings = h.state().settings.clone();
    let images = p.images.as_ref().unwrap();
    let alife = settings.dataset.alife().unwrap();
    let size = alife.size;
    assert_eq!((images.count(), images.channels, images.h), (4, 3, size));
    // They are the job's own first training images, not a look-alike.
    let tiling = equiflow::data::tiler::Tiling::from_settings(alife).unwrap();
    let data = equiflow::data::tiler::generate(tiling, 6, settings.seed, &mut |_, _| true)
        .unwrap()
        .unwrap();
    assert_eq!(images.data, data.gather(&[0, 1, 2, 3]));
    // Two colours on white: the firefly's blue is there.
    let plane = size * size;
    assert!((0..plane).any(|i| images.data[2 * plane + i] > 0.5 && images.data[i] < 0.0));

    // Another seed is another preview; the Data tab shows it too.
    h.state_mut().settings.seed = 7;
    click(&mut h, "Data");
    let other = preview_of_settings(&mut h, "the new preview");
    assert_ne!(other.images.unwrap().data, images.data);
    assert!(h.query_by_label_contains("What will be learned").is_some());

    // A Turing preset previews its snapshots; settings that cannot run say why.
    h.state_mut().set_settings(tiny_pattern());
    let turing = preview_of_settings(&mut h, "the Turing preview");
    assert_eq!(turing.images.unwrap().channels, 2);
    *h.state_mut().settings.dataset.images_mut().unwrap().1 = 10;
    let e = preview_of_settings(&mut h, "the refusal")
        .images
        .unwrap_err();
    assert!(e.contains("size"), "{e}");
    assert!(h.query_by_label_contains("No preview:").is_some());
}

#[test]
fn a_painted_target_trains_and_its_icons_play_with_trails_and_export() {
    let mut h = harness();
    h.step();
    h.state_mut().choose_preset("alife-dot");
    h.step();
    assert!(h.query_by_label("Paint").is_some());
    click(&mut h, "Paint");
    assert_eq!(h.state().state.tab, Tab::Paint);
    // Start from a built-in, paint over it with the real canvas widget, undo, redo.
    click(&mut h, "taiji");
    let before = h.state().paint.icon.clone();
    click(&mut h, "Clear");
    assert!(h.state().paint.icon.is_blank());
    h.state_mut()
        .paint
        .press(32.0, 32.0, equiflow::ui::paint::Brush::default());
    h.state_mut().paint.drag(40.0, 32.0);
    h.state_mut().paint.end_stroke();
    let painted = h.state().paint.icon.clone();
    assert!(!painted.is_blank());
    click(&mut h, "Undo");
    assert!(h.state().paint.icon.is_blank());
    click(&mut h, "Undo");
    assert_eq!(h.state().paint.icon, before);
    click(&mut h, "Redo");
    click(&mut h, "Redo");
    assert_eq!(h.state().paint.icon, painted);

    // Use it: the target becomes a PNG under runs/targets, and the quick settings shrink.
    click(&mut h, "Use as target");
    let target = h.state().settings.dataset.alife().unwrap().target.clone();
    assert!(target.starts_with("runs/targets/painted-"), "{target}");
    let reloaded = equiflow::data::icon::Icon::load(&target, 64).unwrap();
    assert_eq!(reloaded.to_rgba8(), painted.to_rgba8());
    let preset = Preset::from_toml_str(
        "alife-dot",
        &builtin_source("alife-dot").unwrap(),
        true,
        &tiny_alife()
            .into_iter()
            .chain([format!("dataset.target=\"{target}\"")])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    h.state_mut().set_settings(preset);
    // The flow: a neural cellular automaton trained after the score.
    click(&mut h, "trained NCA");
    assert_eq!(h.state().settings.sde.flow, ImageFlow::Nca);
    click(&mut h, "Train");
    click(&mut h, "NCA");
    step_until(&mut h, "the NCA to train", |a| {
        a.results.nca_rule.is_some()
            || matches!(a.results.state, JobState::Finished | JobState::Failed)
    });
    step_until(&mut h, "the job to finish", |a| {
        matches!(a.results.state, JobState::Finished | JobState::Failed)
    });
    let app = h.state();
    assert_eq!(app.results.state, JobState::Finished, "{:?}", app.message);
    let data = app.results.data_images.as_ref().unwrap();
    assert_eq!((data.channels, data.h), (3, 32));
    let m = app.results.pattern_metrics.as_ref().unwrap();
    assert!(m.blob_count_start.is_some() && m.cos_truth_training_free.is_none());
    assert!(m.blob_speed_nca.is_some() && m.flow_loss_final.is_some());
    assert_eq!(app.results.flow_losses.len(), 2, "two NCA epochs");
    let rule = app.results.nca_rule.as_ref().unwrap();
    assert_eq!(
        rule.steps,
        equiflow::worker::event::RuleAt::Trained,
        "the trained rule arrives at the end"
    );
    assert_eq!(rule.kernels.len(), 8 * 3 * 9);
    assert!(rule.cos.is_none(), "no true field for artificial life");
    // The NCA tab plays the trained NCA live.
    play_on(&mut h, "the NCA running", 8);
    assert!(h.query_by_label("NCA trained").is_some());

    // The icons play on a larger live canvas, tracked, with readouts.
    click(&mut h, "Patterns");
    step_until(&mut h, "live frames", |a| {
        a.results
            .pattern_frame
            .as_ref()
            .is_some_and(|f| f.steps > 12)
    });
    let f = h.state().results.pattern_frame.clone().unwrap();
    assert_eq!((f.channels, f.h, f.w), (3, 48, 48));
    assert!(f.truth.is_empty());
    assert!(h.state().results.blob_history.len() >= 3);
    // The NCA replaces the skew kernel, so its controls step aside.
    assert!(h.query_by_label("New dynamics").is_none());
    assert!(
        h.query_by_label("v = the trained NCA (see the NCA tab)")
            .is_some()
    );

    // Exports land under runs/exports and say so.
    for (button, ext) in [
        ("Save GIF", "gif"),
        ("Save PNG", "png"),
        ("Save tracks CSV", "csv"),
    ] {
        h.state_mut().message = None;
        click(&mut h, button);
        let (_, path) = exported(&mut h);
        assert!(path.ends_with(ext), "{path}");
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.is_empty());
        if ext == "gif" {
            assert!(bytes.starts_with(b"GIF89a"));
        }
        if ext == "csv" {
            assert!(
                String::from_utf8(bytes)
                    .unwrap()
                    .starts_with("track,t,x,y\n")
            );
        }
        std::fs::remove_file(&path).unwrap();
    }
    // Recording: without ffmpeg the button is there but off; with one (a stand-in that
    // keeps the raw frames it is fed) the live frames stream into runs/exports/*.mp4.
    h.state_mut().ffmpeg = None;
    h.step();
    assert!(h.get_by_label("Record MP4").accesskit_node().is_disabled());
    let tools = tempfile::tempdir().unwrap();
    let fake = tools.path().join("ffmpeg");
    std::fs::write(&fake, "#!/bin/sh\nfor last; do :; done; cat > \"$last\"\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    h.state_mut().ffmpeg = Some(fake);
    h.state_mut().message = None;
    click(&mut h, "Record MP4");
    let msg = h.state().message.clone().unwrap();
    assert!(
        !msg.error && msg.text.starts_with("Recording to runs/exports/"),
        "{msg:?}"
    );
    play_on(&mut h, "frames to record", 12);
    h.state_mut().message = None;
    h.get_by_label_contains("Stop recording (").click();
    let (msg, path) = exported(&mut h);
    assert!(path.ends_with(".mp4"), "{path}");
    let frames: usize = msg
        .text
        .split('(')
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(frames >= 2, "{msg:?}");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes.len(),
        frames * 48 * 48 * 4,
        "every recorded frame, whole"
    );
    std::fs::remove_file(&path).unwrap();
    assert!(h.query_by_label("Record MP4").is_some());

    let _ = std::fs::remove_file(&target);
    for tab in Tab::ALIFE {
        click(&mut h, tab.label());
        assert_eq!(h.state().state.tab, tab);
    }
    assert!(h.query_by_label("blob speed").is_some());
}

#[test]
fn a_dropped_picture_lands_on_the_canvas_and_garbage_gets_a_clear_error() {
    let mut h = harness();
    h.step();
    h.state_mut().choose_preset("alife-firefly");
    h.step();
    // The canvas holds the target of the preset that is open, not the default dot.
    let firefly = equiflow::data::icon::Icon::builtin("firefly", 64).unwrap();
    assert_eq!(h.state().paint.icon, firefly);
    h.state_mut().choose_preset("alife-dots");
    h.step();
    let dots = equiflow::data::icon::Icon::builtin("dots", 64).unwrap();
    assert_eq!(h.state().paint.icon, dots);
    assert!(
        h.state().paint.can_undo(),
        "the previous picture is one undo away"
    );
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("odd.png");
    equiflow::data::icon::Icon::builtin("firefly", 37)
        .unwrap()
        .save_png(&good)
        .unwrap();
    h.state_mut()
        .load_target_file(&good, std::fs::read(&good).map_err(|e| e.to_string()));
    h.step();
    let app = h.state();
    assert!(!app.message.as_ref().unwrap().error, "{:?}", app.message);
    assert_eq!(app.state.tab, Tab::Paint);
    assert_eq!(app.paint.icon.size, 64);
    assert!(app.paint.can_undo());
    h.state_mut()
        .load_target_file(Path::new("junk.png"), Ok(b"\x89PNG garbage".to_vec()));
    h.step();
    let msg = h.state().message.clone().unwrap();
    assert!(msg.error && msg.text.contains("junk.png"), "{msg:?}");
}

/// A Turing job with a trained NCA: its |cos| to the truth is measured live as it trains
/// (each measurement one SDE run against the protocol's shared v = 0 run), and the metrics
/// carry the random-kernel baseline with its spread.
#[test]
fn a_turing_nca_reports_its_live_cos_as_it_trains() {
    let mut h = harness();
    h.step();
    h.state_mut().choose_preset("gs-maze");
    let mut preset = tiny_pattern();
    preset.sde.flow = equiflow::preset::ImageFlow::Nca;
    preset.flow.epochs = 3;
    preset.flow.batch = 16;
    preset.eval.random_draws = 3;
    h.state_mut().set_settings(preset);
    h.step();
    click(&mut h, "Train");
    step_until(&mut h, "the job to finish", |a| {
        matches!(a.results.state, JobState::Finished | JobState::Failed)
    });
    let app = h.state();
    assert_eq!(app.results.state, JobState::Finished, "{:?}", app.message);
    let cos = &app.results.nca_cos;
    assert!(cos.len() >= 2, "live |cos| points: {cos:?}");
    assert!(cos.iter().all(|p| (0.0..=1.0).contains(&p[1])), "{cos:?}");
    let m = app.results.pattern_metrics.as_ref().unwrap();
    assert!(m.cos_truth_nca.is_some() && m.cos_truth_nca_random.is_some());
    let (mean, sd) = (
        m.cos_truth_random_kernel_mean.unwrap(),
        m.cos_truth_random_kernel_sd.unwrap(),
    );
    assert!((0.0..=1.0).contains(&mean) && sd > 0.0, "{mean} ± {sd}");
}

/// The Solutions view: a sweep runs live (its models measured one by one), the heat map and
/// the plane fill, and a click on a model plays its flow in the 3-D view.
#[test]
fn a_sweep_runs_in_the_solutions_view_and_a_click_plays_a_model() {
    let mut h = harness();
    h.state_mut().settings = tiny(
        "lorenz",
        &[
            "dataset.runs=2",
            "dataset.steps_per_run=150",
            "flow.hidden=16",
            "eval.protocol=\"ours\"",
        ],
    );
    h.state_mut().state.sweep_seeds = 3;
    h.state_mut().state.sweep_stack = 2;
    click(&mut h, "Solutions");
    assert!(h.query_by_label_contains("No sweep yet").is_some());
    click(&mut h, "Run sweep");
    step_until(&mut h, "the sweep to finish", |a| {
        a.results.state == JobState::Finished
            && a.results
                .solutions
                .as_ref()
                .is_some_and(|s| !s.summary.is_empty())
    });
    let s = h.state().results.solutions.clone().unwrap();
    assert_eq!(s.len(), 3);
    assert!(s.embedding.iter().all(|p| p.is_some()));
    assert!((0..3).all(|i| (0..3).all(|j| s.agreement(i, j).is_some())));
    assert!(
        h.query_by_label_contains("3 of 3 models measured")
            .is_some()
    );
    assert_eq!(s.watched, Some(0));
    // Click the last model: it becomes the one the flow views play, with its metrics.
    click(&mut h, &format!("seed {}", s.seeds[2]));
    step_until(&mut h, "model 3 to play", |a| {
        a.results
            .solutions
            .as_ref()
            .is_some_and(|s| s.watched == Some(2))
    });
    let cos = h
        .state()
        .results
        .metrics
        .as_ref()
        .and_then(|(m, _)| m.cos_truth_learned);
    assert_eq!(cos, s.cos_truth[2]);
    click(&mut h, "3-D");
    h.state_mut().results.particles = None;
    step_until(&mut h, "its trajectories in 3-D", |a| {
        a.results.particles.as_ref().is_some_and(|f| f.dim == 3)
    });
}

/// A user drops their own 4-D CSV: it opens as a new experiment with the closest built-in's
/// quick settings, the data show before training, the columns are editable, it trains and
/// plays on the axes picked; a garbage file gets a sentence and changes nothing.
#[test]
fn a_dropped_csv_opens_as_a_new_experiment_and_plays_on_picked_axes() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = std::iter::once("a,b,c,d\n".to_string())
        .chain((0..600).map(|r| {
            let r = r as f64;
            format!(
                "{},{},{},{}\n",
                (r * 0.37).sin(),
                (r * 0.51).cos(),
                (r * 0.13).sin() * 2.0,
                (r * 0.07).cos() + 0.1 * (r * 0.9).sin()
            )
        }))
        .collect();
    let path = dir.path().join("four.csv");
    std::fs::write(&path, &text).unwrap();
    let mut h = harness();
    h.step();
    drop_file(&mut h, path.to_str().unwrap(), &text);
    step_until(&mut h, "the file's data", |a| a.results.dim() == Some(4));
    let app = h.state();
    assert_eq!(app.settings.name, "four");
    assert_eq!(app.state.preset_name, "four");
    let msg = app.message.clone().unwrap();
    assert!(
        !msg.error && msg.text.contains("600 snapshots in 4 dimensions"),
        "{msg:?}"
    );
    assert_eq!(app.results.state, JobState::Idle, "shown, not trained");

    // The columns are picked in the panel; the data shown follow before anything trains.
    h.get_by_label("columns").focus();
    h.step();
    h.get_by_label("columns").type_text("b, d");
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    let picked = h.state().settings.dataset.file().unwrap().columns.clone();
    assert_eq!(
        picked,
        [
            equiflow::preset::Column::Name("b".into()),
            equiflow::preset::Column::Name("d".into())
        ]
    );
    step_until(&mut h, "the 2-D preview", |a| a.results.dim() == Some(2));
    assert_eq!(h.state().results.state, JobState::Idle);
    // Emptied: every column again.
    h.get_by_label("columns").focus();
    h.step();
    for _ in 0..8 {
        h.key_press(egui::Key::Backspace);
    }
    h.key_press(egui::Key::Enter);
    h.step();
    assert!(
        h.state()
            .settings
            .dataset
            .file()
            .unwrap()
            .columns
            .is_empty()
    );
    step_until(&mut h, "the 4-D preview", |a| a.results.dim() == Some(4));

    // Tiny training, then play it on axes b, c, d.
    let sets: Vec<String> = [
        "score.epochs=3",
        "flow.epochs=3",
        "score.samples=100",
        "eval.mmd_points=100",
        "eval.rk4_steps=10",
        "eval.lyapunov_candidates=8",
        "eval.lyapunov_keep=4",
        "eval.lyapunov_steps=20",
        "eval.lyapunov_window=10",
        "eval.cos_points=64",
        "eval.protocol=\"ours\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Velocities at the same states (picked with the panel's Open… beside "velocities").
    let vel = dir.path().join("four-v.csv");
    let vtext: String = std::iter::once("a,b,c,d\n".to_string())
        .chain((0..600).map(|r| format!("{},{},{},{}\n", r % 7, r % 5, -(r % 3), r % 11)))
        .collect();
    std::fs::write(&vel, vtext).unwrap();
    h.state_mut().set_velocity_file(&vel);
    h.step();
    assert!(
        h.query_by_label("four-v.csv").is_some(),
        "shown in the panel"
    );
    let tiny = Preset::from_toml_str("four", &h.state().settings.to_toml(), false, &sets).unwrap();
    h.state_mut().set_settings(tiny);
    h.state_mut().state.axes = [1, 2, 3];
    click(&mut h, "3-D");
    click(&mut h, "Train");
    step_until(&mut h, "4-D particles", |a| {
        a.results.particles.as_ref().is_some_and(|f| f.dim == 4)
    });
    step_until(&mut h, "the metrics", |a| a.results.metrics.is_some());
    let m = &h.state().results.metrics.as_ref().unwrap().0;
    assert!(m.mmd2_learned.is_finite() && m.lyapunov_mean.is_some());
    assert!(m.not_measured.contains_key("tangential_ratio"));
    assert!(m.cos_truth_learned.is_some() && m.cos_truth_random_sd.is_some());

    // A file that cannot be used: a sentence with the line, and nothing changes.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "x,y\n1,2\n3,oops\n").unwrap();
    drop_file(&mut h, bad.to_str().unwrap(), "");
    step_until(&mut h, "the refusal", |a| {
        a.message.as_ref().is_some_and(|m| m.error)
    });
    let msg = h.state().message.clone().unwrap();
    assert!(msg.text.contains("line 3, column 2"), "{msg:?}");
    assert_eq!(h.state().settings.name, "four");
}

/// A user drops a folder of grey frames: it opens as an image experiment (the frames show
/// before training, its choices are in the panel), trains and plays live in grey; a picture
/// dropped while no artificial life is open opens as crops, and an empty folder gets a
/// sentence and changes nothing.
#[test]
fn a_dropped_folder_of_pictures_opens_trains_and_plays() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    for i in 0..8u32 {
        image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(((x + y + i) % 6) * 50) as u8]))
            .save(frames.join(format!("{i}.png")))
            .unwrap();
    }
    let mut h = harness();
    h.step();
    drop_file(&mut h, frames.to_str().unwrap(), "");
    step_until(&mut h, "the frames' preview", |a| {
        a.settings.name == "frames"
            && a.preview.as_ref().is_some_and(|p| {
                p.images
                    .as_ref()
                    .is_ok_and(|i| i.channels == 1 && i.h == 16)
            })
    });
    let app = h.state();
    let msg = app.message.clone().unwrap();
    assert!(
        !msg.error && msg.text.contains("8 pictures of 16²"),
        "{msg:?}"
    );
    assert_eq!(app.results.state, JobState::Idle, "shown, not trained");
    assert!(h.query_by_label("crops").is_none() && h.query_by_label("pictures").is_some());

    let sets: Vec<String> = [
        "score.epochs=1",
        "score.samples=1",
        "eval.cos_starts=2",
        "eval.cos_sde_steps=10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let tiny =
        Preset::from_toml_str("frames", &h.state().settings.to_toml(), false, &sets).unwrap();
    h.state_mut().set_settings(tiny);
    click(&mut h, "Train");
    step_until(&mut h, "the job to finish", |a| {
        matches!(a.results.state, JobState::Finished | JobState::Failed)
    });
    assert_eq!(
        h.state().results.state,
        JobState::Finished,
        "{:?}",
        h.state().message
    );
    let m = h.state().results.pattern_metrics.clone().unwrap();
    assert!(m.denoise_mse.is_finite() && m.pattern == "frames");
    click(&mut h, "Patterns");
    play_on(&mut h, "grey frames playing", 10);
    let f = h.state().results.pattern_frame.clone().unwrap();
    assert_eq!((f.channels, f.learned.len()), (1, 16 * 16));

    // One picture opens as crops of it.
    let coat = dir.path().join("coat.png");
    image::RgbImage::from_fn(40, 40, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 6) as u8, 90])
    })
    .save(&coat)
    .unwrap();
    drop_file(&mut h, coat.to_str().unwrap(), "");
    step_until(&mut h, "the picture opened", |a| a.settings.name == "coat");
    assert!(h.query_by_label("crops").is_some());

    // An empty folder: a sentence, and the experiment stays.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    drop_file(&mut h, empty.to_str().unwrap(), "");
    step_until(&mut h, "the refusal", |a| {
        a.message.as_ref().is_some_and(|m| m.error)
    });
    let msg = h.state().message.clone().unwrap();
    assert!(msg.text.contains("holds no PNG or JPEG"), "{msg:?}");
    assert_eq!(h.state().settings.name, "coat");
}
