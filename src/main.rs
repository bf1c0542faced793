//! The command line: no subcommand opens the app; `train`, `eval`, `bench`, `presets` run
//! headless.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use equiflow::backend::{Backend, BackendChoice};
use equiflow::bench::{self, BenchConfig};
use equiflow::data::Dataset;
use equiflow::data::icon::Icon;
use equiflow::metrics::report::Metrics;
use equiflow::preset::{self, ImageFlow, Preset};
use equiflow::train::checkpoint::{self, RunDir};
use equiflow::train::evaluate::evaluate;
use equiflow::train::job::{self, Observer, Phase, Progress};
use equiflow::train::{cross, own_data, sweep, turing};
use equiflow::ui::Renderer;
use equiflow::worker::drive;
use equiflow::worker::event::{Event, ModelState};
use equiflow::worker::job::JobSession;
use equiflow::worker::patterns::PatternSession;
use equiflow::worker::session::Session;
use equiflow::worker::sweep_session::SweepSession;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Parser)]
#[command(
    name = "equiflow",
    version,
    about = "Equilibrium flow: from snapshots of a system to dynamics that keep its distribution"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// How the app window is drawn (without a subcommand): glow (OpenGL, smooth on any
    /// machine) or wgpu (for a real GPU).
    #[arg(long, value_enum, default_value_t = Renderer::Glow)]
    renderer: Renderer,
    /// Open the app on this preset (a built-in name or a .toml file), scaled down as with
    /// --quick unless --full is given.
    #[arg(long)]
    preset: Option<String>,
    /// With --preset: the preset's full settings rather than its [quick] ones.
    #[arg(long)]
    full: bool,
    /// With --preset: override a setting, e.g. --set dataset.pattern=maze (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train the score model, then the flow; write a run directory with models and metrics.
    Train(TrainArgs),
    /// Recompute the metrics of a run directory from its saved models.
    Eval {
        /// The run directory written by `train`.
        dir: PathBuf,
        /// Print the metrics as JSON (the metrics.json format).
        #[arg(long)]
        json: bool,
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
    },
    /// Time score and flow training steps (exact vs Hutchinson-10; on the CPU the host step vs
    /// burn's autodiff) on each backend.
    Bench {
        /// Print the rows as a JSON list.
        #[arg(long)]
        json: bool,
        /// Timed steps per case (after 3 warm-up steps).
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Only this backend (default: every available one).
        #[arg(long, value_enum)]
        backend: Option<BackendChoice>,
        /// Instead: time the Gray–Scott stencil on a 256² grid against the naive loop.
        #[arg(long)]
        gray_scott: bool,
        /// Instead: time the image models (UNet step, score at tau, live SDE step) for the
        /// plain and the residual UNet.
        #[arg(long, conflicts_with = "gray_scott")]
        images: bool,
        /// Instead: read a CSV of 1 000 000 rows × 3 (written first) as a table and as a
        /// dataset, timing both and measuring the peak memory the load takes.
        #[arg(long, conflicts_with_all = ["gray_scott", "images"])]
        loader: bool,
        /// With --images: only this case (repeatable), e.g. --case unet_step_quick.
        #[arg(long = "case", value_name = "CASE", requires = "images")]
        cases: Vec<String>,
    },
    /// Train a neural cellular automaton on the score model of an image run (Turing or
    /// artificial life); adds flow.bpk and the NCA metrics to the run directory.
    TrainNca {
        /// The run directory written by `train`.
        dir: PathBuf,
        /// Override a setting of the run, e.g. --set flow.epochs=4 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
    },
    /// Train one score model and N flows that differ only in their seed, then summarise
    /// what they agree on (DIR/seed-K run dirs, DIR/models.csv, DIR/summary.json).
    Sweep(SweepArgs),
    /// The learned motion of each Turing preset's score against every preset's Gray–Scott
    /// displacement, by the paper's protocol: each preset trained into DIR/<preset> (a run
    /// there with the same settings is reused), the table printed and written to
    /// DIR/cross.json.
    Cross(CrossArgs),
    /// The sweep summary (models.csv, summary.json) of point run directories trained anywhere.
    Aggregate {
        /// Run directories written by `train` or `sweep`.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where models.csv and summary.json go (default: print the summary only).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
    },
    /// List the built-in presets.
    Presets,
    /// Write the example snapshot files (the Thomas attractor's states and velocities, and a
    /// Gray–Scott pattern picture, as shipped in assets/examples) into a folder, to try
    /// --data and --velocity on.
    Examples {
        #[arg(long, default_value = "examples")]
        out: PathBuf,
    },
    /// Draw a built-in artificial-life target (dot, dots, firefly, taiji) as a PNG.
    Target {
        name: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Side in pixels.
        #[arg(long, default_value_t = equiflow::data::icon::ASSET_SIZE)]
        size: usize,
    },
}

