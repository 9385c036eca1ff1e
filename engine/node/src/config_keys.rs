//! The core.yaml keys gossip-node reads, ignores (with why) or knows as Fabric's, for the
//! start-up diagnostics of [`crate::peer`].

/// `peer.gossip.*` keys gossip-node reads (suffixes after `peer.gossip.`).
pub const GOSSIP_KEYS_USED: &[&str] = &[
    "bootstrap",
    "endpoint",
    "externalEndpoint",
    "maxBlockCountToStore",
    "maxPropagationBurstLatency",
    "maxPropagationBurstSize",
    "propagateIterations",
    "propagatePeerNum",
    "pullInterval",
    "pullPeerNum",
    "requestStateInfoInterval",
    "publishStateInfoInterval",
    "publishCertPeriod",
    "skipBlockVerification",
    "dialTimeout",
    "connTimeout",
    "sendBuffSize",
    "digestWaitTime",
    "requestWaitTime",
    "responseWaitTime",
    "aliveTimeInterval",
    "aliveExpirationTimeout",
    "reconnectInterval",
    "maxConnectionAttempts",
    "msgExpirationFactor",
    "election.leaderAliveThreshold",
    "election.startupGracePeriod",
    "election.membershipSampleInterval",
    "election.leaderElectionDuration",
    "useLeaderElection",
    "orgLeader",
    "state.enabled",
    "state.checkInterval",
    "state.responseTimeout",
    "state.batchSize",
    "state.maxRetries",
    "state.blockBufferSize",
    "state.channelSize",
    // gossip-node's own (not Fabric's): false restores Fabric's fixed emitter tick grid;
    // the leading-edge emitter's pacing (default maxPropagationBurstLatency); false restores
    // Fabric's timer-only block pull rounds.
    "emitWhenIdle",
    "emitIntervalMin",
    "pullOnGap",
    "pullGapInterval",
    "state.heightGapDelay",
    "state.responseTimeoutMin",
    "state.commitLinger",
    "state.gapRepair",
];

/// Fabric `peer.gossip.*` keys that are accepted but not used (prefixes end with a dot), with why.
pub const GOSSIP_KEYS_IGNORED: &[(&str, &str)] = &[
    ("membershipTrackerInterval", "no membership tracker"),
    ("stateInfoRetentionInterval", "not read by Fabric either"),
    ("nonBlockingCommitMode", "delivery always waits for commits"),
    (
        "recvBuffSize",
        "one bounded inbound queue for all connections replaces the per-connection receive buffer",
    ),
    ("pvtData.", "private data is not implemented"),
];

/// Other keys gossip-node reads.
pub const PEER_KEYS_USED: &[&str] = &[
    "peer.id",
    "peer.address",
    "peer.listenAddress",
    "peer.localMspId",
    "peer.mspConfigPath",
    "peer.fileSystemPath",
    "peer.tls.enabled",
    "peer.tls.clientAuthRequired",
    "peer.tls.cert.file",
    "peer.tls.key.file",
    "peer.tls.rootcert.file",
    "peer.tls.clientRootCAs.files",
    "peer.tls.clientCert.file",
    "peer.tls.clientKey.file",
    "peer.keepalive.client.interval",
    "peer.keepalive.client.timeout",
    "peer.maxRecvMsgSize",
    "peer.maxSendMsgSize",
];

/// Children of `peer.` that Fabric knows and gossip-node does not use.
pub(crate) const PEER_CHILDREN_KNOWN: &[&str] = &[
    "networkid",
    "chaincodelistenaddress",
    "chaincodeaddress",
    "addressautodetect",
    "gateway",
    "keepalive",
    "authentication",
    "bccsp",
    "client",
    "deliveryclient",
    "localmsptype",
    "profile",
    "adminservice",
    "handlers",
    "validatorpoolsize",
    "discovery",
    "limits",
    "tls",
    "gossip",
];
