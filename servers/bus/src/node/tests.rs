//! Whole links on the host: devices of one group pair, strangers and
//! replays get nothing, devices that leave are gone within 5 s.

use super::*;
use crate::wire::{Header, Kind, Target};
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

fn addr(n: u8) -> Addr {
    Addr::new(Ipv4Addr::new(169, 254, n, n), crate::wire::PORT)
}

fn info(name: &str) -> Announcement {
    Announcement {
        name: name.into(),
        profile: name.into(),
        shared: vec!["rtc".into()],
    }
}

fn key(text: &str) -> GroupKey {
    GroupKey::from_file(text.as_bytes()).unwrap()
}

/// Devices on one segment, and a recorder of every packet that crossed it.
struct Link {
    nodes: Vec<(Addr, Node, bool)>,
    wire: Vec<(Addr, Out)>,
    now: u64,
}

impl Link {
    fn new(nodes: Vec<(u8, Node)>) -> Link {
        crate::rng::seed([1; 32]);
        Link {
            nodes: nodes.into_iter().map(|(n, node)| (addr(n), node, true)).collect(),
            wire: Vec::new(),
            now: 0,
        }
    }

    /// Delivers `out` from `src` to whom it is for; their answers too.
    fn deliver(&mut self, src: Addr, out: Vec<Out>) {
        let mut queue: Vec<(Addr, Out)> = out.into_iter().map(|o| (src, o)).collect();
        while !queue.is_empty() {
            // In the order sent.
            let (from, o) = queue.remove(0);
            self.wire.push((from, o.clone()));
            for (a, node, up) in &mut self.nodes {
                if !*up || *a == from || o.to.is_some_and(|t| t != *a) {
                    continue;
                }
                let answers = node.receive(from, &mut o.bytes.clone(), self.now);
                queue.extend(answers.into_iter().map(|x| (*a, x)));
            }
        }
    }

    /// Runs the link for `us` in steps of 100 ms.
    fn run(&mut self, us: u64) {
        let end = self.now + us;
        while self.now < end {
            self.now += 100_000;
            for i in 0..self.nodes.len() {
                if !self.nodes[i].2 {
                    continue;
                }
                let now = self.now;
                let out = self.nodes[i].1.tick(now);
                let src = self.nodes[i].0;
                self.deliver(src, out);
            }
        }
    }

    fn names(&self, i: usize) -> Vec<String> {
        let mut v: Vec<String> = self.nodes[i].1.nearby().map(|p| p.info.name.clone()).collect();
        v.sort();
        v
    }
}

fn node(id: u64, name: &str, group: &str) -> Node {
    crate::rng::seed([id as u8; 32]);
    Node::new(id, info(name), Some(key(group)))
}

#[test]
fn a_group_pairs_within_seconds_and_sees_leaving() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "group one secret")),
        (2, node(20, "tv", "group one secret")),
        (3, node(30, "watch", "group one secret")),
    ]);
    l.run(1_500_000);
    assert_eq!(l.names(0), ["tv", "watch"]);
    assert_eq!(l.names(1), ["phone", "watch"]);
    assert_eq!(l.names(2), ["phone", "tv"]);
    let p = l.nodes[0].1.nearby().find(|p| p.info.name == "tv").unwrap();
    assert_eq!((p.addr, p.info.shared.clone()), (addr(2), vec![String::from("rtc")]));
    assert!(l.nodes[0].1.take_events().contains(&Event::Paired {
        name: "tv".into(),
        addr: addr(2)
    }));
    // Nothing was refused between friends.
    assert_eq!(l.nodes[1].1.refused, Refused::default());
    // The TV goes away: gone from both lists within 5 s, not sooner than
    // its announcements are missed.
    l.nodes[1].2 = false;
    l.run(2_000_000);
    assert_eq!(l.names(0), ["tv", "watch"]);
    l.run(3_000_000);
    assert_eq!(l.names(0), ["watch"]);
    assert_eq!(l.names(2), ["phone"]);
    assert!(l.nodes[0].1.take_events().contains(&Event::Left { name: "tv".into() }));
    // And it comes back (announcing on): a message 1 that came before its
    // announcement was refused, and is sent again after a second.
    l.nodes[1].2 = true;
    l.run(2_500_000);
    assert_eq!(l.names(0), ["tv", "watch"]);
}

#[test]
fn sessions_answer_pings() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "g-g-g-g-g-g-g-g-g")),
        (2, node(20, "tv", "g-g-g-g-g-g-g-g-g")),
    ]);
    l.run(1_000_000);
    assert_eq!(l.nodes[0].1.nearby().next().unwrap().rtt_us, None);
    // Both ping every 2 s; the link answers at once.
    l.run(3_000_000);
    assert_eq!(l.nodes[0].1.nearby().next().unwrap().rtt_us, Some(0));
    assert_eq!(l.nodes[1].1.nearby().next().unwrap().rtt_us, Some(0));
    let out = l.nodes[0].1.ping(20, l.now - 5_000).unwrap();
    l.deliver(addr(1), vec![out]);
    assert_eq!(l.nodes[0].1.nearby().next().unwrap().rtt_us, Some(5_000));
    assert!(l.nodes[0].1.ping(99, 0).is_none(), "no such device");
}

#[test]
fn another_group_sees_nothing_and_changes_nothing() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "our group key!!!")),
        (2, node(20, "tv", "our group key!!!")),
        (3, node(5, "intruder", "another group key")),
    ]);
    l.run(3_000_000);
    assert_eq!(l.names(0), ["tv"]);
    assert_eq!(l.names(1), ["phone"]);
    assert!(l.names(2).is_empty());
    assert!(l.nodes[0].1.refused.unsealed > 0);
    assert!(l.nodes[2].1.refused.unsealed > 0);
    // The intruder never got a handshake message from us: it is not
    // present for us, and its own messages were refused.
    let ours = [addr(1), addr(2)];
    assert!(!l
        .wire
        .iter()
        .any(|(from, o)| ours.contains(from) && o.to == Some(addr(3))));
}

