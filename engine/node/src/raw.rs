//! The viper-like layer: a YAML document flattened to lower-case dotted keys, `CORE_*` environment
//! overrides, and typed getters with viper's conversions (Go duration strings, bare integers as
//! nanoseconds, `strconv.ParseBool` booleans, whitespace-separated lists).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_norway::Value;

use super::NodeConfigError;

/// One leaf value, from the file or from the environment.
#[derive(Clone, Debug, PartialEq)]
pub enum RawValue {
    /// `~` or an empty value.
    Null,
    /// A YAML boolean.
    Bool(bool),
    /// A YAML integer.
    Int(i128),
    /// A YAML float.
    Float(f64),
    /// A YAML string, or any environment value.
    Str(String),
    /// A YAML sequence of scalars (rendered as strings).
    List(Vec<String>),
}

impl RawValue {
    fn render(&self) -> String {
        match self {
            RawValue::Null => String::new(),
            RawValue::Bool(b) => b.to_string(),
            RawValue::Int(i) => i.to_string(),
            RawValue::Float(f) => f.to_string(),
            RawValue::Str(s) => s.clone(),
            RawValue::List(l) => l.join(" "),
        }
    }
}

/// Where a value came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The config file.
    File,
    /// An environment variable (its name).
    Env(String),
}

/// A flattened configuration: lower-case dotted key → value. Viper matches keys
/// case-insensitively, and so does this.
#[derive(Clone, Debug, Default)]
pub struct RawConfig {
    values: BTreeMap<String, (RawValue, Source)>,
    /// The keys as spelled in the file (lower-case key → original), for messages.
    spelled: BTreeMap<String, String>,
}

impl RawConfig {
    /// Parses a YAML document (a `core.yaml`).
    pub fn from_yaml(text: &str) -> Result<Self, NodeConfigError> {
        let doc: Value = serde_norway::from_str(text).map_err(|e| NodeConfigError::Yaml {
            file: "core.yaml".into(),
            reason: e.to_string(),
        })?;
        let mut raw = RawConfig::default();
        match doc {
            Value::Mapping(_) => raw.flatten("", &doc),
            Value::Null => {}
            _ => {
                return Err(NodeConfigError::Yaml {
                    file: "core.yaml".into(),
                    reason: "top level is not a mapping".into(),
                });
            }
        }
        Ok(raw)
    }

