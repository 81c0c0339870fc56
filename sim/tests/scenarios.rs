//! Scenarios on a five-device mesh with exact clocks and no background faults: each fault
//! by itself, and what every device must show after it.

use std::time::Duration;

use cnspr_proto::membership::MemberState;
use cnspr_sim::faults::{Fault, FaultPlan};
use cnspr_sim::world::{SimConfig, World};

const NODES: usize = 5;

fn mesh(seed: u64) -> World {
    let config = SimConfig {
        plan: FaultPlan::None,
        ..SimConfig::new(NODES, seed, Duration::from_secs(3600))
    };
    let mut world = World::new(config).expect("valid configuration");
    world.start_all();
    world.run_until(Duration::from_secs(10));
    assert_all_see_each_other(&world, &[]);
    world
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Whether every device shows every other one active.
fn all_active(world: &World) -> bool {
    (0..NODES).all(|o| (0..NODES).all(|t| o == t || world.view(o, t) == Some(MemberState::Active)))
}

/// Every running device outside `except` shows every other one outside `except` active.
fn assert_all_see_each_other(world: &World, except: &[usize]) {
    for observer in (0..NODES).filter(|n| !except.contains(n)) {
        for target in (0..NODES).filter(|n| *n != observer && !except.contains(n)) {
            assert_eq!(
                world.view(observer, target),
                Some(MemberState::Active),
                "t={:?}: device {observer} on device {target}",
                world.elapsed()
            );
        }
    }
}

fn assert_all_show(world: &World, target: usize, state: MemberState) {
    for observer in (0..NODES).filter(|n| *n != target) {
        assert_eq!(
            world.view(observer, target),
            Some(state),
            "t={:?}: device {observer} on device {target}",
            world.elapsed()
        );
    }
}

/// Runs in small steps until `done` holds, or fails after `limit` of virtual time.
fn run_until_true(world: &mut World, limit: Duration, what: &str, done: impl Fn(&World) -> bool) -> Duration {
    let start = world.elapsed();
    while !done(world) {
        assert!(
            world.elapsed() - start < limit,
            "{what} did not happen within {limit:?}"
        );
        world.run_until(world.elapsed() + Duration::from_millis(50));
    }
    world.elapsed() - start
}

#[test]
fn a_crashed_device_is_marked_unreachable_by_all_and_rejoins_after_restart() {
    let mut world = mesh(1);
    world.inject(Fault::Crash(2));
    let detected = run_until_true(&mut world, secs(10), "detection", |w| {
        (0..NODES)
            .filter(|n| *n != 2)
            .all(|o| w.view(o, 2) == Some(MemberState::Unreachable))
    });
    assert!(
        detected >= Duration::from_millis(500),
        "not before a probe could fail: {detected:?}"
    );
    world.run_until(world.elapsed() + secs(20));
    assert_all_show(&world, 2, MemberState::Unreachable);
    assert_all_see_each_other(&world, &[2]);
    world.inject(Fault::Restart(2));
    run_until_true(&mut world, secs(3), "rejoin after restart", all_active);
    assert!(world.finish().violations.is_empty());
}

#[test]
fn a_restart_faster_than_detection_goes_unnoticed_and_keeps_working() {
    let mut world = mesh(2);
    world.inject(Fault::Crash(3));
    world.inject(Fault::Restart(3));
    world.run_until(world.elapsed() + secs(5));
    assert_all_see_each_other(&world, &[]);
}

#[test]
fn a_paused_device_becomes_unreachable_then_active_when_it_wakes() {
    let mut world = mesh(3);
    world.inject(Fault::Pause(1));
    run_until_true(&mut world, secs(10), "detection of the sleeper", |w| {
        (0..NODES)
            .filter(|n| *n != 1)
            .all(|o| w.view(o, 1) == Some(MemberState::Unreachable))
    });
    world.run_until(world.elapsed() + secs(600));
    world.inject(Fault::Resume(1));
    run_until_true(&mut world, secs(5), "the sleeper is back", all_active);
    assert!(world.finish().violations.is_empty());
}

#[test]
fn a_partition_splits_the_views_and_healing_joins_them() {
    let mut world = mesh(4);
    let (left, right) = (vec![0, 1], vec![2, 3, 4]);
    world.inject(Fault::Partition {
        from: left.clone(),
        to: right.clone(),
        both: true,
    });
    world.run_until(world.elapsed() + secs(30));
    for a in &left {
        for b in &right {
            assert_eq!(world.view(*a, *b), Some(MemberState::Unreachable), "{a} on {b}");
            assert_eq!(world.view(*b, *a), Some(MemberState::Unreachable), "{b} on {a}");
        }
    }
    assert_eq!(
        world.view(0, 1),
        Some(MemberState::Active),
        "each side still sees itself"
    );
    assert_eq!(world.view(2, 4), Some(MemberState::Active));
    world.inject(Fault::Heal);
    let healed = run_until_true(&mut world, secs(40), "convergence after the heal", all_active);
    assert!(healed < secs(40));
    assert!(world.finish().violations.is_empty());
}

#[test]
fn a_device_that_roams_is_followed_to_its_new_address() {
    let mut world = mesh(5);
    let old = world.address(3);
    world.inject(Fault::Roam(3));
    let new = world.address(3);
    assert_ne!(old, new);
    run_until_true(&mut world, secs(15), "everyone follows the move", |w| {
        (0..NODES)
            .filter(|n| *n != 3)
            .all(|o| w.member(o, 3).and_then(|m| m.address) == Some(new))
    });
    world.run_until(world.elapsed() + secs(5));
    assert_all_see_each_other(&world, &[]);
}

#[test]
fn a_device_that_leaves_is_shown_left_not_failed() {
    let mut world = mesh(6);
    world.leave(4);
    world.run_until(world.elapsed() + secs(1));
    assert_all_show(&world, 4, MemberState::Left);
    world.run_until(world.elapsed() + secs(60));
    assert_all_show(&world, 4, MemberState::Left);
}

#[test]
fn round_trip_times_are_measured_for_every_pair() {
    let mut world = mesh(7);
    world.run_until(world.elapsed() + secs(60));
    for observer in 0..NODES {
        for target in (0..NODES).filter(|t| *t != observer) {
            let member = world.member(observer, target).expect("member");
            let rtt = member.rtt.smoothed().expect("an RTT sample");
            // The simulated link: 0.5 ms, up to 1 ms for the link and up to 3 ms of
            // jitter, each way.
            assert!(
                rtt >= Duration::from_micros(1000) && rtt <= Duration::from_millis(9),
                "{observer}->{target}: {rtt:?}"
            );
        }
    }
}
