//! The load-balancing algorithms. Each honours weights, skips ejected targets and, for a
//! retry, targets the request already tried (unless nothing else is left).

use std::sync::atomic::Ordering;

use rand::Rng;
use zentinel_config::model::LoadBalancing;

use super::{Pool, SelectInput, Target};

/// Virtual nodes per unit of weight on the consistent-hash ring.
const POINTS_PER_WEIGHT: u32 = 64;
/// Most virtual nodes one ring holds (bounds memory for large weights).
const MAX_POINTS: usize = 1 << 16;

/// 64-bit FNV-1a with murmur3's finalizer: stable across builds and processes (so every proxy
/// instance maps a key to the same target), and well spread even for similar short keys.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A consistent-hash ring: sorted points, each owned by a target.
#[derive(Debug, Default)]
pub(super) struct Ring {
    points: Vec<(u64, usize)>,
}

impl Ring {
    pub(super) fn new(targets: &[Target]) -> Self {
        let total: u64 = targets.iter().map(|t| u64::from(t.weight)).sum();
        let per_weight = (MAX_POINTS as u64)
            .checked_div(total)
            .map_or(0, |p| p.clamp(1, u64::from(POINTS_PER_WEIGHT)));
        let mut points = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            for v in 0..u64::from(t.weight) * per_weight {
                let label = format!("{}-{v}", t.name);
                points.push((fnv1a(label.as_bytes()), i));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// The first usable target clockwise from `hash`.
    fn lookup(&self, hash: u64, usable: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|(p, _)| *p < hash);
        (0..self.points.len())
            .map(|k| self.points[(start + k) % self.points.len()].1)
            .find(|&i| usable(i))
    }
}

fn tried(input: &SelectInput<'_>, i: usize) -> bool {
    input.tried.contains(i)
}

pub(super) fn select(pool: &Pool, input: SelectInput<'_>) -> Option<usize> {
    // Prefer targets not tried yet; fall back to any available one.
    let fresh = |i: usize| pool.available(i) && !tried(&input, i);
    let any = |i: usize| pool.available(i);
    pick(pool, &input, &fresh).or_else(|| pick(pool, &input, &any))
}

fn pick(pool: &Pool, input: &SelectInput<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
    let n = pool.targets.len();
    if !(0..n).any(usable) {
        return None;
    }
    match pool.algorithm {
        LoadBalancing::RoundRobin => smooth_round_robin(pool, usable),
        LoadBalancing::Weighted => weighted_random(pool, usable),
        LoadBalancing::LeastConnections => least_loaded(pool, usable),
        LoadBalancing::PowerOfTwoChoices => {
            let a = weighted_random(pool, usable)?;
            let b = weighted_random(pool, usable)?;
            least_loaded(pool, &|i| i == a || i == b)
        }
        LoadBalancing::ConsistentHash => {
            let hash = fnv1a(input.hash_key.unwrap_or_default());
            pool.ring.lookup(hash, usable)
        }
    }
}

/// nginx's smooth weighted round robin: every target gains its weight, the richest is chosen
/// and pays the total. Interleaves heavy and light targets evenly.
fn smooth_round_robin(pool: &Pool, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
    let mut current = pool
        .rr
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for (i, t) in pool.targets.iter().enumerate() {
        if !usable(i) {
            continue;
        }
        let w = i64::from(t.weight);
        current[i] += w;
        total += w;
        if best.is_none_or(|b| current[i] > current[b]) {
            best = Some(i);
        }
    }
    if let Some(b) = best {
        current[b] -= total;
    }
    best
}

fn weighted_random(pool: &Pool, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
    let total: u64 = pool
        .targets
        .iter()
        .enumerate()
        .filter(|(i, _)| usable(*i))
        .map(|(_, t)| u64::from(t.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let mut r = rand::rng().random_range(0..total);
    for (i, t) in pool.targets.iter().enumerate() {
        if !usable(i) {
            continue;
        }
        let w = u64::from(t.weight);
        if r < w {
            return Some(i);
        }
        r -= w;
    }
    None
}

/// The candidate with the fewest in-flight requests per unit of weight; ties go to the first
/// one after a random rotation, so equal targets share the load. Never allocates.
fn least_loaded(pool: &Pool, candidate: &dyn Fn(usize) -> bool) -> Option<usize> {
    let n = pool.targets.len();
    if n == 0 {
        return None;
    }
    let offset = rand::rng().random_range(0..n);
    (0..n)
        .map(|k| (offset + k) % n)
        .filter(|&i| candidate(i))
        .min_by(|&a, &b| {
            // in_flight(a)/weight(a) against in_flight(b)/weight(b), without division.
            let load = |x: usize, y: usize| {
                pool.targets[x].in_flight.load(Ordering::Relaxed) as u128
                    * u128::from(pool.targets[y].weight)
            };
            load(a, b).cmp(&load(b, a))
        })
}
