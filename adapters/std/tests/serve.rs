//! The threaded server over real loopback TCP.

#[path = "support/controller.rs"]
mod controller;
#[path = "support/scenarios.rs"]
mod scenarios;

use std::net::SocketAddr;
use std::time::Duration;

use hap_core::database::{Database, OwnedValue};
use hap_core::server::{CompleteError, Event, HapStatus, Token};
use hap_std::{Options, Running, Setup};

struct Threads;

impl scenarios::Runtime for Threads {
    type Running = Running;

    fn serve(setup: Setup, database: Database<'static>, options: Options) -> Running {
        hap_std::serve(setup, database, options).expect("serve")
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
        running.events().recv_timeout(limit).ok()
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
            match running.events().recv_timeout(Duration::from_secs(5)) {
                Ok(_) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break true,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break false,
            }
        };
        running.wait();
        ended
    }
}

#[test]
fn pairs_reads_writes_and_pushes_events() {
    scenarios::pairs_reads_writes_and_pushes_events::<Threads>();
}

#[test]
fn the_application_confirms_and_fails_through_its_handle() {
    scenarios::the_application_confirms_and_fails_through_its_handle::<Threads>();
}

#[test]
fn extra_connection_is_refused_cleanly() {
    scenarios::extra_connection_is_refused_cleanly::<Threads>();
}

#[test]
fn idle_connection_is_evicted_only_for_a_newcomer() {
    scenarios::idle_connection_is_evicted_only_for_a_newcomer::<Threads>();
}

#[test]
fn default_bind_serves_ipv4_and_ipv6() {
    scenarios::default_bind_serves_ipv4_and_ipv6::<Threads>();
}

#[test]
fn an_address_is_the_only_one_served() {
    scenarios::an_address_is_the_only_one_served::<Threads>();
}

#[cfg(target_os = "linux")]
#[test]
fn accepted_connections_have_keepalive() {
    scenarios::accepted_connections_have_keepalive::<Threads>();
}

#[test]
fn a_failed_announcement_is_retried_without_connections() {
    scenarios::a_failed_announcement_is_retried_without_connections::<Threads>();
}