/// What every training command takes besides its preset.
#[derive(Args)]
struct RunArgs {
    /// Overrides the preset's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory (default: under runs/, named for the preset, --quick and the seed).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Scale the preset down (its [quick] table) to train in a minute or two on a CPU.
    #[arg(long)]
    quick: bool,
    /// Override one setting, e.g. --set flow.lr=0.005 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Overwrite an output directory that already holds a run.
    #[arg(long)]
    force: bool,
}

impl RunArgs {
    /// The preset with the --quick table, --set overrides and --seed applied.
    fn preset(&self, name: &str, extra_sets: &[String]) -> Result<Preset> {
        let sets: Vec<String> = self.sets.iter().chain(extra_sets).cloned().collect();
        let mut preset = Preset::load(name, self.quick, &sets)?;
        if let Some(seed) = self.seed {
            preset.seed = seed;
        }
        Ok(preset)
    }

    /// --out, or `runs/<preset>[-quick]<what>-seed<seed>`.
    fn out(&self, preset: &Preset, what: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let quick = if self.quick { "-quick" } else { "" };
            PathBuf::from(format!(
                "runs/{}{quick}{what}-seed{}",
                preset.file_stem(),
                preset.seed
            ))
        })
    }
}

/// Your own snapshots instead of a preset's built-in system.
#[derive(Args)]
struct DataArgs {
    /// Your own snapshots: points from a file (.csv, .tsv, .txt or .npy: one row per state,
    /// one column per axis), or pictures (a folder of PNG/JPEG snapshots of one size, or one
    /// PNG/JPEG picture to take random crops from), trained with the settings of the
    /// closest built-in preset (or of --preset).
    #[arg(long, value_name = "FILE|DIR")]
    data: Option<PathBuf>,
    /// With --data: the true velocities at the same states (same rows and columns), to
    /// compare the learned flows with.
    #[arg(long, value_name = "FILE", requires = "data")]
    velocity: Option<PathBuf>,
}

impl DataArgs {
    /// The preset and its data: `preset` (default `fallback`) as it is, or — with --data —
    /// the file's snapshots with the settings of `preset` or of the built-in closest to the
    /// data. Point data are read here (pictures' headers), so a file that cannot be used fails
    /// before anything is written.
    fn load(
        &self,
        run: &RunArgs,
        preset: Option<&str>,
        fallback: &str,
        extra_sets: &[String],
    ) -> Result<(Preset, Option<Dataset>)> {
        let Some(path) = &self.data else {
            let preset = run.preset(preset.unwrap_or(fallback), extra_sets)?;
            if let Some(i) = preset.dataset.user_images() {
                equiflow::data::image_files::load(&i.spec(), i.n, preset.data_seed())?;
            }
            if preset.dataset.kind().is_image() {
                return Ok((preset, None));
            }
            let data = Dataset::generate(&preset.dataset, preset.data_seed())?;
            return Ok((preset, Some(data)));
        };
        let sets: Vec<String> = run.sets.iter().chain(extra_sets).cloned().collect();
        if own_data::is_images(path) {
            if self.velocity.is_some() {
                bail!("--velocity gives the velocities of point snapshots; pictures have none");
            }
            let name = path.display().to_string();
            let (p, summary) = own_data::open_images(&name, preset, run.quick, &sets, run.seed)?;
            eprintln!("{summary}");
            p.validate()?;
            // Every picture decoded (and every crop placed) once before anything is written:
            // a truncated file or a crop larger than the picture fails here.
            let i = p.dataset.user_images().expect("image settings");
            equiflow::data::image_files::load(&i.spec(), i.n, p.data_seed())?;
            let (n, _) = p.dataset.images().expect("image settings");
            let steps = |epochs: usize, batch: usize| epochs * n.div_ceil(batch.max(1));
            eprintln!(
                "training length: {} score steps ({} epochs)",
                steps(p.score.epochs, p.score.batch),
                p.score.epochs,
            );
            return Ok((p, None));
        }
        let file = preset::FileData {
            path: path.display().to_string(),
            velocity: self.velocity.as_ref().map(|v| v.display().to_string()),
            ..Default::default()
        };
        let (p, data) = own_data::open(file, preset, run.quick, &sets, run.seed)?;
        let base = preset.unwrap_or(Preset::closest_builtin(data.dim));
        eprintln!(
            "{}",
            own_data::describe(&path.display().to_string(), &data, base)
        );
        let steps = |epochs: usize, batch: usize| epochs * data.len().div_ceil(batch.max(1));
        eprintln!(
            "training length: {} score steps ({} epochs), {} flow steps ({} epochs)",
            steps(p.score.epochs, p.score.batch),
            p.score.epochs,
            steps(p.flow.epochs, p.flow.batch),
            p.flow.epochs
        );
        Ok((p, Some(data)))
    }
}

