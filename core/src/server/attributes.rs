//! The attribute endpoints: `/accessories`, `/characteristics` and `/prepare`. Events are
//! in [`super::events`].
//!
//! A request to `/accessories` or `/characteristics` is answered over as many polls as it
//! takes: it stays at the front of the input buffer, and a [`Job`] records how far its
//! answer has got. A write applies its items one at a time, each raising an
//! [`Event::Write`] (or, for a confirmed characteristic, an [`Event::WriteRequest`] with
//! the value held in the server's pending table until the application completes it), and
//! pauses when the application's event queue or the pending table is full. A read that
//! needs values on demand raises [`Event::Read`]s and waits for the answers or the read
//! timeout; the application's answer is taken from the pending table as soon as it comes,
//! which frees the entry, and a failure is kept in the item's byte of the scratch buffer
//! (in every byte of an item naming the same characteristic: a request asks once per
//! characteristic). A read with more items than the scratch buffer has bytes keeps its
//! failed entries until it is answered instead. Statuses of write items are kept in the
//! scratch buffer too, [`PENDING`] while the application decides. Responses are written piece by piece: with a Content-Length when the whole
//! body fits one chunk, and otherwise in chunks as output room allows, so no response is
//! ever built whole in memory. A piece too long for a chunk (a characteristic with a long
//! TLV8 or data value) is written again for each chunk it spans, each time keeping the
//! next part; should it come out different (the value changed between two polls), the
//! parts sent cannot be mended and the connection closes.

use super::connection::Outbox;
use super::events::{subscribe, subscribed, Subscription};
use super::pending::{self, Token, PENDING_PER_CONNECTION};
use super::render::{self, AccessoriesCursor, Fields, HapStatus};
use super::requests::{parse_prepare, scalar, ReadQuery, WriteBody, WriteItem};
use super::{CloseReason, Connection, Event, Server, MAX_RESPONSE_LEN};
use crate::catalog::value::coerce;
use crate::catalog::Perms;
use crate::database::bytes::ENCODED_BYTES_CAPACITY;
use crate::database::{
    CharacteristicRef, Database, OwnedValue, MAX_CHARACTERISTIC_JSON, STRING_CAPACITY,
};
use crate::http::{content_type, parse_request, write_chunked_head, write_head, StatusCode};
use crate::json::Token as JsonToken;
use crate::json::{Full, JsonWriter};
use crate::session::FrameEncryptor;
use crate::time::Instant;

/// The request at the front of the input, being answered.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Job {
    /// GET `/accessories`.
    Accessories(Stream<AccessoriesCursor>),
    /// GET `/characteristics`.
    Read {
        arrival: Arrival,
        /// Items before this one have been asked of the application if on demand.
        asked: usize,
        /// The response, once every value is in or the deadline has passed.
        answer: Option<(StatusCode, Stream<usize>)>,
    },
    /// PUT `/characteristics`; item statuses are kept in the scratch buffer.
    Write {
        arrival: Arrival,
        /// Items before this one have been applied, or handed to the application.
        applied: usize,
        /// For a timed write, whether its preparation was live and matched when the
        /// request came up: the whole write stands or falls by that moment.
        timed: Option<bool>,
        /// The 207 response, once every item is settled.
        answer: Option<Stream<usize>>,
    },
}

/// What a read or write job records of its request's arrival.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Arrival {
    /// The request's serial, for its [`Token`]s.
    serial: u64,
    /// The database's supply epoch when the request arrived.
    epoch: u64,
    /// When what the application has not answered times out.
    deadline: Instant,
}

impl Arrival {
    /// Where the job stands at `now`.
    fn at(self, now: Instant) -> Moment {
        Moment {
            now,
            serial: self.serial,
            epoch: self.epoch,
            deadline: self.deadline,
        }
    }
}

/// Where a read or write job stands when it is driven: its [`Arrival`], and the time.
#[derive(Clone, Copy, Debug)]
struct Moment {
    now: Instant,
    serial: u64,
    epoch: u64,
    deadline: Instant,
}

/// A write item's status byte while the application decides.
const PENDING: u8 = u8::MAX;

/// A read item's status byte until the application fails it.
const NOT_FAILED: u8 = u8::MAX;

/// Whether a job has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    Done,
    Waiting,
}

/// A body being written in pieces: where it stands, and whether its head is out.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stream<C> {
    cursor: C,
    started: bool,
    /// The piece at `cursor`, when it is too long for one chunk: how far it has got.
    split: Option<Split>,
}

/// How much of a piece too long for one chunk has been sent, and what the whole piece
/// looked like, to check that it comes out the same each time. Counts fit `u32`: a piece
/// is one characteristic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Split {
    sent: u32,
    len: u32,
    digest: u32,
}

