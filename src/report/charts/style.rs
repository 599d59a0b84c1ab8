//! How charts look: the palette, line dashes and markers that tell variants
//! apart without colour, fonts, and a drawing-backend wrapper that measures
//! text without a font.
//!
//! Layout (label areas, legend boxes) depends on text sizes. Asking a font
//! for them would make an SVG depend on the fonts of the machine that drew
//! it, so [`FixedMetrics`] estimates widths from a fixed per-character table
//! instead: the same input gives the same SVG everywhere, and SVG needs no
//! font at all. Only PNG rasterises glyphs, with the font [`load_png_font`]
//! registers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::register_font;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use crate::server::variant::{CopyMode, ReadPolicy, TriggerMode, Variant, VariantName};

/// Okabe–Ito colours: distinguishable with the common colour-vision
/// deficiencies. Yellow comes last: it is faint on white.
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

/// Grey for "other" stacks.
pub const OTHER_GREY: RGBColor = RGBColor(150, 150, 150);

/// Syscall kind → colour, the same in every chart, so `epoll_wait` reads
/// as the same stack from chart to chart. Taken from Paul Tol's "muted"
/// scheme, a second qualitative palette that shares no colour with
/// [`OKABE_ITO`]: a stack is never mistaken for a variant. `io_uring_enter`,
/// the io_uring variants' main stack, takes the dark blue of Tol's
/// high-contrast scheme (the muted one has no tenth colour).
pub const SYSCALL_KIND_COLORS: [(&str, RGBColor); 10] = [
    ("epoll_wait", RGBColor(51, 34, 136)),    // indigo
    ("read", RGBColor(68, 170, 153)),         // teal
    ("write", RGBColor(204, 102, 119)),       // rose
    ("readv", RGBColor(136, 204, 238)),       // cyan
    ("writev", RGBColor(136, 34, 85)),        // wine
    ("splice", RGBColor(153, 153, 51)),       // olive
    ("epoll_ctl", RGBColor(221, 204, 119)),   // sand
    ("accept4", RGBColor(17, 119, 51)),       // green
    ("getrusage", RGBColor(170, 68, 153)),    // purple
    ("io_uring_enter", RGBColor(0, 68, 136)), // dark blue
];

/// Greys for kinds outside [`SYSCALL_KIND_COLORS`], picked by the kind's
/// name alone (not its rank in a chart), and all unlike [`OTHER_GREY`].
const MINOR_KIND_GREYS: [RGBColor; 3] = [
    RGBColor(90, 90, 90),
    RGBColor(190, 190, 190),
    RGBColor(120, 120, 120),
];

/// The colour of a syscall kind's stack, whatever other kinds the chart
/// holds.
pub fn syscall_kind_color(kind: &str) -> RGBColor {
    if let Some((_, color)) = SYSCALL_KIND_COLORS.iter().find(|(k, _)| *k == kind) {
        return *color;
    }
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = kind.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    MINOR_KIND_GREYS[(hash % MINOR_KIND_GREYS.len() as u64) as usize]
}

/// The colour of an io_uring operation's stack in the syscalls chart: a
/// light tint of the syscall it stands in for (`recv` of `read`, `send`
/// of `write`, `accept` of `accept4`, ...), so an operation reads as the
/// same work as its syscall and yet as something else; operations without
/// a syscall analogue (`poll_add`, `async_cancel`) take a grey by name.
pub fn uring_op_color(op: &str) -> RGBColor {
    let analogue = match op {
        "recv" | "recv_multishot" => "read",
        "send" => "write",
        "sendmsg" => "writev",
        "accept" | "accept_multishot" => "accept4",
        other => other,
    };
    let RGBColor(r, g, b) = syscall_kind_color(analogue);
    // Halfway to white.
    let tint = |c: u8| c + (255 - c) / 2;
    RGBColor(tint(r), tint(g), tint(b))
}

/// How a line is drawn, so that it reads in greyscale too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// The look of one variant: trigger mode → dash (LT solid, ET dashed, ET
/// with short-read stop and io_uring dotted), copy strategy → marker (rw circle, writev
/// triangle, splice square), and a colour of its own.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VariantStyle {
    pub color: RGBColor,
    pub dash: Dash,
    pub marker: Marker,
}

