//! Routing filters and peer selection (Fabric's `gossip/filter`): small composable predicates over
//! members, and `SelectPeers(k, pool, filter)` with the RNG passed in.
//!
//! Selection visits the pool in uniformly random order and keeps the first `k` members the filter
//! accepts, like Fabric's iteration over `rand.Perm(len(pool))`. Fabric builds the whole
//! permutation per call (O(n)); we draw it lazily with a sparse Fisher–Yates shuffle, so picking 3
//! of 1,000 members costs a handful of draws instead of 1,000. When the filter rejects so many
//! members that the sparse swap table fills, selection falls back to a dense permutation.

use rand::Rng;

use crate::types::{NetworkMember, OrgId, PkiId};

/// A predicate on members: `true` when a message may be routed to that member.
pub trait RoutingFilter {
    /// Whether `member` passes.
    fn accepts(&self, member: &NetworkMember) -> bool;
}

impl<F: Fn(&NetworkMember) -> bool> RoutingFilter for F {
    fn accepts(&self, member: &NetworkMember) -> bool {
        self(member)
    }
}

/// Accepts every member (Fabric's `SelectAllPolicy`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SelectAll;

impl RoutingFilter for SelectAll {
    fn accepts(&self, _: &NetworkMember) -> bool {
        true
    }
}

/// Accepts no member (Fabric's `SelectNonePolicy`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SelectNone;

impl RoutingFilter for SelectNone {
    fn accepts(&self, _: &NetworkMember) -> bool {
        false
    }
}

/// Both filters must accept (Fabric's `CombineRoutingFilters`, a logical AND).
#[derive(Clone, Copy, Debug)]
pub struct And<A, B>(pub A, pub B);

impl<A: RoutingFilter, B: RoutingFilter> RoutingFilter for And<A, B> {
    fn accepts(&self, member: &NetworkMember) -> bool {
        self.0.accepts(member) && self.1.accepts(member)
    }
}

/// Combines two filters with AND; nest for more.
pub fn combine<A: RoutingFilter, B: RoutingFilter>(a: A, b: B) -> And<A, B> {
    And(a, b)
}

/// Accepts every member but one (Fabric's `IsNotSameFilter`: never send a message back to the
/// peer it came from).
#[derive(Clone, Copy, Debug)]
pub struct NotSame(pub PkiId);

impl RoutingFilter for NotSame {
    fn accepts(&self, member: &NetworkMember) -> bool {
        member.pki_id != self.0
    }
}

/// Accepts members of one org (Fabric's `IsInMyOrg` when given the local org).
#[derive(Clone, Debug)]
pub struct InOrg(pub OrgId);

impl RoutingFilter for InOrg {
    fn accepts(&self, member: &NetworkMember) -> bool {
        member.org.as_deref() == Some(&*self.0)
    }
}

/// The first member the filter accepts, in pool order (Fabric's `First`).
pub fn first<'a>(
    pool: &'a [NetworkMember],
    filter: &impl RoutingFilter,
) -> Option<&'a NetworkMember> {
    pool.iter().find(|m| filter.accepts(m))
}

/// Members accepted by at least one of `filters` (Fabric's `AnyMatch`), in pool order.
pub fn any_match<'a>(
    pool: &'a [NetworkMember],
    filters: &[&dyn RoutingFilter],
) -> Vec<&'a NetworkMember> {
    pool.iter()
        .filter(|m| filters.iter().any(|f| f.accepts(m)))
        .collect()
}

/// Entries of the sparse swap table before selection switches to a dense permutation.
const SPARSE_SWAPS_LEN_MAX: usize = 32;

/// Appends to `out` up to `k` members of `pool` that `filter` accepts, visiting the pool in a
/// uniformly random order drawn from `rng` (Fabric's `SelectPeers`). Returns how many it added.
pub fn select_peers<'a, R: Rng + ?Sized>(
    k: usize,
    pool: &'a [NetworkMember],
    filter: &impl RoutingFilter,
    rng: &mut R,
    out: &mut Vec<&'a NetworkMember>,
) -> usize {
    let start_len = out.len();
    let n = pool.len();
    if k == 0 || n == 0 {
        return 0;
    }
    // Sparse Fisher–Yates: position p holds `swaps[p]` if present, else p itself.
    let mut swaps: [(u32, u32); SPARSE_SWAPS_LEN_MAX] = [(0, 0); SPARSE_SWAPS_LEN_MAX];
    let mut swaps_len = 0usize;
    let lookup =
        |swaps: &[(u32, u32)], p: u32| swaps.iter().find(|(k, _)| *k == p).map_or(p, |&(_, v)| v);
    let mut i = 0usize;
    while i < n && out.len() - start_len < k {
        if swaps_len == SPARSE_SWAPS_LEN_MAX {
            return dense_tail(k, pool, filter, rng, out, start_len, i, &swaps[..swaps_len]);
        }
        let j = rng.random_range(i..n) as u32;
        let picked = lookup(&swaps[..swaps_len], j);
        let displaced = lookup(&swaps[..swaps_len], i as u32);
        // Position j now holds what was at position i; position i is consumed.
        match swaps[..swaps_len].iter_mut().find(|(key, _)| *key == j) {
            Some(entry) => entry.1 = displaced,
            None => {
                swaps[swaps_len] = (j, displaced);
                swaps_len += 1;
            }
        }
        let member = &pool[picked as usize];
        if filter.accepts(member) {
            out.push(member);
        }
        i += 1;
    }
    out.len() - start_len
}

