//! Stats client <-> stats segment double, through the real socket, SCM_RIGHTS and mmap:
//! lb counters as flows are sent, in-place updates vs structural changes, the optimistic
//! lock, VPP restarts and a vanished socket.

mod support;

use maglev::vpp::stats::segment::SegmentError;
use maglev::vpp::stats::{
    CombinedCounter, EntryType, NO_ROUTE, RestartReason, StatValue, StatsClient, StatsError,
    StatsPoller, VipCounters,
};
use support::stats_double::{ROUTE_TO, StatsDouble, VipCounter};

fn double() -> (tempfile::TempDir, StatsDouble) {
    let dir = tempfile::tempdir().unwrap();
    let double = StatsDouble::start(dir.path()).unwrap();
    (dir, double)
}

#[tokio::test]
async fn reads_lb_counters_as_flows_are_sent() {
    let (_dir, vpp) = double();
    vpp.add_vip(1).unwrap();
    vpp.add_vip(2).unwrap();
    // VIP 1: 3 flows of 4 packets on thread 0, 1 flow of 10 on thread 1; route 5.
    vpp.send_flows(1, 5, 0, 3, 4, 100).unwrap();
    vpp.send_flows(1, 5, 1, 1, 10, 100).unwrap();
    vpp.count_vip(1, 1, VipCounter::Untracked, 2).unwrap();
    // VIP 2: no backends, packets dropped; its route has traffic of its own.
    vpp.count_vip(2, 0, VipCounter::NoServer, 7).unwrap();
    vpp.count_route(6, 1, 7, 700).unwrap();

    let client = StatsClient::connect(vpp.socket_path()).await.unwrap();
    assert_eq!(vpp.served(), 1);
    assert_eq!(client.boottime_at_connect(), Some(vpp.boottime()));
    let snap = client.read_lb_counters(&[1, 2, 3], &[5, 6]).unwrap();
    assert_eq!(
        snap.vips,
        vec![
            VipCounters {
                vip_index: 1,
                next: 9 + 9,
                first: 3 + 1,
                untracked: 2,
                no_server: 0,
                route_packets: 22,
                route_bytes: 2200,
            },
            VipCounters {
                vip_index: 2,
                no_server: 7,
                route_packets: 7,
                route_bytes: 700,
                ..VipCounters::default()
            },
            VipCounters {
                vip_index: 3,
                ..VipCounters::default()
            },
        ]
    );
    assert_eq!(snap.boottime, Some(vpp.boottime()));
    assert!(snap.uptime.is_some());
    assert_eq!(snap.heartbeat, Some(1));

    // In-place value updates (no epoch change) are seen by the same mapping.
    let epoch = vpp.epoch();
    vpp.send_flows(1, 5, 0, 1, 1, 60).unwrap();
    assert_eq!(vpp.epoch(), epoch, "value updates must not take the lock");
    let snap = client.read_lb_counters(&[1], &[5]).unwrap();
    assert_eq!(
        (
            snap.vips[0].first,
            snap.vips[0].route_packets,
            snap.vips[0].route_bytes
        ),
        (5, 23, 2260)
    );

    // A VIP with a high index grows the counter vectors: a structural change.
    vpp.add_vip(40).unwrap();
    vpp.send_flows(40, 200, 1, 2, 2, 50).unwrap();
    assert!(vpp.epoch() > epoch);
    let snap = client.read_lb_counters(&[40, 1], &[200, NO_ROUTE]).unwrap();
    assert_eq!(
        (
            snap.vips[0].first,
            snap.vips[0].next,
            snap.vips[0].route_bytes
        ),
        (2, 2, 200)
    );
    assert_eq!((snap.vips[1].next, snap.vips[1].route_packets), (18, 0));
}

#[tokio::test]
async fn no_vips_yet_reads_zero_and_entries_dump_by_type() {
    let (_dir, vpp) = double();
    let client = StatsClient::connect(vpp.socket_path()).await.unwrap();
    let snap = client.read_lb_counters(&[1], &[]).unwrap();
    assert_eq!(
        snap.vips,
        vec![VipCounters {
            vip_index: 1,
            ..Default::default()
        }]
    );

    vpp.count_route(1, 0, 3, 30).unwrap();
    vpp.set_names("/if/names", &[Some("local0"), None, Some("eth0")])
        .unwrap();
    vpp.add_symlink("/interfaces/eth0/route", ROUTE_TO, 1)
        .unwrap();
    vpp.set_scalar("/sys/gone", 1).unwrap();
    vpp.remove("/sys/gone").unwrap();
    let dump = client.dump().unwrap();
    let kinds: Vec<(&str, EntryType)> = dump.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
    assert_eq!(
        kinds,
        vec![
            ("/sys/boottime", EntryType::Scalar),
            ("/sys/heartbeat", EntryType::Scalar),
            (ROUTE_TO, EntryType::CounterVectorCombined),
            ("/if/names", EntryType::NameVector),
            ("/interfaces/eth0/route", EntryType::Symlink),
        ]
    );
    let c = |packets, bytes| CombinedCounter { packets, bytes };
    assert_eq!(
        client.read_entry("/interfaces/eth0/route").unwrap(),
        Some(StatValue::CombinedColumn(vec![c(3, 30), c(0, 0)]))
    );
    assert_eq!(
        client.read_entry("/if/names").unwrap(),
        Some(StatValue::Names(vec![
            Some("local0".into()),
            None,
            Some("eth0".into())
        ]))
    );
    assert_eq!(client.read_entry("/sys/gone").unwrap(), None);
}