/// The look of `variant`; unknown names get a cross marker and a colour
/// from their position in `order`.
pub fn variant_style(variant: &VariantName, index_in_order: usize) -> VariantStyle {
    match variant.builtin() {
        Some(v) => {
            let index = Variant::ALL.iter().position(|a| *a == v).unwrap_or(0);
            VariantStyle {
                color: OKABE_ITO[index % OKABE_ITO.len()],
                dash: match (v.trigger(), v.read_policy) {
                    (Some(TriggerMode::Level), _) => Dash::Solid,
                    (Some(TriggerMode::Edge), ReadPolicy::Backend) => Dash::Dashed,
                    (Some(TriggerMode::Edge), ReadPolicy::StopOnShortRead) => Dash::Dotted,
                    // io_uring: its colours repeat LT's (8 colours, 10
                    // variants), so its line differs: dotted, told apart
                    // from ET short-read stopping by colour.
                    (None, _) => Dash::Dotted,
                },
                marker: match v.copy {
                    // mmap writes from user memory as rw does, sendfile
                    // moves pages in the kernel as splice does; their
                    // colours tell each pair apart.
                    CopyMode::ReadWrite | CopyMode::Mmap => Marker::Circle,
                    // zerocopy gathers every piece into one send, as writev
                    // does; its colour tells the two apart.
                    CopyMode::Writev | CopyMode::Zerocopy => Marker::Triangle,
                    // vmsplice ends in a splice out, as splice does; sendfile is
                    // the file protocol's no-user-copy send, like splice.
                    CopyMode::Splice | CopyMode::Vmsplice | CopyMode::Sendfile => Marker::Square,
                },
            }
        }
        None => VariantStyle {
            color: OKABE_ITO[index_in_order % OKABE_ITO.len()],
            dash: Dash::Solid,
            marker: Marker::Cross,
        },
    }
}

/// Variants in report order: the server's own order first, then external
/// servers alphabetically.
pub fn variant_order<'a>(names: impl IntoIterator<Item = &'a VariantName>) -> Vec<VariantName> {
    let mut names: Vec<VariantName> = names.into_iter().cloned().collect();
    names.sort_by(|a, b| a.report_order().cmp(&b.report_order()));
    names.dedup();
    names
}

pub const FONT_FAMILY: &str = "sans-serif";
pub const TITLE_PX: f64 = 22.0;
pub const CAPTION_PX: f64 = 17.0;
pub const LABEL_PX: f64 = 14.0;
pub const SMALL_PX: f64 = 12.0;

pub fn text(size_px: f64) -> TextStyle<'static> {
    TextStyle::from((FONT_FAMILY, size_px).into_font())
}

/// Fonts tried for PNG text, in order (Debian package in brackets):
/// DejaVu Sans (`fonts-dejavu-core`), Liberation Sans
/// (`fonts-liberation2`), FreeSans (`fonts-freefont-ttf`).
pub const PNG_FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Overrides [`PNG_FONT_CANDIDATES`] with one TrueType file.
pub const FONT_ENV: &str = "EPOLL_BENCH_FONT";

/// Registers a TrueType font for PNG text once per process. Returns the
/// font's path, or an error message naming what was tried.
pub fn load_png_font() -> Result<PathBuf, String> {
    static LOADED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let candidates: Vec<PathBuf> = match std::env::var_os(FONT_ENV) {
                Some(p) => vec![PathBuf::from(p)],
                None => PNG_FONT_CANDIDATES.iter().map(PathBuf::from).collect(),
            };
            for path in &candidates {
                if let Ok(bytes) = std::fs::read(path) {
                    // plotters keeps registered fonts for the whole
                    // process; loaded once, so leaking is bounded.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    let ok = [FontStyle::Normal, FontStyle::Bold]
                        .into_iter()
                        .all(|style| register_font(FONT_FAMILY, style, bytes).is_ok());
                    if ok {
                        return Ok(path.clone());
                    }
                    return Err(format!("{}: not a usable TrueType font", path.display()));
                }
            }
            Err(format!(
                "PNG charts need a TrueType font and none was found (tried {}); install one, e.g. `apt-get install -y fonts-dejavu-core`, or set {FONT_ENV}=/path/to/font.ttf",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
        .clone()
}

/// Approximate advance width of `c` in ems (close to DejaVu Sans).
fn advance_em(c: char) -> f64 {
    match c {
        ' ' => 0.32,
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.28,
        'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | '/' => 0.40,
        'm' | 'w' | 'M' | 'W' | '%' | '—' => 0.92,
        '0'..='9' => 0.64,
        'A'..='Z' => 0.70,
        _ => 0.58,
    }
}

/// Estimated `(width, height)` in pixels of `text` at `size_px`.
pub fn estimate_text_px(text: &str, size_px: f64) -> (u32, u32) {
    // plotters sizes fonts so that an em is size / 1.24 (as its SVG
    // backend writes `font-size`).
    let em = size_px / 1.24;
    let width: f64 = text.chars().map(advance_em).sum::<f64>() * em;
    (width.ceil() as u32, size_px.ceil() as u32)
}

/// Wraps a backend and answers text-size questions from
/// [`estimate_text_px`] instead of a font.
pub struct FixedMetrics<B>(pub B);

impl<B: DrawingBackend> DrawingBackend for FixedMetrics<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_text(text, style, pos)
    }
    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        Ok(estimate_text_px(text, style.size()))
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }
}

