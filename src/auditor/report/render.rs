//! The auditor's report as one self-contained HTML page.
//!
//! This module owns how the figures of [`super::aggregate`] look: HTML with
//! its style inline and its charts as inline SVG, readable in any browser
//! with no network and no script. Everything that came from the log
//! (principal names, case ids, rule ids, causes, item references) is
//! untrusted text and reaches the page only through [`Page::text`], which
//! escapes it; markup is written only through [`Page::raw`] (static text)
//! and [`Page::tag`] (static text with numbers). It never counts, never
//! reads files and never adds a script, a link or anything fetched.

use std::fmt::{self, Write as _};

use super::aggregate::{
    DenialReason, FlowCount, Summary, TimeAxis, Timeliness, FLASH_TARGET_SECONDS,
};
use super::Report;
use crate::auditor::time::rfc3339;

/// Colours of the series: released, partial, denied; one per denial
/// reason; refusals cycle through them.
const RELEASED: &str = "#2e7d32";
const PARTIAL: &str = "#f9a825";
const DENIED: &str = "#c62828";
const PALETTE: [&str; 6] = [
    "#c62828", "#6a1b9a", "#ef6c00", "#1565c0", "#00838f", "#5d4037",
];

/// Escapes text for HTML element content and quoted attribute values
/// (and so for inline SVG, which the HTML parser reads the same way).
/// Every character that can open markup, close an attribute or start an
/// entity is replaced; nothing else changes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page being written.
struct Page(String);

impl Page {
    /// Markup written by this module.
    fn raw(&mut self, markup: &'static str) {
        self.0.push_str(markup);
    }

    /// Markup written by this module, with numbers (or other values this
    /// module computed) in it. Never text from the log: that goes through
    /// [`Page::text`].
    fn tag(&mut self, markup: fmt::Arguments<'_>) {
        let _ = self.0.write_fmt(markup);
    }

    /// Untrusted text, escaped.
    fn text(&mut self, text: &str) {
        self.0.push_str(&escape(text));
    }

    /// A table cell holding untrusted text.
    fn cell(&mut self, text: &str) {
        self.raw("<td>");
        self.text(text);
        self.raw("</td>");
    }

