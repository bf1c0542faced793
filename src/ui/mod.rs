//! The desktop app. It only draws and forwards what the user does: every computation runs
//! on the worker thread (`crate::worker`), which the app hears from through events.

pub mod app;
pub mod camera;
pub mod export;
pub mod paint;
pub mod panels;
pub mod pixels;
pub mod results;
pub mod state;
pub mod views;

pub use app::EquiflowApp;
pub use state::AppState;

/// Which renderer draws the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Renderer {
    /// OpenGL: smooth even on software GL (no GPU).
    #[default]
    Glow,
    /// wgpu: for machines with a real GPU.
    Wgpu,
}

/// A preset to open the app on (from the command line), instead of the remembered one.
pub struct StartWith {
    pub name: String,
    pub source: String,
    pub settings: crate::preset::Preset,
    pub quick: bool,
}

/// Open the app window and run until it is closed.
pub fn run(renderer: Renderer, start: Option<StartWith>) -> eframe::Result {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("equiflow")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        renderer: match renderer {
            Renderer::Glow => eframe::Renderer::Glow,
            #[cfg(feature = "gpu")]
            Renderer::Wgpu => eframe::Renderer::Wgpu,
            #[cfg(not(feature = "gpu"))]
            Renderer::Wgpu => eframe::Renderer::Glow,
        },
        ..Default::default()
    };
    eframe::run_native(
        "equiflow",
        options,
        Box::new(|cc| {
            let mut app = EquiflowApp::from_creation(cc);
            if let Some(s) = start {
                app.state.preset_name = s.name;
                app.state.preset_source = s.source;
                app.state.quick = s.quick;
                app.set_settings(s.settings);
            }
            Ok(Box::new(app))
        }),
    )
}
