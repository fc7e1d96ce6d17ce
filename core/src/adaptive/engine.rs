//! The transition engine; its documentation is the [module's](super).

use core::time::Duration;

use heapless::Deque;

use super::codec::{self, CodecError};
use super::{ControlRequest, CurvePoint, TransitionConfig, Update};
use crate::catalog::characteristic as c;
use crate::catalog::CharacteristicType;
use crate::database::{Database, Entry};
use crate::status::HapStatus;
use crate::time::Instant;

/// The shortest update interval followed; a controller asking for less gets this.
pub const MIN_UPDATE_INTERVAL: Duration = Duration::from_secs(1);

/// How many outputs one call can leave: a start that ends at once leaves five.
const OUTPUT_CAPACITY: usize = 8;

/// The characteristics of a light's service that Adaptive Lighting uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LightCharacteristics {
    /// The accessory.
    pub aid: u64,
    /// Brightness: it adjusts the curve.
    pub brightness: u64,
    /// ColorTemperature: it follows the curve.
    pub temperature: u64,
    /// Hue, if the light has it: a controller's write ends the transition.
    pub hue: Option<u64>,
    /// Saturation, if the light has it: a controller's write ends the transition.
    pub saturation: Option<u64>,
    /// Supported Characteristic Value Transition Configuration.
    pub supported_configuration: u64,
    /// Characteristic Value Transition Control.
    pub control: u64,
    /// Characteristic Value Active Transition Count.
    pub active_count: u64,
    /// ColorTemperature's limits in mired, `(min, max)`: each value is clamped to them.
    pub temperature_range: (u32, u32),
}

/// Why [`LightCharacteristics::find`] found no light to run Adaptive Lighting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupError {
    /// The accessory has no service with that iid.
    NoSuchService {
        /// The accessory.
        aid: u64,
        /// The service's iid.
        service: u64,
    },
    /// The service lacks a characteristic Adaptive Lighting needs; its name.
    Missing(&'static str),
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::NoSuchService { aid, service } => {
                write!(f, "accessory {aid} has no service {service}")
            }
            SetupError::Missing(name) => write!(
                f,
                "the light's service has no {name} characteristic, which Adaptive Lighting needs"
            ),
        }
    }
}

impl core::error::Error for SetupError {}

impl LightCharacteristics {
    /// Finds them in the service with iid `service` of accessory `aid`: Brightness,
    /// ColorTemperature and the three Adaptive Lighting characteristics are required,
    /// Hue and Saturation optional. ColorTemperature's limits are its own (narrowed or
    /// the catalog's 140–500 mired).
    pub fn find(database: &Database<'_>, aid: u64, service: u64) -> Result<Self, SetupError> {
        let mut current = None;
        let mut in_service = false;
        let mut found = false;
        let mut iids = [None; 7];
        let kinds: [&CharacteristicType; 7] = [
            &c::BRIGHTNESS,
            &c::COLOR_TEMPERATURE,
            &c::HUE,
            &c::SATURATION,
            &c::SUPPORTED_CHARACTERISTIC_VALUE_TRANSITION_CONFIGURATION,
            &c::CHARACTERISTIC_VALUE_TRANSITION_CONTROL,
            &c::CHARACTERISTIC_VALUE_ACTIVE_TRANSITION_COUNT,
        ];
        let mut range = (140, 500);
        for entry in database.entries() {
            match entry {
                Entry::Accessory(a) => {
                    current = Some(*a);
                    in_service = false;
                }
                Entry::Service(s) => {
                    in_service = current == Some(aid) && s.iid == service;
                    found |= in_service;
                }
                Entry::Characteristic(def) if in_service => {
                    let Some(index) = kinds.iter().position(|k| k.uuid == def.kind.uuid) else {
                        continue;
                    };
                    iids[index] = Some(def.iid);
                    if index == 1 {
                        let limit = |v: Option<f64>, default: u32| {
                            v.map_or(default, |v| v.clamp(0.0, f64::from(u32::MAX)) as u32)
                        };
                        range = (
                            limit(def.constraints.min_value, 140),
                            limit(def.constraints.max_value, 500),
                        );
                    }
                }
                Entry::Characteristic(_) => {}
            }
        }
        if !found {
            return Err(SetupError::NoSuchService { aid, service });
        }
        let need = |index: usize| iids[index].ok_or(SetupError::Missing(kinds[index].name));
        Ok(Self {
            aid,
            brightness: need(0)?,
            temperature: need(1)?,
            hue: iids[2],
            saturation: iids[3],
            supported_configuration: need(4)?,
            control: need(5)?,
            active_count: need(6)?,
            temperature_range: range,
        })
    }
}

