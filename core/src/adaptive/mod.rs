//! Adaptive Lighting: the Home app's curve of colour temperature through the day, run by
//! the accessory.
//!
//! A controller (the Home app, or a Home hub) reads the light's *Supported Characteristic
//! Value Transition Configuration* (which characteristics can follow a curve), then writes
//! a curve to *Characteristic Value Transition Control* with a write response. The
//! accessory then follows the curve on its own clock: every update interval it works out
//! the colour temperature for the time elapsed and the current brightness, sets
//! ColorTemperature, and tells subscribers at most once per notify interval. *Characteristic
//! Value Active Transition Count* says whether a transition runs (1) or not (0).
//!
//! The TLV8 formats and the behaviour follow HAP-NodeJS 1.2.0's
//! `AdaptiveLightingController`, the only open implementation; the recorded exchanges are
//! in `vectors/hap-nodejs-1.2.0/`.
//!
//! - [`codec`]: the TLV8 formats, parsed and written without a heap.
//! - [`AdaptiveLighting`]: the transition engine, sans-IO, driven by `now`.
//!
//! # The run loop
//!
//! [`AdaptiveLighting`] is one light's engine. It holds no clock: every call takes `now`
//! (the same [`Instant`](crate::time::Instant) the server gets) and the light's current
//! brightness. An adapter drives it like this (`hap_std::app` is one):
//!
//! 1. At start, set Supported Characteristic Value Transition Configuration to
//!    [`AdaptiveLighting::supported_configuration`], and give what was saved to
//!    [`AdaptiveLighting::restore`].
//! 2. A controller's write to Characteristic Value Transition Control goes to
//!    [`AdaptiveLighting::handle_control_write`], whose answer is the write response; a
//!    read of it is answered by [`AdaptiveLighting::control_value`].
//! 3. A controller's write to any characteristic of the light goes to
//!    [`AdaptiveLighting::handle_write`]: a manual colour ends the transition, a new
//!    brightness moves the colour temperature at once. A brightness the device sets
//!    itself goes to [`AdaptiveLighting::handle_brightness`], and unpairing to
//!    [`AdaptiveLighting::handle_unpaired`].
//! 4. Drain [`AdaptiveLighting::poll_output`]: set ColorTemperature as each
//!    [`AdaptiveOutput::Temperature`] says (telling subscribers only when `notify`), set
//!    the Active Transition Count, and store [`AdaptiveLighting::save`] on
//!    [`AdaptiveOutput::Save`].
//! 5. At [`AdaptiveLighting::poll_timeout`], call [`AdaptiveLighting::handle_timeout`]
//!    and drain again.
//!
//! # What it does, as HAP-NodeJS 1.2.0 does
//!
//! (`AdaptiveLightingController.js`, "ALC" below.)
//! - The curve is followed by the time elapsed since the controller's write, on the
//!   accessory's clock; the start time the controller sends is only echoed (ALC
//!   `getCurrentAdaptiveLightingTransitionPoint`).
//! - Between two points the colour temperature and the brightness factor are
//!   interpolated linearly, after the lower point's hold. The brightness, clamped to the
//!   curve's range, times the factor is added, the sum rounded half up, and the result
//!   clamped to ColorTemperature's limits (ALC `scheduleNextUpdate`).
//! - A step runs at once when the transition starts and then every update interval. A
//!   step is due to tell subscribers when the notify interval has passed since the last
//!   step that was due (the first is), and tells them only if the value differs from the
//!   last one told; the other steps set the value quietly. A new brightness recomputes
//!   at once, quietly.
//! - The transition ends when a controller writes ColorTemperature, Hue or Saturation
//!   (even with the same value), when a controller asks (an UPDATE without the start
//!   flag), at the first step after the curve's end, and when the accessory is unpaired
//!   ([`AdaptiveLighting::handle_unpaired`]). The Active Transition Count
//!   goes to 1 on each start and to 0 on each stop request or end.
//! - A transition survives a restart: [`AdaptiveLighting::save`] and
//!   [`AdaptiveLighting::restore`] carry it, with the wall-clock time it started, as
//!   HAP-NodeJS keeps its `activeTransition` in its controller storage and resumes it.
//!
//! Where this engine differs from HAP-NodeJS, on purpose:
//! - A request it cannot use fails alone with -70410 (Invalid Value in Request), and a
//!   running transition goes on. HAP-NodeJS ends the transition and answers -70402 on
//!   any error.
//! - Only ColorTemperature can follow a curve (the only one the light declares in its
//!   supported configuration); a request for another characteristic is refused.
//! - A ramp of zero length reaches its upper point at once; HAP-NodeJS computes 0/0 there
//!   and sets NaN.
//! - The update interval is at least [`MIN_UPDATE_INTERVAL`], so a controller cannot make
//!   the accessory spin.
//! - Hue and Saturation are not moved along with the colour temperature (HAP-NodeJS sets
//!   its cached values from a table); a light that has them gets the colour temperature
//!   only.

