//! A stage's `resources:` — what a cluster executor asks the scheduler for (`cpus`, `mem`,
//! `time`, `gpus`). Hints for the scheduler only: never part of a stage's key, ignored by the
//! local executor. Values are checked here, with the file location, so that a typo fails at
//! `eqlab plan`, not minutes later at submission.

use super::errors::Collector;
use super::yaml::{Node, Value};

/// The keys `resources:` accepts.
pub const KEYS: &[&str] = &["cpus", "mem", "time", "gpus"];

/// Scheduler hints of one stage (every field optional; the executor has defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// CPU cores per instance (`--cpus-per-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory per instance: megabytes, or a number with K, M, G or T (`--mem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Time limit: minutes, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS` (`--time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// GPUs per instance (`--gpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
}

impl Resources {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// These resources, each field not set taken from `defaults` (a kind's defaults).
    pub fn over(self, defaults: &Resources) -> Resources {
        Resources {
            cpus: self.cpus.or(defaults.cpus),
            mem: self.mem.or_else(|| defaults.mem.clone()),
            time: self.time.or_else(|| defaults.time.clone()),
            gpus: self.gpus.or(defaults.gpus),
        }
    }
}

/// Parses `resources:` of stage `path` (e.g. `stages.train`), reporting every problem.
pub(crate) fn parse(c: &mut Collector, v: &Node, path: &str) -> Resources {
    let mut r = Resources::default();
    let entries = match &v.value {
        Value::Map(e) => e,
        Value::Null => return r,
        other => {
            c.push(
                v.loc,
                path,
                format!(
                    "expected a mapping such as {{cpus: 4, mem: 8G, time: \"2:00:00\", gpus: 1}}, found {}",
                    other.type_name()
                ),
            );
            return r;
        }
    };
    for (k, n) in entries {
        let key = format!("{path}.{}", k.name);
        match k.name.as_str() {
            "cpus" => r.cpus = count(c, n, &key, 1),
            "gpus" => r.gpus = count(c, n, &key, 0),
            "mem" => {
                let text = match &n.value {
                    Value::Int(i) if *i > 0 => Some(i.to_string()),
                    Value::Str(s) if valid_mem(s) => Some(s.clone()),
                    other => {
                        c.push(
                            n.loc,
                            &key,
                            format!(
                                "expected megabytes or a size such as 512M or 8G, found {}",
                                describe(other)
                            ),
                        );
                        None
                    }
                };
                r.mem = text;
            }
            "time" => {
                let text = match &n.value {
                    Value::Int(i) if *i > 0 => Some(i.to_string()),
                    Value::Str(s) if valid_time(s) => Some(s.clone()),
                    other => {
                        c.push(
                            n.loc,
                            &key,
                            format!(
                                "expected minutes or a Slurm time such as \"30:00\", \"2:00:00\" or \"1-12:00:00\" (minutes and seconds below 60), found {}",
                                describe(other)
                            ),
                        );
                        None
                    }
                };
                r.time = text;
            }
            other => c.push(
                k.loc,
                &key,
                format!(
                    "unknown resource{}",
                    super::errors::suggest(other, KEYS.iter().copied())
                ),
            ),
        }
    }
    r
}

/// A value for an error message: strings are quoted, other types named.
fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("'{}'", s.chars().take(40).collect::<String>()),
        Value::Int(i) => i.to_string(),
        other => other.type_name().to_owned(),
    }
}

/// An integer of at least `min` (and at most 100000).
fn count(c: &mut Collector, n: &Node, key: &str, min: i64) -> Option<u32> {
    match &n.value {
        Value::Int(i) if (min..=100_000).contains(i) => u32::try_from(*i).ok(),
        other => {
            c.push(
                n.loc,
                key,
                format!(
                    "expected an integer from {min} to 100000, found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// `512`, `512M`, `8G`, `1T`, `100K`.
fn valid_mem(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    s.len() - digits.len() <= 1
        && !digits.is_empty()
        && digits.len() <= 12
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
}

/// Slurm's time formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`.
fn valid_time(s: &str) -> bool {
    let num = |x: &str| !x.is_empty() && x.len() <= 6 && x.bytes().all(|b| b.is_ascii_digit());
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if days.is_some_and(|d| !num(d)) || !parts.iter().all(|p| num(p)) {
        return false;
    }
    // Minutes and seconds after the first field are below 60; hours after days below 24.
    let value = |p: &str| p.parse::<u32>().unwrap_or(u32::MAX);
    let first_ok = days.is_none() || value(parts[0]) < 24;
    (1..=3).contains(&parts.len()) && first_ok && parts[1..].iter().all(|p| value(p) < 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_and_time_formats() {
        for ok in ["512", "512M", "8G", "1t", "100K"] {
            assert!(super::valid_mem(ok), "{ok}");
        }
        for bad in ["", "G", "8GB", "-1G", "0", "1.5G", "8 G"] {
            assert!(!super::valid_mem(bad), "{bad}");
        }
        for ok in ["30", "30:00", "2:00:00", "1-12", "1-12:00", "1-12:00:00"] {
            assert!(super::valid_time(ok), "{ok}");
        }
        for bad in [
            "",
            "1:2:3:4",
            "a",
            "1-",
            "-1",
            "1h",
            "1-2:3:4:5",
            "25:99:00",
            "1:00:60",
            "1-24",
        ] {
            assert!(!super::valid_time(bad), "{bad}");
        }
    }
}
