//! `equiflow bench`: time one training step of each model at the reference batch size.
//! Wall-clock numbers on shared machines are noisy; the ratios between cases measured in the
//! same run are what to compare.

use crate::backend::Backend;
use crate::method::diffusion::Schedule;
use crate::method::equilibrium::LossConfig;
use crate::nn::flow_mlp::FlowMlpConfig;
use crate::preset::{Estimator, FlowSettings, ScoreSettings};
use crate::train::flow_stack::StackTrainer;
use crate::train::job::{FlowTrainer, ScoreTrainer, TrainPath};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub case: String,
    pub backend: String,
    pub batch: usize,
    pub steps: usize,
    pub ms_per_step: f64,
    /// Flow models a step trains (a sweep's stack), when more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<usize>,
    /// For Hutchinson rows and burn's steps (where the host's replace them): how many times
    /// slower than the (host's) exact flow step, or score step, on the same system; for
    /// stacks: the time per model over one exact model's step alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_exact: Option<f64>,
}

pub struct BenchConfig {
    pub batch: usize,
    pub steps: usize,
    pub warmup: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            batch: 2048,
            steps: 20,
            warmup: 3,
        }
    }
}

fn normal_rows(n: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

fn time_steps(cfg: &BenchConfig, mut step: impl FnMut()) -> f64 {
    for _ in 0..cfg.warmup {
        step();
    }
    let t = Instant::now();
    for _ in 0..cfg.steps {
        step();
    }
    t.elapsed().as_secs_f64() * 1e3 / cfg.steps as f64
}

/// Models per stacked step timed for sweeps.
const STACKS: [usize; 3] = [4, 8, 16];

/// Time every case on `backend`; `progress` is told each case name before it runs.
pub fn run(backend: &Backend, cfg: &BenchConfig, progress: &mut dyn FnMut(&str)) -> Vec<BenchRow> {
    let device = &backend.device;
    device.seed(1);
    let mut rng = StdRng::seed_from_u64(1);
    let sched = Schedule::cosine(100);
    let mut rows = Vec::new();
    let mut row = |case: String, ms: f64, ratio: Option<f64>, models: Option<usize>| {
        rows.push(BenchRow {
            case,
            backend: backend.kind.to_string(),
            batch: cfg.batch,
            steps: cfg.steps,
            ms_per_step: ms,
            models,
            ratio_to_exact: ratio,
        })
    };
    for (system, dim) in [("ring", 2usize), ("lorenz", 3)] {
        let x = normal_rows(cfg.batch * dim, &mut rng);
        let s = normal_rows(cfg.batch * dim, &mut rng);

        progress(&format!("score_{system}"));
        let mut score = ScoreTrainer::new(
            dim,
            &ScoreSettings::default(),
            cfg.steps + cfg.warmup,
            1,
            device,
        );
        let mut step_rng = StdRng::seed_from_u64(2);
        let ms = time_steps(cfg, || {
            let _ = score.step(&x, &sched, &mut step_rng);
        });
        row(format!("score_{system}"), ms, None, None);
        if TrainPath::Auto.host_score(device) {
            // burn's autodiff, which the host step replaced on the CPU.
            let case = format!("score_burn_{system}");
            progress(&case);
            let mut burn = ScoreTrainer::on_path(
                dim,
                &ScoreSettings::default(),
                cfg.steps + cfg.warmup,
                1,
                device,
                TrainPath::Burn,
            );
            let burn_ms = time_steps(cfg, || {
                let _ = burn.step(&x, &sched, &mut step_rng);
            });
            row(case, burn_ms, Some(burn_ms / ms), None);
        }

        let net = FlowMlpConfig {
            dim,
            hidden: 64,
            freqs: 4,
            bn_momentum: 0.1,
        };
        let mut exact_ms = f64::NAN;
        for (name, estimator) in [
            ("exact", Estimator::Exact),
            ("hutchinson10", Estimator::Hutchinson),
        ] {
            progress(&format!("flow_{name}_{system}"));
            let settings = FlowSettings {
                estimator,
                probes: 10,
                ..Default::default()
            };
            let mut flow = FlowTrainer::new(net, &settings, cfg.steps + cfg.warmup, 1, device);
            let mut probe_rng = StdRng::seed_from_u64(3);
            let ms = time_steps(cfg, || {
                let _ = flow.step(&x, &s, &mut probe_rng);
            });
            if estimator == Estimator::Exact {
                exact_ms = ms;
                row(format!("flow_{name}_{system}"), ms, None, None);
                if TrainPath::Auto.host(&LossConfig::from_settings(&settings, dim), device) {
                    // The same step through burn's autodiff, which the host step replaced.
                    let case = format!("flow_{name}_burn_{system}");
                    progress(&case);
                    let mut flow = FlowTrainer::on_path(
                        net,
                        &settings,
                        cfg.steps + cfg.warmup,
                        1,
                        device,
                        TrainPath::Burn,
                    );
                    let ms = time_steps(cfg, || {
                        let _ = flow.step(&x, &s, &mut probe_rng);
                    });
                    row(case, ms, Some(ms / exact_ms), None);
                }
            } else {
                row(
                    format!("flow_{name}_{system}"),
                    ms,
                    Some(ms / exact_ms),
                    None,
                );
            }
        }
        if system != "lorenz" {
            continue;
        }
        // A sweep's flows (Lorenz, exact divergence) trained together: the host's steps on
        // the CPU, and burn's stacked network (the GPU's path) beside them.
        let settings = FlowSettings {
            estimator: Estimator::Exact,
            ..Default::default()
        };
        let host = TrainPath::Auto.host(&LossConfig::from_settings(&settings, dim), device);
        let paths: &[(TrainPath, &str)] = if host {
            &[(TrainPath::Auto, ""), (TrainPath::Burn, "_burn")]
        } else {
            &[(TrainPath::Auto, "")]
        };
        for &(path, tag) in paths {
            for n in STACKS {
                let case = format!("flow_stack{n}{tag}_{system}");
                progress(&case);
                let seeds: Vec<u64> = (1..=n as u64).collect();
                let mut stack = StackTrainer::on_path(
                    net,
                    &settings,
                    cfg.steps + cfg.warmup,
                    &seeds,
                    device,
                    path,
                );
                let (xs, ss) = (vec![x.clone(); n], vec![s.clone(); n]);
                let ms = time_steps(cfg, || {
                    let _ = stack.step(&xs, &ss, &[]);
                });
                row(case, ms, Some(ms / n as f64 / exact_ms), Some(n));
            }
        }
    }
    rows
}

/// The rows as an aligned text table.
pub fn table(rows: &[BenchRow]) -> String {
    let mut out = format!(
        "{:<26} {:<8} {:>6} {:>12} {:>16}\n",
        "case", "backend", "batch", "ms/step", "ratio"
    );
    for r in rows {
        let ratio = r
            .ratio_to_exact
            .map_or(String::new(), |x| format!("{x:.2}×"));
        out += &format!(
            "{:<26} {:<8} {:>6} {:>12.2} {:>16}\n",
            r.case, r.backend, r.batch, r.ms_per_step, ratio
        );
    }
    out
}

/// Speed of the Gray–Scott stencil against the one-thread textbook loop, on a 256² grid.
#[derive(Debug, Clone, Serialize)]
pub struct StencilBench {
    pub size: usize,
    pub steps: usize,
    pub threads: usize,
    /// Million cell updates per second.
    pub mcups: f64,
    pub mcups_per_thread: f64,
    pub naive_mcups: f64,
    pub speedup_vs_naive: f64,
    /// Dataset generation: 32 grids of 64² stepped together, one grid per thread.
    pub batch_mcups: f64,
}

pub fn gray_scott(size: usize, steps: usize) -> StencilBench {
    use crate::data::gray_scott::{self as gs, Grid};
    let p = gs::Regime::Maze.params();
    let mut start = Grid::rest(size, size);
    for i in 0..8 {
        start.seed_disc(i * size / 8, (i * 37) % size, size / 16 + 1);
    }
    let cells = (size * size * steps) as f64;
    let time = |f: &dyn Fn(&Grid, &mut Grid)| {
        let (mut a, mut b) = (start.clone(), start.clone());
        f(&a, &mut b); // warm-up
        let t0 = Instant::now();
        for _ in 0..steps {
            f(&a, &mut b);
            std::mem::swap(&mut a, &mut b);
        }
        cells / t0.elapsed().as_secs_f64() / 1e6
    };
    let mcups = time(&|a, b| gs::step(&p, a, b));
    let naive_mcups = time(&|a, b| gs::step_naive(&p, a, b));
    let threads = rayon::current_num_threads();
    let mut batch: Vec<Grid> = (0..32)
        .map(|i| {
            let mut g = Grid::rest(64, 64);
            g.seed_disc(i, 2 * i, 5);
            g
        })
        .collect();
    let t0 = Instant::now();
    gs::run_batch(&p, &mut batch, steps);
    let batch_mcups = (32 * 64 * 64 * steps) as f64 / t0.elapsed().as_secs_f64() / 1e6;
    StencilBench {
        batch_mcups,
        size,
        steps,
        threads,
        mcups,
        mcups_per_thread: mcups / threads as f64,
        naive_mcups,
        speedup_vs_naive: mcups / naive_mcups,
    }
}

/// How fast and how lean the snapshot loader is on a large CSV (`bench --loader`).
#[derive(Debug, Clone, Serialize)]
pub struct LoaderBench {
    pub rows: usize,
    pub cols: usize,
    pub file_mib: f64,
    /// Reading the table (parse and checks).
    pub seconds_read: f64,
    /// Reading, then the dataset as training uses it (standardised, f32).
    pub seconds_load: f64,
    /// The numbers as the table holds them (f64).
    pub table_mib: f64,
    /// The growth of the process's peak resident memory over the dataset's load.
    pub peak_mib: f64,
    pub peak_over_table: f64,
}

/// The process's peak resident memory so far, in MiB (Linux; 0 elsewhere).
fn max_rss_mib() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    u.ru_maxrss as f64 / 1024.0
}