pub mod codec;
mod engine;
#[cfg(test)]
mod tests;

pub use engine::{
    AdaptiveLighting, AdaptiveOutput, ControlError, EndReason, LightCharacteristics, RestoreError,
    SetupError, MIN_UPDATE_INTERVAL,
};

/// The most points a curve holds. iOS sends about 42, for 24 hours.
pub const MAX_CURVE_POINTS: usize = 64;

/// The update interval a controller gets when it names none: 60 s, as HAP-NodeJS.
pub const DEFAULT_UPDATE_INTERVAL_MS: u32 = 60_000;

/// The parameters a controller gives a transition: its id and start time, echoed back in
/// every answer about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransitionParameters {
    /// The transition's id (16 bytes, a UUID).
    pub id: [u8; 16],
    /// When the controller started the transition: milliseconds since
    /// 2001-01-01T00:00:00Z on the controller's clock.
    pub start: u64,
    /// An 8-byte value iOS has sent since about 2021 (type 3), meaning unknown; echoed.
    pub extra: Option<[u8; 8]>,
}

/// One point of a curve: a colour temperature, how brightness bends it, and when it is
/// reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint {
    /// The colour temperature, in mired.
    pub temperature: f32,
    /// Mired added per percent of brightness (negative: brighter is cooler).
    pub brightness_factor: f32,
    /// How long the ramp from the previous point to this one takes, in milliseconds.
    pub transition_ms: u32,
    /// How long this point is held, once reached, before the ramp to the next one starts,
    /// in milliseconds (0: not held).
    ///
    /// On the wire the hold comes on the *next* point; HAP-NodeJS moves it back one
    /// point when it reads a curve and forward when it writes one, and so does
    /// [`codec`].
    pub hold_ms: u32,
}

/// A curve: its points, and the brightness that adjusts it.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// The points, in order of time.
    pub points: heapless::Vec<CurvePoint, MAX_CURVE_POINTS>,
    /// The iid of the characteristic whose value adjusts the curve (Brightness).
    pub brightness_iid: u64,
    /// The brightness is clamped to this range before adjusting: `(min, max)`.
    pub brightness_range: (u32, u32),
}

/// A transition as a controller configures it.
#[derive(Clone, Debug, PartialEq)]
pub struct TransitionConfig {
    /// The characteristic that follows the curve (ColorTemperature).
    pub iid: u64,
    /// Id and start time.
    pub parameters: TransitionParameters,
    /// The curve.
    pub curve: Curve,
    /// How often the value is worked out again, in milliseconds
    /// ([`DEFAULT_UPDATE_INTERVAL_MS`] when the controller names none).
    pub update_interval_ms: u32,
    /// The least time between two events for the value, in milliseconds.
    pub notify_interval_ms: u32,
}

/// What a controller asks of a transition in an UPDATE.
// Without a heap there is nowhere to box the configuration; an UPDATE is one per write.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// Start (or replace) a transition.
    Start(TransitionConfig),
    /// Stop the transition of characteristic `iid`.
    Stop {
        /// The characteristic.
        iid: u64,
    },
}

/// A write to Characteristic Value Transition Control: a READ of the configuration of one
/// characteristic's transition, an UPDATE, or both (answered in that order).
#[derive(Clone, Debug, PartialEq)]
pub struct ControlRequest {
    /// READ: the characteristic whose transition the controller wants back.
    pub read: Option<u64>,
    /// UPDATE: start or stop.
    pub update: Option<Update>,
}
