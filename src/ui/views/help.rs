//! "What am I seeing?": a few plain sentences per view, for teaching.

use crate::ui::state::Tab;

pub fn text(tab: Tab) -> &'static str {
    match tab {
        Tab::Data => {
            "Left: the snapshots we learn from — points with no time order, only where the \
             system tends to be. Right: new points drawn from the diffusion (score) model as it \
             trains. When the right looks like the left, the model has learned the distribution p."
        }
        Tab::Score => {
            "The score is the direction in which the probability density grows fastest, ∇log p. \
             Each arrow points towards where data are more likely; arrows are long where the \
             density changes quickly. It is learned from noisy copies of the data (denoising), \
             at a small noise level so the field is smooth."
        }
        Tab::Flow => {
            "A flow v moves every point. The density stays the same exactly when the continuity \
             equation holds: ∂p/∂t = −∇·(p v) = 0, i.e. as much probability flows into every \
             small region as out of it. Pushing points towards higher density would pile them \
             up, so a flow that keeps p must move along the contours of p: on the ring the \
             particles circulate around it, and the picture stays still while everything moves. \
             Lines are streamlines of the learned field; particles are moved by it live (RK4), \
             coloured by speed."
        }
        Tab::Loss => {
            "Training losses per epoch, on a log scale. Score: how well the model predicts the \
             noise added to the data. Flow: the equilibrium loss, the squared residual of the \
             continuity equation written with the score, ∇·v + v·∇log p, which is zero for a \
             flow that keeps the distribution."
        }
        Tab::Metrics => {
            "MMD² measures how different two clouds of points are (0 = the same distribution). \
             Each curve starts from the data and moves it along one field: the learned flow \
             should stay near 0 while a random flow of the same kind drifts away. The score \
             field itself collapses points onto the peaks. The training-free flow D·∇log p \
             (D antisymmetric) keeps p too, with no flow training at all."
        }
        Tab::Pattern => {
            "Left: a Turing pattern moved by the training-free flow v = K * ∇log p, where K \
             mixes the two chemicals with a skew kernel (K = −Kᵀ), so the pattern statistics \
             are kept exactly while the pattern moves. We show the denoised state, smoothed \
             over time. Right: the true Gray–Scott reaction–diffusion from the same start — \
             the flow never saw it run, only still snapshots. Below: where each one is \
             growing (red) and shrinking (blue) right now. The sign flips the direction; \
             η adds Langevin noise that keeps the state on the pattern manifold."
        }
        Tab::Paint => {
            "Artificial life by inverse design. Paint a small icon (or load a PNG/JPEG, or \
             start from a built-in target), then press Use as target and Train. The icon is \
             stamped many times at random positions and rotations; a diffusion model learns \
             what such pictures look like, and the training-free flow v = K * ∇log p moves \
             the icons while keeping the picture's statistics: they swim, flock, attract and \
             repel. Ctrl+Z undoes, Ctrl+Shift+Z or Ctrl+Y redoes."
        }
        Tab::Rule => {
            "A neural cellular automaton (NCA) learns the flow instead of the fixed skew \
             kernel. Every pixel looks at its 3×3 neighbourhood through a stencil that is the \
             same in every direction (centre, edges, corners — like the Laplacian of a \
             reaction–diffusion system), and a tiny per-pixel network says how it changes. It \
             is trained with the equilibrium loss ∇·v + v·∇log p (its divergence estimated \
             with random probes, two independent estimates multiplied so the loss is \
             unbiased). For Turing patterns the curve shows how well v already points like \
             the true Gray–Scott change on patterns it never saw. The small squares are the \
             rule it learned; the picture is the NCA running live."
        }
        Tab::Solutions => {
            "Are the dynamics the snapshots allow one solution or many? A sweep trains one \
             score model, then many flows that differ only in their random seed. The heat map \
             is |cos| between every two models' fields on the same data states (1 = the same \
             dynamics up to speed and sign); the plane places each field by its first two \
             principal axes, so one tight cluster means one solution; the histograms show each \
             model's |cos| to the true field (Lorenz) and its largest Lyapunov exponent \
             (positive = chaotic). Click a model to play its flow in the Flow and 3-D views."
        }
        Tab::Lorenz3d => {
            "Data of three or more dimensions in 3-D (the Lorenz attractor, or your own file; \
             above three dimensions, the axes picked under Axes shown). Blue dots are the \
             snapshots; grey is one true Lorenz trajectory; coloured curves are trajectories of \
             the learned flow. The learned flow only saw the cloud of states, never their \
             order — yet on Lorenz it finds dynamics that wind around the two lobes and keep \
             the butterfly. Drag to rotate, scroll to zoom, double-click to reset the camera."
        }
    }
}