#[test]
fn replayed_and_tampered_packets_get_nothing() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "the group secret")),
        (2, node(20, "tv", "the group secret")),
    ]);
    l.run(1_500_000);
    assert_eq!(l.names(0), ["tv"]);
    let recorded = l.wire.clone();
    let before = l.nodes[1].1.refused;
    // Everything the phone ever sent, played again to the TV by an
    // attacker (from its own address and from the phone's).
    let mut answers = 0;
    for (from, o) in recorded.iter().filter(|(f, _)| *f == addr(1)) {
        for src in [*from, addr(9)] {
            answers += l.nodes[1].1.receive(src, &mut o.bytes.clone(), l.now).len();
        }
    }
    let after = l.nodes[1].1.refused;
    assert!(after.replayed > before.replayed);
    // A replayed message 1 gets a message 2 (it costs the attacker
    // nothing and it cannot finish: see session tests) but no session
    // changes: the TV still lists the phone, at its own address.
    assert!(answers <= 2, "{answers} answers to replays");
    assert_eq!(l.names(1), ["phone"]);
    assert_eq!(l.nodes[1].1.nearby().next().unwrap().addr, addr(1));
    // Every byte of a fresh data message changed in turn: nothing opens.
    let out = l.nodes[0].1.ping(20, l.now).unwrap();
    for i in 0..out.bytes.len() {
        let mut bad = out.bytes.clone();
        bad[i] ^= 0x08;
        assert!(l.nodes[1].1.receive(addr(1), &mut bad, l.now).is_empty(), "byte {i}");
    }
    // The genuine one still does.
    assert_eq!(l.nodes[1].1.receive(addr(1), &mut out.bytes.clone(), l.now).len(), 1);
    // Garbage of every length.
    for n in 0..200 {
        assert!(l.nodes[1].1.receive(addr(9), &mut vec![n as u8; n], l.now).is_empty());
    }
    // A forged announcement under the right header but no key.
    let h = Header {
        kind: Kind::Announce,
        from: 77,
        to: 0,
        counter: 1_000,
    };
    assert!(l.nodes[1]
        .1
        .receive(addr(9), &mut h.with_body(&[0; 64]), l.now)
        .is_empty());
    assert_eq!(l.names(1), ["phone"]);
}

#[test]
fn an_old_announcement_does_not_bring_a_device_back() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "the group secret")),
        (2, node(20, "tv", "the group secret")),
    ]);
    l.run(1_500_000);
    let old: Vec<Vec<u8>> = l
        .wire
        .iter()
        .filter(|(f, o)| *f == addr(2) && o.to.is_none())
        .map(|(_, o)| o.bytes.clone())
        .collect();
    l.nodes[1].2 = false;
    l.run(5_000_000);
    assert!(l.names(0).is_empty());
    for b in &old {
        assert!(l.nodes[0].1.receive(addr(2), &mut b.clone(), l.now).is_empty());
    }
    l.run(500_000);
    assert!(l.names(0).is_empty());
}

fn tv_calls_phone(l: &mut Link, id: u64, target: &Target) -> Result<(), CallError> {
    let phone = l.nodes[0].1.me;
    let out = l.nodes[1].1.call(phone, id, target, 1, &[5, 6])?;
    let src = l.nodes[1].0;
    l.deliver(src, vec![out]);
    Ok(())
}

#[test]
fn remote_calls_are_carried_out_once_and_answered() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "group one secret")),
        (2, node(20, "tv", "group one secret")),
    ]);
    l.run(1_500_000);
    let (phone, tv) = (l.nodes[0].1.me, l.nodes[1].1.me);
    let rtc = Target::Service("rtc".into());
    // Pinging and announcing leave nothing for the task's threads (its
    // packet loop wakes them only when something waits).
    assert!(!l.nodes[0].1.has_calls() && !l.nodes[1].1.has_replies());
    tv_calls_phone(&mut l, 1, &rtc).unwrap();
    assert!(l.nodes[0].1.has_calls() && !l.nodes[0].1.has_replies());
    let calls = l.nodes[0].1.take_calls();
    assert!(!l.nodes[0].1.has_calls());
    assert_eq!(
        calls,
        [Incoming {
            peer: tv,
            id: 1,
            target: rtc.clone(),
            label: 1,
            words: vec![5, 6],
            object: None,
        }]
    );
    let answer = RemoteReply {
        label: 0,
        words: vec![1_795_000_000],
        handles: vec![3],
        closed: false,
        object: None,
    };
    let out = l.nodes[0].1.answer(tv, 1, answer.clone()).unwrap();
    // The answer is lost on the way: the TV sends the call again, and the
    // phone answers again without carrying it out again.
    assert_eq!(l.nodes[1].1.take_reply(phone, 1), None);
    drop(out);
    tv_calls_phone(&mut l, 1, &rtc).unwrap();
    assert!(l.nodes[0].1.take_calls().is_empty(), "a call is carried out once");
    assert!(l.nodes[1].1.has_replies() && !l.nodes[1].1.has_calls());
    assert_eq!(l.nodes[1].1.take_reply(phone, 1), Some(answer.clone()));
    assert!(!l.nodes[1].1.has_replies());
    assert_eq!(l.nodes[1].1.take_reply(phone, 1), None);
    // Calls to handles go through as they are (the task knows them).
    tv_calls_phone(&mut l, 2, &Target::Handle(3)).unwrap();
    assert_eq!(l.nodes[0].1.take_calls()[0].target, Target::Handle(3));
    // A reply to an older call, come late, is dropped with it.
    let late = l.nodes[0].1.answer(tv, 2, answer.clone()).unwrap();
    tv_calls_phone(&mut l, 3, &rtc).unwrap();
    let now_answer = l.nodes[0].1.answer(tv, 3, answer.clone()).unwrap();
    let src = l.nodes[0].0;
    l.deliver(src, vec![late, now_answer]);
    assert_eq!(l.nodes[1].1.take_reply(phone, 3), Some(answer));
    assert_eq!(l.nodes[1].1.take_reply(phone, 2), None);
    assert_eq!(l.nodes[0].1.refused, Refused::default());
}

