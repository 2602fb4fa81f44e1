//! The metrics every stage reports with, in one place: per-dimension MAE and Spearman
//! correlation (`policy_alignment`), weighted Cohen's kappa on grades (`grade_kappa`), click
//! AUC, log loss and calibration error, NDCG@k over each query's candidates, and policy drift.
//! Each follows the definition of the reference implementation named in its doc (scikit-learn,
//! scipy), ties included, so figures can be compared with other tools'. A metric that is not
//! defined on its input (empty, constant, one class) is `None`, never NaN.

/// Mean absolute error.
pub fn mae(predicted: &[f64], truth: &[f64]) -> Option<f64> {
    if predicted.len() != truth.len() || predicted.is_empty() {
        return None;
    }
    let sum: f64 = predicted
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t).abs())
        .sum();
    Some(sum / predicted.len() as f64)
}

/// Policy drift: the mean absolute gap between a model's policy scores and the reference's
/// (the policy teacher's or the rubric's), over every pair and target.
pub fn policy_drift(model: &[f64], reference: &[f64]) -> Option<f64> {
    mae(model, reference)
}

/// Ranks from 1, ties given the mean of the ranks they span (scipy's `rankdata`, "average").
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            ranks[*k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson's correlation; None when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return None;
    }
    Some((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation: Pearson's on average ranks (scipy's `spearmanr`).
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() {
        return None;
    }
    pearson(&average_ranks(a), &average_ranks(b))
}

/// How disagreements between grades weigh in [`cohen_kappa`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KappaWeights {
    /// Every disagreement weighs 1.
    Unweighted,
    /// |i − j|.
    Linear,
    /// (i − j)².
    Quadratic,
}

