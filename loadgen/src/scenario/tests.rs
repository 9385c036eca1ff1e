use super::*;

#[test]
fn empty_toml_is_the_default_scenario() {
    let s = Scenario::from_toml("").unwrap();
    assert_eq!(s, Scenario::default());
    assert_eq!(s.block_count(), 200);
    assert_eq!(s.warmup_blocks(), 30);
    assert_eq!(s.injector_nodes(), vec![0, 1]);
    assert_eq!(s.peers_per_org(), vec![3, 3]);
    assert_eq!(s.idle_s, 5.0);
}

#[test]
fn overrides_and_faults_parse() {
    let s = Scenario::from_toml(
        r#"
        name = "wan"
        nodes = 4
        orgs = 1
        blocks = 50
        [gossip]
        propagatePeerNum = 3
        pullInterval = "1s"
        "election.leaderAliveThreshold" = "10s"
        [faults]
        delay_ms = 20
        jitter_ms = 5
        kills = [{ node = 2, at_s = 3, restart_after_s = 2 }]
        [[faults.partitions]]
        at_s = 1
        duration_s = 2
        a = [0, 1]
        mode = "black_hole"
        "#,
    )
    .unwrap();
    assert_eq!(s.name, "wan");
    assert_eq!(s.block_count(), 50);
    assert_eq!(s.rate_per_s, 10.0, "unset fields keep defaults");
    assert_eq!(s.gossip["propagatePeerNum"], toml::Value::Integer(3));
    assert!(s.faults.uses_proxy());
    assert_eq!(s.faults.partitions[0].mode, PartitionMode::BlackHole);
    assert_eq!(s.faults.kills[0].restart_after_s, Some(2.0));
    assert!(Scenario::from_toml("nodes = 2\norgs = 3").is_err());
    assert_eq!(Scenario::from_toml("idle_s = 2.5").unwrap().idle_s, 2.5);
    for bad in ["idle_s = 0", "idle_s = -1", "idle_s = nan"] {
        assert!(Scenario::from_toml(bad).is_err(), "{bad}");
    }
    assert!(
        Scenario::from_toml("bogus = 1").is_err(),
        "unknown keys refused"
    );
}

#[test]
fn node_threads_share_the_cores_unless_set() {
    let n25 = Scenario {
        nodes: 25,
        ..Scenario::default()
    };
    let one = NodeThreads {
        worker: 1,
        verifier: Some(0),
    };
    assert_eq!(n25.node_threads(2), one, "25 nodes on 2 cores");
    assert_eq!(n25.node_threads(16), one, "25 nodes on 16 cores");
    assert_eq!(
        n25.node_threads(100),
        NodeThreads {
            worker: 4,
            verifier: None
        },
        "more cores than nodes: gossip-node's verifier default"
    );
    let set = Scenario::from_toml("nodes = 25\nnode_worker_threads = 2\nnode_verifier_threads = 1")
        .unwrap();
    assert_eq!(
        set.node_threads(2),
        NodeThreads {
            worker: 2,
            verifier: Some(1)
        }
    );
    let worker_only = Scenario::from_toml("node_worker_threads = 1").unwrap();
    assert_eq!(
        worker_only.node_threads(64),
        one,
        "one worker verifies inline"
    );
}

