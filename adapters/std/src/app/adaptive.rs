//! Adaptive Lighting on the application's loop: [`hap_core::adaptive`]'s engine bound to
//! the server, the clock, and a file in `--data`.
//!
//! The engine decides everything; this only carries: a controller's writes and reads of
//! the light to it, its outputs to the server (ColorTemperature quietly or with an
//! event, the Active Transition Count), its timeouts to the loop's, and its saved
//! transition to `adaptive-lighting-AID-IID.tlv8` in `--data`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hap_core::adaptive::{AdaptiveLighting, AdaptiveOutput, EndReason, LightCharacteristics};
use hap_core::database::bytes::BYTES_CAPACITY;
use hap_core::database::OwnedValue;
use hap_core::status::HapStatus;
use hap_core::time::Instant as CoreInstant;

use super::Backend;

/// One light's Adaptive Lighting, as the application loop runs it.
pub(crate) struct AdaptiveLight {
    engine: AdaptiveLighting,
    /// Where the running transition is kept across restarts, if anywhere.
    file: Option<PathBuf>,
    /// The core's clock starts here.
    epoch: Instant,
    /// Whether "Adaptive Lighting started" was printed for the running transition.
    announced: bool,
}

/// What a step changed, for the application's change handlers: `(aid, iid, value)`.
pub(crate) type Changes = Vec<(u64, u64, OwnedValue)>;

impl AdaptiveLight {
    /// The light `light`, keeping its transition in `data` (if given).
    pub(crate) fn new(light: LightCharacteristics, data: Option<&std::path::Path>) -> Self {
        let file = data.map(|dir| {
            dir.join(format!(
                "adaptive-lighting-{}-{}.tlv8",
                light.aid, light.temperature
            ))
        });
        Self {
            engine: AdaptiveLighting::new(light),
            file,
            epoch: Instant::now(),
            announced: false,
        }
    }

    pub(crate) fn light(&self) -> &LightCharacteristics {
        self.engine.light()
    }

    /// Whether `aid`.`iid` is this light's Characteristic Value Transition Control.
    pub(crate) fn controls(&self, aid: u64, iid: u64) -> bool {
        let light = self.light();
        light.aid == aid && light.control == iid
    }

    /// Whether `aid`.`iid` is this light's ColorTemperature.
    pub(crate) fn is_temperature(&self, aid: u64, iid: u64) -> bool {
        let light = self.light();
        light.aid == aid && light.temperature == iid
    }

    fn now(&self) -> CoreInstant {
        let millis = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        CoreInstant::from_millis(millis)
    }

    fn brightness(&self, backend: &dyn Backend) -> i32 {
        let light = self.light();
        match backend.value(light.aid, light.brightness) {
            Some(OwnedValue::Int(value)) => value,
            Some(OwnedValue::Float(value)) => value as i32,
            Some(OwnedValue::Uint8(value)) => value.into(),
            _ => 100,
        }
    }