/// Human-readable bytes: `64 B`, `4 KiB`, `1 MiB`.
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if (value - value.round()).abs() < 1e-9 {
        format!("{} {}", value.round(), UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A number for a label: compact (`12k`, `3M`), without float noise, with
/// three significant digits (`0.00103`, `9.34`; integer digits are never
/// rounded away: `1234`).
pub fn format_tick(value: f64) -> String {
    format_significant(value, 3)
}

/// Labels for the tick values of one axis: the fewest significant digits
/// (three at least) at which consecutive labels differ, so 0.0005 steps
/// read 0.0005, 0.001, 0.0015 rather than 0.001, 0.001, 0.002.
pub fn format_ticks(values: &[f64]) -> Vec<String> {
    let distinct = |labels: &[String]| labels.windows(2).all(|w| w[0] != w[1]);
    let mut labels = Vec::new();
    for digits in 3..=15 {
        labels = values
            .iter()
            .map(|v| format_significant(*v, digits))
            .collect();
        if distinct(&labels) {
            break;
        }
    }
    labels
}

fn format_significant(value: f64, digits: i32) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        "0".into()
    } else if magnitude >= 1e6 {
        format!("{}M", trim(value / 1e6, digits))
    } else if magnitude >= 1e4 {
        format!("{}k", trim(value / 1e3, digits))
    } else {
        trim(value, digits)
    }
}

fn trim(value: f64, digits: i32) -> String {
    let exponent = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - exponent).max(0) as usize;
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Tick values for a linear axis over `[lo, hi]` at a 1-2-5 step, at most
/// `max_count` of them.
pub fn linear_ticks(lo: f64, hi: f64, max_count: usize) -> Vec<f64> {
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater)
        || !lo.is_finite()
        || !hi.is_finite()
    {
        return vec![lo];
    }
    let rough = (hi - lo) / max_count.max(2) as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| (hi - lo) / s <= max_count as f64)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    // Multiples of the step, so 0.3 is 3 × 0.1 and not 0.1 + 0.1 + 0.1.
    (first..=last).map(|i| i as f64 * step).collect()
}

/// File-name-safe form of a profile name.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { "chart".into() } else { out }
}

/// `path` relative to nothing: used only in messages.
pub fn shown(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges from tiny to huge, narrow and wide, positive and negative.
    fn ranges() -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for exponent in -7..=8 {
            let scale = 10f64.powi(exponent);
            for (lo, hi) in [
                (0.0, 1.0),
                (0.0, 2.3),
                (0.0, 0.0023),
                (1.0, 1.07),
                (99.0, 101.0),
                (-3.0, 7.7),
                (0.3, 0.31),
                (1000.1, 1000.9),
            ] {
                out.push((lo * scale, hi * scale));
            }
        }
        out
    }

    #[test]
    fn consecutive_tick_labels_differ_for_any_range() {
        for (lo, hi) in ranges() {
            let linear = linear_ticks(lo, hi, 6);
            assert!(linear.len() >= 2, "{lo}..{hi}: {linear:?}");
            let labels = format_ticks(&linear);
            for pair in labels.windows(2) {
                assert_ne!(pair[0], pair[1], "{lo}..{hi}: {labels:?}");
            }
            if lo > 0.0 {
                let log = crate::report::charts::draw::log_ticks(lo, hi);
                let labels = format_ticks(&log);
                for pair in labels.windows(2) {
                    assert_ne!(pair[0], pair[1], "log {lo}..{hi}: {labels:?}");
                }
            }
        }
    }

    #[test]
    fn the_pipelined_context_switch_axis_reads_in_half_thousandths() {
        let ticks = linear_ticks(0.0, 0.0023, 6);
        assert_eq!(
            format_ticks(&ticks),
            ["0", "0.0005", "0.001", "0.0015", "0.002"]
        );
        assert_eq!(format_tick(0.00103), "0.00103");
        assert_eq!(format_tick(0.0004), "0.0004");
        assert_eq!(format_tick(9.344), "9.34");
        assert_eq!(format_tick(1234.4), "1234");
        assert_eq!(format_tick(25_000.0), "25k");
        assert_eq!(format_tick(2_500_000.0), "2.5M");
    }

    #[test]
    fn a_syscall_kind_keeps_its_colour_and_never_takes_a_variant_colour() {
        for (kind, color) in SYSCALL_KIND_COLORS {
            assert_eq!(syscall_kind_color(kind), color);
        }
        let kinds = [
            "epoll_wait",
            "read",
            "write",
            "close",
            "pipe2",
            "io_uring_enter",
        ];
        for kind in kinds {
            let color = syscall_kind_color(kind);
            assert_eq!(color, syscall_kind_color(kind), "{kind}");
            assert!(!OKABE_ITO.contains(&color), "{kind} has a variant colour");
            assert_ne!(color, OTHER_GREY, "{kind} looks like \"other\"");
        }
        let named: Vec<RGBColor> = SYSCALL_KIND_COLORS.iter().map(|(_, c)| *c).collect();
        for (i, c) in named.iter().enumerate() {
            assert!(!named[i + 1..].contains(c), "two kinds share {c:?}");
        }
    }
}