#[test]
fn a_service_not_shared_is_refused_by_both_sides() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "group one secret")),
        (2, node(20, "tv", "group one secret")),
    ]);
    l.run(1_500_000);
    let phone = l.nodes[0].1.me;
    let fs = Target::Service("fs".into());
    // The caller knows from the announcement: not even sent.
    assert_eq!(tv_calls_phone(&mut l, 1, &fs), Err(CallError::NotShared));
    // A caller that believes otherwise (or lies) is refused by the callee,
    // which hands the call to no one.
    let p = l.nodes[1].1.peers.iter_mut().find(|p| p.id == phone).unwrap();
    p.info.shared.push("fs".into());
    tv_calls_phone(&mut l, 1, &fs).unwrap();
    assert!(l.nodes[0].1.take_calls().is_empty());
    assert_eq!(l.nodes[0].1.refused.unshared, 1);
    let r = l.nodes[1].1.take_reply(phone, 1).unwrap();
    assert_eq!(
        (r.label, r.words),
        (userlib::proto::FAILED, vec![userlib::abi::Error::NoRights as u64])
    );
}

#[test]
fn calls_to_a_device_that_left_fail() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "group one secret")),
        (2, node(20, "tv", "group one secret")),
    ]);
    l.run(1_500_000);
    let phone = l.nodes[0].1.me;
    assert!(l.nodes[1].1.is_paired(phone));
    assert_eq!(l.nodes[1].1.paired("phone").map(|p| p.id), Some(phone));
    l.nodes[0].2 = false;
    l.run(5_000_000);
    assert!(!l.nodes[1].1.is_paired(phone));
    assert_eq!(
        tv_calls_phone(&mut l, 1, &Target::Service("rtc".into())),
        Err(CallError::NotNearby)
    );
    // It comes back (a new session): calls go through again, numbered on.
    l.nodes[0].2 = true;
    l.run(2_500_000);
    tv_calls_phone(&mut l, 2, &Target::Service("rtc".into())).unwrap();
    assert_eq!(l.nodes[0].1.take_calls().len(), 1);
}

#[test]
fn calls_before_key_confirmation_and_floods_are_bounded() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "group one secret")),
        (2, node(20, "tv", "group one secret")),
    ]);
    l.run(1_500_000);
    // More calls than the queue holds: the rest are dropped, and taken
    // when sent again.
    for id in 1..=(MAX_QUEUED as u64 + 4) {
        tv_calls_phone(&mut l, id, &Target::Handle(1)).unwrap();
    }
    assert_eq!(l.nodes[0].1.take_calls().len(), MAX_QUEUED);
    tv_calls_phone(&mut l, MAX_QUEUED as u64 + 1, &Target::Handle(1)).unwrap();
    assert_eq!(l.nodes[0].1.take_calls().len(), 1);
}

/// A device with no group key: it pairs by code only.
fn lone(id: u64, name: &str) -> Node {
    crate::rng::seed([id as u8; 32]);
    Node::new(id, info(name), None)
}

/// The phone (node 0) shows a code, the TV (node 1) types `typed` (the
/// code itself if `None`); the link runs `us`.
fn pair_by_code(l: &mut Link, typed: Option<u32>, us: u64) -> u32 {
    let now = l.now;
    let code = l.nodes[0].1.show_code(now);
    l.nodes[1].1.join("phone", typed.unwrap_or(code), now);
    l.run(us);
    code
}

#[test]
fn devices_without_a_group_pair_by_code_and_call() {
    let mut l = Link::new(vec![(1, lone(10, "phone")), (2, lone(20, "tv"))]);
    l.run(2_000_000);
    assert!(l.names(0).is_empty() && l.names(1).is_empty(), "no trust, no pairing");
    pair_by_code(&mut l, None, 2_000_000);
    assert_eq!(l.names(0), ["tv"]);
    assert_eq!(l.names(1), ["phone"]);
    assert_eq!(l.nodes[0].1.pairing(), PairState::Paired { peer: 20 });
    assert_eq!(l.nodes[1].1.pairing(), PairState::Paired { peer: 10 });
    assert_eq!(l.nodes[1].1.paired_by_code().collect::<Vec<_>>(), [10]);
    // The pinned static keys are the ones the sessions showed.
    let tv_static = public(&l.nodes[1].1.stat);
    assert_eq!(l.nodes[0].1.nearby().next().unwrap().pinned, Some(tv_static));
    // A remote call goes through.
    tv_calls_phone(&mut l, 1, &Target::Service("rtc".into())).unwrap();
    assert_eq!(l.nodes[0].1.take_calls().len(), 1);
    // Nothing refused but, maybe, a message 1 that came before the
    // pairing's first announcement (it is sent again).
    for n in 0..2 {
        let r = l.nodes[n].1.refused;
        assert_eq!((r.unsealed, r.replayed, r.handshake, r.pairing), (0, 0, 0, 0), "{r:?}");
    }
    // No offer once the code is used; the pair's announcements go to each
    // other only, sealed: a third device without the pairing sees nothing.
    let since = l.wire.len();
    l.run(2_000_000);
    assert!(!l.wire[since..].iter().any(|(_, o)| o.bytes[3] == Kind::Offer as u8));
    assert!(l.wire[since..]
        .iter()
        .all(|(_, o)| !o.bytes.windows(5).any(|w| w == b"phone")));
    assert_eq!(l.names(0), ["tv"]);
}

