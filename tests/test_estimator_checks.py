"""scikit-learn's own estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastkm import KMeans, MiniBatchKMeans

# The same expected failure scikit-learn declares for its own KMeans and
# MiniBatchKMeans: a random draw (k-means++, mini-batches) on weighted data
# differs from one on repeated rows. The deterministic form of the property is
# tested in test_kmeans.py (test_integer_weight_equals_repeated_rows).
_EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight is not equivalent to removing/repeating samples."
    ),
    "check_sample_weight_equivalence_on_sparse_data": (
        "sample_weight is not equivalent to removing/repeating samples."
    ),
}


# scikit-learn's test parameters for KMeans and MiniBatchKMeans.
@parametrize_with_checks(
    [
        KMeans(n_init=2, n_clusters=2, max_iter=5),
        MiniBatchKMeans(n_init=2, n_clusters=2, max_iter=5, batch_size=10),
    ],
    expected_failed_checks=lambda est: _EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
