//! What the app remembers between launches (eframe storage). Worker handles and results
//! are not part of it.

use super::camera::OrbitCamera;
use crate::backend::BackendChoice;
use crate::preset::{self, DatasetKind, Preset};
use crate::worker::command::SimControls;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Tab {
    Data,
    Score,
    #[default]
    Flow,
    Loss,
    Metrics,
    Lorenz3d,
    /// Image jobs: the learned pattern dynamics beside the true ones.
    Pattern,
    /// Artificial life: paint or load the target icon.
    Paint,
    /// Image jobs: the trained NCA flow (loss, |cos|, its rule).
    Rule,
    /// Point systems: a sweep of many flows and how far they agree.
    Solutions,
}

impl Tab {
    pub const ALL: [Tab; 7] = [
        Tab::Data,
        Tab::Score,
        Tab::Flow,
        Tab::Loss,
        Tab::Metrics,
        Tab::Lorenz3d,
        Tab::Solutions,
    ];

    /// The views of an image job (Turing patterns).
    pub const IMAGES: [Tab; 5] = [Tab::Data, Tab::Pattern, Tab::Rule, Tab::Loss, Tab::Metrics];

    /// The views of an artificial-life job: the target comes first.
    pub const ALIFE: [Tab; 6] = [
        Tab::Paint,
        Tab::Data,
        Tab::Pattern,
        Tab::Rule,
        Tab::Loss,
        Tab::Metrics,
    ];

    /// The views that make sense for this kind of data.
    pub fn for_kind(kind: DatasetKind) -> &'static [Tab] {
        match kind {
            DatasetKind::Alife => &Self::ALIFE,
            k if k.is_image() => &Self::IMAGES,
            _ => &Self::ALL,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tab::Data => "Data",
            Tab::Score => "Score",
            Tab::Flow => "Flow",
            Tab::Loss => "Loss",
            Tab::Metrics => "Metrics",
            Tab::Lorenz3d => "3-D",
            Tab::Pattern => "Patterns",
            Tab::Paint => "Paint",
            Tab::Rule => "NCA",
            Tab::Solutions => "Solutions",
        }
    }

    /// Views that show moving particles (the worker animates only while one is open).
    pub fn animates(self) -> bool {
        matches!(self, Tab::Flow | Tab::Lorenz3d | Tab::Pattern | Tab::Rule)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ThemeChoice {
    #[default]
    System,
    Dark,
    Light,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AppState {
    /// The chosen preset: a built-in name or the file name of an opened one.
    pub preset_name: String,
    /// That preset's TOML as loaded (Reset returns to it).
    pub preset_source: String,
    /// Scale the preset down to train in a minute or two on a CPU.
    pub quick: bool,
    /// The settings as edited in the panel (TOML, so any preset version reads back).
    pub settings_toml: String,
    pub backend: BackendChoice,
    pub theme: ThemeChoice,
    pub tab: Tab,
    pub particles_2d: usize,
    pub particles_3d: usize,
    /// Simulated time per animation frame.
    pub sim_dt: f64,
    pub show_streamlines: bool,
    pub camera: OrbitCamera,
    /// How the learned pattern dynamics play (image jobs).
    pub sim: SimControls,
    /// The Solutions view's sweep: how many models, and how many trained together.
    pub sweep_seeds: usize,
    pub sweep_stack: usize,
    /// Data of 3 or more dimensions: the data axes shown as x, y and z (the plane views
    /// show x against z, as for Lorenz).
    pub axes: [usize; 3],
}

pub const DEFAULT_PRESET: &str = "ring";

impl Default for AppState {
    fn default() -> Self {
        let source = builtin_source(DEFAULT_PRESET).unwrap_or_default();
        Self {
            preset_name: DEFAULT_PRESET.into(),
            settings_toml: Preset::from_toml_str(DEFAULT_PRESET, &source, true, &[])
                .map(|p| p.to_toml())
                .unwrap_or_default(),
            preset_source: source,
            quick: true,
            backend: BackendChoice::Auto,
            theme: ThemeChoice::System,
            tab: Tab::Flow,
            particles_2d: 400,
            particles_3d: 16,
            sim_dt: 0.02,
            show_streamlines: true,
            camera: OrbitCamera::default(),
            sim: SimControls::default(),
            sweep_seeds: 8,
            sweep_stack: 8,
            axes: [0, 1, 2],
        }
    }
}

pub fn builtin_source(name: &str) -> Option<String> {
    preset::BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_string())
}

impl AppState {
    /// The edited settings; falls back to the preset itself if they no longer parse.
    pub fn settings(&self) -> Preset {
        Preset::from_toml_str("saved settings", &self.settings_toml, false, &[])
            .or_else(|_| self.preset())
            .unwrap_or_default()
    }

    /// The chosen preset as loaded, with the quick scaling if asked.
    pub fn preset(&self) -> Result<Preset, preset::PresetError> {
        Preset::from_toml_str(&self.preset_name, &self.preset_source, self.quick, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_state_is_the_quick_ring_and_survives_a_round_trip() {
        let s = AppState::default();
        let p = s.settings();
        assert_eq!(p.name, "ring");
        assert_eq!(p.score.epochs, 120, "quick ring");
        let json = serde_json::to_string(&s).unwrap();
        let back: AppState = serde_json::from_str(&json).unwrap();
        assert_eq!(back.settings().to_toml(), p.to_toml());
        // Old or damaged storage still gives a working state.
        let partial: AppState = serde_json::from_str(r#"{"quick": false}"#).unwrap();
        assert_eq!(partial.preset_name, "ring");
        let broken = AppState {
            settings_toml: "not toml [".into(),
            ..AppState::default()
        };
        assert_eq!(broken.settings().name, "ring");
    }
}