#[derive(Args)]
struct TrainArgs {
    /// A built-in preset name or a path to a .toml file (default: ring; with --data, the
    /// built-in closest to the data).
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    run: RunArgs,
    /// Artificial-life presets: this PNG or JPEG as the target icon (fitted to the icon size).
    #[arg(long, value_name = "FILE")]
    target: Option<PathBuf>,
    /// Image presets: the flow to simulate, the training-free skew kernel or a neural
    /// cellular automaton trained with the equilibrium loss (sets `sde.flow`).
    #[arg(long, value_enum)]
    flow: Option<FlowArg>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FlowArg {
    TrainingFree,
    Nca,
}

/// Keep freed tensor memory for reuse instead of handing it back to the kernel after every
/// operation. glibc's defaults map blocks above a threshold that only grows to 32 MiB on
/// its own, and give back the top of the heap beyond 128 KiB: every training step then
/// faults in fresh zeroed pages for its tensors. Measured on two cores (`bench --images`,
/// release, 2 runs each): the quick UNet step ~15 % faster; peak memory of the bench the same
/// (290 MB).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds; called before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    if cli.cmd.is_some() {
        catch_interrupts();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if INTERRUPTED.load(Ordering::SeqCst) {
                // What shells report for a process ended by SIGINT.
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Some(Cmd::Train(args)) => train(args),
        Some(Cmd::Eval { dir, json, backend }) => eval(dir, json, backend),
        Some(Cmd::TrainNca { dir, sets, backend }) => train_nca(dir, sets, backend),
        Some(Cmd::Bench {
            json,
            steps,
            backend: _,
            gray_scott: true,
            ..
        }) => stencil_bench(json, steps),
        Some(Cmd::Bench {
            json, loader: true, ..
        }) => loader_bench(json),
        Some(Cmd::Bench {
            json,
            steps,
            backend,
            images: true,
            cases,
            ..
        }) => image_bench_cmd(json, steps, backend, &cases),
        Some(Cmd::Bench {
            json,
            steps,
            backend,
            ..
        }) => bench_cmd(json, steps, backend),
        Some(Cmd::Target { name, out, size }) => draw_target(&name, &out, size),
        Some(Cmd::Sweep(args)) => sweep(args),
        Some(Cmd::Cross(args)) => cross_cmd(args),
        Some(Cmd::Aggregate { dirs, out, backend }) => aggregate(&dirs, out, backend),
        Some(Cmd::Examples { out }) => write_examples(&out),
        Some(Cmd::Presets) => {
            for (name, text) in preset::BUILTIN {
                let about = text.lines().next().unwrap_or("").trim_start_matches("# ");
                println!("{name:<13} {about}");
            }
            Ok(())
        }
        None => {
            let start = match &cli.preset {
                Some(name) => {
                    let settings = Preset::load(name, !cli.full, &cli.sets)?;
                    let (_, source) = preset::read_source(name)?;
                    Some(equiflow::ui::StartWith {
                        name: name.clone(),
                        source,
                        settings,
                        quick: !cli.full,
                    })
                }
                None => None,
            };
            equiflow::ui::run(cli.renderer, start)
                .map_err(|e| anyhow::anyhow!("could not open the app window: {e}"))
        }
    }
}

/// Progress bars on stderr, one per phase; plain lines where stderr is not a terminal (a log
/// file, `nohup`), where a bar would print nothing.
struct Bars {
    bar: Option<(Phase, ProgressBar)>,
    /// stderr is not a terminal: plain lines instead of bars.
    plain: bool,
    /// The phase, count and time of the last plain line.
    last_line: Option<(Phase, usize, std::time::Instant)>,
    last_loss: Option<f64>,
}

