//! Output of the compare binary: JSON lines and the human table.

use std::fmt::Write as _;

use crate::timing::Measured;

/// Our library's name in every report.
pub const OURS: &str = "fec-core";

/// One result line of the compare binary's `--json` output.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Library (`fec-core`, `isa-l`, `memcpy`, ...).
    pub lib: String,
    /// Configuration (`A`, `B`, `C`, `D`, `E32`, `E200`, `1MiB`).
    pub config: String,
    /// Operation (`encode`, `decode`, `copy`).
    pub op: String,
    /// Throughput in MB/s (10^6 bytes of original data per second).
    pub mbps: f64,
}

impl Record {
    /// The best sample of a measured case.
    pub fn from_measured(measured: &Measured) -> Self {
        Self {
            lib: measured.label.lib.to_string(),
            config: measured.label.config.clone(),
            op: measured.label.op.to_string(),
            mbps: measured.best(),
        }
    }

    /// One JSON object, `{"lib": "...", "config": "...", "op": "...", "mbps": 1234.5}`.
    pub fn json_line(&self) -> String {
        let quote = |text: &str| serde_json::Value::from(text).to_string();
        // A non-finite figure would make the line invalid JSON.
        let mbps = if self.mbps.is_finite() {
            self.mbps
        } else {
            0.0
        };
        format!(
            "{{\"lib\": {}, \"config\": {}, \"op\": {}, \"mbps\": {:.1}}}",
            quote(&self.lib),
            quote(&self.config),
            quote(&self.op),
            mbps
        )
    }
}

/// The human-readable table: per configuration and operation, each library's best
/// and median MB/s and the ratio ours/that library.
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
        "{:<8} {:<7} {:<22} {:>12} {:>12} {:>10}",
        "config", "op", "lib", "best MB/s", "median MB/s", "ours/lib"
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
        let ours = rows
            .iter()
            .find(|case| case.label.lib == OURS)
            .map(|case| case.best());
        for case in rows {
            let ratio = match ours {
                Some(ours) if case.label.lib != OURS && case.best() > 0.0 => {
                    format!("{:.2}x", ours / case.best())
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<8} {:<7} {:<22} {:>12.1} {:>12.1} {:>10}",
                config,
                op,
                case.label.lib,
                case.best(),
                case.median(),
                ratio
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
            mbps: 1234.54,
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
            mbps: f64::NAN,
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
}