/// Write a CSV of `rows` × 3 random numbers (streamed, so writing it does not raise the
/// peak memory), then load it as a dataset (the peak memory is measured over this load)
/// and as a table. Run it in a fresh process.
pub fn loader(rows: usize) -> std::io::Result<LoaderBench> {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("equiflow-bench-loader-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("points.csv");
    let mut rng = StdRng::seed_from_u64(3);
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(w, "x,y,z")?;
        for _ in 0..rows {
            let v: [f64; 3] = std::array::from_fn(|_| StandardNormal.sample(&mut rng));
            writeln!(w, "{},{},{}", v[0], v[1], v[2])?;
        }
    }
    let file_mib = std::fs::metadata(&path)?.len() as f64 / (1u64 << 20) as f64;
    // The dataset first, in a process that has held nothing large yet: freed memory stays
    // resident, so a load after another would count the first one's pages too.
    let before = max_rss_mib();
    let t = Instant::now();
    let file = crate::preset::FileData {
        path: path.display().to_string(),
        ..Default::default()
    };
    let data = crate::data::points_file::load(&file, 1).map_err(std::io::Error::other)?;
    let seconds_load = t.elapsed().as_secs_f64();
    let peak_mib = max_rss_mib() - before;
    drop(data);
    let t = Instant::now();
    let table = crate::data::table::read(&path, crate::data::table::memory_budget())
        .map_err(std::io::Error::other)?;
    let seconds_read = t.elapsed().as_secs_f64();
    let table_mib = table.bytes() as f64 / (1u64 << 20) as f64;
    let cols = table.cols;
    drop(table);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(LoaderBench {
        rows,
        cols,
        file_mib,
        seconds_read,
        seconds_load,
        table_mib,
        peak_mib,
        peak_over_table: peak_mib / table_mib,
    })
}
