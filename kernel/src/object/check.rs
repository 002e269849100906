//! The kernel's self-check (test image): the object tables agree with each
//! other. Run after hostile rounds (`SystemControl` with the self-check
//! operation) and by kernel tests:
//! - every pool's budget is what is left plus what its objects are charged;
//! - every mapping names live memory and a live capability that records
//!   it, and every memory object's references are its capabilities plus
//!   its mappings (one being zeroed: its maker's alone, no capability, no
//!   mapping), and its writable and executable mappings are counted
//!   (never both); a RAM object in runs has runs that cover its pages in
//!   order, page aligned, is not one made for DMA, and its pool is charged
//!   for the list of runs too;
//! - the derivation tree's links agree, and each capability is in the slot
//!   that names it;
//! - every ready thread is on a run queue, every timed wait on a timeout
//!   list;
//! - a CPU's FP owner (whose FP/SIMD state is live in its registers, to be
//!   saved when it switches away) is the live thread it runs, or none.

use super::{Kernel, ObjectRef, IPC_OBJECT_COST, POOL_COST};
use crate::cap::CAP_COST;
use crate::task::MAPPING_COST;
use crate::thread::{ThreadState, THREAD_COST};
use abi::PAGE_SIZE;

/// Check every invariant; the first that fails, described.
pub fn self_check(k: &Kernel) -> Result<(), alloc::string::String> {
    use alloc::format;
    for (pid, p) in k.pools.iter() {
        let mut used = 0u64;
        used += k
            .pools
            .iter()
            .filter(|(_, q)| q.parent == Some(pid))
            .map(|(_, q)| q.size + POOL_COST)
            .sum::<u64>();
        used += k.caps.iter().filter(|(_, c)| c.pool == pid).count() as u64 * CAP_COST;
        for (_, t) in k.tasks.iter().filter(|(_, t)| t.pool == pid) {
            if !t.free_pending {
                used += t.charge;
            }
            used += t.tables.len() as u64 * PAGE_SIZE as u64 + t.mappings.len() as u64 * MAPPING_COST;
        }
        used += k.threads.iter().filter(|(_, t)| t.pool == pid && !t.refunded).count() as u64 * THREAD_COST;
        used += k.endpoints.iter().filter(|(_, e)| e.pool == pid).count() as u64 * IPC_OBJECT_COST;
        used += k.notifications.iter().filter(|(_, n)| n.pool == pid).count() as u64 * IPC_OBJECT_COST;
        used += k.irqs.iter().filter(|(_, i)| i.pool == pid).count() as u64 * IPC_OBJECT_COST;
        used += k
            .memories
            .iter()
            .filter(|(_, m)| m.pool == Some(pid))
            .map(|(_, m)| m.charge)
            .sum::<u64>();
        if p.bytes_left + used != p.size {
            return Err(format!(
                "pool {pid:?}: {} left + {used} charged != its {} bytes",
                p.bytes_left, p.size
            ));
        }
    }
    for (tid, t) in k.tasks.iter() {
        // Its tree of mappings by address is whole, ordered and balanced.
        t.mappings.check().map_err(|e| format!("task {tid:?}: mappings: {e}"))?;
        if !t.cspace.free_bits_agree() {
            return Err(format!("task {tid:?}: the map of free capability slots disagrees"));
        }
        for (i, m) in t.mappings.iter().enumerate() {
            if k.memories.get(m.memory).is_none() {
                return Err(format!("task {tid:?}: mapping at {:#x} of dead memory", m.va));
            }
            let recorded = k
                .caps
                .get(m.cap)
                .is_some_and(|c| c.mappings.get(m.cap_index as usize) == Some(&(tid, i as u32)));
            if !recorded {
                return Err(format!("task {tid:?}: mapping at {:#x} not in its capability", m.va));
            }
            // A `Map` in pieces: mapped from its start, removed from there.
            if m.unmapped > m.filled
                || m.filled as usize > m.pages
                || (m.maker.is_some() && m.filled as usize == m.pages)
            {
                return Err(format!(
                    "task {tid:?}: mapping at {:#x}: {} pages, {} mapped, {} unmapped, maker {:?}",
                    m.va, m.pages, m.filled, m.unmapped, m.maker
                ));
            }
            if let Some(p) = m
                .maker
                .and_then(|th| k.threads.get(th))
                .and_then(|th| th.mapping.as_deref())
            {
                if p.task == tid
                    && p.index as usize != i
                    && t.mappings.get(p.index as usize).is_some_and(|x| x.maker == m.maker)
                {
                    return Err(format!("task {tid:?}: two mappings filled by one thread"));
                }
            }
        }
    }
    for (mid, m) in k.memories.iter() {
        let caps = k
            .caps
            .iter()
            .filter(|(_, c)| c.object == ObjectRef::Memory(mid))
            .count();
        let maps: usize = k
            .tasks
            .iter()
            .map(|(_, t)| t.mappings.iter().filter(|x| x.memory == mid).count())
            .sum();
        let mut mapped = super::MappedAs::NONE;
        for (_, t) in k.tasks.iter() {
            for x in t.mappings.iter().filter(|x| x.memory == mid) {
                mapped.count(x.rights, true);
            }
        }
        if m.mapped != mapped {
            return Err(format!(
                "memory {mid:?}: counted as mapped {:?}, its mappings are {mapped:?}",
                m.mapped
            ));
        }
        if let Some(list) = &m.extents {
            let mut start = 0;
            let ordered = list.iter().all(|e| {
                let ok = e.end > start && e.pa.is_multiple_of(PAGE_SIZE as u64);
                start = e.end;
                ok
            });
            let cost = core::alloc::Layout::array::<crate::mm::extents::Extent>(list.len())
                .map_or(0, |l| crate::mm::frames::block_size(l) as u64);
            if !ordered
                || start != m.pages as u64
                || m.contiguous
                || m.kind != super::MemoryKind::Ram
                || m.charge != crate::mm::frames::charge(m.pages) + cost
            {
                return Err(format!(
                    "memory {mid:?}: {} pages, charged {}, in runs {list:?}",
                    m.pages, m.charge
                ));
            }
        }
        if m.mapped.writable > 0 && m.mapped.executable > 0 {
            return Err(format!("memory {mid:?}: mapped writable and executable"));
        }
        // A memory object being zeroed is its maker's alone: no
        // capability names it, nothing maps it.
        let makers = k
            .threads
            .iter()
            .filter(|(_, t)| t.creating.is_some_and(|c| c.memory == mid))
            .count();
        if makers > 0 && (makers > 1 || caps + maps > 0) {
            return Err(format!(
                "memory {mid:?}: being zeroed by {makers} threads, with {caps} capabilities and {maps} mappings"
            ));
        }
        if m.refs as usize != caps + maps + makers {
            return Err(format!(
                "memory {mid:?}: {} references, {caps} capabilities + {maps} mappings + {makers} makers",
                m.refs
            ));
        }
    }
    for (cid, c) in k.caps.iter() {
        if k.tasks
            .get(c.task)
            .is_none_or(|t| t.cspace.slot_cap(c.slot) != Some(cid))
        {
            return Err(format!("capability {cid:?} is not in its slot"));
        }
        for (j, (task, i)) in c.mappings.iter().enumerate() {
            if k.tasks.get(*task).is_none_or(|t| {
                t.mappings
                    .get(*i as usize)
                    .is_none_or(|m| m.cap != cid || m.cap_index as usize != j)
            }) {
                return Err(format!("capability {cid:?} records a mapping ({i}) that is gone"));
            }
        }
        if let Some(next) = c.next_sibling {
            let n = k
                .caps
                .get(next)
                .ok_or(format!("capability {cid:?}: dead next sibling"))?;
            if n.prev_sibling != Some(cid) || n.parent != c.parent {
                return Err(format!("capability {cid:?}: sibling links disagree"));
            }
        }
        match c.prev_sibling {
            Some(prev) => {
                if k.caps.get(prev).is_none_or(|p| p.next_sibling != Some(cid)) {
                    return Err(format!("capability {cid:?}: previous sibling does not lead here"));
                }
            }
            None => {
                if let Some(parent) = c.parent {
                    if k.caps.get(parent).is_none_or(|p| p.first_child != Some(cid)) {
                        return Err(format!(
                            "capability {cid:?}: first of its siblings but not its parent's first child"
                        ));
                    }
                }
            }
        }
        if let Some(first) = c.first_child {
            if k.caps
                .get(first)
                .is_none_or(|f| f.parent != Some(cid) || f.prev_sibling.is_some())
            {
                return Err(format!("capability {cid:?}: first child links disagree"));
            }
        }
    }
    let tearing = k.tasks.iter().filter(|(_, t)| t.teardown).count();
    if tearing != k.teardown_pending as usize {
        return Err(format!(
            "{tearing} tasks being torn down, {} counted",
            k.teardown_pending
        ));
    }
    if k.deferred() != k.reclaim_pending + k.teardown_pending {
        return Err(format!(
            "deferred work {} counted, {} reclaims + {} teardowns",
            k.deferred(),
            k.reclaim_pending,
            k.teardown_pending
        ));
    }
    for (id, t) in k.threads.iter() {
        match t.state {
            ThreadState::Ready if t.links.run_queue().is_none() => {
                return Err(format!("thread {id:?} is ready but on no run queue"));
            }
            ThreadState::Running if !k.cpus.iter().any(|c| c.current == Some(id)) => {
                return Err(format!("thread {id:?} is running on no CPU"));
            }
            ThreadState::Sleeping if t.links.timeout_cpu().is_none() => {
                return Err(format!("thread {id:?} sleeps on no timeout list"));
            }
            _ => {}
        }
    }
    for (cpu, c) in k.cpus.iter().enumerate() {
        if let Some(owner) = c.fp_owner {
            let live = k.threads.get(owner).is_some_and(|t| t.is_alive());
            if c.current != Some(owner) || !live {
                return Err(format!(
                    "CPU {cpu}: FP owner {owner:?} ({}) is not the live thread it runs ({:?})",
                    if live { "alive" } else { "dead or gone" },
                    c.current
                ));
            }
        }
    }
    Ok(())
}
