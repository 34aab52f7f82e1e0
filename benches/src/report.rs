//! Output of the compare binary: JSON lines and the human table.

use std::fmt::Write as _;

use crate::timing::{Measured, Metric};

/// Our library's name in every report.
pub const OURS: &str = "fec-core";

/// The plugin-driven pipeline's name in config `P` (where the native pipeline,
/// lib `native`, is the baseline).
pub const PLUGIN: &str = "fec-plugin";

/// The library whose figure is the numerator of the ratio column for `config`.
pub fn ours_for(config: &str) -> &'static str {
    if config == "P" {
        PLUGIN
    } else {
        OURS
    }
}

/// A reported figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figure {
    /// MB/s (10^6 bytes of original data per second), best of the rounds.
    Mbps(f64),
    /// Nanoseconds per operation, median of the rounds.
    Nanos(f64),
}

/// One result line of the compare binary's `--json` output.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Library (`fec-core`, `isa-l`, `memcpy`, ...).
    pub lib: String,
    /// Configuration (`A`, `B`, `C`, `D`, `E32`, `E200`, `1MiB`).
    pub config: String,
    /// Operation (`encode`, `decode`, `copy`, ...).
    pub op: String,
    /// The figure.
    pub figure: Figure,
}

impl Record {
    /// The reported figure of a measured case: the best throughput, or the
    /// median cost per operation.
    pub fn from_measured(measured: &Measured) -> Self {
        let figure = match measured.label.metric {
            Metric::Throughput => Figure::Mbps(measured.best()),
            Metric::Latency => Figure::Nanos(measured.nanos_per_op(measured.median())),
        };
        Self {
            lib: measured.label.lib.to_string(),
            config: measured.label.config.clone(),
            op: measured.label.op.to_string(),
            figure,
        }
    }

    /// One JSON object, `{"lib": "...", "config": "...", "op": "...", "mbps": 1234.5}`
    /// (a cost per operation carries `"ns"` instead of `"mbps"`).
    pub fn json_line(&self) -> String {
        let quote = |text: &str| serde_json::Value::from(text).to_string();
        let (key, value) = match self.figure {
            Figure::Mbps(value) => ("mbps", value),
            Figure::Nanos(value) => ("ns", value),
        };
        // A non-finite figure would make the line invalid JSON.
        let value = if value.is_finite() { value } else { 0.0 };
        format!(
            "{{\"lib\": {}, \"config\": {}, \"op\": {}, \"{key}\": {value:.1}}}",
            quote(&self.lib),
            quote(&self.config),
            quote(&self.op),
        )
    }
}

/// Nanoseconds as the table prints them: ns below 10 us, us above.
fn duration_text(nanos: f64) -> String {
    if nanos < 1e4 {
        format!("{nanos:.1} ns")
    } else {
        format!("{:.1} us", nanos / 1e3)
    }
}

/// The human-readable table: per configuration and operation, each library's best
/// and median figure and, for throughput, the ratio ours/that library (ours is
/// [`ours_for`] the configuration).
///
/// `describe` gives a configuration's one-line description.
pub fn table(measured: &[Measured], describe: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for case in measured {
        let key = (case.label.config.as_str(), case.label.op);
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    let _ = writeln!(
        out,
        "{:<6} {:<9} {:<22} {:>15} {:>15} {:>9}",
        "config", "op", "lib", "best", "median", "ours/lib"
    );
    let mut last_config = "";
    for (config, op) in groups {
        if config != last_config {
            let _ = writeln!(out, "-- {config}: {}", describe(config));
            last_config = config;
        }
        let rows: Vec<&Measured> = measured
            .iter()
            .filter(|case| case.label.config == config && case.label.op == op)
            .collect();
        let ours_lib = ours_for(config);
        let ours = rows
            .iter()
            .find(|case| case.label.lib == ours_lib && case.label.metric == Metric::Throughput)
            .map(|case| case.best());
        for case in rows {
            let (best, median, ratio) = match case.label.metric {
                Metric::Throughput => {
                    let ratio = match ours {
                        Some(ours) if case.label.lib != ours_lib && case.best() > 0.0 => {
                            format!("{:.2}x", ours / case.best())
                        }
                        _ => String::new(),
                    };
                    (
                        format!("{:.1} MB/s", case.best()),
                        format!("{:.1} MB/s", case.median()),
                        ratio,
                    )
                }
                Metric::Latency => (
                    duration_text(case.nanos_per_op(case.best())),
                    duration_text(case.nanos_per_op(case.median())),
                    String::new(),
                ),
            };
            let _ = writeln!(
                out,
                "{:<6} {:<9} {:<22} {:>15} {:>15} {:>9}",
                config, op, case.label.lib, best, median, ratio
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::Label;

    #[test]
    fn json_line_has_the_contract_shape() {
        let record = Record {
            lib: "isa-l".into(),
            config: "A".into(),
            op: "decode".into(),
            figure: Figure::Mbps(1234.54),
        };
        let line = record.json_line();
        assert_eq!(
            line,
            r#"{"lib": "isa-l", "config": "A", "op": "decode", "mbps": 1234.5}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        let object = parsed.as_object().unwrap();
        assert_eq!(object.len(), 4);
        assert_eq!(object["lib"], "isa-l");
        assert_eq!(object["mbps"].as_f64(), Some(1234.5));
    }

    #[test]
    fn json_line_stays_valid_for_odd_input() {
        let record = Record {
            lib: "we\"ird".into(),
            config: "B".into(),
            op: "encode".into(),
            figure: Figure::Mbps(f64::NAN),
        };
        let parsed: serde_json::Value = serde_json::from_str(&record.json_line()).unwrap();
        assert_eq!(parsed["lib"], "we\"ird");
        assert_eq!(parsed["mbps"].as_f64(), Some(0.0));
    }

    #[test]
    fn table_prints_ratios_against_ours() {
        let case = |lib, best| Measured {
            label: Label::new(lib, "A", "encode", 1),
            samples_mbps: vec![best],
        };
        let text = table(&[case(OURS, 300.0), case("isa-l", 100.0)], &|_| {
            "k=10".into()
        });
        let isal_row = text.lines().find(|line| line.contains("isa-l")).unwrap();
        assert!(isal_row.ends_with("3.00x"), "{isal_row}");
        assert!(text.contains("-- A: k=10"));
    }

    #[test]
    fn latency_is_the_median_in_nanoseconds() {
        let measured = Measured {
            label: Label::latency(PLUGIN, "P", "invoke"),
            // Millions of calls per second in each round: 100, 125 and 200 ns.
            samples_mbps: vec![10.0, 8.0, 5.0],
        };
        let line = Record::from_measured(&measured).json_line();
        assert_eq!(
            line,
            r#"{"lib": "fec-plugin", "config": "P", "op": "invoke", "ns": 125.0}"#
        );
        let text = table(&[measured], &|_| String::new());
        assert!(
            text.contains("100.0 ns") && text.contains("125.0 ns"),
            "{text}"
        );
    }

    #[test]
    fn config_p_compares_the_plugin_with_native() {
        let case = |lib, best| Measured {
            label: Label::new(lib, "P", "pipeline", 1),
            samples_mbps: vec![best],
        };
        let text = table(&[case(PLUGIN, 950.0), case("native", 1000.0)], &|_| {
            String::new()
        });
        let native_row = text.lines().find(|line| line.contains("native")).unwrap();
        assert!(native_row.ends_with("0.95x"), "{native_row}");
    }
}