/// Plain progress lines at most this often per phase (and at its start and end).
const PLAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Observer for Bars {
    fn progress(&mut self, p: &Progress) {
        if let Some(l) = p.loss {
            self.last_loss = Some(l);
        }
        if self.plain {
            let new_phase = self.last_line.map(|(ph, ..)| ph) != Some(p.phase);
            if new_phase {
                self.last_loss = p.loss;
            }
            let due = self
                .last_line
                .is_none_or(|(.., t)| t.elapsed() >= PLAIN_EVERY);
            // A phase's last count is said once, however often it is reported again (the
            // metrics thread's progress is read after every step until its result comes).
            let said = self.last_line.map(|(ph, done, _)| (ph, done)) == Some((p.phase, p.done));
            if !said && (new_phase || due || p.done >= p.total) {
                let loss = self
                    .last_loss
                    .map(|l| format!(" loss {l:.5}"))
                    .unwrap_or_default();
                eprintln!("{:>8} {}/{}{loss}", p.phase.label(), p.done, p.total);
                self.last_line = Some((p.phase, p.done, std::time::Instant::now()));
            }
            return;
        }
        if self.bar.as_ref().map(|(ph, _)| *ph) != Some(p.phase) {
            if let Some((_, b)) = self.bar.take() {
                b.finish();
            }
            let b = ProgressBar::new(p.total as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(p.phase.label());
            self.bar = Some((p.phase, b));
        }
        if let Some((_, b)) = &self.bar {
            b.set_position(p.done as u64);
            if let Some(l) = p.loss {
                b.set_message(format!("loss {l:.5}"));
            }
        }
    }

    fn cancelled(&self) -> bool {
        INTERRUPTED.load(Ordering::SeqCst)
    }
}

impl Bars {
    fn new() -> Bars {
        use std::io::IsTerminal;
        Bars {
            bar: None,
            plain: !std::io::stderr().is_terminal(),
            last_line: None,
            last_loss: None,
        }
    }

    /// A session's event as progress: the phase's bar, the last epoch's loss, notices.
    fn render(&mut self, e: &Event) {
        match e {
            Event::Progress(p) => self.progress(&Progress {
                phase: p.phase,
                done: p.done,
                total: p.total,
                loss: None,
            }),
            Event::Loss { phase, loss, .. } => {
                self.last_loss = Some(*loss);
                if let Some((ph, b)) = &self.bar
                    && ph == phase
                {
                    b.set_message(format!("loss {loss:.5}"));
                }
            }
            Event::Notice(n) => match &self.bar {
                Some((_, b)) => b.println(n),
                None => eprintln!("{n}"),
            },
            _ => {}
        }
    }

    fn finish(&mut self) {
        if let Some((_, b)) = self.bar.take() {
            b.finish();
        }
    }
}

fn select_backend(choice: BackendChoice) -> Result<Backend> {
    let backend = Backend::select(choice)?;
    eprintln!("backend: {}", backend.description);
    Ok(backend)
}

fn train(args: TrainArgs) -> Result<()> {
    let mut sets = Vec::new();
    if let Some(flow) = args.flow {
        let name = match flow {
            FlowArg::TrainingFree => "training_free",
            FlowArg::Nca => "nca",
        };
        sets.push(format!("sde.flow=\"{name}\""));
    }
    let (mut preset, data) = args
        .data
        .load(&args.run, args.preset.as_deref(), "ring", &sets)?;
    if args.flow.is_some() && !preset.dataset.kind().is_image() {
        bail!(
            "--flow chooses the flow of image presets (Turing patterns, artificial life); \
             '{}' always trains its flow network",
            preset.name
        );
    }
    if let Some(target) = &args.target {
        let Some(a) = preset.dataset.alife_mut() else {
            bail!(
                "--target needs an artificial-life preset ({}); '{}' is not one",
                alife_presets(),
                preset.name
            );
        };
        a.target = target.display().to_string();
    }
    if let Some(a) = preset.dataset.alife() {
        // Fail before any work when the target cannot be read.
        Icon::load(&a.target, a.icon_size)?;
    }
    let out = args.run.out(&preset, "");
    let backend = select_backend(args.run.backend)?;
    train_into(&preset, data, &out, &backend, args.run.force).map(|_| ())
}

/// Train `preset` into the run directory `out` (metrics included), printing its metrics.
/// Point presets train on `data` (read or drawn beforehand; drawn here if `None`).
fn train_into(
    preset: &Preset,
    data: Option<Dataset>,
    out: &std::path::Path,
    backend: &Backend,
    force: bool,
) -> Result<PathBuf> {
    let data = match data {
        Some(d) => Some(d),
        None if preset.dataset.kind().is_image() => None,
        None => Some(Dataset::generate(&preset.dataset, preset.data_seed())?),
    };
    let dir = RunDir::create(out, force)?;
    eprintln!("training '{}' into {}", preset.name, out.display());
    let trained = dir
        .write_preset(preset)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            let cancel = cancel_flag();
            let mut out = Vec::new();
            let (p, b) = (preset.clone(), backend.clone());
            let mut job: Box<dyn JobSession> = match data {
                Some(data) => Box::new(Session::with_data(p, b, data, cancel, &mut out).headless()),
                None => {
                    let cache = Some(dir.path.join(checkpoint::DATASET));
                    Box::new(PatternSession::new(p, b, cache, cancel, &mut out).headless())
                }
            };
            run_job(&mut *job, &out, &dir)?;
            for line in job.metric_lines() {
                println!("{line}");
            }
            Ok(())
        });
    if let Err(e) = trained {
        if dir.destination() != dir.path {
            return Err(e.context(format!(
                "the previous run in {} is untouched (this run's files are in {})",
                dir.destination().display(),
                dir.path.display()
            )));
        }
        return Err(e);
    }
    let out = dir.commit()?;
    eprintln!("wrote {}", out.display());
    Ok(out)
}