#[test]
fn fabric_nodes_by_list_or_share() {
    let s = Scenario::from_toml("nodes = 10\norgs = 2\n[fabric]\nnodes = [9, 1, 2]").unwrap();
    assert_eq!(s.fabric_nodes(), vec![1, 2, 9]);
    assert_eq!(s.kind_of(1), PeerKind::Fabric);
    assert_eq!(s.kind_of(0), PeerKind::Ours);
    let half = Scenario::from_toml("nodes = 10\norgs = 2\n[fabric]\nshare = 0.5").unwrap();
    assert_eq!(
        half.fabric_nodes(),
        vec![1, 2, 5, 6, 9],
        "half of each org, org 1's leader ours and org 2's Fabric"
    );
    assert_eq!(
        half.injector_nodes(),
        vec![0, 1],
        "per_org: one injector of each kind"
    );
    let third = Scenario::from_toml("nodes = 9\norgs = 1\n[fabric]\nshare = 0.34").unwrap();
    assert_eq!(
        third.fabric_nodes(),
        vec![2, 5, 8],
        "a third, spread evenly"
    );
    let all = Scenario::from_toml("nodes = 5\norgs = 1\n[fabric]\nshare = 1.0").unwrap();
    assert_eq!(all.fabric_nodes(), vec![0, 1, 2, 3, 4]);
    assert!(Scenario::default().fabric_nodes().is_empty());
    assert_eq!(
        Scenario::default().fabric_bin().unwrap(),
        None,
        "no Fabric node, no binary"
    );
    let inj = Scenario::from_toml("nodes = 4\norgs = 1\ninjector_nodes = [0, 3]").unwrap();
    assert_eq!(inj.injector_nodes(), vec![0, 3], "overrides injectors");
}

#[test]
fn bad_node_lists_are_refused_with_a_clear_error() {
    let err = |text: &str| Scenario::from_toml(text).unwrap_err().to_string();
    let e = err("nodes = 4\n[fabric]\nnodes = [1, 4]");
    assert!(
        e.contains("[fabric] nodes names node 4") && e.contains("0..=3"),
        "{e}"
    );
    let e = err("nodes = 4\n[fabric]\nnodes = [1, 1]");
    assert!(e.contains("node 1 twice"), "{e}");
    let e = err("[fabric]\nnodes = [1]\nshare = 0.5");
    assert!(e.contains("either nodes or share"), "{e}");
    for share in ["0", "1.5", "-0.5", "nan"] {
        let e = err(&format!("[fabric]\nshare = {share}"));
        assert!(e.contains("must be in (0, 1]"), "{share}: {e}");
    }
    let e = err("[fabric]\nbin = \"/x\"");
    assert!(e.contains("no node runs it"), "{e}");
    let e = err("[fabric]\nnode = [1]");
    assert!(e.contains("unknown field"), "{e}");
    let e = err("nodes = 4\ninjector_nodes = [7]");
    assert!(e.contains("injector_nodes names node 7"), "{e}");
    let e = err("injector_nodes = []");
    assert!(e.contains("at least one"), "{e}");
    let e = err("[fabric]\nnodes = \"half\"");
    assert!(e.contains("parsing scenario"), "{e}");
}

#[test]
fn out_of_range_keys_are_named_with_their_limit() {
    let err = |text: &str| Scenario::from_toml(text).unwrap_err().to_string();
    let e = err("nodes = 1000000");
    assert!(
        e.starts_with("scenario key \"nodes\" = 1000000 exceeds the limit of 2000"),
        "{e}"
    );
    assert!(err("nodes = 0").contains("\"nodes\" = 0 must be at least 1"));
    assert!(err("nodes = 2\norgs = 3").contains("\"orgs\" = 3 must be in 1..=nodes (nodes = 2)"));
    assert!(err("rate_per_s = 0").contains("\"rate_per_s\" = 0 must be in (0, 100000]"));
    assert!(err("blocks = 0").contains("\"blocks\" = 0 must be at least 1"));
    let e = err("blocks = 2000000");
    assert!(
        e.contains("\"blocks\" = 2000000") && e.contains("limit of 1000000"),
        "{e}"
    );
    let e = err("duration_s = 1e7");
    assert!(e.contains("\"duration_s\"") && e.contains("86400"), "{e}");
    let e = err("block_size_bytes = 0");
    assert!(
        e.contains("\"block_size_bytes\" = 0") && e.contains("gRPC message limit"),
        "{e}"
    );
    let e = err("block_size_bytes = 104857600");
    assert!(e.contains("must be in 1..=104792064"), "{e}");
    for (text, key) in [
        ("duration_s = -1", "duration_s"),
        ("warmup_s = -1", "warmup_s"),
        ("drain_s = nan", "drain_s"),
        ("converge_timeout_s = 0", "converge_timeout_s"),
        ("idle_s = 0", "idle_s"),
        ("arrival_jitter_ms = -1", "arrival_jitter_ms"),
        ("[faults]\ndelay_ms = -5", "faults.delay_ms"),
        ("[faults]\ndrop_share = 2", "faults.drop_share"),
        (
            "[faults]\nkills = [{ node = 1, at_s = -1 }]",
            "faults.kills.at_s",
        ),
        ("sample_ms = 0", "sample_ms"),
        ("node_worker_threads = 1000", "node_worker_threads"),
        ("channels = [\"\"]", "channels"),
    ] {
        let e = err(text);
        assert!(
            e.starts_with(&format!("scenario key \"{key}\" = ")),
            "{text}: {e}"
        );
    }
}

