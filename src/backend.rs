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
    #[error("no usable GPU adapter: {0}; use --backend cpu")]
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

    /// Every backend this machine can run, CPU first (for `bench`).
    pub fn available() -> Vec<Self> {
        let mut out = vec![Self::cpu()];
        if let Ok(g) = gpu() {
            out.push(g);
        }
        out
    }
}

#[cfg(feature = "gpu")]
fn gpu() -> Result<Backend, BackendError> {
    // wgpu can be initialised once per process; later calls reuse the first answer.
    static GPU: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
    let res = GPU.get_or_init(|| {
        let init = std::panic::catch_unwind(|| Device::wgpu_options().init());
        match init {
            Ok(Ok(device)) => Ok(device),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the wgpu runtime panicked while looking for an adapter".into()),
        }
    });
    match res {
        Ok(device) => {
            let name = device
                .identity()
                .map(|id| format!("{id:?}"))
                .unwrap_or_else(|| "adapter".into());
            Ok(Backend {
                device: device.clone(),
                kind: "gpu",
                description: format!("gpu (burn wgpu, {name})"),
            })
        }
        Err(e) => Err(BackendError::NoAdapter(e.clone())),
    }
}

#[cfg(not(feature = "gpu"))]
fn gpu() -> Result<Backend, BackendError> {
    Err(BackendError::NotBuilt)
}
