//! The `device` parameter shared by the deep stage kinds (`deep_bsde`, `deep_bsde_eval`,
//! `rgan_train`, `rgan_eval`): where burn computes. `cpu` (flex, the default) is left out of the
//! key, so results stored before the parameter existed keep their keys; any other device is in
//! it (devices round differently). A device that this binary lacks is refused while the pipeline
//! is validated; one whose library or GPU is absent, before a run computes on this machine (a
//! cluster job checks on its node, and asks Slurm for a GPU by default).

use crate::deep::DeviceKind;
use crate::deep::device::{PARAM, unknown};
use crate::stage::{ParamError, ParamKind, ParamSpec, Params};
use anyhow::Result;
use burn::prelude::Device;

/// The `device` parameter spec.
pub const DEVICE: ParamSpec = ParamSpec::added(
    PARAM,
    ParamKind::Str,
    "cpu",
    "where burn computes: cpu (flex, pure Rust, always built), tch-cpu or tch-cuda (libtorch, cargo feature `tch`), cuda (CubeCL, feature `cuda`); not cpu: part of the key",
);

/// Checks that the stage's `device` parameter names a device this binary was built with.
pub fn check_device(p: &Params) -> Result<(), ParamError> {
    let kind = device_kind(p)?;
    if kind.compiled() {
        Ok(())
    } else {
        kind.check().map_err(|m| ParamError::new(PARAM, m))
    }
}

/// Checks that the device is usable on this machine (its library and GPU are present),
/// configuring it: the deep kinds' [`Stage::check_machine`](crate::stage::Stage::check_machine).
pub fn check_device_here(p: &Params) -> Result<(), ParamError> {
    device_kind(p)?
        .check()
        .map_err(|m| ParamError::new(PARAM, m))
}

/// The device the stage's `device` parameter names.
fn device_kind(p: &Params) -> Result<DeviceKind, ParamError> {
    let name = p
        .str(PARAM)
        .map_err(|e| ParamError::new(PARAM, e.to_string()))?;
    DeviceKind::parse(name).ok_or_else(|| ParamError::new(PARAM, unknown(name)))
}

/// GPUs a cluster job computing on the stage's device asks for by default: 1 for `tch-cuda`
/// and `cuda`, none otherwise (or when the parameter is absent).
pub fn default_gpus(p: &Params) -> Option<u32> {
    let kind = DeviceKind::parse(p.str(PARAM).ok()?)?;
    kind.gpu().then_some(1)
}

/// The configured device named by the stage's `device` parameter.
pub fn device(p: &Params) -> Result<Device> {
    Ok(crate::deep::device::device_named(p.str(PARAM)?)?)
}
