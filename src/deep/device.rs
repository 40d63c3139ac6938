//! Where the neural solvers compute: the `device` parameter of the deep stage kinds. `cpu` is
//! burn's pure-Rust `flex` backend (always built, the default); `tch-cpu` and `tch-cuda` are
//! libtorch (cargo feature `tch`); `cuda` is burn's CubeCL CUDA backend (cargo feature `cuda`).
//!
//! Each device is configured once per process (f64, autodiff) in its own [`OnceLock`], the first
//! time it is asked for, and the outcome is kept: a device that is not compiled in, or whose
//! library or GPU is absent, gives the same clear error every time. The stages ask
//! ([`DeviceKind::check`]) before a run computes on this machine, so such a pipeline fails before
//! anything runs.

use super::{DeepError, Result};
use burn::prelude::Device;
use std::sync::OnceLock;

/// The name of the stage parameter that chooses the device.
pub const PARAM: &str = "device";

/// A device the deep stages can train and evaluate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// burn's pure-Rust `flex` CPU backend (the default).
    Cpu,
    /// libtorch on the CPU (feature `tch`).
    TchCpu,
    /// libtorch on the first CUDA GPU (feature `tch`, a CUDA build of libtorch, a GPU).
    TchCuda,
    /// burn's CubeCL CUDA backend on the first GPU (feature `cuda`, the NVIDIA driver, NVRTC).
    Cuda,
}

/// How to build eqlab with libtorch (the `tch` feature), for error messages.
const TCH_HOW: &str = "rebuild with `make test-tch` or `cargo build --features tch` using the libtorch recipe in the README (section \"Devices\": PyTorch 2.9.0 in a venv, LIBTORCH_USE_PYTORCH=1)";
/// How to build eqlab with burn's CUDA backend (the `cuda` feature), for error messages.
const CUDA_HOW: &str = "rebuild with `cargo build --features cuda` (README, section \"Devices\": no CUDA toolkit needed, but the build downloads cubecl's LLVM bundle)";

impl DeviceKind {
    /// Every device, in the order `eqlab kinds` lists them.
    pub const ALL: [DeviceKind; 4] = [
        DeviceKind::Cpu,
        DeviceKind::TchCpu,
        DeviceKind::TchCuda,
        DeviceKind::Cuda,
    ];