#[test]
fn a_wrong_code_is_refused_and_uses_the_code_up() {
    let mut l = Link::new(vec![(1, lone(10, "phone")), (2, lone(20, "tv"))]);
    l.run(1_000_000);
    let code = pair_by_code(&mut l, Some(999_999), 1_000_000);
    let code = if code == 999_999 { 0 } else { code };
    assert_eq!(l.nodes[1].1.pairing(), PairState::Failed(Failure::WrongCode));
    assert!(l.names(1).is_empty());
    // The right code now: the phone no longer offers it, and answers no
    // start for it.
    let now = l.now;
    l.nodes[1].1.join("phone", code, now);
    l.run(11_000_000);
    assert_eq!(l.nodes[1].1.pairing(), PairState::Failed(Failure::NoOffer));
    assert_eq!(l.nodes[0].1.pairing(), PairState::Failed(Failure::NotConfirmed));
    assert!(l.names(0).is_empty() && l.names(1).is_empty());
    // A new code pairs them.
    pair_by_code(&mut l, None, 2_000_000);
    assert_eq!(l.names(1), ["phone"]);
}

#[test]
fn a_hostile_peer_gets_nothing_from_pairing_and_changes_nothing() {
    let mut l = Link::new(vec![
        (1, lone(10, "phone")),
        (2, lone(20, "tv")),
        (3, lone(5, "intruder")),
    ]);
    l.run(1_000_000);
    pair_by_code(&mut l, None, 2_000_000);
    assert_eq!(l.names(0), ["tv"]);
    assert!(l.names(2).is_empty());
    let recorded = l.wire.clone();
    let before = (l.nodes[0].1.refused, l.nodes[1].1.refused);
    // Every pairing packet replayed, as it was and changed, to both, from
    // the intruder's address and from the sender's.
    let pairing = |o: &Out| (Kind::Offer as u8..=Kind::PairConfirm as u8).contains(&o.bytes[3]);
    let mut answers = 0;
    for (from, o) in recorded.iter().filter(|(_, o)| pairing(o)) {
        for i in [None, Some(3), Some(30), Some(o.bytes.len() - 1)] {
            let mut b = o.bytes.clone();
            if let Some(i) = i {
                b[i] ^= 0x10;
            }
            for n in 0..2 {
                for src in [*from, addr(3)] {
                    answers += l.nodes[n].1.receive(src, &mut b.clone(), l.now).len();
                }
            }
        }
    }
    // Nothing is answered (the code is used up: no start is taken) but a
    // replayed pair reply, which the TV answers with its confirmation
    // again (it proves nothing new).
    assert!(answers <= 8, "{answers} answers");
    assert!(l.nodes[0].1.refused.pairing > before.0.pairing);
    assert_eq!(l.nodes[0].1.paired_by_code().collect::<Vec<_>>(), [20]);
    assert_eq!(l.nodes[1].1.paired_by_code().collect::<Vec<_>>(), [10]);
    l.run(2_000_000);
    assert_eq!(l.names(0), ["tv"]);
    assert_eq!(l.names(1), ["phone"]);
    // The intruder offers a code under the phone's name to a TV joining
    // again: it gets one guess, which fails, and the TV keeps its pairing.
    let now = l.now;
    l.nodes[2].1.info.name = "phone".into();
    l.nodes[2].1.show_code(now);
    l.nodes[1].1.join("phone", 123_456, now);
    l.run(2_000_000);
    assert_ne!(l.nodes[1].1.pairing(), PairState::Paired { peer: 5 });
    assert_eq!(l.nodes[1].1.paired_by_code().collect::<Vec<_>>(), [10]);
    assert_eq!(l.names(1), ["phone"]);
    assert!(l.names(2).is_empty());
}

#[test]
fn a_group_device_and_a_code_pairing_live_together() {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "group one secret")),
        (2, lone(20, "tv")),
        (3, node(30, "watch", "group one secret")),
    ]);
    l.run(1_500_000);
    assert_eq!(l.names(0), ["watch"]);
    pair_by_code(&mut l, None, 2_000_000);
    assert_eq!(l.names(0), ["tv", "watch"]);
    assert_eq!(l.names(1), ["phone"]);
    assert_eq!(l.names(2), ["phone"]);
    let pinned = |l: &Link, n: usize, name: &str| l.nodes[n].1.nearby().find(|p| p.info.name == name).unwrap().pinned;
    assert_eq!(pinned(&l, 0, "watch"), None);
    // The phone and the watch, of one group, pair by code too: their
    // session starts again under the pairing, with pinned keys.
    let (now, code) = (l.now, l.nodes[0].1.show_code(l.now));
    l.nodes[2].1.join("phone", code, now);
    l.run(3_000_000);
    assert_eq!(l.names(0), ["tv", "watch"]);
    assert_eq!(l.names(2), ["phone"]);
    assert_eq!(pinned(&l, 0, "watch"), Some(public(&l.nodes[2].1.stat)));
    assert_eq!(pinned(&l, 2, "phone"), Some(public(&l.nodes[0].1.stat)));
    let psk = l.nodes[0]
        .1
        .pairs
        .iter()
        .find(|k| k.pairing.peer == 30)
        .unwrap()
        .pairing
        .key
        .psk();
    assert_ne!(Some(psk), l.nodes[0].1.key.as_ref().map(|k| k.psk()));
    assert_eq!(l.nodes[0].1.peers.iter().find(|p| p.id == 30).unwrap().psk, psk);
}

#[test]
fn a_pinned_key_is_required() {
    let mut l = Link::new(vec![(1, lone(10, "phone")), (2, lone(20, "tv"))]);
    l.run(1_000_000);
    pair_by_code(&mut l, None, 2_000_000);
    assert_eq!(l.names(0), ["tv"]);
    // The TV's bus restarts with the same id and pairing but another
    // static key (as an impostor holding the secret would): no session.
    l.nodes[1].1.stat = crate::session::static_key();
    for n in 0..2 {
        for p in l.nodes[n].1.peers.iter_mut() {
            p.up = None;
            p.pending = None;
        }
    }
    let before = l.nodes[0].1.refused.handshake + l.nodes[1].1.refused.handshake;
    l.run(3_000_000);
    assert!(l.names(0).is_empty() && l.names(1).is_empty());
    assert!(l.nodes[0].1.refused.handshake + l.nodes[1].1.refused.handshake > before);
}

// ---- memory objects, copied across in fragments ----

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31) ^ (i >> 8) as u8 ^ seed)
        .collect()
}