/// Continues a selection with a dense permutation, carrying over the sparse swaps made so far.
#[allow(clippy::too_many_arguments)]
fn dense_tail<'a, R: Rng + ?Sized>(
    k: usize,
    pool: &'a [NetworkMember],
    filter: &impl RoutingFilter,
    rng: &mut R,
    out: &mut Vec<&'a NetworkMember>,
    start_len: usize,
    from: usize,
    swaps: &[(u32, u32)],
) -> usize {
    let n = pool.len();
    let mut perm: Vec<u32> = (0..n as u32).collect();
    for &(p, v) in swaps {
        perm[p as usize] = v;
    }
    for i in from..n {
        if out.len() - start_len >= k {
            break;
        }
        let j = rng.random_range(i..n);
        perm.swap(i, j);
        let member = &pool[perm[i] as usize];
        if filter.accepts(member) {
            out.push(member);
        }
    }
    out.len() - start_len
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn id(i: usize) -> PkiId {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        PkiId(bytes)
    }

    fn index(pki_id: &PkiId) -> usize {
        u64::from_be_bytes(pki_id.0[..8].try_into().unwrap()) as usize
    }

    fn members(n: usize) -> Vec<NetworkMember> {
        (0..n)
            .map(|i| NetworkMember {
                pki_id: id(i),
                endpoint: format!("peer{i}:7051"),
                internal_endpoint: String::new(),
                org: Some(if i % 2 == 0 {
                    "Org1MSP".into()
                } else {
                    "Org2MSP".into()
                }),
            })
            .collect()
    }

    #[test]
    fn selects_k_distinct_accepted_members() {
        let pool = members(100);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let filter = combine(InOrg("Org1MSP".into()), NotSame(id(0)));
        for _ in 0..200 {
            let mut out = Vec::new();
            assert_eq!(select_peers(3, &pool, &filter, &mut rng, &mut out), 3);
            let mut ids: Vec<_> = out.iter().map(|m| m.pki_id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 3, "distinct");
            assert!(out.iter().all(|m| filter.accepts(m)));
        }
    }

    #[test]
    fn returns_all_matches_when_fewer_than_k_even_past_the_sparse_table() {
        // Only 2 of 500 members pass, so selection must visit everything (dense fallback).
        let pool = members(500);
        let wanted = [id(3), id(250)];
        let filter = |m: &NetworkMember| wanted.contains(&m.pki_id);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let mut out = Vec::new();
            assert_eq!(select_peers(3, &pool, &filter, &mut rng, &mut out), 2);
            let mut ids: Vec<_> = out.iter().map(|m| m.pki_id).collect();
            ids.sort();
            assert_eq!(ids, wanted.to_vec());
        }
    }

    #[test]
    fn selection_is_uniform_enough() {
        // Each of 10 members should be picked about k/n = 30 % of the time.
        let pool = members(10);
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut counts = [0u32; 10];
        let rounds = 20_000;
        for _ in 0..rounds {
            let mut out = Vec::new();
            select_peers(3, &pool, &SelectAll, &mut rng, &mut out);
            for m in out {
                counts[index(&m.pki_id)] += 1;
            }
        }
        for c in counts {
            let share = c as f64 / rounds as f64;
            assert!((share - 0.3).abs() < 0.02, "share {share}");
        }
    }

    #[test]
    fn same_seed_same_choice() {
        let pool = members(1000);
        let pick = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            select_peers(3, &pool, &SelectAll, &mut rng, &mut out);
            out.iter().map(|m| m.pki_id).collect::<Vec<_>>()
        };
        assert_eq!(pick(9), pick(9));
        assert_ne!(pick(9), pick(10));
    }

    #[test]
    fn edge_cases() {
        let pool = members(5);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut out = Vec::new();
        assert_eq!(select_peers(0, &pool, &SelectAll, &mut rng, &mut out), 0);
        assert_eq!(select_peers(3, &[], &SelectAll, &mut rng, &mut out), 0);
        assert_eq!(select_peers(3, &pool, &SelectNone, &mut rng, &mut out), 0);
        assert_eq!(select_peers(10, &pool, &SelectAll, &mut rng, &mut out), 5);
        assert_eq!(
            first(&pool, &InOrg("Org2MSP".into())).map(|m| m.pki_id),
            Some(id(1))
        );
        assert_eq!(any_match(&pool, &[&NotSame(id(0)), &SelectNone]).len(), 4);
    }
}
