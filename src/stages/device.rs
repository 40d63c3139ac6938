//! The `device` parameter shared by the deep stage kinds (`deep_bsde`, `deep_bsde_eval`,
//! `rgan_train`, `rgan_eval`): where burn computes. `cpu` (flex, the default) is left out of the
//! key, so results stored before the parameter existed keep their keys; any other device is in
//! it (devices round differently). A device that this binary lacks, or whose library or GPU is
//! absent here, is refused while the pipeline is validated, before anything runs.

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

/// Checks that the device named by the stage's `device` parameter is usable here.
pub fn check_device(p: &Params) -> Result<(), ParamError> {
    let name = p
        .str(PARAM)
        .map_err(|e| ParamError::new(PARAM, e.to_string()))?;
    let kind = DeviceKind::parse(name).ok_or_else(|| ParamError::new(PARAM, unknown(name)))?;
    kind.check().map_err(|m| ParamError::new(PARAM, m))
}

/// The configured device named by the stage's `device` parameter.
pub fn device(p: &Params) -> Result<Device> {
    Ok(crate::deep::device::device_named(p.str(PARAM)?)?)
}
