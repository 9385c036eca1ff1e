//! A structural JSON comparison that names the exact path of every difference.
//!
//! Numbers compare as exact integers (u64 or i64): a vector number that is not an integer is a
//! difference in itself, so a u64 above 2^53 can never pass by rounding through f64.

use serde_json::Value;

/// Every difference between `expected` (from the vector) and `actual` (our decoding), each as
/// `path: what`. Empty when they are equal.
pub fn diff(path: &str, expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(path, expected, actual, &mut out);
    out
}

fn walk(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                match a.get(key) {
                    Some(av) => walk(&format!("{path}.{key}"), ev, av, out),
                    None => out.push(format!(
                        "{path}.{key}: missing in our decoding (expected {})",
                        short(ev)
                    )),
                }
            }
            for (key, av) in a {
                if !e.contains_key(key) {
                    out.push(format!(
                        "{path}.{key}: not in the vector (we have {})",
                        short(av)
                    ));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} elements, got {}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                walk(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let exact = |n: &serde_json::Number| {
                n.as_u64()
                    .map(i128::from)
                    .or_else(|| n.as_i64().map(i128::from))
            };
            match (exact(e), exact(a)) {
                (Some(x), Some(y)) if x == y => {}
                (None, _) => out.push(format!("{path}: vector number {e} is not an exact integer")),
                _ => out.push(format!("{path}: expected {e}, got {a}")),
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{path}: expected {}, got {}", short(e), short(a))),
    }
}

/// A value for a message, cut to 80 characters.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.len() <= 80 {
        text
    } else {
        format!("{}…({} chars)", &text[..80], text.len())
    }
}

#[test]
fn diff_names_the_path_and_keeps_u64_exact() {
    let expected: Value =
        serde_json::from_str(r#"{"a":{"n":1700000000000000000,"l":[1,{"x":"ab"}]},"z":null}"#)
            .unwrap();
    assert!(diff("fields", &expected, &expected.clone()).is_empty());
    // Off by one above 2^53: f64 would round both to the same value.
    let actual: Value =
        serde_json::from_str(r#"{"a":{"n":1700000000000000001,"l":[1,{"x":"ab"}]},"z":null}"#)
            .unwrap();
    assert_eq!(
        diff("fields", &expected, &actual),
        vec!["fields.a.n: expected 1700000000000000000, got 1700000000000000001"]
    );
    let actual: Value =
        serde_json::from_str(r#"{"a":{"n":1700000000000000000,"l":[1,{"x":"ac"}]},"z":{}}"#)
            .unwrap();
    assert_eq!(
        diff("fields", &expected, &actual),
        vec![
            r#"fields.a.l[1].x: expected "ab", got "ac""#,
            "fields.z: expected null, got {}"
        ]
    );
    let actual: Value = serde_json::from_str(r#"{"a":{"l":[1],"extra":0},"z":null}"#).unwrap();
    let d = diff("fields", &expected, &actual);
    assert!(
        d.iter().any(|m| m.starts_with("fields.a.n: missing")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|m| m.starts_with("fields.a.extra: not in the vector")),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|m| m == "fields.a.l: expected 2 elements, got 1"),
        "{d:?}"
    );
    let float: Value = serde_json::from_str(r#"{"n":1.0}"#).unwrap();
    let int: Value = serde_json::from_str(r#"{"n":1}"#).unwrap();
    assert_eq!(
        diff("f", &float, &int),
        vec!["f.n: vector number 1.0 is not an exact integer"]
    );
}
