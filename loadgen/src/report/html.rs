//! The self-contained `report.html`: inline SVG plots drawn with plotters' SVG backend.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde_json::Value;

use crate::report::SecondRow;

const W: u32 = 860;
const H: u32 = 340;

/// One named line.
type Line = (String, Vec<(f64, f64)>);

/// An SVG line chart (empty string if drawing fails).
pub fn line_chart(title: &str, x_label: &str, y_label: &str, lines: &[Line]) -> String {
    let mut svg = String::new();
    let _ = draw(&mut svg, title, x_label, y_label, lines);
    svg
}

fn draw(
    svg: &mut String,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error>> {
    let pts = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.08 };
    let root = SVGBackend::with_string(svg, (W, H)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, 0.0..y1)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    if lines.len() > 1 || lines.first().is_some_and(|(n, _)| !n.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// `run.json`'s `node_runtime` in words: "current_thread, worker threads 1, verifier threads 0".
fn node_runtime_text(v: &Value) -> String {
    match (
        v["scheduler"].as_str(),
        v["worker_threads"].as_u64(),
        v["verifier_threads"].as_u64(),
    ) {
        (Some(sched), Some(w), Some(ver)) => {
            format!("{sched}, worker threads {w}, verifier threads {ver}")
        }
        _ => "unknown".into(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The headline table ([`crate::report::summary::headline`]): what a reader came for, per kind of peer
/// when the cluster is mixed.
fn headline_table(doc: &Value) -> String {
    let h = crate::report::summary::headline(doc);
    let mut t = String::from("<h2>Headline</h2><table><tr><th></th>");
    for c in &h.columns {
        let _ = write!(t, "<th>{}</th>", esc(c));
    }
    t.push_str("</tr>");
    for (label, cells) in &h.rows {
        let _ = write!(t, "<tr><td>{}</td>", esc(label));
        for c in cells {
            let _ = write!(t, "<td>{}</td>", esc(c));
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

/// Every other figure, grouped ([`crate::report::summary::figure_groups`]).
fn figure_tables(doc: &Value) -> String {
    let mut t = String::from("<h2>All figures</h2>");
    for (group, rows) in crate::report::summary::figure_groups(doc) {
        let _ = write!(
            t,
            "<h3>{}</h3><table><tr><th>figure</th><th>value</th></tr>",
            esc(group)
        );
        for (k, v) in rows {
            let _ = write!(
                t,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&k),
                crate::report::summary::format_value(v)
            );
        }
        t.push_str("</table>");
    }
    t
}

/// The per-node table: kind, latency, CPU under load and idle, memory, bytes and their source.
fn node_table(doc: &Value) -> String {
    let Some(nodes) = doc["nodes"].as_array() else {
        return String::new();
    };
    let mut t = String::from(
        "<h2>Per node</h2><table><tr><th>node</th><th>kind</th><th>latency p50 ms</th>\
         <th>latency p99 ms</th><th>CPU s (injection)</th><th>idle CPU %</th><th>peak RSS MiB</th>\
         <th>RssAnon max MiB</th><th>PSS max MiB</th><th>sent KiB (injection)</th>\
         <th>received KiB (injection)</th><th>bytes from</th></tr>",
    );
    let num = |v: &Value, scale: f64, digits: usize| {
        v.as_f64()
            .map_or("-".to_string(), |x| format!("{:.digits$}", x / scale))
    };
    for n in nodes {
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(n["name"].as_str().unwrap_or("")),
            esc(&format!(
                "{}{}",
                n["kind"].as_str().unwrap_or("-"),
                if n["injector"].as_bool() == Some(true) {
                    " (injector)"
                } else {
                    ""
                }
            )),
            num(&n["latency_p50_ms"], 1.0, 3),
            num(&n["latency_p99_ms"], 1.0, 3),
            num(&n["cpu_s_window"], 1.0, 2),
            num(&n["cpu_pct_idle"], 1.0, 3),
            num(&n["peak_rss_bytes"], 1048576.0, 1),
            num(&n["rss_anon_bytes_max"], 1048576.0, 1),
            num(&n["pss_bytes_max"], 1048576.0, 1),
            num(&n["bytes_sent_window"], 1024.0, 1),
            num(&n["bytes_received_window"], 1024.0, 1),
            esc(n["bytes_source"].as_str().unwrap_or("-")),
        );
    }
    t.push_str("</table>");
    t
}

/// The whole report page.
pub fn report(doc: &Value, rows: &[SecondRow], tta: &Histogram<u64>, names: &[String]) -> String {
    let mut page = String::new();
    let name = doc["scenario"]["name"].as_str().unwrap_or("run");
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>loadgen: {}</title>\
         <style>body{{font-family:sans-serif;max-width:900px;margin:auto}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}</style>\
         </head><body><h1>loadgen run: {}</h1>",
        esc(name),
        esc(name)
    );
    let _ = write!(
        page,
        "<p>schema {} · node commit {} (loadgen {}) · {} ({} cores, kernel {}) · allocator {} · node runtime {}</p>",
        esc(doc["schema"].as_str().unwrap_or("")),
        esc(doc["git_commit"].as_str().unwrap_or("unknown")),
        esc(doc["loadgen_git_commit"].as_str().unwrap_or("unknown")),
        esc(doc["machine"]["cpu_model"].as_str().unwrap_or("")),
        doc["machine"]["cores"],
        esc(doc["machine"]["kernel"].as_str().unwrap_or("")),
        esc(doc["allocator"].as_str().unwrap_or("")),
        esc(&node_runtime_text(&doc["node_runtime"])),
    );
    page.push_str(&headline_table(doc));
    page.push_str(&figure_tables(doc));
    page.push_str(&node_table(doc));
    page.push_str("<h2>Methods</h2><ul>");
    if let Some(m) = doc["methods"].as_object() {
        for (k, v) in m {
            let _ = write!(
                page,
                "<li><b>{}</b>: {}</li>",
                esc(k),
                esc(v.as_str().unwrap_or(""))
            );
        }
    }
    page.push_str("</ul><h2>Plots</h2>");
    let series = |f: &dyn Fn(&SecondRow) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.t_s as f64, f(r))).collect()
    };
    let lat_rows: Vec<&SecondRow> = rows.iter().filter(|r| r.deliveries > 0).collect();
    page.push_str(&line_chart(
        "Delivery latency per second (from scheduled time)",
        "seconds since first block was due",
        "ms",
        &[
            (
                "p50".into(),
                lat_rows.iter().map(|r| (r.t_s as f64, r.p50_ms)).collect(),
            ),
            (
                "p99".into(),
                lat_rows.iter().map(|r| (r.t_s as f64, r.p99_ms)).collect(),
            ),
        ],
    ));
    let total = tta.len().max(1) as f64;
    let mut cum = 0u64;
    let cdf: Vec<(f64, f64)> = tta
        .iter_recorded()
        .map(|v| {
            cum += v.count_since_last_iteration();
            (v.value_iterated_to() as f64 / 1000.0, cum as f64 / total)
        })
        .collect();
    page.push_str(&line_chart(
        "CDF of time for a block to reach all peers",
        "ms",
        "share of blocks",
        &[(String::new(), cdf)],
    ));
    let per_node = |f: &dyn Fn(&SecondRow, usize) -> f64| -> Vec<Line> {
        names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                (
                    n.clone(),
                    rows.iter().map(|r| (r.t_s as f64, f(r, k))).collect(),
                )
            })
            .collect()
    };
    page.push_str(&line_chart(
        "CPU per node",
        "seconds",
        "% of one core",
        &per_node(&|r, k| r.node_cpu_pct.get(k).copied().unwrap_or(0.0)),
    ));
    page.push_str(&line_chart(
        "RSS per node",
        "seconds",
        "MiB",
        &per_node(&|r, k| r.node_rss_bytes.get(k).copied().unwrap_or(0) as f64 / 1048576.0),
    ));
    page.push_str(&line_chart(
        "Blocks injected and deliveries per second",
        "seconds",
        "count",
        &[
            (
                "blocks injected".into(),
                series(&|r| r.blocks_injected as f64),
            ),
            ("deliveries".into(), series(&|r| r.deliveries as f64)),
        ],
    ));
    page.push_str("<h2>Scenario</h2><pre>");
    page.push_str(&esc(
        &serde_json::to_string_pretty(&doc["scenario"]).unwrap_or_default()
    ));
    page.push_str("</pre></body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_table_shows_memory_and_idle_cpu() {
        let doc = serde_json::json!({"nodes": [{"name": "p<0>", "latency_p50_ms": 1.5,
            "cpu_pct_idle": 0.25, "peak_rss_bytes": 10485760, "rss_anon_bytes_max": 5242880,
            "pss_bytes_max": null, "kind": "fabric-node", "injector": true,
            "bytes_sent_window": 2048, "bytes_source": "wire_counters"}]});
        let t = node_table(&doc);
        for cell in [
            "p&lt;0&gt;",
            "fabric-node (injector)",
            "1.500",
            "0.250",
            "10.0",
            "5.0",
            "<td>2.0</td>",
            "wire_counters",
            "<td>-</td>",
        ] {
            assert!(t.contains(cell), "{cell} in {t}");
        }
        assert_eq!(node_table(&serde_json::json!({})), "");
    }

    #[test]
    fn report_opens_with_the_headline_then_grouped_figures() {
        let doc = serde_json::json!({"scenario": {"name": "x"}, "figures": {
            "latency_p50_ms": 1.0, "latency_max_ms": 3.0, "converge_s": 2.0},
            "git_commit": "abc", "loadgen_git_commit": null});
        let page = report(&doc, &[], &crate::measure::collect::new_histogram(), &[]);
        let at = |s: &str| page.find(s).unwrap_or_else(|| panic!("{s} in page"));
        at("node commit abc (loadgen unknown)");
        assert!(at("<h2>Headline</h2>") < at("<h2>All figures</h2>"));
        assert!(at("<h3>latency</h3>") < at("<h3>harness</h3>"));
        assert!(at("latency p50, ms") < at("latency_max_ms"));
    }

    #[test]
    fn chart_is_svg() {
        let svg = line_chart("t", "x", "y", &[("a".into(), vec![(0.0, 1.0), (1.0, 2.0)])]);
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{svg}");
    }
}