/// What the adapter does next; see the [module docs](super).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdaptiveOutput {
    /// Set ColorTemperature to `mired`. With `notify`, subscribers are told even if the
    /// stored value is the same (it was set quietly before); without, it is stored
    /// without an event.
    Temperature {
        /// The colour temperature, in mired, within the characteristic's limits.
        mired: u32,
        /// Whether to send subscribers an event.
        notify: bool,
    },
    /// Set Characteristic Value Active Transition Count to this (1 running, 0 not).
    ActiveCount(u8),
    /// A transition started or ended: store [`AdaptiveLighting::save`] (empty when none
    /// runs: forget what was stored).
    Save,
    /// The transition ended.
    Ended(EndReason),
}

/// Why a transition ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// A controller asked to stop it.
    Requested,
    /// A controller wrote ColorTemperature, Hue or Saturation.
    ManualWrite,
    /// The curve ran out.
    CurveEnded,
    /// The accessory was unpaired: the transition belonged to the home it left.
    Unpaired,
}

/// Why a write to Characteristic Value Transition Control failed. The transition, if one
/// runs, runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlError {
    /// The value is not a request this engine reads.
    Codec(CodecError),
    /// The request names a characteristic that cannot follow a curve here (only
    /// ColorTemperature can).
    UnsupportedCharacteristic(u64),
    /// The answer does not fit the buffer given.
    AnswerTooLong,
}

impl ControlError {
    /// The HAP status to fail the write with.
    pub fn status(&self) -> HapStatus {
        match self {
            ControlError::Codec(_) | ControlError::UnsupportedCharacteristic(_) => {
                HapStatus::InvalidValueInRequest
            }
            ControlError::AnswerTooLong => HapStatus::OutOfResources,
        }
    }
}

impl core::fmt::Display for ControlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ControlError::Codec(e) => write!(f, "unreadable transition control request: {e}"),
            ControlError::UnsupportedCharacteristic(iid) => write!(
                f,
                "characteristic {iid} cannot follow a transition (only ColorTemperature can)"
            ),
            ControlError::AnswerTooLong => f.write_str("the answer does not fit the buffer"),
        }
    }
}

impl core::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ControlError::Codec(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CodecError> for ControlError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::BufferTooSmall { .. } => ControlError::AnswerTooLong,
            e => ControlError::Codec(e),
        }
    }
}

/// Why [`AdaptiveLighting::restore`] could not resume a saved transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// The saved bytes are not a saved transition.
    Unreadable,
    /// The saved transition is for another characteristic than this light's
    /// ColorTemperature (the accessory's shape changed).
    OtherCharacteristic,
}

impl core::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RestoreError::Unreadable => f.write_str("the saved transition is unreadable"),
            RestoreError::OtherCharacteristic => {
                f.write_str("the saved transition is for another characteristic")
            }
        }
    }
}

impl core::error::Error for RestoreError {}

/// A running transition.
#[derive(Clone, Debug)]
struct Active {
    config: TransitionConfig,
    /// The curve time at `origin`: zero when a controller started it, the time already
    /// elapsed when it was restored.
    base_ms: u64,
    origin: Instant,
    next_step: Instant,
}

impl Active {
    /// Milliseconds into the curve at `now`.
    fn elapsed(&self, now: Instant) -> u64 {
        let since = now.as_millis().saturating_sub(self.origin.as_millis());
        self.base_ms.saturating_add(since)
    }

    fn update_interval(&self) -> Duration {
        Duration::from_millis(self.config.update_interval_ms.into()).max(MIN_UPDATE_INTERVAL)
    }
}

/// One light's Adaptive Lighting; see the [module docs](super).
#[derive(Clone, Debug)]
pub struct AdaptiveLighting {
    light: LightCharacteristics,
    active: Option<Active>,
    /// When subscribers were last told, and what: kept across a renewal, forgotten when
    /// a transition ends (as HAP-NodeJS).
    last_event: Option<Instant>,
    last_notified: Option<u32>,
    outputs: Deque<AdaptiveOutput, OUTPUT_CAPACITY>,
}

