//! The destination driver (QEMU's incoming migration, precopy): accept, load the
//! stream while answering on the return path, report the outcome with SHUT.

use std::io::Write;

use bytes::BytesMut;

use super::stats::StatsHandle;
use super::status::MigrationStatus;
use super::transport::{Incoming, ReadWrite, TransportRefill};
use crate::error::{Error, Result};
use crate::savevm::{
    Command, CommandHandler, LoadFlow, LoadOptions, Registry, RpMessage, StreamLoader,
};
use crate::wire::{Reader, Writer};

/// Read size for the incoming stream.
const REFILL_CHUNK: usize = 64 * 1024;

/// Answers commands on the return path.
struct IncomingCommands {
    reverse: Option<Box<dyn ReadWrite>>,
    rp_open: bool,
}

impl IncomingCommands {
    fn send(&mut self, msg: RpMessage) -> Result<()> {
        let Some(rp) = self.reverse.as_mut().filter(|_| self.rp_open) else {
            return Err(Error::invalid(
                "return-path message needed but no return path is open",
            ));
        };
        let mut w = Writer::new(Vec::with_capacity(8));
        msg.write(&mut w)?;
        rp.write_all(&w.into_inner())?;
        rp.flush()?;
        Ok(())
    }
}

impl CommandHandler for IncomingCommands {
    fn command(&mut self, cmd: Command, reg: &mut Registry) -> Result<LoadFlow> {
        match cmd {
            Command::OpenReturnPath => {
                if self.reverse.is_none() {
                    return Err(Error::invalid(
                        "OPEN_RETURN_PATH on a one-directional transport",
                    ));
                }
                // A duplicate is only a warning in QEMU.
                self.rp_open = true;
            }
            Command::Ping(v) => {
                if !self.rp_open {
                    return Err(Error::invalid(format!("PING({v}) without a return path")));
                }
                self.send(RpMessage::Pong(v))?;
            }
            Command::SwitchoverStart => {
                for e in reg.entries_mut() {
                    e.handlers.switchover_start()?;
                }
            }
            Command::EnableColo => {
                return Err(Error::invalid("COLO is not supported by this destination"))
            }
            other => {
                return Err(Error::invalid(format!(
                    "{} is not supported by this destination (postcopy is not enabled)",
                    other.name()
                )))
            }
        }
        Ok(LoadFlow::Continue)
    }
}

/// Runs an incoming migration to the end: waits for the source, loads every
/// section into `reg`, and tells the source the outcome (SHUT) when a return path
/// is open. Statistics (status setup → active → completed/failed) go to `stats`.
pub fn run_incoming(
    incoming: Incoming,
    reg: &mut Registry,
    opts: LoadOptions,
    stats: &StatsHandle,
) -> Result<()> {
    stats.update(|s| s.status = MigrationStatus::Setup);
    let conn = incoming.accept()?;
    let mut cmds = IncomingCommands {
        reverse: conn.reverse,
        rp_open: false,
    };
    let mut r = Reader::with_refill(
        BytesMut::with_capacity(REFILL_CHUNK),
        0,
        Box::new(TransportRefill::new(conn.stream, REFILL_CHUNK)),
    );
    stats.update(|s| s.status = MigrationStatus::Active);
    let result = StreamLoader::new(opts).load(&mut r, reg, &mut cmds);
    let transferred = r.position();
    if cmds.rp_open {
        let _ = cmds.send(RpMessage::Shut {
            error: result.is_err(),
        });
    }
    if let Some(rp) = cmds.reverse.take() {
        let _ = rp.shutdown();
    }
    match &result {
        Ok(_) => stats.update(|s| {
            s.status = MigrationStatus::Completed;
            s.transferred = transferred;
        }),
        Err(e) => {
            let msg = e.to_string();
            stats.update(|s| {
                s.status = MigrationStatus::Failed;
                s.transferred = transferred;
                s.error = Some(msg);
            })
        }
    }
    result.map(|_| ())
}