    /// Resumes the transition saved in `--data`, if one is.
    pub(crate) fn start(&mut self, backend: &dyn Backend) -> Changes {
        let saved = match &self.file {
            Some(file) => match std::fs::read(file) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    log::warn!("Adaptive Lighting: cannot read {}: {e}", file.display());
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let (brightness, now) = (self.brightness(backend), self.now());
        match self.engine.restore(&saved, brightness, now, wall_ms()) {
            Ok(()) if !saved.is_empty() => {
                println!("Adaptive Lighting resumed");
                self.announced = true;
            }
            Ok(()) => {}
            Err(e) => log::warn!("Adaptive Lighting: not resumed: {e}"),
        }
        self.apply(backend)
    }

    /// Supported Characteristic Value Transition Configuration: its iid and value.
    pub(crate) fn supported_configuration(&self) -> (u64, OwnedValue) {
        let mut out = [0u8; 64];
        let bytes = self.engine.supported_configuration(&mut out).unwrap_or(&[]);
        let value = OwnedValue::tlv8(bytes).unwrap_or(OwnedValue::Tlv8(Default::default()));
        (self.light().supported_configuration, value)
    }

    /// A controller's write to Characteristic Value Transition Control: the write
    /// response, or the status to fail the write with.
    pub(crate) fn control_write(
        &mut self,
        value: &OwnedValue,
        backend: &dyn Backend,
    ) -> (Result<OwnedValue, HapStatus>, Changes) {
        let OwnedValue::Tlv8(request) = value else {
            return (Err(HapStatus::InvalidValueInRequest), Vec::new());
        };
        let (brightness, now) = (self.brightness(backend), self.now());
        let mut answer = [0u8; BYTES_CAPACITY];
        let result =
            match self
                .engine
                .handle_control_write(request.as_slice(), brightness, now, &mut answer)
            {
                Ok(answer) => OwnedValue::tlv8(answer).ok_or(HapStatus::OutOfResources),
                Err(e) => {
                    log::info!("Adaptive Lighting: refused a transition control write: {e}");
                    Err(e.status())
                }
            };
        (result, self.apply(backend))
    }

    /// A controller's read of Characteristic Value Transition Control: the running
    /// transition, with the time since it started.
    pub(crate) fn read(&self) -> Result<OwnedValue, HapStatus> {
        let mut out = [0u8; BYTES_CAPACITY];
        let value = self.engine.control_value(self.now(), &mut out);
        value
            .ok()
            .and_then(OwnedValue::tlv8)
            .ok_or(HapStatus::OutOfResources)
    }

    /// A controller wrote `value` to `aid`.`iid`: a colour ends the transition, a
    /// brightness moves it.
    pub(crate) fn written(
        &mut self,
        aid: u64,
        iid: u64,
        value: &OwnedValue,
        backend: &dyn Backend,
    ) -> Changes {
        if aid != self.light().aid {
            return Vec::new();
        }
        let (brightness, now) = (self.brightness(backend), self.now());
        if self.engine.handle_write(iid, brightness, now) && iid == self.light().temperature {
            // A step that ran while the write was stored may have overwritten it quietly:
            // the controller's value stands. (Only then is it a change, told to every
            // subscriber, the writer too: harmless.)
            let _ = backend.set_value(aid, iid, value.clone());
        }
        self.apply(backend)
    }

    /// The device changed `aid`.`iid` itself: a new brightness moves the colour
    /// temperature at once, as a controller's write of it does.
    pub(crate) fn device_set(&mut self, aid: u64, iid: u64, backend: &dyn Backend) -> Changes {
        let light = self.light();
        if light.aid != aid || light.brightness != iid {
            return Vec::new();
        }
        let (brightness, now) = (self.brightness(backend), self.now());
        self.engine.handle_brightness(brightness, now);
        self.apply(backend)
    }

    /// The accessory was unpaired: the transition ends with the home it belonged to.
    pub(crate) fn unpaired(&mut self, backend: &dyn Backend) -> Changes {
        self.engine.handle_unpaired();
        self.apply(backend)
    }

    /// When the next step is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let due = self.engine.poll_timeout()?;
        Some(self.epoch + Duration::from_millis(due.as_millis()))
    }

    /// Runs the step due, if any.
    pub(crate) fn run_due(&mut self, backend: &dyn Backend) -> Changes {
        let (brightness, now) = (self.brightness(backend), self.now());
        self.engine.handle_timeout(now, brightness);
        self.apply(backend)
    }

    /// Carries the engine's outputs out; returns the changes of ColorTemperature.
    fn apply(&mut self, backend: &dyn Backend) -> Changes {
        let light = *self.light();
        let mut changes = Vec::new();
        while let Some(output) = self.engine.poll_output() {
            match output {
                AdaptiveOutput::Temperature { mired, notify } => {
                    let value = OwnedValue::Int(i32::try_from(mired).unwrap_or(i32::MAX));
                    let set =
                        backend.set_value_quietly(light.aid, light.temperature, value.clone());
                    let told = if notify {
                        backend.notify(light.aid, light.temperature)
                    } else {
                        Ok(())
                    };
                    match (set, told) {
                        (Ok(changed), Ok(())) => {
                            if changed {
                                changes.push((light.aid, light.temperature, value));
                            }
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            log::warn!("Adaptive Lighting: cannot set the colour temperature: {e}");
                        }
                    }
                }
                AdaptiveOutput::ActiveCount(count) => {
                    let value = OwnedValue::Uint8(count);
                    if let Err(e) = backend.set_value(light.aid, light.active_count, value) {
                        log::warn!(
                            "Adaptive Lighting: cannot set the active transition count: {e}"
                        );
                    }
                }
                AdaptiveOutput::Save => {
                    if self.engine.active_count() > 0 && !self.announced {
                        println!("Adaptive Lighting started");
                        self.announced = true;
                    }
                    self.save();
                }
                AdaptiveOutput::Ended(reason) => {
                    self.announced = false;
                    println!(
                        "Adaptive Lighting ended: {}",
                        match reason {
                            EndReason::Requested => "the controller turned it off",
                            EndReason::ManualWrite => "the colour was set by hand",
                            EndReason::CurveEnded => "the curve ran out",
                            EndReason::Unpaired => "the accessory was unpaired",
                            _ => "for another reason",
                        }
                    );
                }
                other => log::debug!("Adaptive Lighting: ignored {other:?}"),
            }
        }
        changes
    }

    /// Stores the running transition, or removes what was stored when none runs.
    fn save(&self) {
        let Some(file) = &self.file else {
            return;
        };
        let mut out = [0u8; BYTES_CAPACITY];
        let result = match self.engine.save(self.now(), wall_ms(), &mut out) {
            Ok([]) => match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
            Ok(saved) => crate::store::write_atomically(file, saved).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            log::warn!(
                "Adaptive Lighting: cannot keep the transition in {}: {e}",
                file.display()
            );
        }
    }
}

/// The wall clock, in milliseconds since the Unix epoch (0 if it is set before it).
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