#[test]
fn reliability_keys_are_checked_with_their_limit() {
    let err = |text: &str| Scenario::from_toml(text).unwrap_err().to_string();
    let flood = |f: &str| format!("nodes = 4\n[faults]\nfloods = [{{ {f} }}]");
    for (text, key, limit) in [
        (
            flood("victim = 4, at_s = 1, duration_s = 5, rate_per_s = 10"),
            "faults.floods.victim",
            "0..=3",
        ),
        (
            flood("victim = 1, at_s = 1, duration_s = 5, rate_per_s = 2e6"),
            "faults.floods.rate_per_s",
            "(0, 1000000]",
        ),
        (
            flood("victim = 1, at_s = 1, duration_s = 5, rate_per_s = 10, invalid_share = 1.5"),
            "faults.floods.invalid_share",
            "[0, 1]",
        ),
        (
            flood("victim = 1, at_s = 1, duration_s = 0, rate_per_s = 10"),
            "faults.floods.duration_s",
            "(0, 86400] seconds",
        ),
        (
            "nodes = 4\n[faults]\nkills = [{ node = 1, at_s = 1, renew_cert = true }]".into(),
            "faults.kills.renew_cert",
            "needs restart_after_s",
        ),
        (
            "membership_poll_ms = 10".into(),
            "membership_poll_ms",
            "at least 50",
        ),
    ] {
        let e = err(&text);
        assert!(
            e.starts_with(&format!("scenario key \"{key}\" = ")) && e.contains(limit),
            "{text}: {e}"
        );
    }
}

#[test]
fn spare_identities_follow_the_nodes_of_their_org() {
    let s = Scenario::from_toml(
        "nodes = 5\norgs = 2\n[faults]\nkills = [{ node = 3, at_s = 1, restart_after_s = 1, renew_cert = true }, { node = 2, at_s = 1 }]\nfloods = [{ victim = 2, at_s = 1, duration_s = 1, rate_per_s = 10 }]",
    )
    .unwrap();
    assert_eq!(
        s.spares(),
        vec![
            Spare {
                org: 1,
                purpose: SpareUse::RenewedCert(0)
            },
            Spare {
                org: 0,
                purpose: SpareUse::Flooder(0)
            },
        ]
    );
    assert_eq!(s.peers_per_org(), vec![4, 3], "3 + 1 and 2 + 1");
}

#[test]
fn a_parse_error_names_the_file_and_the_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "nodes = \"ten\"\n").unwrap();
    let e = Scenario::load(&p).unwrap_err();
    let text = gossip_node::error_chain_text(anyhow::Error::from(e).chain());
    assert!(
        text.starts_with(&format!("parsing scenario {}: ", p.display())),
        "{text}"
    );
    assert_eq!(text.matches("nodes = \"ten\"").count(), 1, "{text}");
    assert_eq!(text.matches("invalid type").count(), 1, "{text}");
}