/// Ctrl-C: the first asks the running job to stop at its next step, keeping what it has
/// trained; a second ends the process at once.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe (no destructors, no locks).
        unsafe { libc::_exit(130) };
    }
}

fn catch_interrupts() {
    let handler = on_interrupt as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t;
    // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Set once the first Ctrl-C arrives, for the sessions (which take a shared flag).
fn cancel_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        while !INTERRUPTED.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        f.store(true, Ordering::SeqCst);
    });
    flag
}

/// Step `job` to its end with progress bars (first rendering `started`, the events it gave
/// when it was made), then write what it has into `dir`: the models, losses, samples and
/// metrics; a job that ended early keeps its last good models beside a partial
/// `metrics.json` that says why, and the run fails with that reason.
fn run_job(job: &mut dyn JobSession, started: &[Event], dir: &RunDir) -> Result<()> {
    let mut bars = Bars::new();
    for e in started {
        bars.render(e);
    }
    let interrupted = || {
        INTERRUPTED
            .load(Ordering::SeqCst)
            .then(|| "interrupted (Ctrl-C)".to_string())
    };
    let ended = drive::run_to_end(job, &interrupted, &mut |e| bars.render(e));
    bars.finish();
    let Some(why) = ended.stop else {
        job.write_into(dir)?;
        return Ok(());
    };
    if !job.has_models() {
        bail!("{why}");
    }
    let saved = match job.write_into(dir) {
        Ok(()) => "the last good models and a partial metrics.json are saved in",
        Err(e) => {
            eprintln!("{e}");
            "what could be written is in"
        }
    };
    bail!("{why}; {saved} {}", dir.path.display())
}