/// The saved form's items (see [`AdaptiveLighting::save`]).
const SAVED_CONFIGURATION: u8 = 1;
const SAVED_WALL_START: u8 = 2;

impl AdaptiveLighting {
    /// An engine for `light`, with no transition running.
    pub fn new(light: LightCharacteristics) -> Self {
        Self {
            light,
            active: None,
            last_event: None,
            last_notified: None,
            outputs: Deque::new(),
        }
    }

    /// The light's characteristics.
    pub fn light(&self) -> &LightCharacteristics {
        &self.light
    }

    /// The running transition, if any.
    pub fn transition(&self) -> Option<&TransitionConfig> {
        self.active.as_ref().map(|active| &active.config)
    }

    /// Characteristic Value Active Transition Count: 1 while a transition runs, else 0.
    pub fn active_count(&self) -> u8 {
        u8::from(self.active.is_some())
    }

    /// The value of Supported Characteristic Value Transition Configuration:
    /// ColorTemperature, adjusted by Brightness.
    pub fn supported_configuration<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], CodecError> {
        let len = codec::write_supported_configuration(
            self.light.brightness,
            self.light.temperature,
            out,
        )?;
        Ok(&out[..len])
    }

    /// The value of Characteristic Value Transition Control when a controller reads it:
    /// the running transition's id, start and time elapsed, or nothing.
    pub fn control_value<'o>(
        &self,
        now: Instant,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], CodecError> {
        let len = match &self.active {
            Some(active) => codec::write_status(
                active.config.iid,
                &active.config.parameters,
                active.elapsed(now),
                out,
            )?,
            None => 0,
        };
        Ok(&out[..len])
    }

    /// Handles a controller's write to Characteristic Value Transition Control (its TLV8
    /// bytes) and returns the write response: the answer to a READ, then to an UPDATE.
    /// `brightness` is the light's current Brightness, for the first step of a new
    /// transition. Drain [`AdaptiveLighting::poll_output`] afterwards.
    ///
    /// On an error nothing changes: the write fails with [`ControlError::status`].
    pub fn handle_control_write<'o>(
        &mut self,
        value: &[u8],
        brightness: i32,
        now: Instant,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], ControlError> {
        let ControlRequest { read, update } = codec::parse_control(value)?;
        let supported = |iid: u64| {
            if iid == self.light.temperature {
                Ok(())
            } else {
                Err(ControlError::UnsupportedCharacteristic(iid))
            }
        };
        if let Some(iid) = read {
            supported(iid)?;
        }
        match &update {
            Some(Update::Start(config)) => supported(config.iid)?,
            Some(Update::Stop { iid }) => supported(*iid)?,
            None => {}
        }
        let mut len = match read {
            Some(_) => codec::write_read_answer(self.transition(), out)?,
            None => 0,
        };
        let rest = out.get_mut(len..).ok_or(ControlError::AnswerTooLong)?;
        match update {
            Some(Update::Start(config)) => {
                len += codec::write_update_answer(Some((config.iid, &config.parameters)), rest)?;
                self.start(config, 0, brightness, now);
            }
            Some(Update::Stop { .. }) => {
                len += codec::write_update_answer(None, rest)?;
                self.stop(EndReason::Requested);
            }
            None => {}
        }
        Ok(&out[..len])
    }

    /// Tells the engine that a controller wrote characteristic `iid` of the light (any,
    /// with the new `brightness`): a write of ColorTemperature, Hue or Saturation ends
    /// the transition, and a write of Brightness moves the colour temperature at once.
    /// Returns whether the write ended a transition.
    pub fn handle_write(&mut self, iid: u64, brightness: i32, now: Instant) -> bool {
        if self.active.is_none() {
            return false;
        }
        let light = self.light;
        if iid == light.temperature || Some(iid) == light.hue || Some(iid) == light.saturation {
            self.stop(EndReason::ManualWrite);
            return true;
        }
        if iid == light.brightness {
            self.handle_brightness(brightness, now);
        }
        false
    }

    /// The light's brightness changed (from a controller or from the device): the colour
    /// temperature moves at once, quietly, as HAP-NodeJS's dry run.
    pub fn handle_brightness(&mut self, brightness: i32, now: Instant) {
        self.step(now, brightness, false);
    }

    /// The accessory was unpaired (its last admin removed): the transition ends, as
    /// HAP-NodeJS ends it on a factory reset, so that the next home does not inherit it.
    pub fn handle_unpaired(&mut self) {
        if self.active.is_some() {
            self.stop(EndReason::Unpaired);
        }
    }

    /// When [`AdaptiveLighting::handle_timeout`] is due next, if a transition runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.active.as_ref().map(|active| active.next_step)
    }

    /// Runs a step if one is due at `now`, with the light's current `brightness`.
    pub fn handle_timeout(&mut self, now: Instant, brightness: i32) {
        if self.poll_timeout().is_some_and(|due| due <= now) {
            self.step(now, brightness, true);
        }
    }

    /// The next thing to do, or `None`.
    pub fn poll_output(&mut self) -> Option<AdaptiveOutput> {
        self.outputs.pop_front()
    }

    /// The running transition in a form to store, to [`AdaptiveLighting::restore`] after
    /// a restart: its configuration and the wall-clock time its curve started
    /// (`wall_ms`, the time now in milliseconds since the Unix epoch, minus the time
    /// elapsed). Empty when none runs.
    pub fn save<'o>(
        &self,
        now: Instant,
        wall_ms: u64,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], CodecError> {
        let Some(active) = &self.active else {
            return Ok(&out[..0]);
        };
        let mut configuration = [0u8; SAVED_CONFIGURATION_LEN];
        let configuration_len = codec::write_configuration(&active.config, &mut configuration)?;
        let started = wall_ms.saturating_sub(active.elapsed(now));
        let mut writer = crate::tlv::TlvWriter::new(out);
        writer
            .item(SAVED_CONFIGURATION, &configuration[..configuration_len])
            .and_then(|w| w.item(SAVED_WALL_START, &started.to_le_bytes()))
            .map_err(|_| CodecError::BufferTooSmall {
                required: crate::tlv::encoded_len(configuration_len) + 10,
            })?;
        let len = writer.len();
        Ok(&out[..len])
    }

    /// Resumes a transition from what [`AdaptiveLighting::save`] stored, at the point of
    /// its curve that the wall clock says (`wall_ms`, milliseconds since the Unix epoch;
    /// a clock set before the saved start resumes at the curve's start). Runs a step at once, with the light's `brightness`: a curve that ran out
    /// while the accessory was off ends then. Empty bytes restore nothing.
    pub fn restore(
        &mut self,
        saved: &[u8],
        brightness: i32,
        now: Instant,
        wall_ms: u64,
    ) -> Result<(), RestoreError> {
        if saved.is_empty() {
            return Ok(());
        }
        let tlv = crate::tlv::Tlv::parse(saved).map_err(|_| RestoreError::Unreadable)?;
        let started = tlv
            .get(SAVED_WALL_START)
            .and_then(|item| item.to_array::<8>())
            .map(u64::from_le_bytes)
            .ok_or(RestoreError::Unreadable)?;
        let mut configuration = [0u8; SAVED_CONFIGURATION_LEN];
        let configuration = tlv
            .get(SAVED_CONFIGURATION)
            .and_then(|item| item.copy_to(&mut configuration).ok())
            .ok_or(RestoreError::Unreadable)?;
        let Ok(Update::Start(config)) = codec::parse_configuration(configuration) else {
            return Err(RestoreError::Unreadable);
        };
        if config.iid != self.light.temperature {
            return Err(RestoreError::OtherCharacteristic);
        }
        self.start(config, wall_ms.saturating_sub(started), brightness, now);
        Ok(())
    }

    /// Starts (or renews) a transition `elapsed_ms` into its curve, and runs its first
    /// step.
    fn start(&mut self, config: TransitionConfig, elapsed_ms: u64, brightness: i32, now: Instant) {
        self.active = Some(Active {
            config,
            base_ms: elapsed_ms,
            origin: now,
            next_step: now,
        });
        self.push(AdaptiveOutput::ActiveCount(1));
        self.push(AdaptiveOutput::Save);
        self.step(now, brightness, true);
    }

    /// Ends the transition, if one runs; the count goes to 0 either way, as HAP-NodeJS
    /// tells it on every stop.
    fn stop(&mut self, reason: EndReason) {
        let was_active = self.active.take().is_some();
        self.last_event = None;
        self.last_notified = None;
        self.push(AdaptiveOutput::ActiveCount(0));
        if was_active {
            self.push(AdaptiveOutput::Save);
            self.push(AdaptiveOutput::Ended(reason));
        }
    }

    /// Works out the colour temperature at `now`. A `scheduled` step may tell
    /// subscribers, ends the transition past the curve's end, and sets the next step; an
    /// unscheduled one (a new brightness) only sets the value quietly.
    fn step(&mut self, now: Instant, brightness: i32, scheduled: bool) {
        let Some(active) = &mut self.active else {
            return;
        };
        let config = &active.config;
        let Some((temperature, factor)) = point_at(&config.curve.points, active.elapsed(now))
        else {
            if scheduled {
                self.stop(EndReason::CurveEnded);
            }
            return;
        };
        let (low, high) = config.curve.brightness_range;
        let adjustment = f64::from(brightness).clamp(f64::from(low.min(high)), f64::from(high));
        let (min, max) = self.light.temperature_range;
        let mired = round_half_up(temperature + factor * adjustment)
            .clamp(i64::from(min), i64::from(max.max(min))) as u32;
        let mut notify = false;
        if scheduled {
            let interval = Duration::from_millis(config.notify_interval_ms.into());
            let due = self
                .last_event
                .is_none_or(|at| now.saturating_duration_since(at) >= interval);
            if due {
                self.last_event = Some(now);
                notify = self.last_notified != Some(mired);
                if notify {
                    self.last_notified = Some(mired);
                }
            }
            active.next_step = now + active.update_interval();
        }
        self.push(AdaptiveOutput::Temperature { mired, notify });
    }

    fn push(&mut self, output: AdaptiveOutput) {
        if self.outputs.is_full() {
            // Only a caller that never drains gets here; the newest matter most.
            self.outputs.pop_front();
        }
        let _ = self.outputs.push_back(output);
    }
}