    /// A table cell holding a number.
    fn num(&mut self, n: impl fmt::Display) {
        self.tag(format_args!("<td class=\"n\">{n}</td>"));
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;padding:0 1.5em;max-width:70em;color:#212121;background:#fff}\
h1{font-size:1.6em;border-bottom:3px solid #1a237e;padding-bottom:.3em}\
h2{font-size:1.25em;color:#1a237e;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #bdbdbd;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#e8eaf6}td.n{text-align:right;font-variant-numeric:tabular-nums}\
code,.mono{font-family:monospace;word-break:break-all}\
.ok{color:#2e7d32;font-weight:bold}.note{color:#616161;font-size:.9em}\
svg{display:block;margin:.5em 0;font-family:sans-serif;font-size:11px}\
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;vertical-align:middle}";

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut p = Page(String::with_capacity(32 * 1024));
    p.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    p.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    p.raw("<title>Audit report: ");
    p.text(&report.verified.origin);
    p.raw("</title><style>");
    p.raw(STYLE);
    p.raw("</style></head><body>\n<h1>Audit report: ");
    p.text(&report.verified.origin);
    p.raw("</h1>\n");
    verified(&mut p, report);
    flows(&mut p, &report.summary);
    denials(&mut p, &report.summary);
    timeliness(&mut p, &report.summary);
    refusals(&mut p, &report.summary);
    cases(&mut p, &report.summary);
    p.raw("</body></html>\n");
    p.0
}

fn verified(p: &mut Page, report: &Report) {
    let v = &report.verified;
    let s = &report.summary;
    p.raw("<section id=\"verified\"><h2>What was verified</h2>");
    p.raw("<p class=\"ok\">The export verified with the key below before anything was counted.</p><table>");
    p.raw("<tr><th>log</th>");
    p.cell(&v.origin);
    p.raw("</tr><tr><th>key</th><td class=\"mono\">");
    p.text(&v.key);
    p.raw("</td></tr><tr><th>latest checkpoint</th>");
    p.tag(format_args!(
        "<td>size {} &middot; root <span class=\"mono\">{}</span></td></tr>",
        v.size,
        hex::encode(v.root)
    ));
    p.tag(format_args!(
        "<tr><th>signed checkpoints</th><td>{} (each consistent with the one before)</td></tr>",
        v.checkpoints.len()
    ));
    p.raw("<tr><th>witnesses</th><td>");
    match &report.witnessed {
        Some(w) => {
            p.tag(format_args!(
                "{} of {} cosigned, quorum {}",
                w.cosigned.len(),
                w.cosigned.len() + w.missing.len(),
                w.quorum
            ));
            for (label, time) in &w.cosigned {
                p.raw("<br>cosigned: ");
                p.text(label);
                p.raw(" at ");
                p.text(&i64::try_from(*time).map_or(String::new(), rfc3339));
            }
            for label in &w.missing {
                p.raw("<br>not cosigned: ");
                p.text(label);
            }
        }
        None => p.raw("not checked (no --witness given)"),
    }
    p.raw("</td></tr><tr><th>entries counted</th>");
    p.tag(format_args!("<td>{} of {}", s.counted, s.total));
    if let Some((a, b)) = s.span {
        p.tag(format_args!(", from {} to {}", rfc3339(a), rfc3339(b)));
    }
    p.raw("</td></tr><tr><th>filter</th>");
    p.cell(&report.filter);
    p.raw("</tr></table></section>\n");
}

fn legend(p: &mut Page, items: &[(&str, &str)]) {
    p.raw("<p class=\"legend\">");
    for (colour, name) in items {
        p.tag(format_args!("<span style=\"background:{colour}\"></span>"));
        p.text(name);
    }
    p.raw("</p>");
}

fn flows(p: &mut Page, s: &Summary) {
    p.raw("<section id=\"flows\"><h2>Flows: decisions at acceptance</h2>");
    p.raw("<p class=\"note\">Each cell counts the recipients of items from the row to the column: every portion released, some portions released, nothing released.</p>");
    legend(
        p,
        &[
            (RELEASED, "released"),
            (PARTIAL, "partially released"),
            (DENIED, "denied"),
        ],
    );
    if s.agency_flows.is_empty() {
        p.raw("<p>No decision in the entries counted.</p></section>\n");
        return;
    }
    p.raw("<h3>Between agencies</h3>");
    matrix(p, &s.agency_flows);
    p.raw("<h3>Between principals</h3><table><tr><th>sender</th><th>recipient</th><th>released</th><th>partially released</th><th>denied</th></tr>");
    for ((from, to), c) in &s.principal_flows {
        p.raw("<tr>");
        p.cell(from);
        p.cell(to);
        p.num(c.released);
        p.num(c.partial);
        p.num(c.denied);
        p.raw("</tr>");
    }
    p.raw("</table></section>\n");
}

/// The agency matrix: one cell per (sender agency, recipient agency), a
/// bar split by outcome and the counts.
fn matrix(p: &mut Page, flows: &std::collections::BTreeMap<(String, String), FlowCount>) {
    let mut names: Vec<&str> = flows
        .keys()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    names.sort_unstable();
    names.dedup();
    let (label_w, cell_w, cell_h) = (140usize, 150usize, 44usize);
    let width = label_w + cell_w * names.len() + 10;
    let height = 30 + cell_h * names.len() + 10;
    p.tag(format_args!(
        "<svg role=\"img\" aria-label=\"flow matrix between agencies\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    ));
    p.tag(format_args!(
        "<text x=\"4\" y=\"18\" fill=\"#616161\">from \u{2193} to \u{2192}</text>"
    ));
    for (i, name) in names.iter().enumerate() {
        p.tag(format_args!(
            "<text x=\"{}\" y=\"20\" font-weight=\"bold\">",
            label_w + i * cell_w + 6
        ));
        p.text(name);
        p.raw("</text>");
        p.tag(format_args!(
            "<text x=\"4\" y=\"{}\" font-weight=\"bold\">",
            30 + i * cell_h + 26
        ));
        p.text(name);
        p.raw("</text>");
    }
    let max = flows
        .values()
        .map(FlowCount::total)
        .max()
        .unwrap_or(1)
        .max(1);
    for (r, from) in names.iter().enumerate() {
        for (c, to) in names.iter().enumerate() {
            let (x, y) = (label_w + c * cell_w, 30 + r * cell_h);
            p.tag(format_args!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{cell_w}\" height=\"{cell_h}\" fill=\"#fafafa\" stroke=\"#bdbdbd\"/>"
            ));
            let Some(count) = flows.get(&(from.to_string(), to.to_string())) else {
                continue;
            };
            let full = (cell_w - 12) as f64 * count.total() as f64 / max as f64;
            let mut bx = (x + 6) as f64;
            for (n, colour) in [
                (count.released, RELEASED),
                (count.partial, PARTIAL),
                (count.denied, DENIED),
            ] {
                if n == 0 {
                    continue;
                }
                let w = full * n as f64 / count.total() as f64;
                p.tag(format_args!(
                    "<rect x=\"{bx:.1}\" y=\"{}\" width=\"{w:.1}\" height=\"14\" fill=\"{colour}\"/>",
                    y + 6
                ));
                bx += w;
            }
            p.tag(format_args!(
                "<text x=\"{}\" y=\"{}\">{} / {} / {}</text>",
                x + 6,
                y + 36,
                count.released,
                count.partial,
                count.denied
            ));
        }
    }
    p.raw("</svg>");
}

/// A stacked bar chart over `axis`: one bar per bucket, one colour per
/// series.
fn stacked(p: &mut Page, label: &'static str, axis: &TimeAxis, series: &[(&str, Vec<u64>)]) {
    let (left, top, plot_w, plot_h) = (50usize, 10usize, 760usize, 180usize);
    let width = left + plot_w + 20;
    let height = top + plot_h + 40;
    let totals: Vec<u64> = (0..axis.buckets)
        .map(|b| {
            series
                .iter()
                .map(|(_, v)| v.get(b).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    p.tag(format_args!(
        "<svg role=\"img\" aria-label=\"{label}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    ));
    p.tag(format_args!(
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#424242\"/><line x1=\"{left}\" y1=\"{0}\" x2=\"{}\" y2=\"{0}\" stroke=\"#424242\"/>",
        top + plot_h,
        left + plot_w
    ));
    p.tag(format_args!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        left - 4,
        top + 10,
        left - 4,
        top + plot_h
    ));
    let bar = plot_w as f64 / axis.buckets as f64;
    for b in 0..axis.buckets {
        let mut y = (top + plot_h) as f64;
        for (i, (_, values)) in series.iter().enumerate() {
            let n = values.get(b).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = plot_h as f64 * n as f64 / max as f64;
            y -= h;
            p.tag(format_args!(
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{n}</title></rect>",
                left as f64 + b as f64 * bar + bar * 0.1,
                (bar * 0.8).max(1.0),
                PALETTE[i % PALETTE.len()]
            ));
        }
    }
    p.tag(format_args!(
        "<text x=\"{left}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        top + plot_h + 16,
        rfc3339(axis.start),
        left + plot_w,
        top + plot_h + 16,
        rfc3339(axis.start + axis.width * axis.buckets as i64)
    ));
    p.tag(format_args!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#616161\">one bar per {}</text>",
        left + plot_w / 2,
        top + plot_h + 32,
        span_words(axis.width)
    ));
    p.raw("</svg>");
    let names: Vec<(&str, &str)> = series
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (PALETTE[i % PALETTE.len()], *name))
        .collect();
    legend(p, &names);
}

fn span_words(seconds: i64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s % 3600 == 0 => format!("{} hour(s)", s / 3600),
        s if s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} second(s)"),
    }
}

fn duration(seconds: i64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn denials(p: &mut Page, s: &Summary) {
    p.raw("<section id=\"denials\"><h2>Denials over time, by reason</h2>");
    p.raw("<p class=\"note\">Decisions that withheld something, at acceptance or at delivery; a decision withheld for two reasons counts under both.</p>");
    match s.axis().filter(|_| !s.denials.is_empty()) {
        None => p.raw("<p>No denial in the entries counted.</p>"),
        Some(axis) => {
            let counts = s.denials_over(&axis);
            let series: Vec<(&str, Vec<u64>)> = DenialReason::ALL
                .iter()
                .enumerate()
                .map(|(i, r)| (r.name(), counts.iter().map(|c| c[i]).collect()))
                .collect();
            stacked(p, "denials over time by reason", &axis, &series);
            p.raw("<table><tr><th>reason</th><th>decisions</th></tr>");
            for (name, values) in &series {
                p.raw("<tr>");
                p.cell(name);
                p.num(values.iter().sum::<u64>());
                p.raw("</tr>");
            }
            p.raw("</table>");
            if !s.deny_rules.is_empty() {
                p.raw("<table><tr><th>deny rule</th><th>decisions it withheld in</th></tr>");
                for (rule, n) in &s.deny_rules {
                    p.raw("<tr><td class=\"mono\">");
                    p.text(rule);
                    p.raw("</td>");
                    p.num(n);
                    p.raw("</tr>");
                }
                p.raw("</table>");
            }
        }
    }
    p.raw("</section>\n");
}

fn timeliness(p: &mut Page, s: &Summary) {
    p.raw("<section id=\"timeliness\"><h2>From acceptance to delivery</h2>");
    p.tag(format_args!(
        "<p class=\"note\">Each dot is the first delivery of an item to one recipient; the red line is the {} target for FLASH items.</p>",
        duration(FLASH_TARGET_SECONDS)
    ));
    let order = ["FLASH", "URGENT", "ROUTINE", "unknown"];
    let rows: Vec<(&str, &Timeliness)> = order
        .iter()
        .filter_map(|name| s.timeliness.get(name).map(|t| (*name, t)))
        .collect();
    if rows.is_empty() {
        p.raw("<p>No delivery in the entries counted.</p></section>\n");
        return;
    }
    let longest = rows
        .iter()
        .filter_map(|(_, t)| t.median_max().map(|(_, m)| m))
        .max()
        .unwrap_or(0);
    // The axis always shows the target, and room past it when items are late.
    let scale = (FLASH_TARGET_SECONDS * 2)
        .max(longest + longest / 10)
        .max(1);
    let (left, plot_w, row_h) = (90usize, 700usize, 34usize);
    let width = left + plot_w + 30;
    let height = 20 + row_h * rows.len() + 30;
    let x = |secs: i64| left as f64 + plot_w as f64 * secs.clamp(0, scale) as f64 / scale as f64;
    p.tag(format_args!(
        "<svg role=\"img\" aria-label=\"time from acceptance to delivery\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    ));
    for (i, (name, t)) in rows.iter().enumerate() {
        let y = 20 + i * row_h + row_h / 2;
        p.tag(format_args!(
            "<text x=\"4\" y=\"{}\" font-weight=\"bold\">{name}</text><line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e0e0e0\"/>",
            y + 4,
            left + plot_w
        ));
        for d in &t.delivered {
            let late = *name == "FLASH" && d.seconds > FLASH_TARGET_SECONDS;
            p.tag(format_args!(
                "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"5\" fill=\"{}\" fill-opacity=\"0.7\"><title>{}</title></circle>",
                x(d.seconds),
                if late { DENIED } else { "#1565c0" },
                duration(d.seconds)
            ));
        }
    }
    let bottom = 20 + row_h * rows.len();
    let tx = x(FLASH_TARGET_SECONDS);
    p.tag(format_args!(
        "<line x1=\"{tx:.1}\" y1=\"14\" x2=\"{tx:.1}\" y2=\"{bottom}\" stroke=\"{DENIED}\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/><text x=\"{tx:.1}\" y=\"11\" text-anchor=\"middle\" fill=\"{DENIED}\">FLASH target {}</text>",
        duration(FLASH_TARGET_SECONDS)
    ));
    p.tag(format_args!(
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#424242\"/><text x=\"{left}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text></svg>",
        left + plot_w,
        bottom + 16,
        left + plot_w,
        bottom + 16,
        duration(scale)
    ));
    p.raw("<table><tr><th>priority</th><th>delivered</th><th>median</th><th>longest</th><th>FLASH later than its target</th><th>not yet delivered</th></tr>");
    for (name, t) in &rows {
        p.raw("<tr>");
        p.cell(name);
        p.num(t.delivered.len());
        match t.median_max() {
            Some((median, max)) => {
                p.num(duration(median));
                p.num(duration(max));
            }
            None => p.raw("<td></td><td></td>"),
        }
        // The one-hour target is FLASH's; other priorities are shown
        // against it, not judged by it.
        if *name == "FLASH" {
            p.num(t.late(FLASH_TARGET_SECONDS));
        } else {
            p.raw("<td class=\"n\">&ndash;</td>");
        }
        p.num(t.waiting);
        p.raw("</tr>");
    }
    p.raw("</table></section>\n");
}

fn refusals(p: &mut Page, s: &Summary) {
    p.raw("<section id=\"refusals\"><h2>Refused connections over time</h2>");
    p.raw("<p class=\"note\">Handshakes and identities the gateway refused, as counted on the log, by cause.</p>");
    match s.axis().filter(|_| !s.refused_connections.is_empty()) {
        None => p.raw("<p>No refused connection in the entries counted.</p>"),
        Some(axis) => {
            let by_cause = s.refusals_over(&axis);
            let series: Vec<(&str, Vec<u64>)> = by_cause
                .iter()
                .map(|(cause, v)| (cause.as_str(), v.clone()))
                .collect();
            stacked(p, "refused connections over time", &axis, &series);
            p.raw("<table><tr><th>cause</th><th>refused</th></tr>");
            for (cause, values) in &series {
                p.raw("<tr>");
                p.cell(cause);
                p.num(values.iter().sum::<u64>());
                p.raw("</tr>");
            }
            p.raw("</table>");
        }
    }
    p.raw("</section>\n");
}

fn cases(p: &mut Page, s: &Summary) {
    p.raw("<section id=\"cases\"><h2>Per case: who received what</h2>");
    if s.cases.is_empty() {
        p.raw("<p>No delivery of an item of a case in the entries counted.</p></section>\n");
        return;
    }
    for (case, rows) in &s.cases {
        p.raw("<h3>Case ");
        p.text(case);
        p.raw("</h3><table><tr><th>delivered</th><th>item</th><th>sender</th><th>recipient</th><th>portions released</th></tr>");
        for r in rows {
            p.raw("<tr>");
            p.cell(&rfc3339(r.time));
            p.raw("<td class=\"mono\">");
            p.text(&r.item_ref);
            p.raw("</td>");
            p.cell(&r.sender);
            p.cell(&r.recipient);
            match r.of {
                Some(of) => p.num(format!("{} of {of}", r.portions)),
                None => p.num(r.portions),
            }
            p.raw("</tr>");
        }
        p.raw("</table>");
    }
    p.raw("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_in_text_is_inert() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(
            escape("police/lo/rabat CT-2026-014"),
            "police/lo/rabat CT-2026-014"
        );
    }
}