/// Delivers `out` from `src` as [`Link::deliver`] does, each packet on the
/// wire going through `mangle` first (which may drop it, send it twice,
/// hold it back, or change it).
fn deliver_mangled(l: &mut Link, src: Addr, out: Vec<Out>, mangle: &mut dyn FnMut(Out) -> Vec<Out>) {
    let mut queue: Vec<(Addr, Out)> = out.into_iter().map(|o| (src, o)).collect();
    while !queue.is_empty() {
        let (from, o) = queue.remove(0);
        for o in mangle(o) {
            l.wire.push((from, o.clone()));
            for (a, node, up) in &mut l.nodes {
                if !*up || *a == from || o.to.is_some_and(|t| t != *a) {
                    continue;
                }
                let answers = node.receive(from, &mut o.bytes.clone(), l.now);
                queue.extend(answers.into_iter().map(|x| (*a, x)));
            }
        }
    }
}

/// Runs the link for `us` (100 ms steps) through `mangle`.
fn run_mangled(l: &mut Link, us: u64, mangle: &mut dyn FnMut(Out) -> Vec<Out>) {
    let end = l.now + us;
    while l.now < end {
        l.now += 100_000;
        for i in 0..l.nodes.len() {
            let now = l.now;
            let out = l.nodes[i].1.tick(now);
            let src = l.nodes[i].0;
            deliver_mangled(l, src, out, mangle);
        }
    }
}

fn paired_pair() -> Link {
    let mut l = Link::new(vec![
        (1, node(10, "phone", "group one secret")),
        (2, node(20, "tv", "group one secret")),
    ]);
    l.run(1_500_000);
    assert_eq!(l.names(1), ["phone"]);
    l
}

/// The TV calls the phone (`id`) with `object`, the phone answers with
/// `answer`, through `mangle`, the TV sending its call again every 500 ms
/// (as its proxy does): the call the phone carried out and the reply the
/// TV got, within `us`.
fn exchange(
    l: &mut Link,
    id: u64,
    object: Option<Vec<u8>>,
    answer: Option<Vec<u8>>,
    us: u64,
    mangle: &mut dyn FnMut(Out) -> Vec<Out>,
) -> (Option<Incoming>, Option<RemoteReply>) {
    let (phone, tv) = (l.nodes[0].1.me, l.nodes[1].1.me);
    let rtc = Target::Service("rtc".into());
    let (mut call, mut reply) = (None, None);
    let start = l.now;
    let mut sent = 0;
    while l.now - start < us && reply.is_none() {
        if l.now == start || l.now - sent >= 500_000 {
            sent = l.now;
            let out = l.nodes[1]
                .1
                .call_object(phone, id, &rtc, 1, &[9], object.as_deref())
                .unwrap();
            let src = l.nodes[1].0;
            deliver_mangled(l, src, vec![out], mangle);
        }
        if let Some(c) = l.nodes[0].1.take_calls().pop() {
            assert!(call.is_none(), "a call is carried out once");
            let r = RemoteReply {
                label: 0,
                words: vec![c.object.as_ref().map_or(0, |o| o.len() as u64)],
                handles: vec![],
                closed: false,
                object: answer.clone(),
            };
            call = Some(c);
            let out = l.nodes[0].1.answer(tv, id, r).into_iter().collect();
            let src = l.nodes[0].0;
            deliver_mangled(l, src, out, mangle);
        }
        reply = l.nodes[1].1.take_reply(phone, id);
        if reply.is_none() {
            run_mangled(l, 100_000, mangle);
            reply = l.nodes[1].1.take_reply(phone, id);
        }
    }
    (call, reply)
}

fn is_data(o: &Out) -> bool {
    Header::parse(&o.bytes).is_some_and(|(h, _)| h.kind == Kind::Data)
}

#[test]
fn memory_objects_are_copied_across_both_ways() {
    let mut l = paired_pair();
    let sent = bytes(10_000, 1);
    let back = bytes(MAX_OBJECT, 2);
    let before = l.wire.len();
    let (call, reply) = exchange(&mut l, 1, Some(sent.clone()), Some(back.clone()), 400_000, &mut |o| {
        vec![o]
    });
    let call = call.expect("the call came");
    assert_eq!(call.object.as_deref(), Some(&sent[..]));
    assert_eq!(call.words, [9]);
    let reply = reply.expect("the reply came");
    assert_eq!(reply.object.as_deref(), Some(&back[..]));
    assert_eq!(reply.words, [10_000]);
    // The fragments, and about one pull for every two of them.
    let packets = l.wire.len() - before;
    let frags = crate::wire::fragments(10_000) + crate::wire::fragments(MAX_OBJECT);
    assert!(
        packets >= frags && packets <= frags * 2,
        "{packets} packets for {frags} fragments"
    );
    // Objects of no bytes, and calls without one, still go through.
    let (call, reply) = exchange(&mut l, 2, Some(vec![]), None, 400_000, &mut |o| vec![o]);
    assert_eq!(call.unwrap().object, Some(vec![]));
    assert_eq!(reply.unwrap().object, None);
    let (call, reply) = exchange(&mut l, 3, None, Some(vec![7; 5]), 400_000, &mut |o| vec![o]);
    assert_eq!(call.unwrap().object, None);
    assert_eq!(reply.unwrap().object, Some(vec![7; 5]));
    assert_eq!(l.nodes[0].1.refused, Refused::default());
    assert_eq!(l.nodes[1].1.refused, Refused::default());
}

