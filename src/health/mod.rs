//! Health checks, off the hot path: each checked member is probed every
//! `interval` on the TCP runtime, at most [`MAX_CONCURRENT`] probes at
//! once, each bounded by its `timeout` (a backend that hangs counts as a
//! failure and delays nothing else). `rise` successes in a row bring a
//! member up, `fall` failures take it down; `initial` says where it
//! starts. Members without a check are always up.
//!
//! The operator's file (`[server] admin_state`), lines `ADDRESS up|down`,
//! overrides checks: `down` drains a member, `up` keeps it in service. It
//! is read again whenever it changes.
//!
//! Every change computes a new live view of the pools and publishes a new
//! snapshot; workers pick it up before their next batch, without locks.

mod check;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use crate::lb::{Live, Pools};
use crate::snapshot::Snapshot;

pub use check::run as run_check;

/// Probes running at once, over all pools.
pub const MAX_CONCURRENT: usize = 64;
/// How often the admin state file is looked at.
const ADMIN_POLL: Duration = Duration::from_secs(1);

/// Where each member starts: its check's `initial`, or up.
pub fn initial_states(pools: &Pools) -> Vec<Vec<bool>> {
    pools
        .pools
        .iter()
        .map(|p| vec![p.check.as_ref().is_none_or(|c| c.initial_up); p.members.len()])
        .collect()
}

/// One member's rise/fall state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracker {
    pub up: bool,
    /// Consecutive passed (or failed) checks.
    pub successes: u32,
    pub failures: u32,
    /// How long the last check took, in milliseconds.
    pub last_latency_ms: u64,
    /// Whether a check has run yet.
    pub checked: bool,
}

impl Tracker {
    pub fn new(up: bool) -> Tracker {
        Tracker {
            up,
            successes: 0,
            failures: 0,
            last_latency_ms: 0,
            checked: false,
        }
    }

    /// Counts a result; returns true when the state flips.
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32) -> bool {
        self.checked = true;
        if ok {
            self.successes += 1;
            self.failures = 0;
            if !self.up && self.successes >= rise {
                self.up = true;
                return true;
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.up && self.failures >= fall {
                self.up = false;
                return true;
            }
        }
        false
    }
}

/// Health of every member plus the operator's overrides.
struct State {
    checked: Vec<Vec<Tracker>>,
    admin: HashMap<IpAddr, bool>,
}

