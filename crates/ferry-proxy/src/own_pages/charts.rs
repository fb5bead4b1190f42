//! The dashboard's charts as inline SVG, drawn on the server: the page shows
//! them without JavaScript, and its script swaps in fresh ones from
//! `/charts/<name>.svg`, so there is one drawing routine and no chart
//! library or build step.

use crate::pages::escape;
use crate::telemetry::activity::BUCKET_SECS;
use crate::telemetry::report::Series;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 56.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;
const LEGEND: f64 = 20.0;

const COLOURS: [&str; 8] = [
    "#2b8a3e", "#66a80f", "#f08c00", "#1971c2", "#845ef7", "#c92a2a", "#e8590c", "#868e96",
];

/// The chart names served under `/charts/`.
pub const NAMES: [&str; 3] = ["requests", "bytes", "fetch"];

pub fn by_name(name: &str, series: &Series, max_concurrent: usize) -> Option<String> {
    Some(match name {
        "requests" => requests(series),
        "bytes" => bytes(series),
        "fetch" => fetch_slots(series, max_concurrent),
        _ => return None,
    })
}

/// Requests per second, stacked by outcome.
pub fn requests(series: &Series) -> String {
    let lines: Vec<ChartLine> = series
        .requests_per_second
        .iter()
        .zip(COLOURS)
        .map(|((name, values), colour)| ChartLine {
            name: name.replace('_', " "),
            colour,
            values: values.clone(),
        })
        .collect();
    draw(
        "requests",
        "requests per second by outcome",
        &lines,
        true,
        None,
        "/s",
    )
}

/// Bytes per second from the cache against from origins.
pub fn bytes(series: &Series) -> String {
    let lines = [
        ChartLine {
            name: "from cache".into(),
            colour: COLOURS[0],
            values: series.bytes_from_cache.clone(),
        },
        ChartLine {
            name: "from origins".into(),
            colour: COLOURS[3],
            values: series.bytes_from_origin.clone(),
        },
    ];
    draw("bytes", "bytes per second", &lines, false, None, "B/s")
}

/// Fetch slots in use and the queue, against `max_concurrent`.
pub fn fetch_slots(series: &Series, max_concurrent: usize) -> String {
    let as_f64 = |v: &[u64]| v.iter().map(|x| *x as f64).collect();
    let lines = [
        ChartLine {
            name: "slots in use".into(),
            colour: COLOURS[3],
            values: as_f64(&series.fetch_slots_in_use),
        },
        ChartLine {
            name: "queued".into(),
            colour: COLOURS[5],
            values: as_f64(&series.fetch_queue_length),
        },
    ];
    draw(
        "fetch",
        "fetch slots (highest in each 10 s)",
        &lines,
        false,
        Some(max_concurrent as f64),
        "",
    )
}

struct ChartLine {
    name: String,
    colour: &'static str,
    values: Vec<f64>,
}