#[test]
fn lost_duplicated_reordered_and_tampered_fragments_do_not_wedge() {
    let mut l = paired_pair();
    let sent = bytes(30_000, 3);
    let back = bytes(MAX_OBJECT, 4);
    let mut n = 0u64;
    let mut held: Option<Out> = None;
    let mut mangle = |o: Out| -> Vec<Out> {
        if !is_data(&o) {
            return vec![o];
        }
        n += 1;
        let mut out = Vec::new();
        match n % 23 {
            // Lost.
            3 | 11 | 17 => {}
            // Sent twice.
            5 | 13 => out.extend([o.clone(), o]),
            // Held back behind the next one.
            7 | 19 => held = Some(o),
            // Changed on the way (and the real one lost).
            9 => {
                let mut bad = o;
                let last = bad.bytes.len() - 1;
                bad.bytes[last] ^= 0x40;
                out.push(bad);
            }
            _ => out.push(o),
        }
        if n % 23 != 7 && n % 23 != 19 {
            out.extend(held.take());
        }
        out
    };
    let (call, reply) = exchange(
        &mut l,
        1,
        Some(sent.clone()),
        Some(back.clone()),
        10_000_000,
        &mut mangle,
    );
    assert_eq!(call.expect("the call came").object.as_deref(), Some(&sent[..]));
    assert_eq!(reply.expect("the reply came").object.as_deref(), Some(&back[..]));
    // The changed ones opened nowhere; the duplicates counted as replays.
    assert!(l.nodes[0].1.refused.replayed + l.nodes[1].1.refused.replayed > 0);
    assert_eq!(l.nodes[0].1.refused.malformed + l.nodes[1].1.refused.malformed, 0);
    // And the session goes on: the next exchange, on a clean link.
    let (_, reply) = exchange(&mut l, 2, None, Some(vec![1; 3000]), 400_000, &mut |o| vec![o]);
    assert_eq!(reply.unwrap().object, Some(vec![1; 3000]));
}

#[test]
fn a_lost_reply_is_pulled_again_and_a_dead_link_drops_the_reassembly() {
    let mut l = paired_pair();
    // Every data packet lost after the call's header for a while: the
    // callee's reassembly stalls, asks again, then is dropped, and holds
    // nothing.
    let mut cut = false;
    let mut mangle = |o: Out| -> Vec<Out> {
        if is_data(&o) && cut {
            return vec![];
        }
        if is_data(&o) {
            cut = true;
        }
        vec![o]
    };
    let (call, reply) = exchange(&mut l, 1, Some(bytes(20_000, 5)), None, 300_000, &mut mangle);
    assert!(call.is_none() && reply.is_none());
    assert_eq!(l.nodes[0].1.assemblies(), 1);
    // (Pings are lost too: keep the session for this test by running
    // less than it takes to leave; announcements still pass.)
    run_mangled(&mut l, ASSEMBLY_TIMEOUT_US + 200_000, &mut mangle);
    assert_eq!(l.nodes[0].1.assemblies(), 0, "dropped once stalled");
    assert!(l.nodes[0].1.take_calls().is_empty());
}

#[test]
fn oversize_objects_are_refused() {
    let mut l = paired_pair();
    let (phone, tv) = (l.nodes[0].1.me, l.nodes[1].1.me);
    let big = vec![0u8; MAX_OBJECT + 1];
    let rtc = Target::Service("rtc".into());
    assert_eq!(
        l.nodes[1].1.call_object(phone, 1, &rtc, 1, &[], Some(&big)),
        Err(CallError::TooLarge)
    );
    // A reply with one is a refusal.
    let out = l.nodes[1].1.call(phone, 2, &rtc, 1, &[]).unwrap();
    let src = l.nodes[1].0;
    l.deliver(src, vec![out]);
    assert_eq!(l.nodes[0].1.take_calls().len(), 1);
    let r = RemoteReply {
        label: 0,
        words: vec![],
        handles: vec![],
        closed: false,
        object: Some(big),
    };
    let out = l.nodes[0].1.answer(tv, 2, r).unwrap();
    let src = l.nodes[0].0;
    l.deliver(src, vec![out]);
    assert_eq!(
        l.nodes[1].1.take_reply(phone, 2),
        Some(refusal(userlib::abi::Error::OutOfMemory))
    );
    // A header announcing one does not decode (the wire's bound).
    let i = l.nodes[1].1.peers.iter().position(|p| p.id == phone).unwrap();
    let bad = SessionMsg::Call {
        id: 3,
        target: rtc,
        label: 1,
        words: vec![],
        object: Some(MAX_OBJECT as u32 + 1),
    };
    let out = l.nodes[1].1.data(i, &bad).unwrap();
    l.deliver(src_of(&l, 1), vec![out]);
    assert_eq!(l.nodes[0].1.refused.malformed, 1);
    assert_eq!(l.nodes[0].1.assemblies(), 0);
    assert!(l.nodes[0].1.take_calls().is_empty());
}

fn src_of(l: &Link, n: usize) -> Addr {
    l.nodes[n].0
}