/// A chunk's payload: room for the largest characteristic and its item's extra fields.
const CHUNK_DATA: usize = MAX_CHARACTERISTIC_JSON + 64;
// A chunk with the response head, its size line, CRLF and the final empty chunk is one
// largest response, for which `pump` waits for room.
const _: () = assert!(128 + 8 + CHUNK_DATA + 2 + 5 <= MAX_RESPONSE_LEN);

/// Writes as much of a body as output room allows. Returns whether it is complete, or an
/// error if a single piece cannot fit a chunk.
fn pump<C: Copy>(
    out: &mut Outbox<'_>,
    status: StatusCode,
    stream: &mut Stream<C>,
    mut piece: impl FnMut(&mut JsonWriter<'_>, &mut C) -> Result<bool, Full>,
) -> Result<bool, ()> {
    while out.room() >= FrameEncryptor::sealed_len(MAX_RESPONSE_LEN) {
        let mut data = [0u8; CHUNK_DATA];
        let (len, finished) = if stream.split.is_some() {
            (split_piece(&mut data, stream, &mut piece)?, false)
        } else {
            whole_pieces(&mut data, stream, &mut piece)?
        };
        let body = &data[..len];
        let mut head = [0u8; 128];
        if !stream.started && finished {
            let len = write_head(
                &mut head,
                "HTTP/1.1",
                status,
                Some(content_type::HAP_JSON),
                body.len(),
            )
            .map_err(|_| ())?;
            out.queue(&[&head[..len], body])?;
            return Ok(true);
        }
        let head_len = if stream.started {
            0
        } else {
            write_chunked_head(&mut head, status, content_type::HAP_JSON).map_err(|_| ())?
        };
        stream.started = true;
        let mut size = [0u8; 8];
        let size_len = {
            let mut size_writer = JsonWriter::new(&mut size);
            use core::fmt::Write as _;
            write!(size_writer, "{:x}\r\n", body.len()).map_err(|_| ())?;
            size_writer.len()
        };
        // An empty chunk would end the body early; only the last one may be empty.
        let chunk: [&[u8]; 3] = if body.is_empty() {
            [b"", b"", b""]
        } else {
            [&size[..size_len], body, b"\r\n"]
        };
        let end: &[u8] = if finished { b"0\r\n\r\n" } else { b"" };
        out.queue(&[&head[..head_len], chunk[0], chunk[1], chunk[2], end])?;
        if finished {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Fills `data` with whole pieces, and returns how much it holds and whether the body is
/// complete. A piece too long for the whole of `data` starts a split instead.
fn whole_pieces<C: Copy>(
    data: &mut [u8],
    stream: &mut Stream<C>,
    piece: &mut impl FnMut(&mut JsonWriter<'_>, &mut C) -> Result<bool, Full>,
) -> Result<(usize, bool), ()> {
    let mut w = JsonWriter::new(data);
    loop {
        let (mark, saved) = (w.len(), stream.cursor);
        match piece(&mut w, &mut stream.cursor) {
            Ok(true) => {}
            Ok(false) => return Ok((w.len(), true)),
            Err(Full) if mark == 0 => {
                stream.cursor = saved;
                return split_piece(data, stream, piece).map(|len| (len, false));
            }
            Err(Full) => {
                stream.cursor = saved;
                return Ok((mark, false));
            }
        }
    }
}

/// Writes the next part of the piece at the cursor, one too long for a chunk, into
/// `data`, and returns its length. The cursor moves past the piece with its last part.
/// Fails if the piece is not what it was when its first part went out.
fn split_piece<C: Copy>(
    data: &mut [u8],
    stream: &mut Stream<C>,
    piece: &mut impl FnMut(&mut JsonWriter<'_>, &mut C) -> Result<bool, Full>,
) -> Result<usize, ()> {
    let sent = stream.split.map_or(0, |split| split.sent as usize);
    let mut cursor = stream.cursor;
    let mut w = JsonWriter::window(data, sent);
    if piece(&mut w, &mut cursor) != Ok(true) {
        return Err(());
    }
    let kept = w.len();
    let extent = w.extent().ok_or(())?;
    let len = u32::try_from(extent.len).map_err(|_| ())?;
    if stream
        .split
        .is_some_and(|split| (split.len, split.digest) != (len, extent.digest))
    {
        return Err(());
    }
    let sent = sent + kept;
    if sent >= extent.len {
        stream.cursor = cursor;
        stream.split = None;
    } else {
        stream.split = Some(Split {
            // Below `len`, which fits.
            sent: sent as u32,
            len,
            digest: extent.digest,
        });
    }
    Ok(kept)
}

/// The larger of two lengths, for array sizes.
const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// The status of reading `aid`.`iid` for a controller, once on-demand values had their
/// chance: those not supplied since `epoch` have timed out.
fn read_status(db: &Database<'_>, aid: u64, iid: u64, admin: bool, epoch: u64) -> HapStatus {
    let Some(at) = db.find(aid, iid) else {
        return HapStatus::ResourceDoesNotExist;
    };
    let def = db.definition(at);
    if !def.perms.contains(Perms::READ) {
        HapStatus::WriteOnlyCharacteristic
    } else if def.kind.admin_only.contains(Perms::READ) && !admin {
        HapStatus::InsufficientPrivileges
    } else if def.read_on_demand && db.slot(at.slot).supplied <= epoch {
        HapStatus::OperationTimedOut
    } else {
        HapStatus::Success
    }
}

/// Writes piece `index` of a `{"characteristics":[...]}` body of `count` items and
/// advances it, or returns `Ok(false)` once the body is complete. Piece 0 opens the
/// body, piece `k` is item `k - 1` with its separating comma, and the last closes it.
fn list_piece(
    w: &mut JsonWriter<'_>,
    count: usize,
    index: &mut usize,
    item: impl FnOnce(&mut JsonWriter<'_>, usize) -> Result<(), Full>,
) -> Result<bool, Full> {
    match *index {
        0 => w.raw("{\"characteristics\":[")?,
        i if i == count + 1 => w.raw("]}")?,
        i if i > count + 1 => return Ok(false),
        i => {
            if i > 1 {
                w.raw(",")?;
            }
            item(w, i - 1)?;
        }
    }
    *index += 1;
    Ok(true)
}

/// Where a read request's answers are: its job's place, the status bytes in the scratch
/// buffer and the pending table.
#[derive(Clone, Copy)]
struct ReadAnswers<'a> {
    conn: crate::ConnectionId,
    moment: Moment,
    scratch: &'a [u8],
    table: &'a pending::Table,
}

/// The status of item `index`, `ids`, of a read request, once the application had its
/// chance: what it answered, if it failed the read.
fn item_read_status(
    db: &Database<'_>,
    answers: ReadAnswers<'_>,
    index: usize,
    (aid, iid): (u64, u64),
    admin: bool,
) -> HapStatus {
    match read_status(db, aid, iid, admin, answers.moment.epoch) {
        HapStatus::OperationTimedOut => {
            let failed = answers.scratch.get(index).copied();
            match failed.filter(|byte| *byte != NOT_FAILED) {
                Some(byte) => HapStatus::from_byte(byte),
                None => db
                    .find(aid, iid)
                    .and_then(|at| {
                        answers
                            .table
                            .find_read(answers.conn, answers.moment.serial, at.slot)
                    })
                    .and_then(|entry| entry.answer)
                    .unwrap_or(HapStatus::OperationTimedOut),
            }
        }
        status => status,
    }
}

/// Writes one item, with its `status`, of a GET `/characteristics` body.
fn read_item(
    w: &mut JsonWriter<'_>,
    db: &Database<'_>,
    subscriptions: &[Subscription],
    query: &ReadQuery<'_>,
    (aid, iid): (u64, u64),
    multi_status: bool,
    status: HapStatus,
) -> Result<(), Full> {
    w.raw("{\"aid\":")?;
    w.uint(aid)?;
    w.raw(",\"iid\":")?;
    w.uint(iid)?;
    if multi_status {
        w.raw(",\"status\":")?;
        w.int(i64::from(status.code()))?;
    }
    if let (HapStatus::Success, Some(at)) = (status, db.find(aid, iid)) {
        let def = db.definition(at);
        w.raw(",\"value\":")?;
        render::value(w, def, db.value(at))?;
        let fields = Fields {
            kind: query.kind,
            perms: query.perms,
            meta: query.meta,
            ev: query.ev.then(|| subscribed(subscriptions, at.slot)),
        };
        render::descriptive_fields(w, def, fields)?;
    }
    w.raw("}")
}

/// Writes one item of a PUT `/characteristics` 207 body.
fn write_status_item(
    w: &mut JsonWriter<'_>,
    db: &Database<'_>,
    item: &WriteItem<'_>,
    status: HapStatus,
) -> Result<(), Full> {
    w.raw("{\"aid\":")?;
    w.uint(item.aid)?;
    w.raw(",\"iid\":")?;
    w.uint(item.iid)?;
    w.raw(",\"status\":")?;
    w.int(i64::from(status.code()))?;
    if let (true, HapStatus::Success, Some(at)) =
        (item.response, status, db.find(item.aid, item.iid))
    {
        w.raw(",\"value\":")?;
        render::value(w, db.definition(at), db.value(at))?;
    }
    w.raw("}")
}

impl Server<'_> {
    /// Whether the controller on `conn` is an admin.
    fn is_admin(&self, conn: &Connection<'_>) -> bool {
        conn.controller
            .as_ref()
            .and_then(|c| self.state.pairings.get(c.as_bytes()))
            .is_some_and(|p| p.admin)
    }

    /// Starts answering the request at the front of `conn`'s input. Requests that are
    /// malformed are answered (400) at once, and `None` is returned with the request
    /// still to be consumed.
    pub(super) fn start_job(
        &mut self,
        conn: &mut Connection<'_>,
        route: super::Route,
        now: Instant,
    ) -> Option<Job> {
        let arrival = Arrival {
            serial: self.next_serial,
            epoch: self.database.epoch(),
            deadline: now + self.config.read_timeout,
        };
        let prepared = conn.prepared;
        let limit = self.request_limit(conn);
        let parts = conn.split();
        let scratch_len = parts.scratch.len();
        let Ok(crate::http::Status::Complete(request)) = parse_request(parts.input, limit) else {
            return None;
        };
        let job = match route {
            super::Route::Accessories => Some(Job::Accessories(Stream::default())),
            super::Route::ReadCharacteristics => {
                ReadQuery::parse(request.query).ok().map(|query| {
                    let marked = query.count.min(scratch_len);
                    parts.scratch[..marked].fill(NOT_FAILED);
                    Job::Read {
                        arrival,
                        asked: 0,
                        answer: None,
                    }
                })
            }
            super::Route::WriteCharacteristics => match WriteBody::parse(request.body) {
                Ok(body) if body.count > scratch_len => {
                    conn.respond(
                        StatusCode::InternalServerError,
                        Some(content_type::HAP_JSON),
                        super::OUT_OF_RESOURCES,
                    );
                    return None;
                }
                Ok(body) => {
                    let timed = body.pid.map(|pid| {
                        prepared.is_some_and(|(prepared_pid, expires)| {
                            pid == prepared_pid && now <= expires
                        })
                    });
                    Some(Job::Write {
                        arrival,
                        applied: 0,
                        timed,
                        answer: None,
                    })
                }
                Err(_) => None,
            },
            _ => None,
        };
        if matches!(job, Some(Job::Read { .. } | Job::Write { .. })) {
            self.next_serial += 1;
        }
        match job {
            // A preparation serves one timed write, whatever its outcome.
            Some(Job::Write { timed: Some(_), .. }) => conn.prepared = None,
            Some(_) => {}
            None => conn.respond(StatusCode::BadRequest, None, b""),
        }
        job
    }

    /// Moves the job of `conn` along as far as it can go now.
    pub(super) fn drive_job(&mut self, conn: &mut Connection<'_>, now: Instant) -> Progress {
        let Some(mut job) = conn.job else {
            return Progress::Done;
        };
        let held = self.pending.len();
        let progress = match &mut job {
            Job::Accessories(stream) => self.stream_accessories(conn, stream),
            Job::Read {
                arrival,
                asked,
                answer,
            } => self.drive_read(conn, arrival.at(now), asked, answer),
            Job::Write {
                arrival,
                applied,
                timed,
                answer,
            } => self.drive_write(conn, arrival.at(now), applied, *timed, answer),
        };
        let (serial, waits) = match job {
            Job::Read {
                arrival, answer, ..
            } => (Some(arrival.serial), answer.is_none()),
            Job::Write {
                arrival, answer, ..
            } => (Some(arrival.serial), answer.is_none()),
            Job::Accessories(_) => (None, false),
        };
        if let Some(serial) = serial.filter(|_| progress == Progress::Done) {
            self.pending.forget(conn.id, serial, |_| true);
        }
        let id = conn.id;
        if let Some(peer) = self.peer(id) {
            peer.waits = progress == Progress::Waiting && waits;
        }
        if self.pending.len() < held {
            // Requests elsewhere may wait for the room this job made.
            self.wake_waiting();
        }
        conn.job = (progress == Progress::Waiting).then_some(job);
        progress
    }

    /// When the job of `conn` times out, if it waits for the application.
    pub(super) fn job_deadline(conn: &Connection<'_>) -> Option<Instant> {
        match conn.job? {
            Job::Read {
                arrival,
                answer: None,
                ..
            }
            | Job::Write {
                arrival,
                answer: None,
                ..
            } => Some(arrival.deadline),
            _ => None,
        }
    }

    fn stream_accessories(
        &self,
        conn: &mut Connection<'_>,
        stream: &mut Stream<AccessoriesCursor>,
    ) -> Progress {
        let db = &self.database;
        let parts = conn.split();
        let subs = &parts.subscriptions[..*parts.subscribed];
        let mut out = parts.out;
        let result = pump(&mut out, StatusCode::Ok, stream, |w, cursor| {
            render::accessories_piece(w, db, |slot| subscribed(subs, slot), cursor)
        });
        finish(conn, result)
    }

    fn drive_read(
        &mut self,
        conn: &mut Connection<'_>,
        moment: Moment,
        asked: &mut usize,
        answer: &mut Option<(StatusCode, Stream<usize>)>,
    ) -> Progress {
        let admin = self.is_admin(conn);
        let limit = self.request_limit(conn);
        let id = conn.id;
        let parts = conn.split();
        let Ok(crate::http::Status::Complete(request)) = parse_request(parts.input, limit) else {
            return Progress::Done;
        };
        let Ok(query) = ReadQuery::parse(request.query) else {
            return Progress::Done;
        };
        if answer.is_none() {
            // Answers come out of the table at once, which makes room for the rest of a
            // long request and for other connections.
            let fits = query.count <= parts.scratch.len();
            while let Some(entry) = self.pending.take_answered(id, moment.serial, !fits) {
                let failure = entry.answer.filter(|status| *status != HapStatus::Success);
                // A value answered its reads: the value's supply epoch tells.
                let Some(failure) = failure else { continue };
                for (index, ids) in query.ids().enumerate() {
                    if ids == (entry.at.aid, entry.iid) {
                        parts.scratch[index] = failure as u8;
                    }
                }
            }
            // Ask for the values on demand, once per characteristic, as event and table
            // room allow.
            for (index, (aid, iid)) in query.ids().enumerate().skip(*asked) {
                let db = &self.database;
                // Only a permitted read of a value on demand waits for the application,
                // and only until it is answered.
                let waits = read_status(db, aid, iid, admin, moment.epoch)
                    == HapStatus::OperationTimedOut
                    && !matches!(parts.scratch.get(index), Some(byte) if *byte != NOT_FAILED);
                let Some(place) = db.find(aid, iid).filter(|_| waits) else {
                    *asked += 1;
                    continue;
                };
                // A characteristic named again shares its first item's entry.
                if self
                    .pending
                    .find_read(id, moment.serial, place.slot)
                    .is_none()
                {
                    if parts.events.is_full() || !self.pending.has_room(id, 1) {
                        if moment.now < moment.deadline {
                            return Progress::Waiting;
                        }
                        // Too late to ask: the rest time out.
                        break;
                    }
                    let token = Token::new(id, moment.serial, index);
                    self.pending.insert(pending::Entry {
                        token,
                        item: index,
                        kind: pending::Kind::Read,
                        at: place,
                        iid,
                        subscription: HapStatus::Success,
                        ev: None,
                        told: true,
                        last: true,
                        answer: None,
                    });
                    // Room was checked above.
                    let _ = parts.events.push_back(Event::Read { token, aid, iid });
                }
                *asked += 1;
            }
            let waiting = *asked < query.count || self.pending.waits(id, moment.serial);
            if waiting && moment.now < moment.deadline {
                return Progress::Waiting;
            }
            // Unanswered reads time out.
            self.pending
                .forget(id, moment.serial, |e| e.answer.is_none());
            let db = &self.database;
            let answers = ReadAnswers {
                conn: id,
                moment,
                scratch: parts.scratch,
                table: &self.pending,
            };
            let multi = query.ids().enumerate().any(|(index, ids)| {
                item_read_status(db, answers, index, ids, admin) != HapStatus::Success
            });
            let status = if multi {
                StatusCode::MultiStatus
            } else {
                StatusCode::Ok
            };
            *answer = Some((status, Stream::default()));
        }
        let Some((status, stream)) = answer else {
            return Progress::Waiting;
        };
        let multi = *status == StatusCode::MultiStatus;
        let db = &self.database;
        let answers = ReadAnswers {
            conn: id,
            moment,
            scratch: parts.scratch,
            table: &self.pending,
        };
        let subs = &parts.subscriptions[..*parts.subscribed];
        let mut out = parts.out;
        let result = pump(&mut out, *status, stream, |w, index| {
            list_piece(w, query.count, index, |w, k| {
                // `parse` checked every id.
                let ids = query.id(k).ok_or(Full)?;
                let status = item_read_status(db, answers, k, ids, admin);
                read_item(w, db, subs, &query, ids, multi, status)
            })
        });
        finish(conn, result)
    }

    fn drive_write(
        &mut self,
        conn: &mut Connection<'_>,
        moment: Moment,
        applied: &mut usize,
        timed: Option<bool>,
        answer: &mut Option<Stream<usize>>,
    ) -> Progress {
        let admin = self.is_admin(conn);
        let limit = self.request_limit(conn);
        let id = conn.id;
        let Some(controller) = conn.controller.clone() else {
            return Progress::Done;
        };
        let parts = conn.split();
        let Ok(crate::http::Status::Complete(request)) = parse_request(parts.input, limit) else {
            return Progress::Done;
        };
        let Ok(body) = WriteBody::parse(request.body) else {
            return Progress::Done;
        };
        // Answers taken free the table for the items still to come.
        take_answers(
            &mut self.pending,
            &self.database,
            &mut parts.scratch[..*applied],
            (id, moment.serial),
            false,
            (parts.subscriptions, parts.subscribed),
        );
        // Items reserved already are told before any later item.
        if !tell(
            &mut self.pending,
            (id, moment.serial),
            parts.events,
            &controller,
        ) {
            return Progress::Waiting;
        }
        let mut changed = false;
        for item in body.items().skip(*applied) {
            if parts.events.is_full() {
                if changed {
                    self.wake_all();
                }
                return Progress::Waiting;
            }
            let index = *applied;
            if self.pending.find(id, moment.serial, index).is_some() {
                // Reserved with the first item of its chunk, and told.
                parts.scratch[index] = PENDING;
                *applied += 1;
                continue;
            }
            let checks = Checks {
                admin,
                timed: timed == Some(true),
            };
            let status = if timed == Some(false) {
                HapStatus::InvalidValueInRequest as u8
            } else {
                let context = WriteContext {
                    db: &mut self.database,
                    buttons: &mut self.buttons,
                    checks,
                    writer: id,
                    controller: &controller,
                };
                match context.apply(&item, parts.subscriptions, parts.subscribed, parts.events) {
                    Applied::Done { status, changed: c } => {
                        changed |= c;
                        status as u8
                    }
                    Applied::Confirm(_) if moment.now >= moment.deadline => {
                        HapStatus::OperationTimedOut as u8
                    }
                    Applied::Confirm(first) => {
                        // The chunk: this item and the accessory's later confirmed
                        // items, as many as one connection may hold.
                        let db = &self.database;
                        let mut chunk = heapless::Vec::<usize, PENDING_PER_CONNECTION>::new();
                        let _ = chunk.push(index);
                        for (later, other) in body.items().enumerate().skip(index + 1) {
                            if chunk.is_full() {
                                break;
                            }
                            if other.aid == item.aid && checks.confirmation(db, &other).is_some() {
                                let _ = chunk.push(later);
                            }
                        }
                        if !self.pending.has_room(id, chunk.len()) {
                            // Nothing is told until the whole chunk has room, so that its
                            // `last` always comes.
                            if changed {
                                self.wake_all();
                            }
                            return Progress::Waiting;
                        }
                        let token = Token::new(id, moment.serial, index);
                        let count = chunk.len();
                        for (n, k) in chunk.into_iter().enumerate() {
                            let reserved = if k == index {
                                Some(first.clone())
                            } else {
                                body.item(k)
                                    .and_then(|other| checks.confirmation(db, &other))
                            };
                            // `confirmation` passed for every item of the chunk.
                            let Some(reserved) = reserved else { continue };
                            self.pending.insert(pending::Entry {
                                token,
                                item: k,
                                kind: pending::Kind::Write(reserved.value),
                                at: reserved.at,
                                iid: reserved.iid,
                                subscription: reserved.subscription,
                                ev: reserved.ev,
                                told: false,
                                last: n + 1 == count,
                                answer: None,
                            });
                        }
                        tell(
                            &mut self.pending,
                            (id, moment.serial),
                            parts.events,
                            &controller,
                        );
                        PENDING
                    }
                }
            };
            parts.scratch[index] = status;
            *applied += 1;
        }
        if changed {
            self.wake_all();
        }
        let db = &self.database;
        if answer.is_none() {
            let statuses = &mut parts.scratch[..body.count];
            let expired = moment.now >= moment.deadline;
            let subscriptions = (&mut *parts.subscriptions, &mut *parts.subscribed);
            let table = &mut self.pending;
            if take_answers(
                table,
                db,
                statuses,
                (id, moment.serial),
                expired,
                subscriptions,
            ) {
                return Progress::Waiting;
            }
            // Write responses of control points wait for the application's answer.
            let awaits_answer = |item: &WriteItem<'_>, status: u8| {
                status == HapStatus::Success as u8
                    && item.response
                    && db.find(item.aid, item.iid).is_some_and(|at| {
                        db.definition(at).perms.contains(Perms::WRITE_RESPONSE)
                            && db.slot(at.slot).supplied <= moment.epoch
                    })
            };
            let statuses = &mut parts.scratch[..body.count];
            let waiting = body
                .items()
                .zip(statuses.iter())
                .any(|(item, status)| awaits_answer(&item, *status));
            if waiting && moment.now < moment.deadline {
                return Progress::Waiting;
            }
            // A confirmed write was committed: it stands, with the value stored.
            let committed = |item: &WriteItem<'_>| {
                db.find(item.aid, item.iid)
                    .is_some_and(|at| db.definition(at).confirm_writes)
            };
            for (item, status) in body.items().zip(statuses.iter_mut()) {
                if awaits_answer(&item, *status) && !committed(&item) {
                    *status = HapStatus::OperationTimedOut as u8;
                }
            }
            let all_plain = body
                .items()
                .zip(statuses.iter())
                .all(|(item, status)| *status == HapStatus::Success as u8 && !item.response);
            if all_plain {
                let mut out = parts.out;
                let result = out
                    .queue(&[b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"])
                    .map(|()| true);
                return finish(conn, result);
            }
            *answer = Some(Stream::default());
        }
        let Some(stream) = answer else {
            return Progress::Waiting;
        };
        let statuses = &parts.scratch[..body.count];
        let mut out = parts.out;
        let result = pump(&mut out, StatusCode::MultiStatus, stream, |w, index| {
            list_piece(w, body.count, index, |w, k| {
                // `parse` checked every item.
                let item = body.item(k).ok_or(Full)?;
                write_status_item(w, db, &item, HapStatus::from_byte(statuses[k]))
            })
        });
        finish(conn, result)
    }

    /// PUT `/prepare`: records a timed write's pid and expiry for this connection.
    pub(super) fn prepare(&self, conn: &mut Connection<'_>, body_len: usize, now: Instant) {
        match parse_prepare(&conn.buffers.scratch[..body_len]) {
            Ok((ttl, pid)) => {
                conn.prepared = Some((pid, now + core::time::Duration::from_millis(ttl)));
                conn.respond(
                    StatusCode::Ok,
                    Some(content_type::HAP_JSON),
                    b"{\"status\":0}",
                );
            }
            Err(_) => conn.respond(StatusCode::BadRequest, None, b""),
        }
    }
}

/// Ends a job: done when its response is complete, and a connection that cannot be
/// answered closes.
fn finish(conn: &mut Connection<'_>, result: Result<bool, ()>) -> Progress {
    match result {
        Ok(true) => Progress::Done,
        Ok(false) => Progress::Waiting,
        Err(()) => {
            conn.close(CloseReason::Resources);
            Progress::Done
        }
    }
}

/// Takes the application's answers to the confirmed items among `statuses`, a write
/// job's, into them, and removes their entries; once the job has `expired`, unanswered
/// items time out. A successful item's subscription change is made now, on the
/// connection's `subscriptions`. Returns whether any still waits.
fn take_answers(
    table: &mut pending::Table,
    db: &Database<'_>,
    statuses: &mut [u8],
    (conn, serial): (crate::ConnectionId, u64),
    expired: bool,
    (subscriptions, subscribed): (&mut [Subscription], &mut usize),
) -> bool {
    let mut waiting = false;
    for (index, status) in statuses.iter_mut().enumerate() {
        if *status != PENDING {
            continue;
        }
        match table.find(conn, serial, index) {
            Some(entry) => match entry.answer {
                Some(HapStatus::Success) => {
                    *status = match (entry.ev, entry.subscription) {
                        (Some(on), HapStatus::Success) => {
                            let version = db.slot(entry.at.slot).version;
                            let at = entry.at;
                            subscribe(subscriptions, subscribed, at, entry.iid, on, version) as u8
                        }
                        (_, subscription) => subscription as u8,
                    }
                }
                Some(answer) => *status = answer as u8,
                None if !expired => waiting = true,
                None => *status = HapStatus::OperationTimedOut as u8,
            },
            // Only a bug loses an entry; the value was not stored.
            None => *status = HapStatus::OperationTimedOut as u8,
        }
        if *status != PENDING {
            table.take(conn, serial, index);
        }
    }
    waiting
}

/// Gives the application the events of the reserved write items of request `serial` on
/// `conn` it has not had, in order, as `events` has room. Returns whether all are out.
fn tell(
    table: &mut pending::Table,
    (conn, serial): (crate::ConnectionId, u64),
    events: &mut heapless::Deque<Event, 4>,
    controller: &crate::pairing::PairingId,
) -> bool {
    for entry in table.untold(conn, serial) {
        let pending::Kind::Write(value) = &entry.kind else {
            entry.told = true;
            continue;
        };
        let event = Event::WriteRequest {
            token: entry.token,
            aid: entry.at.aid,
            iid: entry.iid,
            value: value.clone(),
            controller: controller.clone(),
            last: entry.last,
        };
        if events.push_back(event).is_err() {
            return false;
        }
        entry.told = true;
    }
    true
}

/// The checks a write item's value passes, as the request stands.
#[derive(Clone, Copy, Debug)]
struct Checks {
    admin: bool,
    /// Whether the write is timed, with a live preparation that matched.
    timed: bool,
}

impl Checks {
    /// Checks a written value against the characteristic at `at`, and returns it as
    /// stored, or the item's status.
    fn value(
        self,
        db: &Database<'_>,
        at: CharacteristicRef,
        token: JsonToken<'_>,
    ) -> Result<OwnedValue, HapStatus> {
        let def = db.definition(at);
        if def.kind.admin_only.contains(Perms::WRITE) && !self.admin {
            return Err(HapStatus::InsufficientPrivileges);
        }
        if !def.perms.contains(Perms::WRITE) {
            return Err(HapStatus::ReadOnlyCharacteristic);
        }
        if def.perms.contains(Perms::TIMED_WRITE) && !self.timed {
            return Err(HapStatus::InvalidValueInRequest);
        }
        // Escapes make a string shorter, never longer; the base64 of the longest TLV8
        // or data value is a third longer than the value (5,464 bytes of stack with
        // `alloc`, 344 without).
        let mut decoded = [0u8; max(STRING_CAPACITY, ENCODED_BYTES_CAPACITY)];
        scalar(token, &mut decoded)
            .and_then(|scalar| coerce(scalar, def.kind.format))
            .and_then(|value| def.constraints.check(&value))
            .and_then(|value| OwnedValue::from_value(&value))
            .map_err(|_| HapStatus::InvalidValueInRequest)
    }

    /// What `item` reserves if it writes a valid value to a confirmed characteristic,
    /// and so reaches the application.
    fn confirmation(self, db: &Database<'_>, item: &WriteItem<'_>) -> Option<Reserved> {
        let (Some(token), Some(at)) = (item.value, db.find(item.aid, item.iid)) else {
            return None;
        };
        let def = db.definition(at);
        if !def.confirm_writes {
            return None;
        }
        let value = self.value(db, at, token).ok()?;
        Some(Reserved {
            at,
            iid: item.iid,
            value,
            subscription: item
                .ev
                .map_or(HapStatus::Success, |_| self.ev_status(db, at)),
            ev: item.ev,
        })
    }

    /// The status of a subscription change to the characteristic at `at`, as far as it
    /// can be known before it is made.
    fn ev_status(self, db: &Database<'_>, at: CharacteristicRef) -> HapStatus {
        let def = db.definition(at);
        if def.kind.admin_only.contains(Perms::READ) && !self.admin {
            HapStatus::InsufficientPrivileges
        } else if !def.perms.contains(Perms::EVENTS) {
            HapStatus::NotificationNotSupported
        } else {
            HapStatus::Success
        }
    }
}

/// A confirmed write item's place in the pending table, before it is decided.
#[derive(Clone, Debug)]
struct Reserved {
    at: CharacteristicRef,
    iid: u64,
    value: OwnedValue,
    /// The status of its subscription change so far.
    subscription: HapStatus,
    /// Its subscription change, made only if the write succeeds.
    ev: Option<bool>,
}

/// What became of a write item.
// Short-lived, on the stack; without a heap there is nowhere to box the value.
#[allow(clippy::large_enum_variant)]
enum Applied {
    /// It is settled: stored if valid, and `changed` says whether its value changed.
    Done { status: HapStatus, changed: bool },
    /// It is valid, for a confirmed characteristic: the application decides, and its
    /// subscription change waits for the decision.
    Confirm(Reserved),
}

/// What applying one write item needs.
struct WriteContext<'a, 'd> {
    db: &'a mut Database<'d>,
    buttons: &'a mut super::events::ButtonLog,
    checks: Checks,
    writer: crate::ConnectionId,
    controller: &'a crate::pairing::PairingId,
}

impl WriteContext<'_, '_> {
    /// Applies a subscription change and, unless the characteristic is confirmed, a
    /// value (raising [`Event::Write`]).
    fn apply(
        self,
        item: &WriteItem<'_>,
        subscriptions: &mut [Subscription],
        subscribed: &mut usize,
        events: &mut heapless::Deque<Event, 4>,
    ) -> Applied {
        let done = |status| Applied::Done {
            status,
            changed: false,
        };
        let Some(at) = self.db.find(item.aid, item.iid) else {
            return done(HapStatus::ResourceDoesNotExist);
        };
        let def = *self.db.definition(at);
        if item.value.is_none() && item.ev.is_none() {
            return done(HapStatus::InvalidValueInRequest);
        }
        if def.confirm_writes && item.value.is_some() {
            // Its value and its subscription change stand or fall together.
            return match self.checks.confirmation(self.db, item) {
                Some(reserved) => Applied::Confirm(reserved),
                None => done(
                    item.value
                        .and_then(|token| self.checks.value(self.db, at, token).err())
                        .unwrap_or(HapStatus::InvalidValueInRequest),
                ),
            };
        }
        let mut status = HapStatus::Success;
        if let Some(ev) = item.ev {
            status = self.checks.ev_status(self.db, at);
            if status == HapStatus::Success {
                let version = self.db.slot(at.slot).version;
                status = subscribe(subscriptions, subscribed, at, item.iid, ev, version);
            }
        }
        let Some(token) = item.value else {
            return done(status);
        };
        let value = match self.checks.value(self.db, at, token) {
            Ok(value) => value,
            Err(status) => return done(status),
        };
        let changed = super::events::store(
            self.db,
            self.buttons,
            at,
            item.iid,
            value.clone(),
            Some(self.writer),
        );
        let event = Event::Write {
            aid: item.aid,
            iid: item.iid,
            value,
            controller: self.controller.clone(),
        };
        // The caller made room.
        let _ = events.push_back(event);
        Applied::Done { status, changed }
    }
}
