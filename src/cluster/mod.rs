//! The edge's shared state in etcd: the connection both the daemon's
//! agent and the CLI use, and the reads and compare-and-swap writes they
//! share. The key layout and records are `control::cluster::record`.

pub mod agent;
pub mod cli;

use std::time::Duration;

use anyhow::Context as _;
use control::cluster::{
    config::Cluster,
    record::{self, GatewayRecord, GatewaySet, LbTable, Member},
};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, PutOptions,
    TlsOptions, Txn, TxnOp, TxnOpResponse,
};

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Connect to the section's endpoints (TLS and user as it says).
pub async fn connect(cfg: &Cluster) -> anyhow::Result<Client> {
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(timeout)
        .with_timeout(timeout)
        .with_keep_alive(Duration::from_secs(1), timeout)
        // A member cut off from its quorum fails requests instead of
        // answering from stale state.
        .with_require_leader(true);
    if let (Some(user), Some(file)) = (&cfg.user, &cfg.password_file) {
        let pw = std::fs::read_to_string(file)
            .with_context(|| format!("cluster.password_file {}", file.display()))?;
        opts = opts.with_user(user.clone(), pw.trim_end().to_string());
    }
    if let Some(t) = &cfg.tls {
        let ca =
            std::fs::read(&t.ca).with_context(|| format!("cluster.tls.ca {}", t.ca.display()))?;
        let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
        if let (Some(c), Some(k)) = (&t.cert, &t.key) {
            let cert =
                std::fs::read(c).with_context(|| format!("cluster.tls.cert {}", c.display()))?;
            let key =
                std::fs::read(k).with_context(|| format!("cluster.tls.key {}", k.display()))?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        if let Some(d) = &t.domain {
            tls = tls.domain_name(d.clone());
        }
        opts = opts.with_tls(tls);
    }
    // One endpoint at a time, each proven by a linearizable read (which
    // needs a leader): a dead or cut-off member is skipped, not retried.
    // A member that answers "no leader" is electing one: the round is
    // tried again for up to ELECTION_WAIT (or the timeout if longer), so
    // a command given just after the leader died waits out the election
    // instead of failing.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = cfg.endpoints.len();
    let probe = record::dir(&cfg.prefix, record::MEMBERS);
    let deadline = tokio::time::Instant::now() + timeout.max(ELECTION_WAIT);
    loop {
        let first = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n;
        let mut errors = Vec::new();
        let mut electing = false;
        for k in 0..n {
            let ep = &cfg.endpoints[(first + k) % n];
            let attempt = async {
                let mut c = Client::connect([ep], Some(opts.clone())).await?;
                c.get(
                    probe.clone(),
                    Some(GetOptions::new().with_prefix().with_count_only()),
                )
                .await?;
                anyhow::Ok(c)
            };
            match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(c)) => return Ok(c),
                Ok(Err(e)) => {
                    let s = short(&e);
                    electing |= is_election(&s);
                    errors.push(format!("{ep}: {s}"));
                }
                Err(_) => errors.push(format!("{ep}: no answer within {timeout:?}")),
            }
        }
        let retry_at = tokio::time::Instant::now() + Duration::from_millis(100);
        if !electing || retry_at >= deadline {
            anyhow::bail!("no etcd endpoint answered ({})", errors.join("; "))
        }
        tokio::time::sleep_until(retry_at).await;
    }
}

/// How long `connect` waits for members that answer "no leader". etcd's
/// default election timeout is 1 s, randomised up to 2 s by each member:
/// one election, and one more if the first splits the vote, fit in 5 s.
pub const ELECTION_WAIT: Duration = Duration::from_secs(5);

/// Whether an etcd error says the member is without a leader for now
/// (an election under way), which a moment later may be over.
fn is_election(e: &str) -> bool {
    e.contains("no leader") || e.contains("leader changed")
}

/// The cause of an etcd error without tonic's nesting.
fn short(e: &anyhow::Error) -> String {
    let s = e.to_string();
    if s.contains("Connection refused") {
        "connection refused".into()
    } else if s.contains("tcp connect error") {
        "cannot connect".into()
    } else {
        s
    }
}

/// The end of the key range `[prefix/alive/, prefix/gateways0)`: both
/// directories a gateway set is made of, in one read or watch.
pub fn set_range(prefix: &str) -> (String, String) {
    (
        record::dir(prefix, record::ALIVE),
        format!("{prefix}/{}0", record::GATEWAYS),
    )
}

