//! Severity lanes: a bounded pool of step-attempt slots handed out by the severity of the
//! run's incident, so that in an alert storm the one critical incident does not wait
//! behind thousands of warnings.
//!
//! Waiters queue in three lanes (critical, warning, info), first come first served within
//! a lane. When a slot frees up it goes to a lane chosen by *smooth weighted round robin*
//! (the scheme nginx uses for upstream weights) over the lanes that have waiters: with the
//! default weights 16 : 4 : 1, a critical waiter gets the next free slot, and a warning
//! lane behind a steady stream of critical work still gets one slot in five — a lower lane
//! is never starved.
//!
//! A pool may also keep a *critical reserve*: slots beyond its capacity that only the
//! critical lane uses. Without it, a critical attempt in a storm waits until one of the
//! attempts holding every slot ends — up to a whole provider round trip of a warning's
//! step; with it, the critical attempt starts at once while the reserve lasts (the same
//! idea as the blocks a file system keeps for root).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use medic_core::lanes::{Lane, LanePool};
//! let pool = LanePool::new(1, [16, 4, 1]);
//! let held = pool.acquire(Lane::Warning).await;
//! assert_eq!(pool.depths(), [0, 0, 0]);
//! drop(held);
//! let _again = pool.acquire(Lane::Critical).await;
//! # });
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Notify, oneshot};

/// A severity lane, most urgent first. `Lane as usize` indexes per-lane arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Critical incidents (`critical`, PagerDuty `high` urgency, `P1`, ...).
    Critical = 0,
    /// Warnings, and any severity the mapping does not name.
    Warning = 1,
    /// Informational incidents.
    Info = 2,
}

impl Lane {
    /// Every lane, most urgent first.
    pub const ALL: [Lane; 3] = [Lane::Critical, Lane::Warning, Lane::Info];

    /// The lane's name in configuration and metrics: `critical`, `warning`, `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Critical => "critical",
            Lane::Warning => "warning",
            Lane::Info => "info",
        }
    }

    /// The lane named `name` (as [`Lane::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.as_str() == name)
    }

    /// The lane at index `i` (0 critical, 1 warning, 2 info).
    pub fn from_index(i: usize) -> Option<Lane> {
        Lane::ALL.get(i).copied()
    }
}