/// Room for a saved configuration: a curve of [`super::MAX_CURVE_POINTS`] points of at
/// most 32 bytes each, and the rest.
const SAVED_CONFIGURATION_LEN: usize = super::MAX_CURVE_POINTS * 32 + 128;

/// The colour temperature (mired) and brightness factor `elapsed_ms` into the curve, or
/// `None` past its end (or before its first point is reached).
///
/// Point `i` is reached when the ramps up to it and the holds before it have passed. The
/// segment from point `i` to `i + 1` covers point `i`'s hold and the ramp to `i + 1`; the
/// first segment that covers the time wins (ALC
/// `getCurrentAdaptiveLightingTransitionPoint`, without its cache, which finds the same).
pub(crate) fn point_at(points: &[CurvePoint], elapsed_ms: u64) -> Option<(f64, f64)> {
    let mut reached: u64 = 0;
    for pair in points.windows(2) {
        let (lower, upper) = (&pair[0], &pair[1]);
        reached = reached.saturating_add(lower.transition_ms.into());
        let hold = u64::from(lower.hold_ms);
        let end = reached
            .saturating_add(hold)
            .saturating_add(upper.transition_ms.into());
        if (reached..=end).contains(&elapsed_ms) {
            let into = elapsed_ms - reached;
            if hold > 0 && into <= hold {
                return Some((lower.temperature.into(), lower.brightness_factor.into()));
            }
            let ramp = upper.transition_ms;
            let share = if ramp == 0 {
                1.0
            } else {
                (into - hold) as f64 / f64::from(ramp)
            };
            let lerp =
                |from: f32, to: f32| f64::from(from) + (f64::from(to) - f64::from(from)) * share;
            return Some((
                lerp(lower.temperature, upper.temperature),
                lerp(lower.brightness_factor, upper.brightness_factor),
            ));
        }
        reached = reached.saturating_add(hold);
    }
    None
}

/// JavaScript's `Math.round`: the nearest integer, halves up. (No `f64::floor` without
/// `std`.)
fn round_half_up(value: f64) -> i64 {
    let shifted = value + 0.5;
    // `as` saturates, and maps NaN to 0.
    let truncated = shifted as i64;
    if (truncated as f64) > shifted {
        truncated - 1
    } else {
        truncated
    }
}
