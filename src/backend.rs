//! Which device runs the tensors: burn's Flex CPU backend, or wgpu when built with `gpu`.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU when an adapter exists, else the CPU.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("this build has no GPU backend (built without the `gpu` feature); use --backend cpu")]
    NotBuilt,
    #[error("{0}; use --backend cpu")]
    NoAdapter(String),
}

/// A device and the words that tell the user what it is.
#[derive(Clone)]
pub struct Backend {
    pub device: Device,
    /// Short name stored in `metrics.json`: `cpu` or `gpu`.
    pub kind: &'static str,
    /// A sentence for humans, e.g. "cpu (burn Flex, 2 threads)".
    pub description: String,
}

impl Backend {
    pub fn cpu() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Backend {
            device: Device::flex(),
            kind: "cpu",
            description: format!("cpu (burn Flex, {threads} threads)"),
        }
    }

    pub fn select(choice: BackendChoice) -> Result<Self, BackendError> {
        match choice {
            BackendChoice::Cpu => Ok(Self::cpu()),
            BackendChoice::Gpu => gpu(),
            BackendChoice::Auto => Ok(gpu().unwrap_or_else(|_| Self::cpu())),
        }
    }

    /// Whether `select(choice)` will succeed, answered without probing for a device: a
    /// GPU counts only once an earlier probe found one. The UI asks before it interrupts
    /// a running job for a new one, so a Start that will be refused interrupts nothing.
    pub fn surely_available(choice: BackendChoice) -> bool {
        match choice {
            BackendChoice::Cpu | BackendChoice::Auto => true,
            BackendChoice::Gpu => gpu_found(),
        }
    }

    /// Every backend this machine can run, CPU first (for `bench`).
    pub fn available() -> Vec<Self> {
        let mut out = vec![Self::cpu()];
        if let Ok(g) = gpu() {
            out.push(g);
        }
        out
    }
}

// wgpu can be initialised once per process; later calls reuse the first answer.
#[cfg(feature = "gpu")]
static GPU: std::sync::OnceLock<Result<(Device, String), String>> = std::sync::OnceLock::new();

#[cfg(feature = "gpu")]
fn gpu_found() -> bool {
    GPU.get().is_some_and(|r| r.is_ok())
}

#[cfg(feature = "gpu")]
fn gpu() -> Result<Backend, BackendError> {
    use burn::tensor::DeviceKind;
    let res = GPU.get_or_init(|| {
        // Hardware adapters only: wgpu's "best available" happily returns a software
        // rasteriser (llvmpipe), on which training is far slower than the CPU backend.
        let mut why = Vec::new();
        for kind in [
            DeviceKind::DiscreteGpu(0),
            DeviceKind::IntegratedGpu(0),
            DeviceKind::VirtualGpu(0),
        ] {
            let label = format!("{kind:?}");
            let init = std::panic::catch_unwind(|| Device::wgpu_options().device_kind(kind).init());
            match init {
                Ok(Ok(device)) => {
                    let name = device
                        .identity()
                        .map(|id| id.name.to_string())
                        .unwrap_or_else(|| "unnamed adapter".into());
                    if is_software(&name) {
                        why.push(format!("{label}: {name} is a software rasteriser"));
                        continue;
                    }
                    return Ok((device, name));
                }
                // wgpu's message lists every adapter's full info; the first clause says it.
                Ok(Err(e)) => why.push(
                    e.to_string()
                        .split(", adapters")
                        .next()
                        .unwrap_or("")
                        .to_string(),
                ),
                Err(_) => why.push(format!("{label}: wgpu panicked")),
            }
        }
        Err(format!("no hardware GPU found ({})", why.join("; ")))
    });
    match res {
        Ok((device, name)) => Ok(Backend {
            device: device.clone(),
            kind: "gpu",
            description: format!("gpu (burn wgpu, {name})"),
        }),
        Err(e) => Err(BackendError::NoAdapter(e.clone())),
    }
}

#[cfg(feature = "gpu")]
fn is_software(name: &str) -> bool {
    let n = name.to_lowercase();
    [
        "llvmpipe",
        "lavapipe",
        "swiftshader",
        "softpipe",
        "software",
    ]
    .iter()
    .any(|s| n.contains(s))
}

#[cfg(not(feature = "gpu"))]
fn gpu_found() -> bool {
    false
}

#[cfg(not(feature = "gpu"))]
fn gpu() -> Result<Backend, BackendError> {
    Err(BackendError::NotBuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_always_yields_a_usable_backend() {
        let b = Backend::select(BackendChoice::Auto).unwrap();
        assert!(b.kind == "cpu" || b.kind == "gpu");
        assert!(b.description.starts_with(b.kind));
        let cpu = Backend::select(BackendChoice::Cpu).unwrap();
        assert_eq!(cpu.kind, "cpu");
        // Asking for a GPU either gives one or says why not.
        match Backend::select(BackendChoice::Gpu) {
            Ok(g) => assert_eq!(g.kind, "gpu"),
            Err(e) => assert!(e.to_string().contains("--backend cpu")),
        }
    }
}