    /// The name used in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::TchCpu => "tch-cpu",
            DeviceKind::TchCuda => "tch-cuda",
            DeviceKind::Cuda => "cuda",
        }
    }

    /// The device called `name`, if any.
    pub fn parse(name: &str) -> Option<DeviceKind> {
        DeviceKind::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The cargo feature the device needs (`None`: always built).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            DeviceKind::Cpu => None,
            DeviceKind::TchCpu | DeviceKind::TchCuda => Some("tch"),
            DeviceKind::Cuda => Some("cuda"),
        }
    }

    /// Whether this binary was built with the device's feature.
    pub fn compiled(self) -> bool {
        match self {
            DeviceKind::Cpu => true,
            DeviceKind::TchCpu | DeviceKind::TchCuda => cfg!(feature = "tch"),
            DeviceKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// Whether the device computes on a GPU.
    pub fn gpu(self) -> bool {
        matches!(self, DeviceKind::TchCuda | DeviceKind::Cuda)
    }

    /// The devices this binary was built with, comma-separated (for messages).
    pub fn compiled_names() -> String {
        DeviceKind::ALL
            .into_iter()
            .filter(|d| d.compiled())
            .map(DeviceKind::name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks that the device can be used here, configuring it on first use; the error says
    /// which feature, library or GPU is missing and what to do.
    pub fn check(self) -> std::result::Result<(), String> {
        self.cell().get_or_init(|| init(self)).clone().map(|_| ())
    }

    /// The configured device (f64 floats, autodiff).
    pub fn device(self) -> Result<Device> {
        self.cell()
            .get_or_init(|| init(self))
            .clone()
            .map_err(DeepError::Device)
    }

    fn cell(self) -> &'static OnceLock<std::result::Result<Device, String>> {
        static CELLS: [OnceLock<std::result::Result<Device, String>>; 4] =
            [const { OnceLock::new() }; 4];
        &CELLS[self as usize]
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The device named by `name` (a stage's `device` parameter), configured; errors name the
/// known devices.
pub fn device_named(name: &str) -> Result<Device> {
    DeviceKind::parse(name)
        .ok_or_else(|| DeepError::Device(unknown(name)))?
        .device()
}

/// The message for a device name that is not one of [`DeviceKind::ALL`].
pub fn unknown(name: &str) -> String {
    let all: Vec<&str> = DeviceKind::ALL.iter().map(|d| d.name()).collect();
    format!("unknown device '{name}': use one of {}", all.join(", "))
}

/// Builds and configures device `kind` once (f64, autodiff), or says why it cannot be used.
fn init(kind: DeviceKind) -> std::result::Result<Device, String> {
    if !kind.compiled() {
        let (feature, how) = match kind.feature() {
            Some("cuda") => ("cuda", CUDA_HOW),
            _ => ("tch", TCH_HOW),
        };
        return Err(format!(
            "device '{kind}' needs the cargo feature `{feature}`, which this eqlab was built without (built with: {}): {how}",
            DeviceKind::compiled_names()
        ));
    }
    let mut base = base(kind)?;
    base.configure(burn::tensor::FloatDType::F64)
        .map_err(|e| format!("device '{kind}': cannot select f64: {e:?}"))?;
    Ok(base.autodiff())
}

/// The unconfigured burn device of `kind` (its feature is compiled in), after checking that its
/// library and GPU are present.
fn base(kind: DeviceKind) -> std::result::Result<Device, String> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        // burn 0.22 deprecates its libtorch backend (README, "Devices")
        DeviceKind::TchCpu => Ok(Device::libtorch()),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        DeviceKind::TchCuda => {
            let gpus = probe(|| Device::enumerate(burn::tensor::DeviceType::LibTorch).len())
                .map_err(|e| format!("device 'tch-cuda': libtorch failed to count GPUs: {e}"))?;
            if gpus == 0 {
                return Err(
                    "device 'tch-cuda': libtorch sees no CUDA GPU (this libtorch may be a CPU-only build, or the machine has no GPU or driver); use tch-cpu or cpu here"
                        .to_owned(),
                );
            }
            Ok(Device::libtorch_cuda(0))
        }
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            // SAFETY: these only try to open the shared libraries (dlopen) and drop them.
            let (driver, nvrtc) = unsafe {
                (
                    cudarc::driver::sys::is_culib_present(),
                    cudarc::nvrtc::sys::is_culib_present(),
                )
            };
            if !driver {
                return Err("device 'cuda': the NVIDIA driver library (libcuda.so) is not found: this machine has no GPU driver; use cpu here".to_owned());
            }
            if !nvrtc {
                return Err("device 'cuda': the CUDA runtime compiler library (libnvrtc.so) is not found: install the CUDA toolkit's NVRTC (or PyPI nvidia-cuda-nvrtc-cu12) and add its lib directory to LD_LIBRARY_PATH".to_owned());
            }
            let gpus = probe(|| Device::enumerate(burn::tensor::DeviceType::Cuda).len())
                .map_err(|e| format!("device 'cuda': the CUDA driver failed to count GPUs: {e}"))?;
            if gpus == 0 {
                return Err("device 'cuda': the CUDA driver sees no GPU; use cpu here".to_owned());
            }
            Ok(Device::cuda(0))
        }
        #[allow(unreachable_patterns)] // with every feature on, every device is matched above
        _ => Err(format!("device '{kind}' is not compiled in")),
    }
}

/// Runs `f`, turning a panic inside the backend (e.g. a driver that fails to initialise) into
/// an error message.
#[cfg(any(feature = "tch", feature = "cuda"))]
fn probe<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> std::result::Result<T, String> {
    std::panic::catch_unwind(f).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// The device of the deep unit tests: `EQLAB_TEST_DEVICE` (e.g. `tch-cpu` in `make test-tch`),
/// `cpu` when unset.
#[cfg(test)]
pub fn test_device() -> Device {
    let name = std::env::var("EQLAB_TEST_DEVICE").unwrap_or_else(|_| "cpu".to_owned());
    match device_named(&name) {
        Ok(d) => d,
        Err(e) => panic!("EQLAB_TEST_DEVICE={name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_cpu_always_works() {
        for d in DeviceKind::ALL {
            assert_eq!(DeviceKind::parse(d.name()), Some(d));
        }
        assert_eq!(DeviceKind::parse("gpu"), None);
        assert!(unknown("gpu").contains("cpu, tch-cpu, tch-cuda, cuda"));
        assert!(DeviceKind::Cpu.check().is_ok());
        // configured once: asking again gives the same device
        assert!(DeviceKind::Cpu.device().is_ok());
    }

    #[test]
    fn a_device_not_compiled_in_names_its_feature_and_how_to_get_it() {
        for d in DeviceKind::ALL.into_iter().filter(|d| !d.compiled()) {
            let e = d.check().unwrap_err();
            let feature = d.feature().unwrap();
            assert!(e.contains(&format!("cargo feature `{feature}`")), "{e}");
            assert!(e.contains("--features"), "{e}");
        }
    }
}
