//! Builds a `pipeline` block's nodes: data sources and clean rules, synthetic pairs and the mix,
//! teachers, the student, quantization and monitoring.

use super::*;

impl Builder {
    pub(super) fn pipeline(&mut self, pair: Pair<'_, Rule>) -> PipelineDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let mut decl = empty_pipeline(span);
        decl.docs = docs;
        for p in pair.into_inner() {
            if p.as_rule() == Rule::pipeline_header {
                let names = self.names(&p);
                let mut it = names.into_iter();
                if let Some(n) = it.next() {
                    decl.name = n;
                }
                if let Some(n) = it.next() {
                    decl.policy = n;
                }
            } else {
                self.pipeline_item(p, &mut decl);
            }
        }
        decl
    }

    pub(super) fn pipeline_item(&mut self, pair: Pair<'_, Rule>, decl: &mut PipelineDecl) {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::data_block => {
                let mut block = DataBlock {
                    sources: Vec::new(),
                    synthetic: Vec::new(),
                    mixes: Vec::new(),
                    splits: Vec::new(),
                    span,
                };
                for p in pair.into_inner() {
                    self.data_stmt(p, &mut block);
                }
                decl.data.push(block);
            }
            Rule::teacher_block => {
                let docs = self.docs(&pair);
                let name = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let mut teacher = TeacherDecl {
                    docs,
                    name,
                    model: Vec::new(),
                    predicts: Vec::new(),
                    loss: None,
                    train: Vec::new(),
                    regularize: Vec::new(),
                    reads: Vec::new(),
                    reads_span: None,
                    features: Vec::new(),
                    span,
                };
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::model_stmt => teacher.model.extend(self.model(p)),
                        Rule::predicts_stmt => teacher.predicts.extend(self.names(&p)),
                        Rule::loss_stmt => teacher.loss = Some(self.loss(p)),
                        Rule::train_stmt => teacher.train.extend(self.settings_of(p)),
                        Rule::regularize_stmt => teacher.regularize.extend(self.regularize(p)),
                        Rule::reads_stmt => {
                            teacher.reads_span.get_or_insert(self.span(&p));
                            teacher.reads.extend(self.names(&p))
                        }
                        Rule::features_stmt => teacher.features.extend(self.names(&p)),
                        _ => {}
                    }
                }
                decl.teachers.push(teacher);
            }
            Rule::student_block => {
                let docs = self.docs(&pair);
                let mut student = StudentDecl {
                    docs,
                    model: Vec::new(),
                    distill: Vec::new(),
                    learn: Vec::new(),
                    drift: Vec::new(),
                    regularize: Vec::new(),
                    early_stop: None,
                    train: Vec::new(),
                    reads: Vec::new(),
                    reads_span: None,
                    features: Vec::new(),
                    span,
                };
                for p in pair.into_inner() {
                    let pspan = self.span(&p);
                    match p.as_rule() {
                        Rule::model_stmt => student.model.extend(self.model(p)),
                        Rule::train_stmt => student.train.extend(self.settings_of(p)),
                        Rule::reads_stmt => {
                            student.reads_span.get_or_insert(pspan);
                            student.reads.extend(self.names(&p))
                        }
                        Rule::features_stmt => student.features.extend(self.names(&p)),
                        Rule::regularize_stmt => student.regularize.extend(self.regularize(p)),
                        Rule::distill_stmt => {
                            let mut teacher = None;
                            let mut weight = (0.0, pspan);
                            let mut loss_name = None;
                            let mut temperature = None;
                            for d in p.into_inner() {
                                match d.as_rule() {
                                    Rule::name if teacher.is_none() => {
                                        teacher = Some(self.ident(&d))
                                    }
                                    Rule::name => loss_name = Some(self.ident(&d)),
                                    Rule::signed_number => {
                                        weight = (self.number(&d), self.span(&d))
                                    }
                                    Rule::temperature => temperature = self.temperature(d),
                                    _ => {}
                                }
                            }
                            let loss_ident = loss_name.unwrap_or_else(|| missing_ident(pspan));
                            student.distill.push(DistillDecl {
                                teacher: teacher.unwrap_or_else(|| missing_ident(pspan)),
                                weight: weight.0,
                                weight_span: weight.1,
                                loss: LossDecl {
                                    span: loss_ident.span,
                                    kind: loss_ident,
                                    temperature,
                                },
                                span: pspan,
                            });
                        }
                        Rule::learn_stmt => {
                            let mut names = Vec::new();
                            let mut weight = (0.0, pspan);
                            for d in p.into_inner() {
                                match d.as_rule() {
                                    Rule::name => names.push(self.ident(&d)),
                                    Rule::signed_number => {
                                        weight = (self.number(&d), self.span(&d))
                                    }
                                    _ => {}
                                }
                            }
                            let mut names = names.into_iter();
                            let from = names.next().unwrap_or_else(|| missing_ident(pspan));
                            let loss_ident = names.next().unwrap_or_else(|| missing_ident(pspan));
                            student.learn.push(LearnDecl {
                                from,
                                weight: weight.0,
                                weight_span: weight.1,
                                loss: LossDecl {
                                    span: loss_ident.span,
                                    kind: loss_ident,
                                    temperature: None,
                                },
                                span: pspan,
                            });
                        }
                        Rule::drift_stmt => {
                            let mut numbers = Vec::new();
                            let mut rebalance_every = None;
                            let mut against = None;
                            for d in p.into_inner() {
                                match d.as_rule() {
                                    Rule::signed_number => {
                                        numbers.push((self.number(&d), self.span(&d)))
                                    }
                                    Rule::integer => {
                                        rebalance_every = Some((self.integer(&d), self.span(&d)))
                                    }
                                    Rule::name => against = Some(self.ident(&d)),
                                    _ => {}
                                }
                            }
                            let (weight, weight_span) =
                                numbers.first().copied().unwrap_or((0.0, pspan));
                            let (tolerance, tolerance_span) =
                                numbers.get(1).copied().unwrap_or((0.0, pspan));
                            student.drift.push(DriftDecl {
                                weight,
                                weight_span,
                                tolerance,
                                tolerance_span,
                                rebalance_every,
                                against,
                                span: pspan,
                            });
                        }
                        Rule::early_stop_stmt => {
                            let mut metric = None;
                            let mut patience = 0;
                            for d in p.into_inner() {
                                match d.as_rule() {
                                    Rule::metric => metric = Some(self.ident(&d)),
                                    Rule::integer => patience = self.integer(&d),
                                    _ => {}
                                }
                            }
                            student.early_stop = Some(EarlyStopDecl {
                                metric: metric.unwrap_or_else(|| missing_ident(pspan)),
                                patience,
                                span: pspan,
                            });
                        }
                        _ => {}
                    }
                }
                decl.students.push(student);
            }
            Rule::quantize_block => {
                let scheme = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let mut prune_heads_below = None;
                for p in pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::prune_stmt)
                {
                    if let Some(n) = p.into_inner().find(|n| n.as_rule() == Rule::signed_number) {
                        prune_heads_below = Some((self.number(&n), self.span(&n)));
                    }
                }
                decl.quantize.push(QuantizeDecl {
                    scheme,
                    prune_heads_below,
                    span,
                });
            }
            Rule::monitor_block => {
                let mut alerts = Vec::new();
                for p in pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::alert_stmt)
                {
                    let aspan = self.span(&p);
                    let mut metric = None;
                    let mut op = CompareOp::Gt;
                    let mut threshold = (Threshold::Number(0.0), aspan);
                    for a in p.into_inner() {
                        let s = self.span(&a);
                        match a.as_rule() {
                            Rule::metric => metric = Some(self.ident(&a)),
                            Rule::compare_op => op = compare_op(&a),
                            Rule::duration => {
                                threshold = (Threshold::Duration(self.duration(&a)), s)
                            }
                            Rule::percent => threshold = (Threshold::Percent(self.percent(&a)), s),
                            Rule::signed_number => {
                                threshold = (Threshold::Number(self.number(&a)), s)
                            }
                            _ => {}
                        }
                    }
                    alerts.push(AlertDecl {
                        metric: metric.unwrap_or_else(|| missing_ident(aspan)),
                        op,
                        threshold: threshold.0,
                        threshold_span: threshold.1,
                        span: aspan,
                    });
                }
                decl.monitors.push(MonitorDecl { alerts, span });
            }
            _ => {}
        }
    }

    pub(super) fn data_stmt(&mut self, pair: Pair<'_, Rule>, block: &mut DataBlock) {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::source_stmt => {
                let name = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let mut path = String::new();
                let mut path_span = span;
                let mut clean = Vec::new();
                let mut unlabeled = false;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::k_unlabeled => unlabeled = true,
                        Rule::string => {
                            path = self.string(&p);
                            path_span = self.span(&p);
                        }
                        Rule::clean_block => {
                            for c in p.into_inner() {
                                if let Some(rule) = self.clean_rule(c) {
                                    clean.push(rule);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                block.sources.push(DataSource {
                    name,
                    path,
                    path_span,
                    unlabeled,
                    clean,
                    span,
                });
            }
            Rule::synthetic_stmt => {
                let from = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let settings = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::settings)
                    .map(|p| self.settings(p))
                    .unwrap_or_default();
                block.synthetic.push(SyntheticDecl {
                    from,
                    settings,
                    span,
                });
            }
            Rule::mix_stmt => {
                let shares = pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::mix_share)
                    .filter_map(|p| {
                        let s = self.span(&p);
                        let name = self.first_name(&p)?;
                        let share = p
                            .into_inner()
                            .find(|x| x.as_rule() == Rule::percent)
                            .map_or(0.0, |x| self.percent(&x));
                        Some((name, share, s))
                    })
                    .collect();
                block.mixes.push(MixDecl { shares, span });
            }
            Rule::split_stmt => {
                let mut validation = 0.0;
                let mut validation_span = span;
                let mut seed = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::percent => {
                            validation = self.percent(&p);
                            validation_span = self.span(&p);
                        }
                        Rule::integer => seed = Some(self.integer(&p)),
                        _ => {}
                    }
                }
                block.splits.push(SplitDecl {
                    validation,
                    validation_span,
                    seed,
                    span,
                });
            }
            _ => {}
        }
    }

    pub(super) fn clean_rule(&mut self, pair: Pair<'_, Rule>) -> Option<CleanRule> {
        let span = self.span(&pair);
        Some(match pair.as_rule() {
            Rule::drop_when => {
                let name = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let condition = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::expr)
                    .map_or_else(|| missing_expr(span), |e| self.expr(e));
                CleanRule::DropWhen {
                    name,
                    condition,
                    span,
                }
            }
            Rule::drop_outliers => {
                let field = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let how = pair.into_inner().find(|p| {
                    matches!(p.as_rule(), Rule::outlier_sigma | Rule::outlier_quantile)
                })?;
                let is_sigma = how.as_rule() == Rule::outlier_sigma;
                let value = how
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::number)
                    .map_or(0.0, |p| self.number(&p));
                if is_sigma {
                    CleanRule::OutliersSigma {
                        field,
                        sigma: value,
                        span,
                    }
                } else {
                    CleanRule::OutliersQuantile {
                        field,
                        quantile: value,
                        span,
                    }
                }
            }
            Rule::drop_duplicates => CleanRule::Duplicates {
                on: self.names(&pair),
                span,
            },
            _ => return None,
        })
    }

    pub(super) fn model(&mut self, pair: Pair<'_, Rule>) -> Option<ModelSpec> {
        let inner = pair.into_inner().find(|p| {
            matches!(
                p.as_rule(),
                Rule::model_encoder | Rule::model_init | Rule::model_from
            )
        })?;
        let span = self.span(&inner);
        if inner.as_rule() == Rule::model_from {
            let teacher = self
                .first_name(&inner)
                .unwrap_or_else(|| missing_ident(span));
            return Some(ModelSpec::FromTeacher { teacher, span });
        }
        if inner.as_rule() == Rule::model_encoder {
            let settings = inner
                .into_inner()
                .find(|p| p.as_rule() == Rule::settings)
                .map(|p| self.settings(p))
                .unwrap_or_default();
            Some(ModelSpec::Encoder { settings, span })
        } else {
            let path = inner
                .into_inner()
                .find(|p| p.as_rule() == Rule::string)
                .map(|p| self.string(&p))
                .unwrap_or_default();
            Some(ModelSpec::Init { path, span })
        }
    }

    pub(super) fn loss(&mut self, pair: Pair<'_, Rule>) -> LossDecl {
        let span = self.span(&pair);
        let kind = self
            .first_name(&pair)
            .unwrap_or_else(|| missing_ident(span));
        let temperature = pair
            .into_inner()
            .find(|p| p.as_rule() == Rule::temperature)
            .and_then(|t| self.temperature(t));
        LossDecl {
            kind,
            temperature,
            span,
        }
    }

    pub(super) fn temperature(&mut self, pair: Pair<'_, Rule>) -> Option<(f64, Span)> {
        pair.into_inner()
            .find(|p| p.as_rule() == Rule::signed_number)
            .map(|p| (self.number(&p), self.span(&p)))
    }

    pub(super) fn settings_of(&mut self, pair: Pair<'_, Rule>) -> Vec<Setting> {
        pair.into_inner()
            .find(|p| p.as_rule() == Rule::settings)
            .map(|p| self.settings(p))
            .unwrap_or_default()
    }

    /// The settings of `regularize weight_decay 0.01 dropout 0.1`.
    pub(super) fn regularize(&mut self, pair: Pair<'_, Rule>) -> Vec<Setting> {
        pair.into_inner()
            .filter(|s| s.as_rule() == Rule::numeric_setting)
            .filter_map(|s| self.setting(s))
            .collect()
    }

    pub(super) fn settings(&mut self, pair: Pair<'_, Rule>) -> Vec<Setting> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::setting)
            .filter_map(|p| self.setting(p))
            .collect()
    }

    pub(super) fn setting(&mut self, pair: Pair<'_, Rule>) -> Option<Setting> {
        let mut inner = pair.into_inner();
        let key = inner.next().map(|k| self.ident(&k))?;
        let v = inner.next()?;
        let value_span = self.span(&v);
        let value = match v.as_rule() {
            Rule::duration => SettingValue::Duration(self.duration(&v)),
            Rule::percent => SettingValue::Percent(self.percent(&v)),
            Rule::signed_number => SettingValue::Number(self.number(&v)),
            Rule::string => SettingValue::String(self.string(&v)),
            Rule::boolean => SettingValue::Bool(v.as_str() == "true"),
            _ => SettingValue::Name(v.as_str().to_string()),
        };
        Some(Setting {
            key,
            value,
            value_span,
        })
    }
}
