//! rubric-ml: the ML half of rubric, kept out of the language server's dependency tree. It holds
//! the metrics that training, distillation, evaluation and monitoring share; models, teachers,
//! distillation, int8 quantization and serving join it.

pub mod checkpoint;
pub mod device;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod params;
pub mod process;
pub mod quant;
pub mod tokenize;
pub mod train;
