//! Per-stage figures from gossip-node's operations endpoint: for each stage histogram
//! ([`STAGES`]) read at the end of the run (`ops_metrics` in each node's final stats), the mean
//! over every observation of every node that has one (seconds given in microseconds).

use serde_json::Value;

use crate::cluster::ops::STAGES;

/// `stage_<name>_mean_us` (or `stage_verify_batch_len_mean` for the batch length) and
/// `stage_<name>_count` for each stage that any node observed.
pub fn stage_figures(stats_after: &[Value], put: &mut impl FnMut(&str, f64)) {
    for stage in STAGES {
        let read = |v: &Value, part: &str| {
            v.pointer(&format!("/ops_metrics/gossip_engine_{stage}_{part}"))
                .and_then(Value::as_f64)
        };
        let (sum, count) = stats_after
            .iter()
            .filter_map(|v| Some((read(v, "sum")?, read(v, "count")?)))
            .fold((0.0, 0.0), |(s, c), (ds, dc)| (s + ds, c + dc));
        if count <= 0.0 {
            continue;
        }
        let mean = sum / count;
        match stage.strip_suffix("_seconds") {
            Some(name) => put(&format!("stage_{name}_mean_us"), mean * 1e6),
            None => put(&format!("stage_{stage}_mean"), mean),
        }
        put(&format!("stage_{stage}_count"), count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn means_pool_every_node_with_a_reading() {
        let stats = vec![
            json!({"ops_metrics": {
                "gossip_engine_handle_seconds_sum": 0.001,
                "gossip_engine_handle_seconds_count": 10.0,
                "gossip_engine_verify_batch_len_sum": 6.0,
                "gossip_engine_verify_batch_len_count": 3.0,
            }}),
            json!({"ops_metrics": {
                "gossip_engine_handle_seconds_sum": 0.003,
                "gossip_engine_handle_seconds_count": 10.0,
            }}),
            Value::Null,
        ];
        let mut got = std::collections::BTreeMap::new();
        stage_figures(&stats, &mut |k, v| {
            got.insert(k.to_owned(), v);
        });
        assert!((got["stage_handle_mean_us"] - 200.0).abs() < 1e-9);
        assert_eq!(got["stage_handle_seconds_count"], 20.0);
        assert_eq!(got["stage_verify_batch_len_mean"], 2.0);
        assert!(
            !got.contains_key("stage_commit_mean_us"),
            "no observation, no figure"
        );
    }
}
