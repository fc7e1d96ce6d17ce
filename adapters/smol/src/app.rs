//! hap-std's application layer ([`hap_std::app`]) on smol: the same [`App`], served by
//! [`crate::serve`], with the application's loop as a task on smol's executor, where the
//! connections run, so that handling an event wakes no other thread.
//!
//! ```no_run
//! use hap_core::catalog::{service as s, typed as t, Category};
//! use hap_core::database::builder::AccessoryInfo;
//! use hap_smol::app::{App, AppError};
//!
//! fn main() -> Result<(), AppError> {
//!     let mut app = App::from_args("Fan", Category::FAN)?;
//!     let on = app.build(|b, name| {
//!         b.accessory("fan", &AccessoryInfo::new(name, "Acme", "Fan", "1", "1.0"));
//!         b.service(&s::FAN).primary().handle(t::ON)
//!     })?;
//!     app.on_change(on, |on| println!("Fan {}", if on { "on" } else { "off" }));
//!     app.run()
//! }
//! ```

use std::sync::Arc;
use std::time::Instant;

use async_io::Timer;
use smol::future::FutureExt as _;

pub use hap_std::app::{
    banner, AppError, AppLoop, AppOn, Backend, Batch, Device, DeviceError, Flags, Inbox, Message,
    Prepared, ReadReply, Reply, Runtime, TimerId,
};

/// An accessory program on smol: [`hap_std::app::AppOn`] served by [`Smol`].
pub type App = hap_std::app::AppOn<Smol>;

/// Serves an [`App`] with [`crate::serve`]. The main thread waits with
/// `smol::future::block_on`, so the executor's thread polls the sockets itself (see the
/// [crate docs](crate)).
#[derive(Debug)]
pub struct Smol;

impl Runtime for Smol {
    fn run(prepared: Prepared) -> Result<(), AppError> {
        smol::future::block_on(serve(prepared))
    }
}

impl Backend for crate::Handle {
    fn host(&self) -> &hap_std::host::SharedHost {
        &self.host
    }

    fn local_addr(&self) -> std::net::SocketAddr {
        crate::Handle::local_addr(self)
    }

    fn shut_down(&self) {
        crate::Handle::shut_down(self);
    }
}

async fn serve(prepared: Prepared) -> Result<(), AppError> {
    let Prepared {
        setup,
        database,
        options,
        mut app_loop,
        ..
    } = prepared;
    let running = crate::serve(setup, database, options).await?;
    app_loop.started(Arc::new(running.handle()))?;
    let inbox = app_loop.inbox().clone();
    let events = running.events().clone();
    let forwarding = smol::spawn(async move {
        while let Ok(event) = events.recv().await {
            inbox.post_event(event);
        }
        inbox.stop();
    });
    smol::spawn(run_loop(app_loop)).await;
    forwarding.await;
    running.wait().await;
    Ok(())
}

/// [`AppLoop::run_blocking`] as a task: waits for a message or the next timer.
async fn run_loop(mut app_loop: AppLoop) {
    let inbox = app_loop.inbox().clone();
    loop {
        let deadline = app_loop.next_deadline();
        let message = async { Some(inbox.recv().await) }
            .or(async {
                match deadline {
                    Some(at) => {
                        Timer::at(at).await;
                    }
                    None => smol::future::pending::<()>().await,
                }
                None
            })
            .await;
        if !app_loop.turn(message, Instant::now()) {
            break;
        }
    }
}