/// Cohen's kappa of two raters' grades, as indices `0..classes` in the grades' order
/// (scikit-learn's `cohen_kappa_score` with `labels = 0..classes`).
pub fn cohen_kappa(a: &[usize], b: &[usize], classes: usize, weights: KappaWeights) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() || classes == 0 {
        return None;
    }
    let mut confusion = vec![vec![0.0f64; classes]; classes];
    for (x, y) in a.iter().zip(b) {
        if *x >= classes || *y >= classes {
            return None;
        }
        confusion[*x][*y] += 1.0;
    }
    let n = a.len() as f64;
    let rows: Vec<f64> = confusion.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<f64> = (0..classes)
        .map(|j| confusion.iter().map(|r| r[j]).sum())
        .collect();
    let weight = |i: usize, j: usize| -> f64 {
        let d = i.abs_diff(j) as f64;
        match weights {
            KappaWeights::Unweighted => f64::from(u8::from(i != j)),
            KappaWeights::Linear => d,
            KappaWeights::Quadratic => d * d,
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for i in 0..classes {
        for j in 0..classes {
            let w = weight(i, j);
            observed += w * confusion[i][j];
            expected += w * rows[i] * cols[j] / n;
        }
    }
    (expected != 0.0).then(|| 1.0 - observed / expected)
}

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative, ties counting a half (scikit-learn's `roc_auc_score`). None without both classes.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() {
        return None;
    }
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let ranks = average_ranks(scores);
    let rank_sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l)
        .map(|(r, _)| r)
        .sum();
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Mean negative log-likelihood of the labels under the predicted probabilities, clipped to
/// [ε, 1 − ε] with ε the f64 machine epsilon (scikit-learn's `log_loss`).
pub fn log_loss(probabilities: &[f64], labels: &[bool]) -> Option<f64> {
    if probabilities.len() != labels.len() || probabilities.is_empty() {
        return None;
    }
    let eps = f64::EPSILON;
    let sum: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(p, l)| {
            let p = p.clamp(eps, 1.0 - eps);
            if *l { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    Some(sum / probabilities.len() as f64)
}

/// Expected calibration error over `bins` equal-width bins of predicted probability: the mean,
/// weighted by bin size, of |mean prediction − observed rate|.
pub fn calibration_error(probabilities: &[f64], labels: &[bool], bins: usize) -> Option<f64> {
    if probabilities.len() != labels.len() || probabilities.is_empty() || bins == 0 {
        return None;
    }
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut count = vec![0usize; bins];
    for (p, l) in probabilities.iter().zip(labels) {
        let p = p.clamp(0.0, 1.0);
        let bin = ((p * bins as f64) as usize).min(bins - 1);
        sum_p[bin] += p;
        sum_y[bin] += f64::from(u8::from(*l));
        count[bin] += 1;
    }
    let n = probabilities.len() as f64;
    Some(
        (0..bins)
            .filter(|b| count[*b] > 0)
            .map(|b| (sum_p[b] - sum_y[b]).abs() / n)
            .sum(),
    )
}

/// DCG of the top `k` positions when ranked by `scores`, the gains of tied scores averaged over
/// the positions they share (scikit-learn's `_tie_averaged_dcg`): gains are the relevances
/// themselves, discounts 1 / log2(position + 1).
fn tie_averaged_dcg(relevance: &[f64], scores: &[f64], k: usize) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let mut dcg = 0.0;
    let mut start = 0;
    while start < order.len() && start < k {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mean_gain =
            order[start..end].iter().map(|i| relevance[*i]).sum::<f64>() / (end - start) as f64;
        let discounts: f64 = (start..end.min(k)).map(discount).sum();
        dcg += mean_gain * discounts;
        start = end;
    }
    dcg
}

/// NDCG@k of one query's candidates: `relevance` graded by the rubric, `scores` the model's.
/// A query with no relevant candidate scores 0 (scikit-learn's `ndcg_score` for one sample).
pub fn ndcg_at_k(relevance: &[f64], scores: &[f64], k: usize) -> Option<f64> {
    if relevance.len() != scores.len() || relevance.is_empty() || k == 0 {
        return None;
    }
    let ideal = tie_averaged_dcg(relevance, relevance, k);
    if ideal == 0.0 {
        return Some(0.0);
    }
    Some(tie_averaged_dcg(relevance, scores, k) / ideal)
}

/// Mean NDCG@k over queries, each a (relevance, scores) list of its candidates.
pub fn mean_ndcg_at_k<'a>(
    queries: impl IntoIterator<Item = (&'a [f64], &'a [f64])>,
    k: usize,
) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for (relevance, scores) in queries {
        sum += ndcg_at_k(relevance, scores, k)?;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    // Expected values printed by scikit-learn 1.9.1 and scipy 1.17.1 on the same inputs.
    #[test]
    fn ranks_and_correlations() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]),
            vec![3.5, 1.0, 3.5, 2.0]
        );
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) = 0.8207826816681233
        close(
            spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap(),
            0.820_782_681_668_123_3,
        );
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn kappa_as_scikit_learn() {
        let a = [0, 1, 2, 2, 1, 0, 2];
        let b = [0, 2, 2, 1, 1, 0, 0];
        // cohen_kappa_score(a, b) = 0.36363636363636365
        close(
            cohen_kappa(&a, &b, 3, KappaWeights::Unweighted).unwrap(),
            0.363_636_363_636_363_65,
        );
        // weights="linear": 0.3913043478260869; weights="quadratic": 0.41666666666666663
        close(
            cohen_kappa(&a, &b, 3, KappaWeights::Linear).unwrap(),
            0.391_304_347_826_086_9,
        );
        close(
            cohen_kappa(&a, &b, 3, KappaWeights::Quadratic).unwrap(),
            0.416_666_666_666_666_63,
        );
        assert_eq!(cohen_kappa(&[1, 1], &[1, 1], 3, KappaWeights::Linear), None);
    }

    #[test]
    fn auc_log_loss_and_calibration() {
        // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75
        close(
            roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap(),
            0.75,
        );
        // Ties count a half: roc_auc_score([0, 1], [0.5, 0.5]) = 0.5
        close(roc_auc(&[0.5, 0.5], &[false, true]).unwrap(), 0.5);
        assert_eq!(roc_auc(&[0.5], &[true]), None);
        // log_loss([1, 0, 1], [0.9, 0.2, 0.6]) = 0.2797765635793423
        close(
            log_loss(&[0.9, 0.2, 0.6], &[true, false, true]).unwrap(),
            0.279_776_563_579_342_3,
        );
        close(
            calibration_error(&[0.9, 0.9, 0.1, 0.1], &[true, false, false, false], 10).unwrap(),
            (0.4 * 2.0 + 0.1 * 2.0) / 4.0,
        );
    }

    #[test]
    fn ndcg_as_scikit_learn_ties_included() {
        // ndcg_score([[10, 0, 0, 1, 5]], [[.1, .2, .3, 4, 70]]) = 0.6956940443813076
        let relevance = [10.0, 0.0, 0.0, 1.0, 5.0];
        close(
            ndcg_at_k(&relevance, &[0.1, 0.2, 0.3, 4.0, 70.0], 5).unwrap(),
            0.695_694_044_381_307_6,
        );
        // Ties: ndcg_score([[10, 0, 0, 1, 5]], [[1, 0, 0, 1, 1]], k=3) = 0.8323142454214769
        close(
            ndcg_at_k(&relevance, &[1.0, 0.0, 0.0, 1.0, 1.0], 3).unwrap(),
            0.832_314_245_421_476_9,
        );
        assert_eq!(ndcg_at_k(&[0.0, 0.0], &[1.0, 2.0], 2), Some(0.0));
        close(
            mean_ndcg_at_k([(&relevance[..], &[0.1, 0.2, 0.3, 4.0, 70.0][..])], 5).unwrap(),
            0.695_694_044_381_307_6,
        );
    }
}