#[tokio::test]
async fn held_lock_is_an_error_until_released() {
    let (_dir, vpp) = double();
    vpp.add_vip(1).unwrap();
    vpp.count_vip(1, 0, VipCounter::First, 4).unwrap();
    let client = StatsClient::connect(vpp.socket_path()).await.unwrap();
    vpp.set_in_progress(true).unwrap();
    let err = client.read_lb_counters(&[1], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            StatsError::Segment(SegmentError::Unstable {
                in_progress: true,
                ..
            })
        ),
        "{err}"
    );
    vpp.set_in_progress(false).unwrap();
    vpp.bump_epoch().unwrap();
    assert_eq!(client.read_lb_counters(&[1], &[]).unwrap().vips[0].first, 4);
}

#[tokio::test]
async fn poller_survives_a_vpp_restart() {
    let (_dir, vpp) = double();
    vpp.add_vip(1).unwrap();
    vpp.send_flows(1, 5, 0, 10, 1, 100).unwrap();
    let mut poller = StatsPoller::new(vpp.socket_path());

    let first = poller.poll(&[1], &[5]).await.unwrap();
    assert!(first.reconnected && !first.vpp_restarted);
    assert_eq!(first.snapshot.vips[0].first, 10);

    let again = poller.poll(&[1], &[5]).await.unwrap();
    assert!(!again.reconnected && !again.vpp_restarted);
    assert_eq!(vpp.served(), 1, "the mapping is reused between polls");

    let old_boottime = vpp.boottime();
    vpp.restart().unwrap();
    let client = poller.client().unwrap().clone();
    assert_eq!(
        client.restart_detected(),
        Some(RestartReason::SocketReplaced)
    );

    vpp.add_vip(1).unwrap();
    vpp.send_flows(1, 5, 1, 2, 1, 100).unwrap();
    let after = poller.poll(&[1], &[5]).await.unwrap();
    assert!(after.reconnected && after.vpp_restarted);
    assert_eq!(after.restart_reason, Some(RestartReason::SocketReplaced));
    assert_eq!(
        after.snapshot.vips[0].first, 2,
        "counters restart from zero"
    );
    assert_eq!(after.snapshot.boottime, Some(vpp.boottime()));
    assert_ne!(vpp.boottime(), old_boottime);
    assert_eq!(vpp.served(), 2);

    // The old mapping stays readable (frozen) while a clone holds it.
    let frozen = client.read_lb_counters(&[1], &[5]).unwrap();
    assert_eq!(frozen.vips[0].first, 10);
}

#[tokio::test]
async fn vanished_socket_is_detected_and_polls_fail_until_vpp_returns() {
    let (_dir, vpp) = double();
    let mut poller = StatsPoller::new(vpp.socket_path());
    poller.poll(&[], &[]).await.unwrap();
    vpp.stop();
    assert_eq!(
        poller.client().unwrap().restart_detected(),
        Some(RestartReason::SocketGone)
    );
    let err = poller.poll(&[], &[]).await.unwrap_err();
    assert!(matches!(err, StatsError::Shm(_)), "{err}");
    assert!(poller.client().is_none());

    vpp.restart().unwrap();
    let back = poller.poll(&[], &[]).await.unwrap();
    assert!(back.reconnected && back.vpp_restarted);
}

#[tokio::test]
async fn reconnect_maps_the_new_segment() {
    let (_dir, vpp) = double();
    let mut client = StatsClient::connect(vpp.socket_path()).await.unwrap();
    vpp.restart().unwrap();
    vpp.add_vip(3).unwrap();
    vpp.count_vip(3, 1, VipCounter::Next, 9).unwrap();
    assert_eq!(client.read_lb_counters(&[3], &[]).unwrap().vips[0].next, 0);
    client.reconnect().await.unwrap();
    assert_eq!(client.restart_detected(), None);
    assert_eq!(client.read_lb_counters(&[3], &[]).unwrap().vips[0].next, 9);
}
