//! Where models run: the CPU, or a CUDA GPU when rubric is built with the `cuda` feature. The
//! same training code runs on either; the fused CPU kernels give way to candle's composed ops on
//! a GPU (`Kernels::for_tensor`).

use candle_core::Device;

/// The device a `--device` value names: `cpu`, `cuda` (the first GPU) or `cuda:N`.
pub fn by_name(name: &str) -> Result<Device, String> {
    let name = name.trim();
    let ordinal = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => 0,
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => {
                return Err(format!(
                    "unknown device `{other}`: write `cpu`, `cuda` or `cuda:N` (the GPU's number)"
                ));
            }
        },
    };
    if !cfg!(feature = "cuda") {
        return Err(format!(
            "`{name}` needs a GPU build: this rubric was built without CUDA; rebuild with \
             `cargo build --release --features cuda` on a machine with the CUDA toolkit"
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| format!("cannot open the GPU `{name}`: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_is_always_there_and_a_gpu_needs_its_build() {
        assert!(by_name("cpu").unwrap().is_cpu());
        let err = by_name("tpu").unwrap_err();
        assert!(err.contains("`cpu`, `cuda` or `cuda:N`"), "{err}");
        if !cfg!(feature = "cuda") {
            let err = by_name("cuda:1").unwrap_err();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