#[test]
fn a_hostile_peer_gets_nothing_from_fragments_and_changes_nothing() {
    let mut l = paired_pair();
    let phone = l.nodes[0].1.me;
    let i = l.nodes[1].1.peers.iter().position(|p| p.id == phone).unwrap();
    let send = |l: &mut Link, m: SessionMsg| -> usize {
        let out = l.nodes[1].1.data(i, &m).unwrap();
        let before = l.wire.len();
        l.deliver(src_of(l, 1), vec![out]);
        l.wire.len() - before - 1
    };
    let chunk = |id, reply, index, n| SessionMsg::Chunk {
        id,
        reply,
        index,
        bytes: vec![0xee; n],
    };
    // Fragments of no call and of no reply: nothing.
    assert_eq!(send(&mut l, chunk(7, false, 0, 100)), 0);
    assert_eq!(send(&mut l, chunk(7, true, 0, 100)), 0);
    // Pulls of objects it does not hold: nothing.
    for reply in [false, true] {
        let pull = SessionMsg::Pull {
            id: 1,
            reply,
            first: 0,
            count: crate::wire::MAX_PULL,
        };
        assert_eq!(send(&mut l, pull), 0);
    }
    assert_eq!(l.nodes[0].1.refused.malformed, 2);
    // A call with a 3000-byte object: the phone asks for its fragments.
    let header = |id| SessionMsg::Call {
        id,
        target: Target::Service("rtc".into()),
        label: 1,
        words: vec![],
        object: Some(3000),
    };
    assert_eq!(send(&mut l, header(1)), 1, "a pull");
    // Past the object's size, too long, too short: dropped.
    assert_eq!(send(&mut l, chunk(1, false, 3, FRAGMENT)), 0);
    assert_eq!(send(&mut l, chunk(1, false, 2, 3000 - 2 * FRAGMENT + 1)), 0);
    assert_eq!(send(&mut l, chunk(1, false, 0, FRAGMENT - 1)), 0);
    assert_eq!(l.nodes[0].1.refused.malformed, 5);
    assert!(l.nodes[0].1.take_calls().is_empty());
    // Many calls with objects: one reassembly per device at a time.
    for id in 2..50 {
        send(&mut l, header(id));
        assert_eq!(l.nodes[0].1.assemblies(), 1);
    }
    // The right fragments complete the last one.
    for (index, n) in [(0, FRAGMENT), (1, FRAGMENT), (2, 3000 - 2 * FRAGMENT)] {
        send(&mut l, chunk(49, false, index, n));
    }
    let calls = l.nodes[0].1.take_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, 49);
    assert_eq!(calls[0].object, Some(vec![0xee; 3000]));
    assert_eq!(l.nodes[0].1.assemblies(), 0);
    // An unshared service's call with an object is refused at once, and
    // nothing is received.
    let unshared = SessionMsg::Call {
        id: 60,
        target: Target::Service("fs".into()),
        label: 1,
        words: vec![],
        object: Some(3000),
    };
    assert_eq!(send(&mut l, unshared), 1, "the refusal");
    assert_eq!(l.nodes[0].1.assemblies(), 0);
    assert_eq!(l.nodes[0].1.refused.unshared, 1);
}

#[test]
fn session_messages_keep_a_device_present_when_its_announcements_are_late() {
    let mut l = paired_pair();
    // The phone's announcements are lost (as when it is too busy sending
    // an object to announce on time): its pings still show it is there.
    let phone = l.nodes[0].1.me;
    let mut mangle = |o: Out| -> Vec<Out> {
        let announce = Header::parse(&o.bytes).is_some_and(|(h, _)| h.kind == Kind::Announce && h.from == phone);
        if announce {
            vec![]
        } else {
            vec![o]
        }
    };
    run_mangled(&mut l, 8_000_000, &mut mangle);
    assert_eq!(l.names(1), ["phone"]);
    // Without announcements or session messages it leaves.
    l.nodes[0].2 = false;
    l.run(5_000_000);
    assert!(l.names(1).is_empty());
}

/// The phone (node 0) restarts: a new node with a new id, from what it
/// had stored (as the task reads it back from the file), or from nothing.
fn restart_phone(l: &mut Link, id: u64, stored: Option<&[u8]>) {
    let mut n = lone(id, "phone");
    if let Some(bytes) = stored {
        n.restore(&crate::store::Stored::decode(bytes).unwrap());
    }
    l.nodes[0].1 = n;
}

#[test]
fn a_stored_pairing_outlives_a_restart() {
    let mut l = Link::new(vec![(1, lone(10, "phone")), (2, lone(20, "tv"))]);
    l.run(1_000_000);
    pair_by_code(&mut l, None, 2_000_000);
    assert_eq!(l.names(1), ["phone"]);
    // The pairing is to be written, with the TV's name once its
    // announcement came; then nothing more changes.
    assert!(l.nodes[0].1.take_pairings_changed());
    assert_eq!(
        l.nodes[0].1.pairings().map(|(name, _, _)| name).collect::<Vec<_>>(),
        ["tv"]
    );
    assert!(!l.nodes[0].1.take_pairings_changed());
    let file = l.nodes[0].1.stored().encode();
    let tv_static = public(&l.nodes[1].1.stat);
    let phone_static = public(&l.nodes[0].1.stat);
    // The phone reboots: a new id, its key and pairing read back. The TV
    // (whose bus did not restart) sees the old id leave and the new one
    // come, under the same pinned key: no pairing by code again.
    restart_phone(&mut l, 11, Some(&file));
    assert_eq!(public(&l.nodes[0].1.stat), phone_static);
    l.run(6_000_000);
    assert_eq!(l.names(0), ["tv"]);
    assert_eq!(l.names(1), ["phone"]);
    assert_eq!(l.nodes[1].1.paired_by_code().collect::<Vec<_>>(), [11]);
    // Where pairing stands names the device under its new id.
    assert_eq!(l.nodes[1].1.pairing(), PairState::Paired { peer: 11 });
    assert_eq!(l.nodes[0].1.nearby().next().unwrap().pinned, Some(tv_static));
    tv_calls_phone(&mut l, 1, &Target::Service("rtc".into())).unwrap();
    assert_eq!(l.nodes[0].1.take_calls().len(), 1);
    // Only the new id's session is up on the TV; its name, known, changed
    // nothing to store.
    assert_eq!(l.nodes[1].1.nearby().count(), 1);
    assert!(!l.nodes[0].1.take_pairings_changed());
    assert_eq!(l.nodes[1].1.refused.handshake, 0);
    // Without the file (a device without storage, or a fresh disk), the
    // phone has a new static key and no pairing: the TV refuses it, and
    // the phone lists no one.
    restart_phone(&mut l, 12, None);
    l.run(6_000_000);
    assert!(l.names(0).is_empty() && l.names(1).is_empty());
}

#[test]
fn a_replayed_announcement_of_an_old_id_rebinds_nothing() {
    let mut l = Link::new(vec![(1, lone(10, "phone")), (2, lone(20, "tv"))]);
    l.run(1_000_000);
    pair_by_code(&mut l, None, 2_000_000);
    let file = l.nodes[0].1.stored().encode();
    // The phone's last announcement to the TV under its old id.
    let old = l
        .wire
        .iter()
        .rev()
        .find(|(a, o)| *a == addr(1) && o.bytes[3] == Kind::Announce as u8 && o.to == Some(addr(2)))
        .unwrap()
        .1
        .clone();
    restart_phone(&mut l, 11, Some(&file));
    l.run(6_000_000);
    assert_eq!(l.nodes[1].1.paired_by_code().collect::<Vec<_>>(), [11]);
    let replayed = l.nodes[1].1.refused.replayed;
    l.deliver(addr(3), vec![old]);
    assert_eq!(l.nodes[1].1.refused.replayed, replayed + 1);
    assert_eq!(l.nodes[1].1.paired_by_code().collect::<Vec<_>>(), [11]);
    assert_eq!(l.names(1), ["phone"]);
}