fn draw(
    id: &str,
    title: &str,
    lines: &[ChartLine],
    stacked: bool,
    limit: Option<f64>,
    unit: &str,
) -> String {
    let points = lines.first().map_or(0, |l| l.values.len()).max(2);
    // Stacked series are drawn as the running sums, top one first.
    let mut tops: Vec<Vec<f64>> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let below = if stacked && i > 0 {
            tops[i - 1].clone()
        } else {
            vec![0.0; points]
        };
        tops.push(
            (0..points)
                .map(|p| below[p] + line.values.get(p).copied().unwrap_or(0.0))
                .collect(),
        );
    }
    let highest = tops
        .iter()
        .flatten()
        .copied()
        .chain(limit)
        .fold(0.0f64, f64::max);
    let scale_top = nice_ceiling(highest);
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |p: usize| LEFT + plot_w * p as f64 / (points - 1) as f64;
    let y = |v: f64| TOP + plot_h * (1.0 - v / scale_top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"chart-{id}\" \
viewBox=\"0 0 {WIDTH} {total}\" role=\"img\" aria-label=\"{title}\">\
<title>{title}</title>\
<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"#fafafa\" stroke=\"#ddd\"/>\
<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" class=\"axis\">{top_label}</text>\
<text x=\"{lx}\" y=\"{by}\" text-anchor=\"end\" class=\"axis\">0</text>\
<text x=\"{LEFT}\" y=\"{ay}\" class=\"axis\">−{minutes} min</text>\
<text x=\"{rx}\" y=\"{ay}\" text-anchor=\"end\" class=\"axis\">now</text>",
        total = HEIGHT + LEGEND,
        title = escape(title),
        lx = LEFT - 4.0,
        ty = TOP + 10.0,
        by = TOP + plot_h,
        top_label = escape(&format!("{}{unit}", human(scale_top))),
        ay = HEIGHT - 6.0,
        rx = LEFT + plot_w,
        minutes = points as u64 * BUCKET_SECS / 60,
    );
    for (i, line) in lines.iter().enumerate().rev() {
        let top = &tops[i];
        let mut path = String::new();
        for (p, v) in top.iter().enumerate() {
            path.push_str(&format!("{:.1},{:.1} ", x(p), y(*v)));
        }
        if stacked {
            svg.push_str(&format!(
                "<polygon class=\"series\" data-series=\"{name}\" fill=\"{c}\" fill-opacity=\"0.75\" \
points=\"{x0:.1},{base:.1} {path}{x1:.1},{base:.1}\"/>",
                name = escape(&line.name),
                c = line.colour,
                x0 = x(0),
                x1 = x(points - 1),
                base = y(0.0),
            ));
        } else {
            svg.push_str(&format!(
                "<polyline class=\"series\" data-series=\"{name}\" fill=\"none\" stroke=\"{c}\" \
stroke-width=\"1.8\" points=\"{path}\"/>",
                name = escape(&line.name),
                c = line.colour,
            ));
        }
    }
    if let Some(limit) = limit {
        svg.push_str(&format!(
            "<line class=\"limit\" x1=\"{LEFT}\" x2=\"{x2:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" \
stroke=\"#000\" stroke-dasharray=\"4 3\"/><text x=\"{x2:.1}\" y=\"{ty:.1}\" text-anchor=\"end\" \
class=\"axis\">max-concurrent {limit}</text>",
            x2 = LEFT + plot_w,
            ly = y(limit),
            ty = y(limit) - 3.0,
        ));
    }
    let mut lx = LEFT;
    for line in lines {
        svg.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"{sy:.1}\" width=\"10\" height=\"10\" fill=\"{c}\"/>\
<text x=\"{tx:.1}\" y=\"{ty:.1}\" class=\"legend\">{name}</text>",
            sy = HEIGHT + 4.0,
            c = line.colour,
            tx = lx + 13.0,
            ty = HEIGHT + 13.0,
            name = escape(&line.name),
        ));
        lx += 20.0 + 7.0 * line.name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// A round number at or above `v` for the top of the scale (1, 2 or 5
/// times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * power * 1.0000001 {
            return m * power;
        }
    }
    10.0 * power
}

/// `1500` → `1.5k`.
pub fn human(v: f64) -> String {
    let (v, suffix) = match v {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    let text = if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    };
    format!("{text}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::activity::BUCKETS;

    fn series() -> Series {
        let mut hits = vec![0.0; BUCKETS];
        hits[BUCKETS - 1] = 3.0;
        Series {
            interval_seconds: BUCKET_SECS,
            start: 0,
            requests_per_second: vec![("fresh_hit", hits), ("miss", vec![1.0; BUCKETS])],
            bytes_from_cache: vec![0.0; BUCKETS],
            bytes_from_origin: vec![2048.0; BUCKETS],
            fetch_slots_in_use: vec![1; BUCKETS],
            fetch_queue_length: vec![0; BUCKETS],
        }
    }

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(4.0), 5.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(human(1500.0), "1.5k");
        assert_eq!(human(2e6), "2M");
    }

    #[test]
    fn stacked_series_sit_on_each_other_and_the_limit_is_drawn() {
        let svg = requests(&series());
        assert_eq!(svg.matches("<polygon").count(), 2);
        assert!(svg.contains("data-series=\"fresh hit\""));
        // The scale tops the stacked sum (1 + 3 = 4 → 5/s).
        assert!(svg.contains(">5/s<"), "{svg}");
        let svg = fetch_slots(&series(), 8);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("max-concurrent 8"));
        assert!(by_name("nope", &series(), 1).is_none());
    }
}