/// The gateway set at the store's current revision.
pub async fn read_set(client: &mut Client, prefix: &str) -> anyhow::Result<GatewaySet> {
    let (start, end) = set_range(prefix);
    let resp = client
        .get(start, Some(GetOptions::new().with_range(end)))
        .await?;
    let mut set = GatewaySet {
        revision: resp.header().map(|h| h.revision()).unwrap_or(0),
        ..Default::default()
    };
    for kv in resp.kvs() {
        if let Err(e) = set.apply(prefix, kv.key_str()?, Some(kv.value())) {
            tracing::warn!("cluster: {e}; skipped");
        }
    }
    Ok(set)
}

/// Every record of `dir` as (name, value, mod revision).
pub async fn read_dir<T: serde::de::DeserializeOwned>(
    client: &mut Client,
    prefix: &str,
    dir: &str,
) -> anyhow::Result<Vec<(String, T, i64)>> {
    let d = record::dir(prefix, dir);
    let resp = client
        .get(d.clone(), Some(GetOptions::new().with_prefix()))
        .await?;
    let mut out = Vec::new();
    for kv in resp.kvs() {
        let key = kv.key_str()?;
        let name = key.strip_prefix(&d).unwrap_or(key).to_string();
        match serde_json::from_slice(kv.value()) {
            Ok(v) => out.push((name, v, kv.mod_revision())),
            Err(e) => tracing::warn!("cluster: {key}: {e}; skipped"),
        }
    }
    Ok(out)
}

pub async fn lb_tables(client: &mut Client, prefix: &str) -> anyhow::Result<Vec<LbTable>> {
    Ok(read_dir::<LbTable>(client, prefix, record::LBS)
        .await?
        .into_iter()
        .map(|(_, t, _)| t)
        .collect())
}

pub async fn members(client: &mut Client, prefix: &str) -> anyhow::Result<Vec<Member>> {
    Ok(read_dir::<Member>(client, prefix, record::MEMBERS)
        .await?
        .into_iter()
        .map(|(_, m, _)| m)
        .collect())
}

/// A write that lost a compare-and-swap: someone changed the key between
/// the read and the write (or since the revision the caller named).
#[derive(Debug, thiserror::Error)]
#[error("conflict: {key} was changed at revision {now} (the change was made against revision {expected}); read it again and retry")]
pub struct Conflict {
    pub key: String,
    pub expected: i64,
    /// Its mod revision now (0: it is gone).
    pub now: i64,
}

/// A gateway record and the revision it was last changed at.
pub async fn get_gateway(
    client: &mut Client,
    prefix: &str,
    name: &str,
) -> anyhow::Result<Option<(GatewayRecord, i64)>> {
    let key = record::key(prefix, record::GATEWAYS, name);
    let resp = client.get(key.clone(), None).await?;
    match resp.kvs().first() {
        None => Ok(None),
        Some(kv) => {
            let r: GatewayRecord = serde_json::from_slice(kv.value())
                .with_context(|| format!("{key}: not a gateway record"))?;
            Ok(Some((r, kv.mod_revision())))
        }
    }
}

/// Write `value` (or delete, with `None`) at `key` only if its mod
/// revision is still `expected` (0: the key must not exist). Returns the
/// revision of the write.
pub async fn cas(
    client: &mut Client,
    key: &str,
    expected: i64,
    value: Option<Vec<u8>>,
    lease: Option<i64>,
) -> anyhow::Result<i64> {
    let op = match value {
        Some(v) => TxnOp::put(key, v, lease.map(|l| PutOptions::new().with_lease(l))),
        None => TxnOp::delete(key, None),
    };
    let txn = Txn::new()
        .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
        .and_then([op])
        .or_else([TxnOp::get(key, None)]);
    let resp = client.txn(txn).await?;
    if resp.succeeded() {
        return Ok(resp.header().map(|h| h.revision()).unwrap_or(0));
    }
    let now = resp
        .op_responses()
        .into_iter()
        .find_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g.kvs().first().map(|kv| kv.mod_revision()).unwrap_or(0)),
            _ => None,
        })
        .unwrap_or(0);
    Err(Conflict {
        key: key.to_string(),
        expected,
        now,
    }
    .into())
}