#[test]
fn the_fabric_binary_is_the_scenarios_then_the_environments_then_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    let (a, b) = (a.canonicalize().unwrap(), b.canonicalize().unwrap());
    let missing = dir.path().join("missing");
    let defaults = [missing.clone(), b.clone()];
    let got = |explicit: Option<&Path>, env: Option<&Path>| {
        resolve_fabric_bin(explicit, env.map(Path::to_path_buf), &defaults, &[1])
    };
    assert_eq!(got(Some(&a), Some(&b)).unwrap(), a);
    assert_eq!(got(None, Some(&a)).unwrap(), a);
    assert_eq!(got(None, None).unwrap(), b, "first default that exists");
    let e = got(Some(&missing), Some(&a)).unwrap_err().to_string();
    assert!(
        e.contains("nodes [1]") && e.contains("missing") && e.contains("FABRIC_NODE_BIN"),
        "a named binary that is missing is an error, not a fallback: {e}"
    );
    let e = resolve_fabric_bin(None, None, &[missing], &[2, 3]).unwrap_err();
    assert!(matches!(e, ScenarioError::FabricBinMissing { ref nodes, .. } if nodes == &[2, 3]));
}

#[test]
fn shipped_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            Scenario::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n > 10, "{n} scenarios");
    let c = Scenario::load(&dir.join("capacity-n25.toml")).unwrap();
    assert_eq!((c.nodes, c.orgs, c.injectors), (25, 1, Injectors::Single));
    assert_eq!(
        (c.block_size_bytes, c.tls, c.skip_block_verification),
        (10240, true, false)
    );
    assert_eq!((c.duration_s, c.warmup_s, c.blocks), (10.0, 2.0, None));
    assert!(c.gossip.is_empty(), "Fabric's default gossip config");
    let m = Scenario::load(&dir.join("mixed-2org.toml")).unwrap();
    assert_eq!((m.orgs, m.tls, m.injectors), (2, true, Injectors::PerOrg));
    let fabric = m.fabric_nodes();
    assert!(
        fabric.contains(&1) && !fabric.contains(&0),
        "one injector of each kind"
    );
    assert!(2 * fabric.len() >= m.nodes - 1 && 2 * fabric.len() <= m.nodes + 1);
    assert!(m.gossip.is_empty(), "Fabric's default gossip config");
    let f = Scenario::load(&dir.join("faults-state.toml")).unwrap();
    assert_eq!(
        (
            f.nodes,
            f.injector_nodes(),
            f.block_size_bytes,
            f.rate_per_s
        ),
        (10, vec![0], 10240, 20.0)
    );
    assert_eq!((f.tls, f.skip_block_verification), (true, false));
    assert_eq!(f.faults.drop_share, 0.05);
    assert_eq!(f.gossip["state.enabled"], toml::Value::Boolean(true));
    assert_eq!(f.gossip.len(), 1, "the rest at Fabric's defaults");
    let killed: Vec<usize> = f.faults.kills.iter().map(|k| k.node).collect();
    assert_eq!(killed.len() * 5, f.nodes, "a fifth of the nodes");
    assert!(!killed.contains(&0), "never the injector");
    let injection_s = f.block_count() as f64 / f.rate_per_s;
    for k in &f.faults.kills {
        let back_s = k.at_s + k.restart_after_s.expect("restarted");
        assert!(back_s < injection_s, "restarted while injection goes on");
    }
    let a = Scenario::load(&dir.join("scenario-a-n25-fabric.toml")).unwrap();
    assert_eq!(a.fabric_nodes(), (0..25).collect::<Vec<_>>());
    assert_eq!(
        (
            a.nodes,
            a.orgs,
            a.injectors,
            a.block_count(),
            a.rate_per_s,
            a.tls
        ),
        (25, 1, Injectors::Single, 200, 20.0, true)
    );
}
