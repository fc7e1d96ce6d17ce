//! The smol server over real loopback TCP.

#[path = "../../std/tests/support/controller.rs"]
mod controller;
#[path = "../../std/tests/support/scenarios.rs"]
mod scenarios;

use std::net::SocketAddr;
use std::time::Duration;

use hap_core::database::{Database, OwnedValue};
use hap_core::server::{CompleteError, Event, HapStatus, Token};
use hap_smol::Running;
use hap_std::{Options, Setup};
use smol::future::FutureExt as _;

struct Smol;

/// Waits for the next event, or `None` after `limit` or when the stream ended.
fn recv(running: &Running, limit: Duration) -> Result<Event, bool> {
    smol::block_on(
        async { running.events().recv().await.map_err(|_| true) }.or(async {
            smol::Timer::after(limit).await;
            Err(false)
        }),
    )
}

impl scenarios::Runtime for Smol {
    type Running = Running;

    fn serve(setup: Setup, database: Database<'static>, options: Options) -> Running {
        smol::block_on(hap_smol::serve(setup, database, options)).expect("serve")
    }

    fn address(running: &Running) -> SocketAddr {
        running.handle().local_addr()
    }

    fn set_value(running: &Running, aid: u64, iid: u64, value: OwnedValue) -> bool {
        running
            .handle()
            .set_value(aid, iid, value)
            .expect("a valid value")
    }

    fn next_event(running: &Running, limit: Duration) -> Option<Event> {
        recv(running, limit).ok()
    }

    fn complete_write(
        running: &Running,
        token: Token,
        result: Result<(), HapStatus>,
    ) -> Result<(), CompleteError> {
        running.handle().complete_write(token, result)
    }

    fn complete_read(
        running: &Running,
        token: Token,
        result: Result<OwnedValue, HapStatus>,
    ) -> Result<(), CompleteError> {
        running.handle().complete_read(token, result)
    }

    fn connection_count(running: &Running) -> usize {
        running.handle().with_host(|host| host.connection_count())
    }

    fn shut_down(running: Running) -> bool {
        running.handle().shut_down();
        let ended = loop {
            match recv(&running, Duration::from_secs(5)) {
                Ok(_) => continue,
                Err(ended) => break ended,
            }
        };
        smol::block_on(running.wait());
        ended
    }
}

#[test]
fn pairs_reads_writes_and_pushes_events() {
    scenarios::pairs_reads_writes_and_pushes_events::<Smol>();
}

#[test]
fn the_application_confirms_and_fails_through_its_handle() {
    scenarios::the_application_confirms_and_fails_through_its_handle::<Smol>();
}

#[test]
fn extra_connection_is_refused_cleanly() {
    scenarios::extra_connection_is_refused_cleanly::<Smol>();
}

#[test]
fn idle_connection_is_evicted_only_for_a_newcomer() {
    scenarios::idle_connection_is_evicted_only_for_a_newcomer::<Smol>();
}

#[test]
fn default_bind_serves_ipv4_and_ipv6() {
    scenarios::default_bind_serves_ipv4_and_ipv6::<Smol>();
}

#[test]
fn an_address_is_the_only_one_served() {
    scenarios::an_address_is_the_only_one_served::<Smol>();
}

#[cfg(target_os = "linux")]
#[test]
fn accepted_connections_have_keepalive() {
    scenarios::accepted_connections_have_keepalive::<Smol>();
}

#[test]
fn a_failed_announcement_is_retried_without_connections() {
    scenarios::a_failed_announcement_is_retried_without_connections::<Smol>();
}
