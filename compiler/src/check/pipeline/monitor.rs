//! Checks of a pipeline's quantization and monitoring: schemes, metrics and the units of alert
//! thresholds.

use super::*;

pub(super) fn check_quantize(quantize: &QuantizeDecl, diags: &mut Diagnostics) {
    let scheme = &quantize.scheme;
    if !QUANTIZE_SCHEMES.contains(&scheme.name.as_str()) {
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!("the quantization scheme `{}` is not supported", scheme.name),
            )
            .at(scheme.span, "unknown scheme")
            .help("the supported scheme is `int8`: write `quantize int8`"),
        );
    }
    if let Some((threshold, span)) = quantize.prune_heads_below.filter(|(t, _)| *t < 0.0) {
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!(
                    "the pruning threshold must be 0 or more, not `{}`",
                    show_number(threshold)
                ),
            )
            .at(span, "out of range")
            .help("heads whose importance is below the threshold are removed, e.g. `prune heads below 0.01`"),
        );
    }
}

/// The unit of a metric; reports (and returns None for) a metric the runtime does not measure.
pub(super) fn metric_kind(metric: &Ident, diags: &mut Diagnostics) -> Option<MetricUnit> {
    let name = metric.name.as_str();
    if let Some(spec) = vocabulary::metric(name) {
        return Some(spec.unit);
    }
    let special_help = match name {
        "ndcg" => Some("say how many results it looks at, e.g. `ndcg@10`"),
        _ if name.starts_with("ndcg@") => {
            Some("`ndcg@K` needs a cutoff K of at least 1, e.g. `ndcg@10`")
        }
        _ => None,
    };
    let known = || {
        vocabulary::METRICS.iter().map(|m| {
            if m.name == "ndcg@K" {
                "ndcg@10"
            } else {
                m.name
            }
        })
    };
    let help = match (special_help, did_you_mean(name, known())) {
        (Some(help), _) => help.to_string(),
        (None, Some(best)) => format!("did you mean `{best}`?"),
        (None, None) => format!(
            "the known metrics are {}",
            backticked(
                &vocabulary::METRICS
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
            )
        ),
    };
    diags.push(
        Diagnostic::new(
            Code::UnknownMetric,
            format!("the runtime does not measure `{name}`"),
        )
        .at(metric.span, "unknown metric")
        .help(help),
    );
    None
}

pub(super) fn check_alert(alert: &AlertDecl, diags: &mut Diagnostics) {
    let Some(kind) = metric_kind(&alert.metric, diags) else {
        return;
    };
    let metric = alert.metric.name.as_str();
    let span = alert.threshold_span;
    match (kind, alert.threshold) {
        (MetricUnit::Milliseconds, Threshold::Number(v) | Threshold::Percent(v)) => {
            let (label, example) = match alert.threshold {
                Threshold::Number(_) => ("a plain number", format!("{}ms", show_number(v))),
                _ => ("a percent", "20ms".to_string()),
            };
            diags.push(
                Diagnostic::new(
                    Code::ThresholdUnit,
                    format!("`{metric}` is a time, so its threshold needs a unit"),
                )
                .at(span, label)
                .help(format!(
                    "write the threshold as a duration (`us`, `ms`, `s`), e.g. `alert {metric} {} {example}`",
                    alert.op.symbol()
                )),
            );
        }
        (MetricUnit::Milliseconds, Threshold::Duration(_)) => {}
        (_, Threshold::Duration(_)) => {
            diags.push(
                Diagnostic::new(
                    Code::ThresholdUnit,
                    format!("`{metric}` is not a time, so its threshold cannot be a duration"),
                )
                .at(span, "a duration")
                .help("write a plain number or a percent, e.g. `0.70` or `70%`"),
            );
        }
        (
            kind @ (MetricUnit::Ratio | MetricUnit::Correlation),
            Threshold::Number(v) | Threshold::Percent(v),
        ) => {
            let lo = if kind == MetricUnit::Correlation {
                -1.0
            } else {
                0.0
            };
            if !(lo..=1.0).contains(&v) {
                let help = if matches!(alert.threshold, Threshold::Number(_))
                    && v > 1.0
                    && v <= 100.0
                {
                    format!(
                        "`{metric}` is between 0 and 1; write the threshold as a fraction (`{}`) or a percent (`{}%`)",
                        show_number(v / 100.0),
                        show_number(v)
                    )
                } else {
                    format!("`{metric}` is between {lo} and 1; use a threshold in that range")
                };
                diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!(
                            "the threshold `{}` is outside [{lo}, 1], the range of `{metric}`",
                            show_threshold(alert.threshold)
                        ),
                    )
                    .at(span, "can never be crossed")
                    .help(help),
                );
            }
        }
        (MetricUnit::Nats, Threshold::Number(v) | Threshold::Percent(v)) => {
            if v < 0.0 {
                diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!(
                            "the threshold `{}` is below 0, the lowest `{metric}` can be",
                            show_threshold(alert.threshold)
                        ),
                    )
                    .at(span, "can never be crossed")
                    .help("use a threshold of 0 or more, e.g. `alert click_logloss > 0.5`"),
                );
            }
        }
    }
}
