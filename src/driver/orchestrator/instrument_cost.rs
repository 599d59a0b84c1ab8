//! What the instruments cost the server (`run --instrument-cost`): one
//! variant at a fixed offered load with no instruments, with in-process
//! counting (as timing repetitions run), and with kernel counters too (as
//! counting repetitions run), in interleaved rounds of shuffled order.

use crate::driver::measurement::EngineConfig;
use crate::driver::server_process::{ServerProcess, SnapshotWindow};
use crate::protocol::Protocol;
use crate::results::instrument_cost::{FixedLoad, InstrumentCost, Round, SettingWindow};
use crate::results::workload::{Case, Shape, SizeDistribution};
use crate::results::{RepetitionPurpose, Status};
use crate::server::Variant;

use super::judge::{ServerSide, judge};
use super::measure::{CaseEngine, load};
use super::schedule::{driver_threads_for, variant_order};
use super::target::ServerTemplate;

/// The fixed load: open loop, so the server's CPU per request does not
/// depend on how fast the driver is, at a rate every variant sustains on
/// a 2-CPU machine.
pub const FIXED_LOAD_RATE_PER_SECOND: f64 = 25_000.0;
pub const FIXED_LOAD_CONNECTIONS: u32 = 64;
pub const FIXED_LOAD_PAYLOAD_BYTES: u32 = 64;
/// Fewest rounds: a median of fewer says little.
pub const MIN_ROUNDS: u32 = 3;
/// The variant measured when the run has it.
pub const PREFERRED_VARIANT: &str = "lt-writev";

/// What to measure: which variant, over how many rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct InstrumentCostRequest {
    pub variant: Variant,
    pub rounds: u32,
}

/// The fixed-load case.
pub fn fixed_load_case() -> Case {
    Case {
        profile: "instrument-cost".into(),
        label: format!(
            "instrument-cost/{}rps-{}conn-{}b",
            FIXED_LOAD_RATE_PER_SECOND, FIXED_LOAD_CONNECTIONS, FIXED_LOAD_PAYLOAD_BYTES
        ),
        protocol: Protocol::Frame,
        connections: FIXED_LOAD_CONNECTIONS,
        shape: Shape::ConstantRate {
            rate_per_second: FIXED_LOAD_RATE_PER_SECOND,
        },
        sizes: SizeDistribution::Fixed {
            bytes: FIXED_LOAD_PAYLOAD_BYTES,
        },
        seed: 1,
        sweep_size_bytes: None,
        client: Default::default(),
    }
}

/// The three settings, in `Round` order: (kernel counters, in-process
/// counting).
const SETTINGS: [(bool, bool); 3] = [(false, false), (false, true), (true, true)];

/// Measures every round (the three settings in a shuffled order each) and
/// builds the block; the first failed window ends it with its reason.
pub fn measure_instrument_cost(
    request: &InstrumentCostRequest,
    template: &ServerTemplate,
    config: &EngineConfig,
    driver_threads_max: usize,
    engine: &mut dyn CaseEngine,
) -> Result<InstrumentCost, String> {
    let case = fixed_load_case();
    let mut config = config.clone();
    config.driver_threads = driver_threads_for(&case, driver_threads_max);
    let mut rounds = Vec::new();
    let mut previous: Option<Vec<usize>> = None;
    for round in 0..request.rounds {
        let order = variant_order(&case, round, SETTINGS.len(), previous.as_deref());
        let mut windows = [None; 3];
        for &setting in &order {
            let (kernel_counters, syscall_counting) = SETTINGS[setting];
            let mut spec = template.spec(request.variant, case.protocol, RepetitionPurpose::Timing);
            spec.kernel_counters = kernel_counters;
            spec.syscall_counting = syscall_counting;
            windows[setting] = Some(measure_window(&spec, &config, &case, engine)?);
        }
        let [
            Some(no_instruments),
            Some(syscall_counting),
            Some(syscall_and_kernel_counting),
        ] = windows
        else {
            unreachable!("every setting ran in the round");
        };
        rounds.push(Round {
            no_instruments,
            syscall_counting,
            syscall_and_kernel_counting,
        });
        previous = Some(order);
    }
    let load = FixedLoad {
        variant: request.variant.name(),
        offered_rate_per_second: FIXED_LOAD_RATE_PER_SECOND,
        connections: FIXED_LOAD_CONNECTIONS,
        payload_bytes: FIXED_LOAD_PAYLOAD_BYTES,
        warmup_seconds: config.warmup.as_secs_f64(),
        window_seconds: config.duration.as_secs_f64(),
    };
    Ok(InstrumentCost::from_rounds(load, &rounds))
}

/// One window of one setting. Judged as any measurement is (verification,
/// server errors); the server's CPU is read from its window even when it
/// counted nothing, which a measurement's figures would leave out.
fn measure_window(
    spec: &crate::driver::server_process::ServerSpec,
    config: &EngineConfig,
    case: &Case,
    engine: &mut dyn CaseEngine,
) -> Result<SettingWindow, String> {
    let setting = spec.server_args().join(" ");
    let mut server =
        ServerProcess::start(spec).map_err(|e| format!("server did not start: {e}"))?;
    let mut config = config.clone();
    config.target = server.addr();
    let (result, window) = {
        let mut window = SnapshotWindow::new(&mut server);
        let result = load(engine, case, &config, &mut window, &mut |_| {});
        (result, window.finish())
    };
    let stopped = server.stop();
    let delta = window.as_ref().ok().map(|w| w.delta.clone());
    let repetition = judge(0, case, result, ServerSide::of_window(window), Vec::new());
    let failed = |reasons: Vec<String>| format!("`{setting}`: {}", reasons.join("; "));
    if repetition.status == Status::Failed {
        let reasons = repetition.failure.map(|f| f.reasons).unwrap_or_default();
        return Err(failed(reasons));
    }
    stopped.map_err(|e| failed(vec![format!("server did not stop cleanly: {e}")]))?;
    let (Some(m), Some(delta)) = (repetition.measurement, delta) else {
        return Err(failed(vec!["no server window".into()]));
    };
    let requests = m.requests_completed.max(1) as f64;
    let usage = &delta.total.usage;
    Ok(SettingWindow {
        server_cpu_us_per_request: (usage.cpu_user_seconds + usage.cpu_system_seconds) * 1e6
            / requests,
        requests_per_second: m.requests_per_second(),
        syscalls_per_request: delta
            .syscall_counting
            .then(|| delta.total.syscalls.calls.total() as f64 / requests),
    })
}