/// Smooth weighted round robin over the lanes that are `ready`: returns the lane to serve
/// and updates `current`. Lanes not ready have their credit reset, so a lane that was idle
/// does not come back with a burst saved up. `None` when no lane is ready.
///
/// The rule: every ready lane gains its weight; the lane with the most credit (the more
/// urgent on a tie) is served and pays the sum of the ready lanes' weights.
pub fn pick(current: &mut [i64; 3], weights: [u32; 3], ready: [bool; 3]) -> Option<Lane> {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for i in 0..3 {
        if !ready[i] {
            current[i] = 0;
            continue;
        }
        let w = i64::from(weights[i].max(1));
        current[i] += w;
        total += w;
        if best.is_none_or(|b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    let b = best?;
    current[b] -= total;
    Lane::from_index(b)
}

struct Inner {
    free: usize,
    /// Free slots of the critical reserve.
    reserve_free: usize,
    queues: [VecDeque<oneshot::Sender<Permit>>; 3],
    current: [i64; 3],
}

struct Shared {
    capacity: usize,
    /// Slots beyond `capacity` only the critical lane takes.
    reserve: usize,
    weights: [u32; 3],
    inner: Mutex<Inner>,
    /// Notified whenever a slot goes back to the free count.
    freed: Notify,
}

/// At most `capacity` slots held at once; waiters served by lane (see the module docs).
#[derive(Clone)]
pub struct LanePool {
    shared: Arc<Shared>,
}

/// A held slot; dropping it hands the slot to the next waiter.
pub struct Permit {
    shared: Option<Arc<Shared>>,
    /// A slot of the critical reserve: it goes back to the reserve, or to a critical waiter.
    reserved: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            if self.reserved {
                release_reserved(&shared);
            } else {
                release(&shared);
            }
        }
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    // Every update of `Inner` is complete before any call that could panic.
    shared.inner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Gives a freed slot to the waiter the lanes choose, or back to the free count.
fn release(shared: &Arc<Shared>) {
    let mut inner = lock(shared);
    loop {
        for q in &mut inner.queues {
            // A waiter that gave up (shutdown, a cancelled driver) is not served.
            while q.front().is_some_and(oneshot::Sender::is_closed) {
                q.pop_front();
            }
        }
        let ready = [0, 1, 2].map(|i| !inner.queues[i].is_empty());
        let Some(lane) = pick(&mut inner.current, shared.weights, ready) else {
            inner.free += 1;
            drop(inner);
            shared.freed.notify_waiters();
            return;
        };
        let Some(tx) = inner.queues[lane as usize].pop_front() else {
            continue;
        };
        if hand(shared, tx, false) {
            return;
        }
    }
}

/// Hands a slot to a queued waiter; `false` when it gave up in between (the slot is
/// still the caller's to place).
fn hand(shared: &Arc<Shared>, tx: oneshot::Sender<Permit>, reserved: bool) -> bool {
    let permit = Permit {
        shared: Some(shared.clone()),
        reserved,
    };
    match tx.send(permit) {
        Ok(()) => true,
        // Closed in between: take the slot back without dropping it under the lock.
        Err(mut p) => {
            p.shared = None;
            false
        }
    }
}

/// Gives a freed reserve slot to the first critical waiter, or back to the reserve.
fn release_reserved(shared: &Arc<Shared>) {
    let mut inner = lock(shared);
    while let Some(tx) = inner.queues[Lane::Critical as usize].pop_front() {
        if hand(shared, tx, true) {
            return;
        }
    }
    inner.reserve_free += 1;
    drop(inner);
    shared.freed.notify_waiters();
}

impl LanePool {
    /// A pool of `capacity` slots with the lanes' `weights` (critical, warning, info;
    /// a weight of 0 counts as 1, so no lane can be shut out).
    pub fn new(capacity: usize, weights: [u32; 3]) -> LanePool {
        LanePool::with_reserve(capacity, 0, weights)
    }

    /// A pool of `capacity` slots shared by the lanes plus `reserve` more that only the
    /// critical lane takes, when every shared slot is held (see the module docs).
    pub fn with_reserve(capacity: usize, reserve: usize, weights: [u32; 3]) -> LanePool {
        LanePool {
            shared: Arc::new(Shared {
                capacity,
                reserve,
                weights,
                inner: Mutex::new(Inner {
                    free: capacity,
                    reserve_free: reserve,
                    queues: Default::default(),
                    current: [0; 3],
                }),
                freed: Notify::new(),
            }),
        }
    }

    /// A slot, waiting in `lane` until one is free. Cancel-safe: dropping the future
    /// gives up the place in the queue (and any slot handed to it meanwhile).
    pub async fn acquire(&self, lane: Lane) -> Permit {
        let rx = {
            let mut inner = lock(&self.shared);
            // Waiters already queued go first: a free slot is only taken directly when
            // nobody waits, so FIFO within a lane holds.
            if inner.free > 0 && inner.queues.iter().all(VecDeque::is_empty) {
                inner.free -= 1;
                return Permit {
                    shared: Some(self.shared.clone()),
                    reserved: false,
                };
            }
            // Every shared slot is held (or others queue for them): a critical waiter
            // takes a reserve slot rather than wait for a lower lane's attempt to end.
            if lane == Lane::Critical
                && inner.reserve_free > 0
                && inner.queues[Lane::Critical as usize].is_empty()
            {
                inner.reserve_free -= 1;
                return Permit {
                    shared: Some(self.shared.clone()),
                    reserved: true,
                };
            }
            let (tx, rx) = oneshot::channel();
            inner.queues[lane as usize].push_back(tx);
            rx
        };
        match rx.await {
            Ok(p) => p,
            // The sender is only dropped after a send or when the pool is gone, which
            // cannot happen while `self` is borrowed.
            Err(_) => unreachable!("lane pool dropped a waiter"),
        }
    }

    /// Waiters per lane (critical, warning, info).
    pub fn depths(&self) -> [usize; 3] {
        let inner = lock(&self.shared);
        [0, 1, 2].map(|i| inner.queues[i].iter().filter(|t| !t.is_closed()).count())
    }

    /// Slots in use now, the critical reserve's included.
    pub fn in_use(&self) -> usize {
        let inner = lock(&self.shared);
        (self.shared.capacity - inner.free) + (self.shared.reserve - inner.reserve_free)
    }

    /// Returns once no slot is in use (every attempt in flight finished).
    pub async fn idle(&self) {
        loop {
            let freed = self.shared.freed.notified();
            if self.in_use() == 0 {
                return;
            }
            freed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_share_slots_and_no_lane_starves() {
        let mut cur = [0; 3];
        let w = [16, 4, 1];
        let served: Vec<Lane> = (0..21)
            .map(|_| pick(&mut cur, w, [true; 3]).unwrap())
            .collect();
        let count = |l| served.iter().filter(|&&s| s == l).count();
        assert_eq!(
            (
                count(Lane::Critical),
                count(Lane::Warning),
                count(Lane::Info)
            ),
            (16, 4, 1)
        );
        assert_eq!(served[0], Lane::Critical);
        // Only lower lanes waiting: they are served, in their own proportion.
        let mut cur = [0; 3];
        let lower: Vec<Lane> = (0..5)
            .map(|_| pick(&mut cur, w, [false, true, true]).unwrap())
            .collect();
        assert_eq!(lower.iter().filter(|&&l| l == Lane::Info).count(), 1);
        assert_eq!(pick(&mut cur, w, [false; 3]), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_critical_waiter_overtakes_a_warning_backlog_fifo_within_lanes() {
        let pool = LanePool::new(1, [16, 4, 1]);
        let held = pool.acquire(Lane::Info).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        let spawn = |lane: Lane, name: String, tasks: &mut Vec<_>| {
            let (pool, order) = (pool.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = pool.acquire(lane).await;
                order.lock().unwrap().push(name);
                tokio::task::yield_now().await;
            }));
        };
        for i in 0..6 {
            spawn(Lane::Warning, format!("w{i}"), &mut tasks);
        }
        spawn(Lane::Info, "i0".into(), &mut tasks);
        spawn(Lane::Critical, "c0".into(), &mut tasks);
        // Let every task queue up behind the held slot.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.depths(), [1, 6, 1]);
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], "c0", "{order:?}");
        let warnings: Vec<_> = order.iter().filter(|n| n.starts_with('w')).collect();
        assert_eq!(warnings, ["w0", "w1", "w2", "w3", "w4", "w5"], "{order:?}");
        // Info is not starved: it is served before the last warnings.
        let info = order.iter().position(|n| n == "i0").unwrap();
        assert!(info < order.len() - 1, "{order:?}");
        assert_eq!(pool.in_use(), 0);
        pool.idle().await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_critical_reserve_serves_critical_attempts_only() {
        let pool = LanePool::with_reserve(1, 1, [16, 4, 1]);
        let warning = pool.acquire(Lane::Warning).await;
        // Every shared slot held: a second warning waits, a critical attempt does not.
        let waiting = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire(Lane::Warning).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(pool.depths(), [0, 1, 0]);
        let critical = pool.acquire(Lane::Critical).await;
        assert_eq!(pool.in_use(), 2);
        // The reserve is used up: the next critical attempt queues, and the reserve slot,
        // when freed, goes to it and not to the waiting warning.
        let next = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire(Lane::Critical).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(pool.depths(), [1, 1, 0]);
        drop(critical);
        let next = next.await.unwrap();
        assert_eq!(pool.depths(), [0, 1, 0]);
        // A freed shared slot goes to the warning.
        drop(warning);
        let warning = waiting.await.unwrap();
        assert_eq!(pool.in_use(), 2);
        drop((next, warning));
        assert_eq!(pool.in_use(), 0);
        pool.idle().await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_waiter_gives_its_place_and_slot_back() {
        let pool = LanePool::new(1, [16, 4, 1]);
        let held = pool.acquire(Lane::Warning).await;
        let waiting = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire(Lane::Critical).await })
        };
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        assert_eq!(pool.in_use(), 0);
        let _p = pool.acquire(Lane::Info).await;
        assert_eq!(pool.in_use(), 1);
    }
}