    fn flatten(&mut self, prefix: &str, value: &Value) {
        match value {
            Value::Mapping(map) => {
                for (k, v) in map {
                    let name = match k {
                        Value::String(s) => s.clone(),
                        other => scalar_string(other),
                    };
                    let full = if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}.{name}")
                    };
                    self.flatten(&full, v);
                }
            }
            Value::Tagged(t) => self.flatten(prefix, &t.value),
            leaf => {
                let raw = match leaf {
                    Value::Null => RawValue::Null,
                    Value::Bool(b) => RawValue::Bool(*b),
                    Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                        (Some(i), _, _) => RawValue::Int(i.into()),
                        (_, Some(u), _) => RawValue::Int(u.into()),
                        (_, _, Some(f)) => RawValue::Float(f),
                        _ => RawValue::Str(n.to_string()),
                    },
                    Value::String(s) => RawValue::Str(s.clone()),
                    Value::Sequence(seq) => RawValue::List(seq.iter().map(scalar_string).collect()),
                    // Handled by the arms above.
                    Value::Mapping(_) | Value::Tagged(_) => RawValue::Null,
                };
                let lower = prefix.to_ascii_lowercase();
                self.spelled.insert(lower.clone(), prefix.to_owned());
                self.values.insert(lower, (raw, Source::File));
            }
        }
    }

    /// Sets a value (tests, flags).
    pub fn set(&mut self, key: &str, value: RawValue, source: Source) {
        self.values
            .insert(key.to_ascii_lowercase(), (value, source));
    }

    /// Applies `CORE_*` overrides: for each variable `CORE_A_B_C`, the key whose env name
    /// (`CORE_` + upper case, dots → underscores) matches. `known_keys` adds keys that are not in
    /// the file. Returns the variables that matched no key.
    pub fn apply_env<I>(&mut self, vars: I, known_keys: &[&str]) -> Vec<String>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut by_env: BTreeMap<String, String> = BTreeMap::new();
        for key in self
            .values
            .keys()
            .cloned()
            .chain(known_keys.iter().map(|k| k.to_ascii_lowercase()))
        {
            by_env.insert(env_name(&key), key);
        }
        let mut unmatched = Vec::new();
        for (name, value) in vars {
            let upper = name.to_ascii_uppercase();
            if !upper.starts_with("CORE_") {
                continue;
            }
            match by_env.get(&upper) {
                Some(key) => {
                    self.values
                        .insert(key.clone(), (RawValue::Str(value), Source::Env(name)));
                }
                None => unmatched.push(name),
            }
        }
        unmatched
    }

    /// Every key present (lower case).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The key as spelled in the file, or the lower-case key.
    pub fn spelled<'a>(&'a self, key: &'a str) -> &'a str {
        self.spelled.get(key).map(String::as_str).unwrap_or(key)
    }

    /// Where a key's value came from.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.values.get(&key.to_ascii_lowercase()).map(|(_, s)| s)
    }

    fn get(&self, key: &str) -> Option<&RawValue> {
        match self.values.get(&key.to_ascii_lowercase()) {
            None | Some((RawValue::Null, _)) => None,
            Some((v, _)) => Some(v),
        }
    }

    fn bad(&self, key: &str, value: &RawValue, expected: &'static str) -> NodeConfigError {
        NodeConfigError::BadValue {
            key: key.to_owned(),
            value: value.render(),
            expected,
        }
    }

    /// A string; `None` when unset or empty.
    pub fn string(&self, key: &str) -> Option<String> {
        let s = self.get(key)?.render();
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    }

    /// A boolean (Go's `strconv.ParseBool` spellings); `None` when unset.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, NodeConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v {
            RawValue::Bool(b) => Ok(Some(*b)),
            RawValue::Int(0) => Ok(Some(false)),
            RawValue::Int(1) => Ok(Some(true)),
            RawValue::Str(s) => match s.trim() {
                "" => Ok(None),
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
                _ => Err(self.bad(key, v, "a boolean (true or false)")),
            },
            _ => Err(self.bad(key, v, "a boolean (true or false)")),
        }
    }

    /// A non-negative integer; `None` when unset.
    pub fn uint(&self, key: &str) -> Result<Option<u64>, NodeConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let parsed = match v {
            RawValue::Int(i) => u64::try_from(*i).ok(),
            RawValue::Str(s) if s.trim().is_empty() => return Ok(None),
            RawValue::Str(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| self.bad(key, v, "a non-negative integer"))
    }

    /// A duration: a Go duration string (`10ms`, `1m30s`), or a bare number read as
    /// **nanoseconds**, as viper's `cast.ToDuration` does. `None` when unset. The flag is true
    /// when the value was a bare number.
    pub fn duration(&self, key: &str) -> Result<Option<(Duration, bool)>, NodeConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let expected = "a duration such as 10ms, 4s, 1m30s or 2h";
        match v {
            RawValue::Int(i) => u64::try_from(*i)
                .map(|ns| Some((Duration::from_nanos(ns), true)))
                .map_err(|_| self.bad(key, v, expected)),
            RawValue::Float(f) if *f >= 0.0 && f.is_finite() => {
                Ok(Some((Duration::from_nanos(*f as u64), true)))
            }
            RawValue::Str(s) if s.trim().is_empty() => Ok(None),
            RawValue::Str(s) => {
                let s = s.trim();
                if s.chars().all(|c| c.is_ascii_digit()) {
                    let ns: u64 = s.parse().map_err(|_| self.bad(key, v, expected))?;
                    return Ok(Some((Duration::from_nanos(ns), true)));
                }
                parse_go_duration(s)
                    .map(|d| Some((d, false)))
                    .ok_or_else(|| self.bad(key, v, expected))
            }
            _ => Err(self.bad(key, v, expected)),
        }
    }

    /// A list: a YAML sequence, or a string split on whitespace (viper's `GetStringSlice`, which
    /// is how `CORE_PEER_GOSSIP_BOOTSTRAP="a:7051 b:7051"` works). Commas also separate.
    pub fn list(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            None => Vec::new(),
            Some(RawValue::List(items)) => items
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            Some(v) => v
                .render()
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Tagged(t) => scalar_string(&t.value),
        Value::Sequence(_) | Value::Mapping(_) => String::new(),
    }
}