/// Runs the checks and publishes health changes into `swap`.
pub struct Monitor {
    swap: Arc<ArcSwap<Snapshot>>,
    pools: Arc<Pools>,
    state: Mutex<State>,
    permits: Semaphore,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Monitor {
    /// A monitor for `pools`, publishing into `swap`. Members that were in
    /// `carried` (same pool name and address) keep their state; others
    /// start at their check's `initial`.
    pub fn new(swap: Arc<ArcSwap<Snapshot>>, pools: Arc<Pools>, carried: Option<&Monitor>) -> Arc<Monitor> {
        let old = carried.map(|m| {
            (
                m.pools.clone(),
                m.state.lock().unwrap_or_else(|e| e.into_inner()).checked.clone(),
            )
        });
        let checked = pools
            .pools
            .iter()
            .map(|pool| {
                pool.members
                    .iter()
                    .map(|member| {
                        let kept = old.as_ref().and_then(|(old_pools, old_state)| {
                            let p = old_pools.pools.iter().position(|o| o.name == pool.name)?;
                            let m = old_pools.pools[p].members.iter().position(|o| o.addr == member.addr)?;
                            // A member that had no check now has one: start fresh.
                            old_pools.pools[p].check.as_ref()?;
                            Some(old_state[p][m])
                        });
                        let initial = pool.check.as_ref().is_none_or(|c| c.initial_up);
                        match (kept, &pool.check) {
                            (Some(t), Some(_)) => t,
                            _ => Tracker::new(initial),
                        }
                    })
                    .collect()
            })
            .collect();
        let admin = carried
            .map(|m| m.state.lock().unwrap_or_else(|e| e.into_inner()).admin.clone())
            .unwrap_or_default();
        Arc::new(Monitor {
            swap,
            pools,
            state: Mutex::new(State { checked, admin }),
            permits: Semaphore::new(MAX_CONCURRENT),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// The live view for the current health (for a new snapshot).
    pub fn live(&self) -> Live {
        Live::compute(&self.pools, &self.effective())
    }

    /// Stops every probe (a reload replaces the monitor).
    pub fn stop(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }

    /// Per pool and member: the tracker state and the admin override.
    pub fn report(&self) -> Vec<Vec<(Tracker, Option<bool>)>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.pools
            .pools
            .iter()
            .enumerate()
            .map(|(p, pool)| {
                pool.members
                    .iter()
                    .enumerate()
                    .map(|(m, member)| (state.checked[p][m], state.admin.get(&member.addr).copied()))
                    .collect()
            })
            .collect()
    }

    /// The pools this monitor watches.
    pub fn pools(&self) -> &Arc<Pools> {
        &self.pools
    }

    /// Starts a probe loop for every checked member (and the admin file
    /// watcher) on the current tokio runtime.
    pub fn start(self: &Arc<Self>, admin_state: Option<PathBuf>) {
        for (p, pool) in self.pools.pools.iter().enumerate() {
            if pool.check.is_none() {
                continue;
            }
            for m in 0..pool.members.len() {
                let monitor = self.clone();
                let task = tokio::spawn(async move { monitor.probe_loop(p, m).await });
                self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
            }
        }
        if let Some(path) = admin_state {
            let monitor = self.clone();
            let task = tokio::spawn(async move { monitor.admin_loop(path).await });
            self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
        }
    }

    async fn probe_loop(self: Arc<Self>, p: usize, m: usize) {
        let pool = &self.pools.pools[p];
        let Some(check) = &pool.check else { return };
        let addr = pool.members[m].addr;
        // Spread the first probes over one interval.
        let offset = check
            .interval
            .mul_f64((m as f64 + 0.5) / pool.members.len().max(1) as f64);
        let mut next = tokio::time::Instant::now() + offset.min(Duration::from_millis(50));
        loop {
            tokio::time::sleep_until(next).await;
            next += check.interval;
            let started = Instant::now();
            let result = {
                let Ok(_permit) = self.permits.acquire().await else {
                    return;
                };
                match tokio::time::timeout(check.timeout, check::run(&check.kind, addr, check.port)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no result within {:?}", check.timeout)),
                }
            };
            let flipped = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let tracker = &mut state.checked[p][m];
                tracker
                    .record(result.is_ok(), check.rise, check.fall)
                    .then_some(tracker.up)
            };
            if let Some(up) = flipped {
                // Publish first: once the change is logged, it is served.
                self.publish();
                let reason = match &result {
                    Ok(()) => format!("{} checks in a row passed", check.rise),
                    Err(why) => format!("{} checks in a row failed, the last: {why}", check.fall),
                };
                tracing::info!(
                    pool = %pool.name,
                    member = %addr,
                    state = if up { "up" } else { "down" },
                    latency_ms = started.elapsed().as_millis() as u64,
                    "health: {} {addr} is {}: {reason}",
                    pool.name,
                    if up { "up" } else { "down" }
                );
            }
        }
    }

    async fn admin_loop(self: Arc<Self>, path: PathBuf) {
        let mut seen: Option<SystemTime> = None;
        let mut missing_reported = false;
        loop {
            match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(modified) if seen != Some(modified) => {
                    seen = Some(modified);
                    missing_reported = false;
                    match read_admin_state(&path) {
                        Ok(admin) => {
                            tracing::info!(file = %path.display(), overrides = admin.len(), "admin state read");
                            self.state.lock().unwrap_or_else(|e| e.into_inner()).admin = admin;
                            self.publish();
                        }
                        Err(errors) => {
                            for e in errors {
                                tracing::warn!("{e}; keeping the previous admin state");
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    if !missing_reported {
                        tracing::warn!(file = %path.display(), %err, "admin state file unreadable; no overrides");
                        missing_reported = true;
                        seen = None;
                        let had = !self.state.lock().unwrap_or_else(|e| e.into_inner()).admin.is_empty();
                        if had {
                            self.state.lock().unwrap_or_else(|e| e.into_inner()).admin.clear();
                            self.publish();
                        }
                    }
                }
            }
            tokio::time::sleep(ADMIN_POLL).await;
        }
    }

    /// Which members are up now: the admin override, else the check.
    pub fn effective(&self) -> Vec<Vec<bool>> {
        self.report()
            .into_iter()
            .map(|pool| {
                pool.into_iter()
                    .map(|(tracker, admin)| admin.unwrap_or(tracker.up))
                    .collect()
            })
            .collect()
    }

    /// Publishes a snapshot with the current health, unless a reload has
    /// replaced the pools meanwhile (then the new monitor publishes).
    fn publish(&self) {
        let live = Arc::new(Live::compute(&self.pools, &self.effective()));
        self.swap.rcu(|current| {
            if Arc::ptr_eq(current.pools_arc(), &self.pools) {
                Arc::new(current.with_live_arc(live.clone()))
            } else {
                current.clone()
            }
        });
    }
}

/// Parses the admin state file: `ADDRESS up|down` per line, `#` comments.
pub fn read_admin_state(path: &Path) -> Result<HashMap<IpAddr, bool>, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let mut out = HashMap::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(addr), Some(state), None) = (words.next(), words.next(), words.next()) else {
            errors.push(format!("{}:{}: expected ADDRESS up|down", path.display(), n + 1));
            continue;
        };
        let Ok(addr) = addr.parse::<IpAddr>() else {
            errors.push(format!("{}:{}: bad address {addr:?}", path.display(), n + 1));
            continue;
        };
        match state {
            "up" => out.insert(addr, true),
            "down" => out.insert(addr, false),
            other => {
                errors.push(format!(
                    "{}:{}: state must be up or down, not {other:?}",
                    path.display(),
                    n + 1
                ));
                continue;
            }
        };
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall() {
        let mut t = Tracker::new(true);
        assert!(!t.record(false, 2, 3));
        assert!(!t.record(false, 2, 3));
        assert!(!t.record(true, 2, 3), "a success resets the failures");
        assert!(!t.record(false, 2, 3));
        assert!(!t.record(false, 2, 3));
        assert!(t.record(false, 2, 3), "third failure in a row");
        assert!(!t.up);
        assert!(!t.record(true, 2, 3));
        assert!(t.record(true, 2, 3));
        assert!(t.up);
    }

    #[test]
    fn admin_file() {
        let dir = std::env::temp_dir().join(format!("lbdns-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("admin");
        std::fs::write(&path, "# drain\n127.0.0.11 down\n::1 up # keep\n\n").unwrap();
        let admin = read_admin_state(&path).unwrap();
        assert_eq!(admin.get(&"127.0.0.11".parse().unwrap()), Some(&false));
        assert_eq!(admin.get(&"::1".parse().unwrap()), Some(&true));
        std::fs::write(&path, "127.0.0.11 drained\nnonsense\n").unwrap();
        let errors = read_admin_state(&path).unwrap_err();
        assert!(
            errors[0].ends_with(":1: state must be up or down, not \"drained\""),
            "{errors:?}"
        );
        assert!(errors[1].ends_with(":2: expected ADDRESS up|down"), "{errors:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