#[test]
fn a_forgotten_pairing_ends_and_is_not_stored() {
    let mut l = Link::new(vec![(1, lone(10, "phone")), (2, lone(20, "tv"))]);
    l.run(1_000_000);
    pair_by_code(&mut l, None, 2_000_000);
    assert!(l.nodes[0].1.take_pairings_changed());
    assert!(!l.nodes[0].1.forget("watch"));
    assert!(l.nodes[0].1.forget("tv"));
    assert!(l.nodes[0].1.take_pairings_changed());
    assert!(l.nodes[0].1.take_events().contains(&Event::Left { name: "tv".into() }));
    assert!(l.nodes[0].1.stored().pairings.is_empty());
    l.run(6_000_000);
    // The TV still has its side; the phone takes nothing of it.
    assert!(l.names(0).is_empty() && l.names(1).is_empty());
    assert!(l.nodes[0].1.refused.unsealed > 0);
}

/// Every pairing is listed with its key's fingerprint, and forgotten by
/// it: one whose device's name is not known yet (kept from an earlier
/// start, never heard from since; or just made) has nothing else.
#[test]
fn a_pairing_without_a_name_is_listed_and_forgotten_by_its_key() {
    let mut l = Link::new(vec![(1, lone(10, "phone")), (2, lone(20, "tv"))]);
    l.run(1_000_000);
    pair_by_code(&mut l, None, 2_000_000);
    let tv_static = public(&l.nodes[1].1.stat);
    let tv_key = crate::keys::fingerprint(&tv_static);
    assert_eq!(l.nodes[0].1.pairings().collect::<Vec<_>>(), [("tv", tv_key, true)]);
    // The phone starts again with its file, in which the TV's name was
    // not known yet, beside a second nameless pairing.
    let mut kept = l.nodes[0].1.stored();
    kept.pairings[0].name.clear();
    let mut other = kept.pairings[0].clone();
    other.peer_static = [7; 32];
    kept.pairings.push(other);
    let other_key = crate::keys::fingerprint(&[7; 32]);
    let mut phone = lone(11, "phone");
    phone.restore(&kept);
    assert_eq!(
        phone.pairings().collect::<Vec<_>>(),
        [("", tv_key, false), ("", other_key, false)]
    );
    // Not by a name (there is none), nor by a fingerprint of no pairing.
    assert!(!phone.forget(""));
    assert!(!phone.forget(&userlib::services::bus::show_key(tv_key ^ 1)));
    assert!(phone.forget(&userlib::services::bus::show_key(other_key).to_uppercase()));
    assert!(phone.take_pairings_changed());
    assert_eq!(phone.pairings().collect::<Vec<_>>(), [("", tv_key, false)]);
    assert_eq!(phone.stored().pairings.len(), 1);
    assert_eq!(phone.stored().pairings[0].peer_static, tv_static);
    // The named one on the first phone, by its key too.
    assert!(l.nodes[0].1.forget(&userlib::services::bus::show_key(tv_key)));
    assert_eq!(l.nodes[0].1.pairings().count(), 0);
    assert!(l.nodes[0].1.take_events().contains(&Event::Left { name: "tv".into() }));
}

#[test]
fn a_pull_is_answered_one_fragment_at_a_time_and_owed_pulls_are_bounded() {
    let mut l = paired_pair();
    let phone = l.nodes[0].1.me;
    let (phone_at, tv_at) = (l.nodes[0].0, l.nodes[1].0);
    let sent = bytes(30_000, 5);
    let rtc = Target::Service("rtc".into());
    let call = l.nodes[1].1.call_object(phone, 1, &rtc, 1, &[9], Some(&sent)).unwrap();
    // The phone takes the call's header and pulls the first window.
    let pull = l.nodes[0].1.receive_owing(tv_at, &mut call.bytes.clone(), l.now);
    assert_eq!(pull.len(), 1);
    // The TV owes those fragments; none is sealed until asked for.
    assert!(l.nodes[1]
        .1
        .receive_owing(phone_at, &mut pull[0].bytes.clone(), l.now)
        .is_empty());
    // The phone asks again (no fragment came for REPULL_US), more times
    // than pulls are kept.
    for _ in 0..MAX_OWED + 2 {
        l.now += REPULL_US;
        let again: Vec<Out> = l.nodes[0].1.tick(l.now).into_iter().filter(is_data).collect();
        assert_eq!(again.len(), 1);
        assert!(l.nodes[1]
            .1
            .receive_owing(phone_at, &mut again[0].bytes.clone(), l.now)
            .is_empty());
    }
    // One fragment at a time: the newest MAX_OWED pulls' windows, each
    // taken by the phone (the first window in whole; the rest are
    // duplicates, ignored).
    let mut frags = 0;
    while let Some(f) = l.nodes[1].1.next_fragment() {
        frags += 1;
        l.nodes[0].1.receive_owing(tv_at, &mut f.bytes.clone(), l.now);
    }
    assert_eq!(frags, MAX_OWED * PULL_WINDOW as usize);
    assert!(l.nodes[1].1.next_fragment().is_none());
    // The rest of the object flows as usual, and the call is whole.
    let (call, reply) = exchange(&mut l, 1, Some(sent.clone()), None, 2_000_000, &mut |o| vec![o]);
    assert_eq!(call.expect("the call came").object.as_deref(), Some(&sent[..]));
    assert!(reply.is_some());
    assert_eq!(l.nodes[0].1.refused, Refused::default());
    assert_eq!(l.nodes[1].1.refused, Refused::default());
}