/// `peer.gossip.externalEndpoint` → `CORE_PEER_GOSSIP_EXTERNALENDPOINT`.
pub fn env_name(key: &str) -> String {
    format!("CORE_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Parses a Go duration string (`time.ParseDuration`): an optional `+`, then one or more decimal
/// numbers with optional fraction, each followed by a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`); `0` alone is allowed. Negative durations are refused (`None`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total_ns: f64 = 0.0;
    while !s.is_empty() {
        let num_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, rest) = s.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let unit_ns = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_ns += value * unit_ns;
        s = rest;
    }
    (total_ns.is_finite() && total_ns < u64::MAX as f64)
        .then(|| Duration::from_nanos(total_ns.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let table: &[(&str, Option<Duration>)] = &[
            ("10ms", Some(Duration::from_millis(10))),
            ("4s", Some(Duration::from_secs(4))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("1500ms", Some(Duration::from_millis(1500))),
            ("2h", Some(Duration::from_secs(7200))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("300us", Some(Duration::from_micros(300))),
            ("300µs", Some(Duration::from_micros(300))),
            ("7ns", Some(Duration::from_nanos(7))),
            ("1h2m3s", Some(Duration::from_secs(3723))),
            ("+5s", Some(Duration::from_secs(5))),
            ("0", Some(Duration::ZERO)),
            ("", None),
            ("-5s", None),
            ("5", None),
            ("5x", None),
            ("s", None),
            ("1..2s", None),
            ("ten seconds", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_go_duration(text), *want, "{text:?}");
        }
    }

    #[test]
    fn duration_values_like_viper() {
        let mut raw =
            RawConfig::from_yaml("a: 4s\nb: 1500\nc: '250'\nd: ''\ne: [1]\nf: 1m\n").expect("yaml");
        raw.set("g", RawValue::Str("-1s".into()), Source::File);
        let d = |k: &str| raw.duration(k).expect(k);
        assert_eq!(d("a"), Some((Duration::from_secs(4), false)));
        assert_eq!(
            d("b"),
            Some((Duration::from_nanos(1500), true)),
            "bare = ns"
        );
        assert_eq!(d("c"), Some((Duration::from_nanos(250), true)));
        assert_eq!(d("d"), None);
        assert_eq!(d("f"), Some((Duration::from_secs(60), false)));
        assert_eq!(d("missing"), None);
        assert!(raw.duration("e").is_err());
        let err = raw.duration("g").expect_err("negative").to_string();
        assert!(err.contains("g") && err.contains("-1s"), "{err}");
    }

    #[test]
    fn keys_are_case_insensitive_and_env_overrides() {
        let mut raw = RawConfig::from_yaml(
            "peer:\n  gossip:\n    externalEndpoint: a:1\n    bootstrap: [x:1, 'y:2']\n",
        )
        .expect("yaml");
        assert_eq!(
            raw.string("PEER.GOSSIP.EXTERNALENDPOINT").as_deref(),
            Some("a:1")
        );
        assert_eq!(raw.list("peer.gossip.bootstrap"), ["x:1", "y:2"]);
        let unmatched = raw.apply_env(
            [
                ("CORE_PEER_GOSSIP_EXTERNALENDPOINT".into(), "b:2".into()),
                ("CORE_PEER_GOSSIP_BOOTSTRAP".into(), "p:1  q:2".into()),
                ("CORE_PEER_GOSSIP_DIALTIMEOUT".into(), "7s".into()),
                ("CORE_PEER_GOSSIP_NOSUCHKEY".into(), "1".into()),
                ("PATH".into(), "/bin".into()),
            ],
            &["peer.gossip.dialTimeout"],
        );
        assert_eq!(unmatched, ["CORE_PEER_GOSSIP_NOSUCHKEY"]);
        assert_eq!(
            raw.string("peer.gossip.externalEndpoint").as_deref(),
            Some("b:2")
        );
        assert_eq!(raw.list("peer.gossip.bootstrap"), ["p:1", "q:2"]);
        assert_eq!(
            raw.duration("peer.gossip.dialtimeout").expect("d"),
            Some((Duration::from_secs(7), false))
        );
        assert_eq!(
            raw.source("peer.gossip.dialTimeout"),
            Some(&Source::Env("CORE_PEER_GOSSIP_DIALTIMEOUT".into()))
        );
    }

    #[test]
    fn bools_and_ints() {
        let raw = RawConfig::from_yaml("a: true\nb: 'False'\nc: 'yes'\nd: 12\ne: -1\nf: '30'\n")
            .expect("yaml");
        assert_eq!(raw.bool("a").expect("a"), Some(true));
        assert_eq!(raw.bool("b").expect("b"), Some(false));
        assert!(raw.bool("c").is_err());
        assert_eq!(raw.uint("d").expect("d"), Some(12));
        assert!(raw.uint("e").is_err());
        assert_eq!(raw.uint("f").expect("f"), Some(30));
        assert_eq!(raw.uint("zz").expect("zz"), None);
    }

    #[test]
    fn bad_yaml_is_an_error() {
        assert!(RawConfig::from_yaml("a: [unclosed").is_err());
        assert!(RawConfig::from_yaml("- just\n- a list\n").is_err());
        assert!(RawConfig::from_yaml("").is_ok());
    }
}
