//! A linear layer, `x · wᵀ + b` over rows, as one op with its own backward: the product written
//! onto the bias rows by one `gemm` call on rayon's threads, and a backward that gives the
//! weight's gradient in the weight's own layout. Composed of candle's ops it is three nodes
//! (the weight's transpose, the product, the bias) whose backwards each add a whole gradient
//! into zeros (`GradStore::or_insert`), the transpose's through a strided walk.

use super::{ColumnSums, f32s, output, row_width};
use crate::quant::dense::{View, par_matmul};
use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Tensor, bail};

/// `x · weightᵀ + bias` for `x` `[rows, in]`, `weight` `[out, in]`, `bias` `[out]`: `[rows,
/// out]`. f32 on the CPU.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (rows, inputs) = x.dims2()?;
    let (outputs, weight_inputs) = weight.dims2()?;
    if weight_inputs != inputs || bias.dims() != [outputs] {
        bail!(
            "linear: a weight of shape {:?} and a bias of shape {:?} for rows of {inputs}",
            weight.dims(),
            bias.dims()
        );
    }
    let op = Linear {
        rows,
        inputs,
        outputs,
    };
    x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)
}

#[derive(Clone, Copy, Debug)]
struct Linear {
    rows: usize,
    inputs: usize,
    outputs: usize,
}

fn gemm_err(e: String) -> Error {
    Error::Msg(format!("linear: {e}"))
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s("linear", s1, l1)?;
        let w = f32s("linear", s2, l2)?;
        let b = f32s("linear", s3, l3)?;
        let Linear {
            rows,
            inputs,
            outputs,
        } = *self;
        if row_width("linear", l1.shape())? != inputs || b.len() != outputs {
            bail!("linear: the operands changed shape");
        }
        // The bias rows, then the product added onto them.
        let mut y = Vec::with_capacity(rows * outputs);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        par_matmul(
            &mut y,
            outputs,
            View::rows(x, rows, inputs),
            View::transposed(w, inputs, outputs),
            true,
        )
        .map_err(gemm_err)?;
        Ok(output(y, &Shape::from_dims(&[rows, outputs])))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Detached, so that the gradients record no graph of their own.
        let g = grad_res.contiguous()?.detach();
        let (x, weight) = (x.detach(), weight.detach());
        let dx = g.matmul(&weight)?;
        let dw = g.t()?.matmul(&x)?;
        let db = g.apply_op1_no_bwd(&ColumnSums)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, dims: &[usize]) -> Tensor {
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_vec(data, dims, &Device::Cpu).unwrap()
    }

    fn worst(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
            .fold(0f32, f32::max)
    }

    /// Forward and every gradient equal candle's `x · wᵀ + b` (relative error ≤ 1e-4), on
    /// random shapes, odd ones included.
    #[test]
    fn the_op_equals_the_composed_product_forward_and_backward() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (rows, inputs, outputs) in [(1, 1, 1), (7, 5, 3), (96, 64, 48), (300, 33, 129)] {
            let x = Var::from_tensor(&random(&mut rng, &[rows, inputs])).unwrap();
            let w = Var::from_tensor(&random(&mut rng, &[outputs, inputs])).unwrap();
            let b = Var::from_tensor(&random(&mut rng, &[outputs])).unwrap();
            let up = random(&mut rng, &[rows, outputs]);
            let fused = linear(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
            let composed = x
                .as_tensor()
                .matmul(&w.as_tensor().t().unwrap())
                .unwrap()
                .broadcast_add(b.as_tensor())
                .unwrap();
            assert!(worst(&fused, &composed) <= 1e-4);
            let grads = |y: &Tensor| (y * &up).unwrap().sum_all().unwrap().backward().unwrap();
            let (gf, gc) = (grads(&fused), grads(&composed));
            for v in [&x, &w, &b] {
                let (f, c) = (
                    gf.get(v.as_tensor()).unwrap(),
                    gc.get(v.as_tensor()).unwrap(),
                );
                assert!(worst(f, c) <= 1e-4, "{rows} × {inputs} → {outputs}");
            }
        }
    }

    #[test]
    fn mismatched_operands_are_named() {
        let x = Tensor::zeros((4, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((2, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = linear(&x, &w, &b).unwrap_err().to_string();
        assert!(err.contains("linear") && err.contains("[2, 5]"), "{err}");
    }
}