#[derive(Args)]
struct SweepArgs {
    /// A built-in point preset name or a path to a .toml file (default: lorenz; with
    /// --data, the built-in closest to the data).
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Flow models to train (seeds: the preset's seed, then the next N − 1).
    #[arg(long, default_value_t = 10)]
    seeds: usize,
    /// Flows trained together (1 trains them one after the other): on a GPU as one stacked
    /// network, on the CPU each its own host step, the models spread over the cores.
    /// Memory grows with it; on two CPU cores 4–16 cost about the same per model.
    #[arg(long, default_value_t = 8)]
    stack: usize,
    /// Train each flow as its own job, one after the other (the models are the same).
    #[arg(long)]
    sequential: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// `equiflow sweep`: the score once (DIR/score), then each flow as an ordinary run dir
/// (DIR/seed-K, the score copied in), then the summary of them all.
fn sweep(a: SweepArgs) -> Result<()> {
    if a.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let (base, data) = a.data.load(&a.run, a.preset.as_deref(), "lorenz", &[])?;
    let Some(data) = data.filter(|_| !base.dataset.kind().is_image()) else {
        bail!(
            "sweep compares the flows of point systems (ring, two_peaks, two_moons, lorenz, \
             your own point snapshots with --data); '{}' holds images",
            base.name
        );
    };
    let out = a.run.out(&base, &format!("-sweep{}", a.seeds));
    if out.join(sweep::SUMMARY).exists() && !a.run.force {
        bail!(
            "{} already holds a sweep; choose another --out or pass --force to replace it",
            out.display()
        );
    }
    let backend = select_backend(a.run.backend)?;
    eprintln!(
        "sweep of '{}': one score, {} flows, into {}",
        base.name,
        a.seeds,
        out.display()
    );
    let mut bars = Bars::new();
    let stack = if a.sequential { 1 } else { a.stack };
    let mut events = Vec::new();
    let mut job = SweepSession::with_data(
        base,
        data,
        a.seeds,
        stack,
        backend,
        cancel_flag(),
        &mut events,
    )
    .saving_into(&out, a.run.force);
    for e in &events {
        bars.render(e);
    }
    let interrupted = || {
        INTERRUPTED
            .load(Ordering::SeqCst)
            .then(|| "interrupted (Ctrl-C)".to_string())
    };
    let mut reported = std::collections::HashSet::new();
    let ended = drive::run_to_end(&mut job, &interrupted, &mut |e| {
        match e {
            // A model that stopped early is written, and left out of the summary.
            Event::Solutions(s) => {
                for (seed, state) in s.seeds.iter().zip(&s.states) {
                    if let ModelState::Stopped(why) = state
                        && reported.insert(*seed)
                    {
                        bars.render(&Event::Notice(format!(
                            "seed {seed}: {why}; left out of the summary ({})",
                            out.join(format!("seed-{seed}")).display()
                        )));
                    }
                }
            }
            e => bars.render(e),
        }
    });
    bars.finish();
    if let Some(why) = ended.stop {
        bail!(
            "{why}; the models trained so far are saved in {}",
            out.display()
        );
    }
    let summary = job.summary().context("the sweep ended without a summary")?;
    print_summary(&summary.json);
    eprintln!("wrote {}", out.display());
    Ok(())
}

#[derive(Args)]
struct CrossArgs {
    /// Turing presets (built-in names or .toml files), comma-separated, e.g.
    /// gs-waves,gs-spirals,gs-maze,gs-life.
    #[arg(long, value_delimiter = ',', required = true)]
    presets: Vec<String>,
    /// Print the table as JSON (the cross.json format).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// `equiflow cross`: train what is missing, then the cross table of the presets' motions.
fn cross_cmd(a: CrossArgs) -> Result<()> {
    let presets = a
        .presets
        .iter()
        .map(|name| a.run.preset(name, &[]))
        .collect::<Result<Vec<_>>>()?;
    if let Some(p) = presets.iter().find(|p| p.dataset.gray_scott().is_none()) {
        bail!("{}", cross::CrossError::NotTuring(p.name.clone()));
    }
    let out = a.run.out.clone().unwrap_or_else(|| {
        let quick = if a.run.quick { "-quick" } else { "" };
        PathBuf::from(format!("runs/cross{quick}-seed{}", presets[0].seed))
    });
    let backend = select_backend(a.run.backend)?;
    let mut models = Vec::with_capacity(presets.len());
    for preset in presets {
        let path = out.join(preset.file_stem());
        let reuse = !a.run.force
            && path.join(checkpoint::SCORE).exists()
            && RunDir::open(&path).and_then(|d| d.read_preset()).ok() == Some(preset.clone());
        if reuse {
            eprintln!("'{}': reusing the run in {}", preset.name, path.display());
        } else {
            train_into(&preset, None, &path, &backend, a.run.force)?;
        }
        let score = RunDir::open(&path)?.load_image_score(&preset, &backend.device)?;
        models.push((preset, score));
    }
    eprintln!(
        "the cross table: {} models × {} systems",
        models.len(),
        models.len()
    );
    let mut bars = Bars::new();
    let total = models.len() * 2 * equiflow::metrics::gs_alignment::Reference::SDE_STEPS;
    let mut tick = |done: usize, _: usize| {
        bars.progress(&Progress {
            phase: Phase::Metrics,
            done,
            total,
            loss: None,
        });
        !INTERRUPTED.load(Ordering::SeqCst)
    };
    let Some(table) = cross::cross(&models, &mut tick)? else {
        bail!("interrupted (Ctrl-C)");
    };
    bars.finish();
    let path = out.join("cross.json");
    equiflow::data::write_atomically(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, &table).map_err(std::io::Error::from)
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
    } else {
        print!("{}", table.text());
    }
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `equiflow aggregate`: the sweep summary of run dirs made anywhere.
fn aggregate(dirs: &[PathBuf], out: Option<PathBuf>, choice: BackendChoice) -> Result<()> {
    let backend = select_backend(choice)?;
    for d in dirs {
        if let Ok(run) = RunDir::open(d) {
            for change in run.data_changes() {
                eprintln!("note: {change}");
            }
        }
    }
    let summary = sweep::aggregate(dirs, &backend)?;
    if let Some(out) = out {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        summary.write(&out)?;
        eprintln!(
            "wrote {} and {} in {}",
            sweep::MODELS_CSV,
            sweep::SUMMARY,
            out.display()
        );
    }
    println!("{}", serde_json::to_string_pretty(&summary.json)?);
    Ok(())
}

/// The consistency table of a summary, one line each.
fn print_summary(s: &serde_json::Value) {
    for key in [
        "consistency_learned",
        "consistency_training_free",
        "learned_vs_training_free",
        "cos_truth_learned",
        "cos_truth_training_free",
        "cos_truth_random",
        "cos_truth_score",
    ] {
        let v = &s[key];
        if let (Some(m), Some(sd)) = (v["mean"].as_f64(), v["sd"].as_f64()) {
            println!("{key:<28} {m:.4} ± {sd:.4}");
        }
    }
    for key in [
        "lyapunov_positive_fraction",
        "lyapunov_positive_fraction_ref",
        "seconds_total",
    ] {
        if let Some(x) = s[key].as_f64() {
            println!("{key:<28} {x:.4}");
        }
    }
}

fn write_examples(out: &std::path::Path) -> Result<()> {
    use equiflow::data::examples;
    let (states, velocities) = examples::thomas_files(examples::THOMAS_ROWS, examples::THOMAS_SEED);
    for (name, text) in [("thomas.csv", states), ("thomas-velocity.csv", velocities)] {
        let path = out.join(name);
        equiflow::data::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    let side = examples::PATTERN_SIDE;
    let grey = examples::pattern_picture(side, examples::PATTERN_SEED);
    let path = out.join("pattern.png");
    equiflow::data::write_atomically(&path, |w| {
        let png = image::codecs::png::PngEncoder::new(w);
        image::ImageEncoder::write_image(
            png,
            &grey,
            side as u32,
            side as u32,
            image::ExtendedColorType::L8,
        )
        .map_err(std::io::Error::other)
    })
    .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn alife_presets() -> String {
    preset::BUILTIN
        .iter()
        .filter(|(n, _)| n.starts_with("alife-"))
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn draw_target(name: &str, out: &std::path::Path, size: usize) -> Result<()> {
    let Some(icon) = Icon::builtin(name, size) else {
        bail!(
            "unknown target '{name}'; built-in targets: {}",
            equiflow::data::icon::BUILTIN.join(", ")
        );
    };
    icon.save_png(out)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Train an NCA on the score model an image run already holds.
fn train_nca(path: PathBuf, sets: Vec<String>, choice: BackendChoice) -> Result<()> {
    let dir = RunDir::open(&path)?;
    let text = std::fs::read_to_string(path.join(checkpoint::PRESET))?;
    let mut sets = sets;
    sets.push("sde.flow=\"nca\"".into());
    let preset = Preset::from_toml_str(
        &path.join(checkpoint::PRESET).display().to_string(),
        &text,
        false,
        &sets,
    )?;
    if !preset.dataset.kind().is_image() {
        bail!(
            "{} holds a '{}' run; an NCA learns image flows (Turing patterns, artificial life)",
            path.display(),
            preset.name
        );
    }
    let backend = select_backend(choice)?;
    let score = dir.load_image_score(&preset, &backend.device)?;
    let mut bars = Bars::new();
    let cache = path.join(checkpoint::DATASET);
    let Some(data) = turing::dataset(&preset, Some(&cache), &mut bars)?.set else {
        bail!("cancelled while generating the dataset");
    };
    bars.finish();
    let old = read_metrics::<turing::ImageMetrics>(&path).unwrap_or_default();
    let losses = read_losses(&path.join(checkpoint::LOSSES));
    eprintln!("training an NCA on the score model in {}", path.display());
    let cancel = cancel_flag();
    let earlier = (losses, [old.seconds_data, old.seconds_score]);
    let mut out = Vec::new();
    let job = PatternSession::from_score(
        preset,
        backend,
        data,
        Some(cache),
        score,
        earlier,
        cancel,
        &mut out,
    );
    let mut job = job.headless();
    run_job(&mut job, &out, &dir)?;
    for line in job.metric_lines() {
        println!("{line}");
    }
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The score losses a run directory recorded (to keep beside new flow losses).
fn read_losses(path: &std::path::Path) -> Vec<job::LossPoint> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            let phase = match f.next()? {
                "score" => Phase::Score,
                "flow" => Phase::Flow,
                _ => return None,
            };
            Some(job::LossPoint {
                phase,
                epoch: f.next()?.parse().ok()?,
                loss: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

fn eval_turing(dir: &RunDir, preset: &Preset, json: bool, backend: &Backend) -> Result<()> {
    let score = dir.load_image_score(preset, &backend.device)?;
    let nca = match preset.sde.flow {
        ImageFlow::Nca if dir.has_flow() => Some(dir.load_nca(preset, &backend.device)?),
        ImageFlow::Nca => {
            eprintln!(
                "this run chose the NCA flow but holds no flow.bpk (it stopped before the NCA \
                 trained); evaluating the training-free flow only — `equiflow train-nca` \
                 trains one"
            );
            None
        }
        ImageFlow::TrainingFree => None,
    };
    let mut bars = Bars::new();
    let Some(mut m) = turing::evaluate(preset, &score, nca.as_ref(), backend, &mut bars)? else {
        bail!("cancelled while computing the metrics");
    };
    bars.finish();
    // Training times, losses and the data's make-up belong to the training run.
    if let Some(old) = read_metrics::<turing::ImageMetrics>(&dir.path) {
        m.seconds_data = old.seconds_data;
        m.seconds_score = old.seconds_score;
        m.score_loss_final = old.score_loss_final;
        m.dataset_alive_fraction = old.dataset_alive_fraction;
        m.seconds_flow = old.seconds_flow;
        m.flow_loss_final = old.flow_loss_final;
    }
    print_metrics(&m, json)
}

/// metrics.json as JSON, or one line per metric.
fn print_metrics(m: &impl serde::Serialize, json: bool) -> Result<()> {
    if json {
        println!("{}", equiflow::metrics::report::to_json(m));
    } else {
        for line in equiflow::metrics::report::lines(m) {
            println!("{line}");
        }
    }
    Ok(())
}

fn eval(path: PathBuf, json: bool, choice: BackendChoice) -> Result<()> {
    let dir = RunDir::open(&path)?;
    let preset = dir.read_preset()?;
    for change in dir.data_changes() {
        eprintln!("note: {change}");
    }
    let backend = select_backend(choice)?;
    if preset.dataset.kind().is_image() {
        return eval_turing(&dir, &preset, json, &backend);
    }
    let data = Dataset::generate(&preset.dataset, preset.data_seed())?;
    let score = dir.load_score(&preset, data.dim, &backend.device)?;
    let flow = if dir.has_flow() {
        Some(dir.load_flow(&preset, data.dim, &backend.device)?)
    } else {
        eprintln!(
            "this run stopped before its flow was trained (no {}): the metrics of the score \
             and the training-free flow only",
            checkpoint::FLOW
        );
        None
    };
    let mut bars = Bars::new();
    let mut metrics = evaluate(&preset, &data, &score, flow.as_ref(), &backend, &mut bars);
    bars.finish();
    // Training times and final losses belong to the training run; keep what it recorded.
    if let Some(old) = read_metrics::<Metrics>(&path) {
        metrics.seconds_score = old.seconds_score;
        metrics.seconds_flow = old.seconds_flow;
        metrics.score_loss_final = old.score_loss_final;
        metrics.flow_loss_final = old.flow_loss_final;
        metrics.interrupted = old.interrupted;
    }
    print_metrics(&metrics, json)
}

/// The metrics a run directory already holds, if readable.
fn read_metrics<T: serde::de::DeserializeOwned>(dir: &std::path::Path) -> Option<T> {
    let text = std::fs::read_to_string(dir.join("metrics.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn loader_bench(json: bool) -> Result<()> {
    let b = bench::loader(1_000_000)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&b).context("serialise")?);
    } else {
        println!(
            "load_csv_1m: {} rows × {} ({:.1} MiB of text): table read in {:.2} s, dataset \
             (read, standardised) in {:.2} s; peak memory {:.1} MiB over the load = {:.2}× the \
             table's {:.1} MiB",
            b.rows,
            b.cols,
            b.file_mib,
            b.seconds_read,
            b.seconds_load,
            b.peak_mib,
            b.peak_over_table,
            b.table_mib
        );
    }
    Ok(())
}

fn stencil_bench(json: bool, steps: usize) -> Result<()> {
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    let b = bench::gray_scott(256, steps.max(50));
    if json {
        println!("{}", serde_json::to_string_pretty(&b).context("serialise")?);
    } else {
        println!(
            "gray-scott {0}²: {1:.0} M cell-updates/s on {2} threads ({3:.0} per thread); \
             naive one-thread loop {4:.0}; {5:.1}× faster\n\
             batched (32 grids of 64², one per thread): {6:.0} M cell-updates/s",
            b.size,
            b.mcups,
            b.threads,
            b.mcups_per_thread,
            b.naive_mcups,
            b.speedup_vs_naive,
            b.batch_mcups
        );
    }
    Ok(())
}

/// Rows of `run` on the chosen backend (or every available one), with a spinner per case,
/// printed as JSON or as `table`.
fn bench_rows<R: serde::Serialize>(
    json: bool,
    steps: usize,
    choice: Option<BackendChoice>,
    what: &str,
    run: impl Fn(&Backend, &mut dyn FnMut(&str)) -> Vec<R>,
    table: impl Fn(&[R]) -> String,
) -> Result<()> {
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    let backends = match choice {
        Some(c) => vec![select_backend(c)?],
        None => Backend::available(),
    };
    let mut rows = Vec::new();
    for b in &backends {
        eprintln!("benchmarking {what} on {}", b.description);
        let spinner = ProgressBar::new_spinner();
        rows.extend(run(b, &mut |case| {
            spinner.set_message(case.to_string());
            spinner.tick();
        }));
        spinner.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).context("rows serialise")?
        );
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

fn image_bench_cmd(
    json: bool,
    steps: usize,
    choice: Option<BackendChoice>,
    cases: &[String],
) -> Result<()> {
    use equiflow::bench_images;
    if let Some(bad) = cases
        .iter()
        .find(|c| !bench_images::CASES.contains(&c.as_str()))
    {
        anyhow::bail!(
            "no image bench case '{bad}'; the cases are {}",
            bench_images::CASES.join(", ")
        );
    }
    bench_rows(
        json,
        steps,
        choice,
        "the image models",
        |b, p| bench_images::run(b, steps, cases, p),
        bench_images::table,
    )
}

fn bench_cmd(json: bool, steps: usize, choice: Option<BackendChoice>) -> Result<()> {
    let cfg = BenchConfig {
        steps,
        ..Default::default()
    };
    bench_rows(
        json,
        steps,
        choice,
        "the point models",
        |b, p| bench::run(b, &cfg, p),
        bench::table,
    )
}
